// « Autoriser ce site à utiliser votre carte CPx ? » — once, always, or refuse. Focus starts on « Refuser »:
// a dialog a page opened must not be allowed by an Entrée typed for something else.
"use strict";

page(async () => {
  await applyLabels();
  const view = await invoke("dialog_view");
  document.getElementById("origin").textContent = view.origin;
  for (const decision of ["once", "always", "refuse"]) {
    document.getElementById(decision).addEventListener("click", () => invoke("consent_answer", { decision }));
  }
  document.getElementById("refuse").focus();
  onEscape(() => invoke("consent_answer", { decision: "refuse" }));
});
