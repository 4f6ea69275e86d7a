// The blocked-card notice: what happened and what to do (unblocking code, the issuer's help line); no PIN field.
"use strict";

page(async () => {
  await applyLabels();
  const view = await invoke("dialog_view");
  for (const k of ["message", "origin", "holder", "card", "fix"]) document.getElementById(k).textContent = view[k];
  const close = () => invoke("dialog_close");
  document.getElementById("close").addEventListener("click", close);
  // « Débloquer ma carte »: the unblocking dialog replaces this notice.
  document.getElementById("unblock").addEventListener("click", () => invoke("pin_life_start", { action: "unblock" }));
  document.getElementById("close").focus();
  onEscape(close);
});
