// Several CPx cards are present: one button per card (holder and card type).
"use strict";

page(async () => {
  await applyLabels();
  const view = await invoke("dialog_view");
  document.getElementById("origin").textContent = view.origin;
  document.getElementById("origin").hidden = !view.origin; // no site: changing or unblocking the code
  const cards = document.getElementById("cards");
  view.cards.forEach((label, index) => {
    const b = el("button", { type: "button", class: "primary" }, label);
    b.addEventListener("click", () => invoke("choice_answer", { index }));
    cards.append(b);
  });
  cards.querySelector("button")?.focus();
  const cancel = () => invoke("dialog_close");
  document.getElementById("cancel").addEventListener("click", cancel);
  onEscape(cancel);
});
