// The card state as the tray shows it, then every reader with its card, holder, certificate and tries.
"use strict";

page(async () => {
  const t = await applyLabels();
  const view = await invoke("status_view");
  document.body.dataset.state = view.state;
  document.getElementById("icon").src = view.icon;
  document.getElementById("message").textContent = view.message;
  document.getElementById("fix").textContent = view.fix || "";
  if (view.server_error) {
    const e = view.server_error;
    const s = document.getElementById("server");
    s.append(e.message, el("br"), el("span", { class: "small" }, e.fix), el("br"), el("span", { class: "small" }, e.detail));
    s.hidden = false;
  }
  if (view.keys) {
    // No usable keyring: the agent works, its keys are in a file of this user's (and how to get a keyring).
    const k = view.keys;
    const s = document.getElementById("keys");
    s.append(k.message, el("br"), el("span", { class: "small" }, k.fix), el("br"), el("span", { class: "small" }, k.detail));
    s.hidden = false;
  }
  const body = document.getElementById("readers");
  if (view.readers.length === 0) body.append(el("tr", {}, el("td", { colspan: "2" }, t.status_no_reader)));
  // The one that matters at the top: readers with a usable card, then those with a card that has a
  // problem (mute, not recognised, in use), then the empty ones.
  const rank = (r) => (r.card_type ? 0 : r.card_present ? 1 : 2);
  const readers = [...view.readers].sort((a, b) => rank(a) - rank(b));
  for (const r of readers) {
    const card = el("td", {}, r.message);
    if (r.card_type) {
      const structure = r.structure ? `, ${r.structure}` : "";
      card.append(el("br"), `${r.card_type} — ${r.holder}${structure}`, el("br"), `${t.status_certificate} : ${r.certificate}`);
      if (r.tries_left !== undefined) card.append(el("br"), `${t.status_pin} : ${r.tries_left} ${t.pin_of} ${r.max_tries}`);
    }
    for (const p of r.problems) card.append(el("br"), el("strong", {}, p.message), " — ", p.fix);
    body.append(el("tr", {}, el("td", {}, r.reader), card));
  }
  document.getElementById("close").addEventListener("click", closeWindow);
  document.getElementById("close").focus({ preventScroll: true });
  onEscape(closeWindow);
});
