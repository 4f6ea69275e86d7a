// The code porteur typed on the reader's keypad: the requesting site first, the card and the tries left,
// then where to type the code. No field and no cancel button: the code never crosses the computer and only
// the reader's Cancel key stops the reader. The window goes away when the reader's command ends.
"use strict";

page(async () => {
  const t = await applyLabels();
  const view = await invoke("dialog_view");
  document.getElementById("origin").textContent = view.origin;
  document.getElementById("holder").textContent = view.holder;
  document.getElementById("card").textContent = view.card;
  document.getElementById("tries").textContent = `${view.tries_left} ${t.pin_of} ${view.max_tries}`;
  document.getElementById("wrong").hidden = !view.wrong_pin;
  document.getElementById("last").hidden = view.tries_left !== 1;
});
