//! The app's dialogs as the agent's prompts: the code porteur, the site consent, the card choice and the
//! blocked-card notice. The agent asks from a blocking thread; the dialog window shows the request and
//! answers through its commands. One dialog at a time (the agent serialises card use, so a second site
//! waits for the first dialog to close). The PIN goes from the dialog's command straight back to the
//! waiting login; it is never logged, kept or shown.

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use cpx_agent::consent::{ConsentPrompt, ConsentRequest, Decision};
use cpx_agent::messages::Lang;
use cpx_agent::pin_prompt::{CardChoice, PinPrompt, PinRequest, PromptError};
use cpx_card::Pin;
use serde_json::{json, Value};
use tauri::AppHandle;
use zeroize::Zeroizing;

use crate::windows::{self, Window};

/// How long a dialog waits for the professional before the login gives up (the card stays free then).
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// What the waiting login receives.
pub enum Answer {
    Pin(Zeroizing<String>),
    Consent(Decision),
    Choice(usize),
    Cancel,
}

/// The dialog on screen: what it shows, and where its answer goes (none for the blocked notice).
struct Open {
    window: Window,
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
    fn ask(&self, window: Window, view: Value) -> Result<Answer, PromptError> {
        let (tx, rx) = mpsc::channel();
        *self.lock() = Some(Open { window, view, reply: Some(tx) });
        if let Err(e) = windows::show(&self.app, window, self.lang) {
            self.lock().take();
            return Err(PromptError::Unavailable(e));
        }
        let answer = rx.recv_timeout(ANSWER_WAIT).unwrap_or(Answer::Cancel);
        self.lock().take();
        windows::close(&self.app, window);
        Ok(answer)
    }

    /// What the dialog window `window` shows, if it is the one open.
    pub fn view(&self, window: Window) -> Option<Value> {
        self.lock().as_ref().filter(|o| o.window == window).map(|o| o.view.clone())
    }

    /// The answer of dialog window `window`; false when that dialog is not the one waiting.
    pub fn answer(&self, window: Window, answer: Answer) -> bool {
        let guard = self.lock();
        match guard.as_ref() {
            Some(Open { window: w, reply: Some(tx), .. }) if *w == window => tx.send(answer).is_ok(),
            _ => false,
        }
    }

    /// The window was closed by other means than its buttons: a waiting login is cancelled.
    pub fn closed(&self, window: Window) {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|o| o.window == window) {
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
            Answer::Pin(digits) => Pin::new(&digits).map_err(|_| PromptError::Cancelled),
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

    fn show_blocked(&self, request: &PinRequest) {
        let entry = cpx_agent::messages::Code::PinBlocked.entry();
        let mut view = pin_view(request);
        view["message"] = entry.message.get(self.lang).into();
        view["fix"] = entry.fix.get(self.lang).into();
        *self.lock() = Some(Open { window: Window::Blocked, view, reply: None });
        if let Err(e) = windows::show(&self.app, Window::Blocked, self.lang) {
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
