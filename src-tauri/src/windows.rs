//! The app's windows: which page each shows, its title and size, and whether it is a dialog (on top,
//! focused, not resizable). Windows are made when first shown and destroyed when closed, so an idle app
//! runs no web view at all.

use cpx_agent::messages::{Lang, LABELS};
use serde::Deserialize;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Pin,
    Blocked,
    Consent,
    Choice,
    Status,
    Diagnostics,
    Sites,
    About,
}

impl Window {
    pub const ALL: [Window; 8] = [Window::Pin, Window::Blocked, Window::Consent, Window::Choice, Window::Status, Window::Diagnostics, Window::Sites, Window::About];

    /// The window's label, also the name of its page (`ui/<label>.html`) and of its capability.
    pub fn label(self) -> &'static str {
        match self {
            Window::Pin => "pin",
            Window::Blocked => "blocked",
            Window::Consent => "consent",
            Window::Choice => "choice",
            Window::Status => "status",
            Window::Diagnostics => "diagnostics",
            Window::Sites => "sites",
            Window::About => "about",
        }
    }

    pub fn from_label(label: &str) -> Option<Window> {
        Self::ALL.into_iter().find(|w| w.label() == label)
    }

    fn title_key(self) -> &'static str {
        match self {
            Window::Pin => "pin_title",
            Window::Blocked => "pin_blocked_title",
            Window::Consent => "consent_title",
            Window::Choice => "choice_title",
            Window::Status => "status_title",
            Window::Diagnostics => "diag_title",
            Window::Sites => "sites_title",
            Window::About => "about_title",
        }
    }

    /// Dialogs a site's login waits on: on top of everything, focused.
    fn is_dialog(self) -> bool {
        matches!(self, Window::Pin | Window::Blocked | Window::Consent | Window::Choice)
    }

    fn size(self) -> (f64, f64) {
        match self {
            Window::Pin => (440.0, 430.0),
            Window::Blocked => (440.0, 330.0),
            Window::Consent => (480.0, 360.0),
            Window::Choice => (440.0, 340.0),
            Window::Status => (560.0, 460.0),
            Window::Diagnostics => (680.0, 560.0),
            Window::Sites => (560.0, 420.0),
            Window::About => (460.0, 320.0),
        }
    }

    pub fn title(self, lang: Lang) -> &'static str {
        LABELS.iter().find(|(k, _)| *k == self.title_key()).map_or("Agent CPx", |(_, t)| t.get(lang))
    }
}

/// Shows `window` (made if needed), in front and focused. Callable from any thread.
pub fn show(app: &AppHandle, window: Window, lang: Lang) -> Result<(), String> {
    if let Some(existing) = app.get_webview_window(window.label()) {
        // A dialog shows new content: reload its page.
        if window.is_dialog() {
            let _ = existing.eval("location.reload()");
        }
        let _ = existing.show();
        let _ = existing.unminimize();
        return existing.set_focus().map_err(|e| e.to_string());
    }
    let (w, h) = window.size();
    let built = WebviewWindowBuilder::new(app, window.label(), WebviewUrl::App(format!("{}.html", window.label()).into()))
        .title(window.title(lang))
        .inner_size(w, h)
        .resizable(!window.is_dialog())
        .minimizable(!window.is_dialog())
        .maximizable(false)
        .always_on_top(window.is_dialog())
        .skip_taskbar(false)
        .center()
        .focused(true)
        .visible(true)
        .build()
        .map_err(|e| e.to_string())?;
    let _ = built.set_focus();
    Ok(())
}

/// Closes `window` if it is open.
pub fn close(app: &AppHandle, window: Window) {
    if let Some(w) = app.get_webview_window(window.label()) {
        let _ = w.destroy();
    }
}
