//! The app's windows: which page each shows, its title and size, and whether it is a dialog (on top,
//! focused, not resizable). Windows are made when shown and destroyed when closed, so an idle app runs no
//! web view at all. Each dialog is a new window with a label of its own (`pin-3`), so a dialog being
//! closed can never be mistaken for the next one.

use std::sync::atomic::{AtomicU32, Ordering};

use cpx_agent::messages::{Lang, LABELS};
use serde::Deserialize;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Pin,
    /// The code porteur typed on the reader's keypad: a notice, no field, no cancel.
    Keypad,
    Blocked,
    Consent,
    Choice,
    /// Changing the code porteur (page `code.html`, shared with [`Window::Unblock`]).
    Change,
    /// Unblocking the card with its code de déblocage.
    Unblock,
    Status,
    Diagnostics,
    Sites,
    About,
}

impl Window {
    pub const ALL: [Window; 11] = [
        Window::Pin,
        Window::Keypad,
        Window::Blocked,
        Window::Consent,
        Window::Choice,
        Window::Change,
        Window::Unblock,
        Window::Status,
        Window::Diagnostics,
        Window::Sites,
        Window::About,
    ];

    /// The window's name: its label (dialogs add `-N`), its page (`ui/<name>.html`), its capability.
    pub fn name(self) -> &'static str {
        match self {
            Window::Pin => "pin",
            Window::Keypad => "keypad",
            Window::Blocked => "blocked",
            Window::Consent => "consent",
            Window::Choice => "choice",
            Window::Change => "change",
            Window::Unblock => "unblock",
            Window::Status => "status",
            Window::Diagnostics => "diagnostics",
            Window::Sites => "sites",
            Window::About => "about",
        }
    }

    /// The kind of the window labelled `label` (`pin-3` → Pin).
    pub fn from_label(label: &str) -> Option<Window> {
        let name = label.split_once('-').map_or(label, |(n, _)| n);
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    fn title_key(self) -> &'static str {
        match self {
            Window::Pin => "pin_title",
            Window::Keypad => "keypad_title",
            Window::Blocked => "pin_blocked_title",
            Window::Consent => "consent_title",
            Window::Choice => "choice_title",
            Window::Change => "pin_change_title",
            Window::Unblock => "pin_unblock_title",
            Window::Status => "status_title",
            Window::Diagnostics => "diag_title",
            Window::Sites => "sites_title",
            Window::About => "about_title",
        }
    }

    /// Dialogs a site's login waits on: on top of everything, focused.
    pub fn is_dialog(self) -> bool {
        matches!(
            self,
            Window::Pin
                | Window::Keypad
                | Window::Blocked
                | Window::Consent
                | Window::Choice
                | Window::Change
                | Window::Unblock
        )
    }

    /// The page it shows: `ui/<page>.html` (its name, but one page for changing and unblocking).
    fn page(self) -> &'static str {
        match self {
            Window::Change | Window::Unblock => "code",
            _ => self.name(),
        }
    }

    fn size(self) -> (f64, f64) {
        match self {
            Window::Pin => (440.0, 540.0),
            Window::Keypad => (440.0, 640.0),
            Window::Blocked => (440.0, 380.0),
            Window::Consent => (560.0, 340.0),
            Window::Choice => (440.0, 340.0),
            Window::Change | Window::Unblock => (460.0, 540.0),
            Window::Status => (580.0, 520.0),
            Window::Diagnostics => (680.0, 560.0),
            Window::Sites => (560.0, 420.0),
            Window::About => (460.0, 320.0),
        }
    }

    pub fn title(self, lang: Lang) -> &'static str {
        LABELS.iter().find(|(k, _)| *k == self.title_key()).map_or("Agent CPx", |(_, t)| t.get(lang))
    }
}

static NEXT_DIALOG: AtomicU32 = AtomicU32::new(1);

/// A new label for a `window` dialog.
pub fn new_dialog_label(window: Window) -> String {
    format!("{}-{}", window.name(), NEXT_DIALOG.fetch_add(1, Ordering::Relaxed))
}

/// Shows a window that is not a dialog, in front with the focus (the open one, or a new one).
pub fn show(app: &AppHandle, window: Window, lang: Lang) -> Result<(), String> {
    if let Some(existing) = app.get_webview_window(window.name()) {
        let _ = existing.show();
        let _ = existing.unminimize();
        return existing.set_focus().map_err(|e| e.to_string());
    }
    build(app, window, window.name(), lang)
}

/// Makes the window `label` showing `window`'s page; dialogs on top, focused. Callable from any thread.
pub fn build(app: &AppHandle, window: Window, label: &str, lang: Lang) -> Result<(), String> {
    let (w, h) = window.size();
    let built =
        WebviewWindowBuilder::new(app, label, WebviewUrl::App(format!("{}.html", window.page()).into()))
            .title(window.title(lang))
            .inner_size(w, h)
            .resizable(!window.is_dialog())
            .minimizable(!window.is_dialog())
            .maximizable(false)
            .always_on_top(window.is_dialog())
            .center()
            .focused(true)
            .build()
            .map_err(|e| e.to_string())?;
    let _ = built.set_focus();
    Ok(())
}

/// Closes the window labelled `label` if it is open.
pub fn close(app: &AppHandle, label: &str) {
    if let Some(w) = app.get_webview_window(label) {
        let _ = w.destroy();
    }
}
