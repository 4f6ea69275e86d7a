//! The app's dialogs as the agent's prompts: the code porteur, the site consent, the card choice and the
//! blocked-card notice. The agent asks from a blocking thread; the dialog window shows the request and
//! answers through its commands. One dialog at a time (the agent serialises card use, so a second site
//! waits for the first dialog to close). The PIN goes from the dialog's command straight back to the
//! waiting login; it is never logged, kept or shown.

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use cpx_agent::card::Pin;
use cpx_agent::card::{CardChoice, KeypadNotice, PinPrompt, PinRequest, PromptError};
use cpx_agent::card::{ConsentPrompt, ConsentRequest, Decision};
use cpx_agent::messages::Lang;
use serde_json::{json, Value};
use tauri::AppHandle;
use zeroize::Zeroizing;

use crate::windows::{self, Window};

/// How long a dialog waits for the professional before the login gives up (the card stays free then).
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// What the waiting login receives.
pub enum Answer {
    Pin(Pin),
    Consent(Decision),
    Choice(usize),
    /// The codes window of a change or an unblocking: the current code or the code de déblocage, and the
    /// new code twice (as typed; the agent's flow checks them).
    Codes {
        first: Zeroizing<String>,
        new: [Zeroizing<String>; 2],
    },
    /// The answer to « Continuer ? » before the last try of the code de déblocage.
    Confirm(bool),
    Cancel,
}

/// The dialog on screen: its window's label, what it shows, and where its answer goes (none for the
/// blocked notice).
struct Open {
    label: String,
    view: Value,
    reply: Option<mpsc::Sender<Answer>>,
}

pub struct Dialogs {
    app: AppHandle,
    lang: Lang,
    open: Mutex<Option<Open>>,
}

impl Dialogs {
    pub fn new(app: AppHandle, lang: Lang) -> Self {
        Self { app, lang, open: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows `window` with `view` and waits for its answer.
    pub fn ask(&self, window: Window, view: Value) -> Result<Answer, PromptError> {
        let (tx, rx) = mpsc::channel();
        let label = self.open(window, view, Some(tx))?;
        let answer = rx.recv_timeout(ANSWER_WAIT).unwrap_or(Answer::Cancel);
        let mut open = self.lock();
        if open.as_ref().is_some_and(|o| o.label == label) {
            open.take();
        }
        drop(open);
        windows::close(&self.app, &label);
        Ok(answer)
    }

    /// Opens a new dialog window showing `view` (a notice when `reply` is none); the dialog on screen is
    /// now this one. (The view is in place before the page asks for it; the lock is not held while the
    /// window is made.)
    pub fn open(
        &self,
        window: Window,
        view: Value,
        reply: Option<mpsc::Sender<Answer>>,
    ) -> Result<String, PromptError> {
        let label = windows::new_dialog_label(window);
        let previous = self.lock().replace(Open { label: label.clone(), view, reply });
        // A notice still on screen (blocked card) gives way to the new dialog.
        if let Some(notice) = previous.filter(|o| o.reply.is_none()) {
            windows::close(&self.app, &notice.label);
        }
        if let Err(e) = windows::build(&self.app, window, &label, self.lang) {
            self.closed(&label);
            return Err(PromptError::Unavailable(e));
        }
        Ok(label)
    }

    /// What the dialog window labelled `label` shows, if it is the one open.
    pub fn view(&self, label: &str) -> Option<Value> {
        self.lock().as_ref().filter(|o| o.label == label).map(|o| o.view.clone())
    }

    /// The answer of the dialog window labelled `label`; false when that dialog is not the one waiting.
    pub fn answer(&self, label: &str, answer: Answer) -> bool {
        let guard = self.lock();
        match guard.as_ref() {
            Some(Open { label: l, reply: Some(tx), .. }) if l == label => tx.send(answer).is_ok(),
            _ => false,
        }
    }

    /// The window labelled `label` was closed by other means than its buttons: its waiting login is
    /// cancelled.
    pub fn closed(&self, label: &str) {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|o| o.label == label) {
            if let Some(tx) = guard.take().and_then(|o| o.reply) {
                let _ = tx.send(Answer::Cancel);
            }
        }
    }
}

fn pin_view(request: &PinRequest) -> Value {
    json!({
        "origin": request.origin,
        "holder": request.holder,
        "card": request.card,
        "tries_left": request.tries_left,
        "max_tries": request.max_tries,
        "wrong_pin": request.wrong_pin,
    })
}

impl PinPrompt for Dialogs {
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError> {
        match Dialogs::ask(self, Window::Pin, pin_view(request))? {
            Answer::Pin(pin) => Ok(pin),
            _ => Err(PromptError::Cancelled),
        }
    }

    fn choose_card(&self, choice: &CardChoice) -> Result<usize, PromptError> {
        match Dialogs::ask(self, Window::Choice, json!({"origin": choice.origin, "cards": choice.cards}))? {
            Answer::Choice(i) if i < choice.cards.len() => Ok(i),
            _ => Err(PromptError::Cancelled),
        }
    }

    fn asks_again_after_wrong_pin(&self) -> bool {
        true
    }

    /// The keypad notice: no answer comes back (the reader takes the code porteur), so closing it
    /// cancels nothing; it goes away when the reader's command ends.
    fn show_keypad(&self, request: &PinRequest) -> Result<KeypadNotice, PromptError> {
        let label = self.open(Window::Keypad, pin_view(request), None)?;
        let app = self.app.clone();
        Ok(KeypadNotice::closed_by(move || windows::close(&app, &label)))
    }

    fn show_blocked(&self, request: &PinRequest) {
        let entry = cpx_agent::messages::Code::PinBlocked.entry();
        let mut view = pin_view(request);
        view["message"] = entry.message.get(self.lang).into();
        view["fix"] = entry.fix.get(self.lang).into();
        if let Err(e) = self.open(Window::Blocked, view, None) {
            tracing::warn!(error = %e, "blocked-card window not shown");
        }
    }
}

impl ConsentPrompt for Dialogs {
    fn ask(&self, request: &ConsentRequest) -> Result<Decision, PromptError> {
        match Dialogs::ask(self, Window::Consent, json!({"origin": request.origin}))? {
            Answer::Consent(d) => Ok(d),
            _ => Err(PromptError::Cancelled),
        }
    }
}
