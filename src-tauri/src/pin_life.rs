//! Changing and unblocking the code porteur from the tray: the menu (« Changer mon code porteur »,
//! « Débloquer ma carte ») and the blocked-card notice's button start the agent's own flow
//! (`cpx_agent::card::change_pin`/`unblock_pin`, the one `cpx-agent pin` runs) on a thread of its own. The
//! flow asks through [`TrayCodeDialog`]: a window per question (a confirmation before the last try of the
//! code de déblocage; the codes: the current code or the code de déblocage, the new code twice), then a
//! last window says how it ended, with the catalogue's words. Only the app's own windows start it: no route
//! of the loopback API does. The codes go from the window's command to the card: never logged, kept after
//! the flow, or retried.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cpx_agent::card::{
    CardChoice, CardLabel, CodeDialog, KeypadNotice, KeypadStep, PinLifeError, PinPrompt, PinStatus,
    PromptError,
};
use cpx_agent::messages::{pin_life, prompt, Code, Lang};
use cpx_agent::said::field;
use serde::Deserialize;
use serde_json::{json, Value};
use tauri::{AppHandle, Manager};
use zeroize::Zeroizing;

use crate::dialogs::{Answer, Dialogs};
use crate::shared::Shared;
use crate::windows::Window;

/// Tries a fresh code porteur or code de déblocage has (what a wrong code's tries are counted on).
const MAX_TRIES: u8 = 3;

/// What the professional asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// « Changer mon code porteur ».
    Change,
    /// « Débloquer ma carte ».
    Unblock,
}

impl Action {
    /// The window its questions and outcome are shown in.
    fn window(self) -> Window {
        match self {
            Action::Change => Window::Change,
            Action::Unblock => Window::Unblock,
        }
    }
}

/// One flow at a time: a second click while one runs does nothing (its window is on screen).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Starts `action` on a thread of its own (the flow waits for the card and for the windows' answers).
pub fn start(app: &AppHandle, action: Action) {
    let Some(shared) = app.try_state::<Arc<Shared>>().map(|s| Arc::clone(&s)) else {
        return;
    };
    if RUNNING.swap(true, Ordering::SeqCst) {
        tracing::debug!(?action, "code porteur dialog already open");
        return;
    }
    /// Lets the next flow start when this one ends, however it ends.
    struct Ended;
    impl Drop for Ended {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::SeqCst);
        }
    }
    let app = app.clone();
    let spawned = std::thread::Builder::new().name("code-porteur".into()).spawn(move || {
        let _ended = Ended;
        run(&app, &shared, action);
    });
    if let Err(e) = spawned {
        RUNNING.store(false, Ordering::SeqCst);
        tracing::warn!(error = %e, "code porteur flow not started");
    }
}

fn run(app: &AppHandle, shared: &Shared, action: Action) {
    let dialog = TrayCodeDialog {
        app,
        dialogs: &shared.dialogs,
        window: action.window(),
        lang: shared.lang,
        new: Mutex::new(None),
        card: Mutex::new(None),
    };
    let result = shared.agent.cards.blocking(|cards| match action {
        Action::Change => cpx_agent::card::change_pin(cards, None, &dialog, shared.agent.config.pinpad),
        Action::Unblock => cpx_agent::card::unblock_pin(cards, None, &dialog, shared.agent.config.pinpad),
    });
    let card = dialog.card.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(dialog);
    let code = match &result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.code()),
        Err(code) => Some(*code),
    };
    tracing::info!(?action, code = code.map(Code::as_str), "code porteur flow ended");
    // The code porteur's state changed (a card unblocked, tries spent): the tray says it now.
    crate::tray::refresh(app, shared);
    if let Some(mut view) = outcome_view(shared.lang, action, &result) {
        view["card"] = card.into();
        if let Err(e) = shared.dialogs.open(action.window(), view, None) {
            tracing::warn!(error = %e, "code porteur outcome not shown");
        }
    }
}

/// The last window: done, or what went wrong with its fix and, after a wrong code, the tries left. None
/// when the professional cancelled (nothing to say).
fn outcome_view(
    lang: Lang,
    action: Action,
    result: &Result<Result<(), PinLifeError>, Code>,
) -> Option<Value> {
    let action_name = match action {
        Action::Change => "change",
        Action::Unblock => "unblock",
    };
    let error = match result {
        Ok(Ok(())) => {
            let done = match action {
                Action::Change => pin_life::CHANGED,
                Action::Unblock => pin_life::UNBLOCKED,
            };
            return Some(
                json!({"step": "result", "action": action_name, "ok": true, "message": done.get(lang)}),
            );
        }
        Ok(Err(e)) => e,
        Err(code) => &PinLifeError::Card(*code),
    };
    let code = error.code();
    if code == Code::UserCancelled {
        return None;
    }
    let entry = code.entry();
    let tries = error.tries_left().map(|n| {
        let name = if code == Code::UnblockCodeWrong { pin_life::UNBLOCK_TRIES } else { prompt::TRIES };
        field(lang, name, &format!("{n} {} {MAX_TRIES}", prompt::OF.get(lang)))
    });
    Some(json!({
        "step": "result", "action": action_name, "ok": false, "code": code.as_str(),
        "message": entry.message.get(lang), "fix": entry.fix.get(lang), "tries": tries,
        // Another go is the professional's own click; a blocked code porteur offers the unblocking.
        "again": entry.retriable, "unblock": code == Code::PinBlocked,
    }))
}

