// Shared by every page of the tray app: the words from the agent's catalogue, the command bridge,
// keyboard conventions (Escape closes or cancels).
"use strict";

const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args || {});

/** Fills every [data-t] element with its label; sets the page language. Returns the labels. */
async function applyLabels() {
  const t = await invoke("labels");
  document.documentElement.lang = t.lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t];
  for (const el of document.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t[el.dataset.tLabel]);
  return t;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

/** Escape runs `action` (cancel for dialogs, close for the other windows). */
function onEscape(action) {
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { ev.preventDefault(); action(); } });
}

function closeWindow() {
  window.__TAURI__.window.getCurrentWindow().close();
}

/** Runs a page's `fill`; marks the page ready (`body[data-ready]`) when done, or shows what failed. */
function page(fill) {
  fill().then(
    () => { document.body.dataset.ready = "true"; },
    (e) => {
      document.body.dataset.ready = "error";
      document.body.append(el("p", { class: "alert bad", role: "alert" }, String(e)));
    },
  );
}
