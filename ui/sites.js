// The sites allowed by the organisation's policy (read-only) and by the professional (removable).
"use strict";

page(async () => {
  const t = await applyLabels();
  async function render() {
    const view = await invoke("sites_view");
    document.getElementById("tampered").hidden = !view.tampered;
    const fill = (id, items, removable) => {
      const list = document.getElementById(id);
      list.replaceChildren();
      if (items.length === 0) list.append(el("li", {}, t.sites_none));
      for (const origin of items) {
        const li = el("li", {}, el("span", {}, origin));
        if (removable) {
          const b = el("button", { type: "button", "aria-label": `${t.sites_remove} ${origin}` }, t.sites_remove);
          b.addEventListener("click", async () => { await invoke("sites_remove", { origin }); render(); });
          li.append(b);
        }
        list.append(li);
      }
    };
    fill("policy", view.policy, false);
    fill("user", view.user.map((a) => a.origin), true);
  }
  await render();
  document.getElementById("close").addEventListener("click", closeWindow);
  document.getElementById("close").focus();
  onEscape(closeWindow);
});
