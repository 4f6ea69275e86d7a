// Changing or unblocking the code porteur (tray menu, blocked-card notice): the step the agent's flow is
// at. A confirmation before the last try of the code de déblocage; the codes (the current code or the code
// de déblocage, then the new code twice: their form and equality checked here with the catalogue's words,
// and again by the agent); or how it ended. The codes go to the pin_life_codes command and nowhere else:
// the fields are emptied as they are sent.
"use strict";

page(async () => {
  const t = await applyLabels();
  const view = await invoke("dialog_view");
  const $ = (id) => document.getElementById(id);
  const unblock = view.action === "unblock";
  $("heading").textContent = unblock ? t.menu_unblock : t.menu_change_pin;
  $("card").textContent = view.card || "";
  $("card").previousElementSibling.hidden = $("card").hidden = !view.card;
  if (view.tries_left !== undefined) {
    $("tries-label").textContent = unblock ? t.pin_unblock_tries : t.pin_tries;
    $("tries").textContent = `${view.tries_left} ${t.pin_of} ${view.max_tries}`;
  } else {
    $("tries-label").hidden = true;
    $("tries").hidden = true;
  }
  const cancel = () => invoke("dialog_close");
  for (const b of document.querySelectorAll(".cancel")) b.addEventListener("click", cancel);
  onEscape(cancel);

  if (view.step === "confirm") {
    $("confirm-step").hidden = false;
    $("continue").addEventListener("click", () => invoke("pin_life_confirm", { go: true }));
    $("confirm-step").querySelector(".cancel").focus(); // the safe answer first: Enter does not go on
    return;
  }

  // The codes typed on the reader's keypad: what to type there, no field and no button (only the reader's
  // Cancel key stops the reader); the window goes away when the reader's command ends.
  if (view.step === "keypad") {
    $("keypad-step").hidden = false;
    $("keypad-ask").textContent = view.ask;
    return;
  }

  if (view.step === "result") {
    $("result-step").hidden = false;
    $("result").textContent = view.message;
    $("result").classList.add(view.ok ? "good" : "bad");
    $("result-tries").textContent = view.tries || "";
    $("fix").textContent = view.fix || "";
    const restart = (action) => invoke("pin_life_start", { action });
    $("again-button").hidden = !view.again;
    $("again-button").addEventListener("click", () => restart(view.action));
    $("unblock").hidden = !view.unblock;
    $("unblock").addEventListener("click", () => restart("unblock"));
    $("close").addEventListener("click", cancel);
    $("close").focus();
    return;
  }

  // The codes.
  const form = $("codes-step");
  form.hidden = false;
  const first = $("first");
  const firstDigits = unblock ? 8 : 4;
  $("first-label").textContent = unblock ? t.pin_unblock_code : t.pin_current;
  first.maxLength = firstDigits;
  first.classList.toggle("wide", unblock); // room for the 8 digits of the code de déblocage
  // On a PIN-pad reader the new code is typed on the keypad afterwards: only the code de déblocage here.
  const newOnKeypad = view.new_on_keypad === true;
  for (const id of ["new", "again"]) {
    $(id).hidden = $(id).previousElementSibling.hidden = newOnKeypad;
  }
  $("new-on-keypad").hidden = !newOnKeypad;
  const fields = newOnKeypad ? [first] : [first, $("new"), $("again")];
  const error = $("error");
  for (const f of fields) {
    f.addEventListener("input", () => {
      f.value = f.value.replace(/\D/g, "").slice(0, f.maxLength);
      error.hidden = true;
    });
  }
  // A message of the catalogue, with its fix underneath; or the text of a refused command.
  const fail = (problem, field) => {
    if (typeof problem === "string") error.textContent = problem;
    else error.replaceChildren(problem.message, el("span", { class: "fix" }, problem.fix));
    error.hidden = false;
    field.focus();
  };
  first.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const [a, b, c] = fields;
    if (a.value.length !== firstDigits) {
      return fail(unblock ? view.errors.unblock_format : view.errors.pin_format, a);
    }
    if (!newOnKeypad && b.value.length !== 4) return fail(view.errors.pin_format, b);
    if (!newOnKeypad && b.value !== c.value) {
      c.value = "";
      return fail(view.errors.mismatch, c);
    }
    const codes = { first: a.value, new: newOnKeypad ? "" : b.value, again: newOnKeypad ? "" : c.value };
    for (const f of fields) f.value = "";
    $("ok").disabled = true;
    $("ok").textContent = t.pin_sending;
    try {
      await invoke("pin_life_codes", codes);
    } catch (e) {
      $("ok").disabled = false;
      $("ok").textContent = t.ok;
      fail(String(e), a);
    }
  });
});
