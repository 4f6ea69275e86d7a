// Version, the agent's local address, where the configuration comes from.
"use strict";

page(async () => {
  await applyLabels();
  const view = await invoke("about_view");
  for (const k of ["version", "address", "configuration"]) document.getElementById(k).textContent = view[k];
  document.getElementById("close").addEventListener("click", closeWindow);
  document.getElementById("close").focus();
  onEscape(closeWindow);
});
