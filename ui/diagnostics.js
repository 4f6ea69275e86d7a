// The checks of `cpx-agent diagnose`, each with its verdict, the fault and the fix; « Copier le rapport »
// puts the redacted report on the clipboard for a support request.
"use strict";

page(async () => {
  const t = await applyLabels();
  const words = { ok: t.diag_ok, warn: t.diag_warn, fail: t.diag_fail };
  async function run() {
    const summary = document.getElementById("summary");
    summary.textContent = t.diag_running;
    const view = await invoke("diagnostics_run");
    const rows = document.getElementById("checks");
    rows.replaceChildren();
    for (const c of view.checks) {
      const what = el("td", {}, el("strong", {}, c.title));
      if (c.problem) what.append(el("br"), c.problem.message, el("br"), el("span", { class: "small" }, c.problem.fix));
      what.append(el("br"), el("span", { class: "small" }, c.detail));
      rows.append(el("tr", { "data-check": c.check }, el("td", { class: `verdict ${c.verdict}` }, words[c.verdict]), what));
    }
    const first = view.checks.find((c) => c.verdict !== "ok");
    summary.textContent = first ? `${words[first.verdict]} : ${first.problem ? first.problem.message : first.title}` : `${t.diag_ok}`;
    document.body.dataset.worst = view.worst;
  }
  document.getElementById("rerun").addEventListener("click", run);
  document.getElementById("copy").addEventListener("click", async () => {
    await invoke("diagnostics_copy");
    document.getElementById("copied").hidden = false;
  });
  document.getElementById("close").addEventListener("click", closeWindow);
  onEscape(closeWindow);
  await run();
  document.getElementById("copy").focus({ preventScroll: true });
});