/// The tray's windows as the flow's [`CodeDialog`]. The codes window asks for the first code and the new
/// one twice at once: the new pair waits here (wiped when dropped) for [`CodeDialog::new_pin_twice`].
struct TrayCodeDialog<'a> {
    app: &'a AppHandle,
    dialogs: &'a Dialogs,
    window: Window,
    lang: Lang,
    new: Mutex<Option<[Zeroizing<String>; 2]>>,
    /// The card the professional was asked about, named again in the last window.
    card: Mutex<Option<String>>,
}

impl TrayCodeDialog<'_> {
    fn asked_about(&self, card: &CardLabel) {
        *self.card.lock().unwrap_or_else(|p| p.into_inner()) = Some(card.text.clone());
    }

    /// The codes window: the card and the tries of the code asked first, the catalogue's words for a code
    /// of the wrong form or two new codes that differ (checked by the page before sending, and by the flow).
    fn codes(
        &self,
        card: &CardLabel,
        status: PinStatus,
        new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        self.asked_about(card);
        let error = |code: Code| {
            let entry = code.entry();
            json!({"message": entry.message.get(self.lang), "fix": entry.fix.get(self.lang)})
        };
        let view = json!({
            "step": "codes",
            "action": if self.window == Window::Unblock { "unblock" } else { "change" },
            "card": card.text, "reader": card.reader,
            "tries_left": status.tries_left, "max_tries": status.max_tries,
            "new_on_keypad": new_on_keypad,
            "errors": {
                "pin_format": error(Code::PinFormat),
                "unblock_format": error(Code::UnblockCodeFormat),
                "mismatch": error(Code::NewPinMismatch),
            },
        });
        match self.dialogs.ask(self.window, view)? {
            Answer::Codes { first, new } => {
                *self.new.lock().unwrap_or_else(|p| p.into_inner()) = Some(new);
                Ok(first)
            }
            _ => Err(PromptError::Cancelled),
        }
    }
}

impl CodeDialog for TrayCodeDialog<'_> {
    fn choose_card(&self, cards: &[CardLabel]) -> Result<usize, PromptError> {
        let cards = cards.iter().map(|c| format!("{} — {}", c.text, c.reader)).collect();
        PinPrompt::choose_card(self.dialogs, &CardChoice { origin: String::new(), cards, lang: self.lang })
    }

    fn current_pin(&self, card: &CardLabel, status: PinStatus) -> Result<Zeroizing<String>, PromptError> {
        self.codes(card, status, false)
    }

    fn confirm_last_unblock_try(&self, card: &CardLabel) -> Result<bool, PromptError> {
        self.asked_about(card);
        let view = json!({"step": "confirm", "action": "unblock", "card": card.text, "reader": card.reader});
        match self.dialogs.ask(self.window, view)? {
            Answer::Confirm(go) => Ok(go),
            _ => Err(PromptError::Cancelled),
        }
    }

    fn unblocking_code(
        &self,
        card: &CardLabel,
        status: PinStatus,
        new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        self.codes(card, status, new_on_keypad)
    }

    fn new_pin_twice(&self, _card: &CardLabel) -> Result<[Zeroizing<String>; 2], PromptError> {
        self.new.lock().unwrap_or_else(|p| p.into_inner()).take().ok_or(PromptError::Cancelled)
    }

    /// The same window at its keypad step: what to type on the reader, no field; closed when the reader's
    /// command ends (the outcome window follows).
    fn show_keypad(&self, card: &CardLabel, step: KeypadStep) -> Result<KeypadNotice, PromptError> {
        self.asked_about(card);
        let view = json!({
            "step": "keypad",
            "action": if self.window == Window::Unblock { "unblock" } else { "change" },
            "card": card.text, "reader": card.reader,
            "ask": step.text().get(self.lang),
        });
        let label = self.dialogs.open(self.window, view, None)?;
        let app = self.app.clone();
        Ok(KeypadNotice::closed_by(move || crate::windows::close(&app, &label)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpx_agent::card::PinChangeError;

    #[test]
    fn the_outcome_says_the_tries_left_and_nothing_when_cancelled() {
        let wrong = Ok(Err(PinLifeError::Refused(PinChangeError::WrongUnblockingCode { tries_left: 1 })));
        let view = outcome_view(Lang::Fr, Action::Unblock, &wrong).unwrap();
        assert_eq!(view["code"], "UNBLOCK_CODE_WRONG");
        assert_eq!(view["tries"], "Essais du code de déblocage : 1 sur 3");
        assert_eq!(view["again"], true);
        let cancelled = Ok(Err(PinLifeError::Prompt(PromptError::Cancelled)));
        assert!(outcome_view(Lang::Fr, Action::Change, &cancelled).is_none());
        let blocked = Ok(Err(PinLifeError::Refused(PinChangeError::UnblockingCodeBlocked)));
        let view = outcome_view(Lang::En, Action::Unblock, &blocked).unwrap();
        assert!(view["fix"].as_str().unwrap().contains("CPS Info Service"), "{view}");
        assert_eq!(view["again"], false);
        let done = outcome_view(Lang::Fr, Action::Change, &Ok(Ok(()))).unwrap();
        assert_eq!(
            (done["ok"].as_bool(), done["message"].as_str()),
            (Some(true), Some("Code porteur changé."))
        );
    }
}
