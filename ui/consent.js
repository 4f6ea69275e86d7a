// « Autoriser ce site à utiliser votre carte CPx ? » — once, always, or refuse. Focus starts on « une fois ».
"use strict";

page(async () => {
  await applyLabels();
  const view = await invoke("dialog_view");
  document.getElementById("origin").textContent = view.origin;
  for (const decision of ["once", "always", "refuse"]) {
    document.getElementById(decision).addEventListener("click", () => invoke("consent_answer", { decision }));
  }
  document.getElementById("once").focus();
  onEscape(() => invoke("consent_answer", { decision: "refuse" }));
});
