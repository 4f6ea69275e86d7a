// The code porteur dialog: the requesting site first, the card and the tries left; four digits; a
// confirmation before the last try. The PIN goes to the pin_submit command and nowhere else.
"use strict";

page(async () => {
  const t = await applyLabels();
  const view = await invoke("dialog_view");
  document.getElementById("origin").textContent = view.origin;
  document.getElementById("holder").textContent = view.holder;
  document.getElementById("card").textContent = view.card;
  document.getElementById("tries").textContent = `${view.tries_left} ${t.pin_of} ${view.max_tries}`;
  if (view.wrong_pin) {
    const wrong = document.getElementById("wrong");
    wrong.textContent = `${t.pin_wrong} ${t.pin_tries} : ${view.tries_left} ${t.pin_of} ${view.max_tries}`;
    wrong.hidden = false;
  }
  const lastTry = view.tries_left === 1;
  document.getElementById("last").hidden = !lastTry;

  const input = document.getElementById("pin");
  const error = document.getElementById("error");
  const confirm = document.getElementById("confirm");
  input.focus();
  input.addEventListener("input", () => {
    input.value = input.value.replace(/\D/g, "").slice(0, 4);
    error.hidden = true;
    confirm.hidden = true;
  });

  async function send() {
    const pin = input.value;
    input.value = "";
    try {
      await invoke("pin_submit", { pin });
    } catch (e) {
      error.textContent = String(e);
      error.hidden = false;
      input.focus();
    }
  }

  document.getElementById("form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!/^\d{4}$/.test(input.value)) {
      error.textContent = t.pin_format;
      error.hidden = false;
      input.focus();
      return;
    }
    if (lastTry && confirm.hidden) {
      confirm.hidden = false;
      document.getElementById("send-anyway").focus();
      return;
    }
    send();
  });
  document.getElementById("send-anyway").addEventListener("click", send);
  const cancel = () => invoke("dialog_close");
  document.getElementById("cancel").addEventListener("click", cancel);
  onEscape(cancel);
});
