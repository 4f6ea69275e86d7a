//! The commands the pages call. Each window's capability (`capabilities/<window>.json`) grants only its
//! own; the commands also check which window calls, so a page cannot answer another window's dialog.

use std::sync::Arc;

use cpx_agent::card::Decision;
use cpx_agent::cli;
use cpx_agent::helpdesk::{self, Verdict};
use cpx_agent::loopback::Problem;
use cpx_agent::messages::labels as catalogue_labels;
use serde_json::{json, Value};
use tauri::{State, WebviewWindow};
use zeroize::Zeroizing;

use crate::dialogs::Answer;
use crate::shared::Shared;
use crate::windows::Window;

type AppState<'a> = State<'a, Arc<Shared>>;

fn window_of(w: &WebviewWindow) -> Option<Window> {
    Window::from_label(w.label())
}

/// The words of every page, in the app's language.
#[tauri::command]
pub fn labels(shared: AppState<'_>) -> Value {
    Value::Object(catalogue_labels(shared.lang))
}

/// What the calling dialog shows (its site, card, tries left…).
#[tauri::command]
pub fn dialog_view(window: WebviewWindow, shared: AppState<'_>) -> Result<Value, String> {
    shared.dialogs.view(window.label()).ok_or_else(|| "no request".into())
}

/// Hands `answer` to the login waiting on `window`, if it is the `kind` dialog on screen.
fn reply(window: &WebviewWindow, shared: &Shared, kind: Window, answer: Answer) -> Result<(), String> {
    if window_of(window) == Some(kind) && shared.dialogs.answer(window.label(), answer) {
        Ok(())
    } else {
        Err("no request".into())
    }
}

/// The code porteur typed in the PIN dialog: four digits, or the dialog says so and stays open.
#[tauri::command]
pub fn pin_submit(window: WebviewWindow, shared: AppState<'_>, pin: String) -> Result<(), String> {
    let pin = Zeroizing::new(pin);
    let pin = cpx_agent::card::Pin::new(&pin)
        .map_err(|_| cpx_agent::messages::Code::PinFormat.entry().message.get(shared.lang).to_owned())?;
    reply(&window, &shared, Window::Pin, Answer::Pin(pin))
}

#[tauri::command]
pub fn consent_answer(window: WebviewWindow, shared: AppState<'_>, decision: Decision) -> Result<(), String> {
    reply(&window, &shared, Window::Consent, Answer::Consent(decision))
}

#[tauri::command]
pub fn choice_answer(window: WebviewWindow, shared: AppState<'_>, index: usize) -> Result<(), String> {
    reply(&window, &shared, Window::Choice, Answer::Choice(index))
}

/// The codes typed in a change or unblocking window (`first`: the current code or the code de déblocage),
/// handed as typed to the agent's flow waiting on it, which checks them; never logged nor kept.
#[tauri::command]
pub fn pin_life_codes(
    window: WebviewWindow,
    shared: AppState<'_>,
    first: String,
    new: String,
    again: String,
) -> Result<(), String> {
    let (first, new, again) = (Zeroizing::new(first), Zeroizing::new(new), Zeroizing::new(again));
    let kind = window_of(&window).filter(|w| matches!(w, Window::Change | Window::Unblock));
    reply(&window, &shared, kind.ok_or("no request")?, Answer::Codes { first, new: [new, again] })
}

/// « Continuer » (or not) before the last try of the code de déblocage.
#[tauri::command]
pub fn pin_life_confirm(window: WebviewWindow, shared: AppState<'_>, go: bool) -> Result<(), String> {
    reply(&window, &shared, Window::Unblock, Answer::Confirm(go))
}

/// « Débloquer ma carte » in the blocked-card notice, « Recommencer » after a change or unblocking that
/// failed: the window closes and the flow starts again (the professional's click, never a retry of codes).
#[tauri::command]
pub fn pin_life_start(
    app: tauri::AppHandle,
    window: WebviewWindow,
    shared: AppState<'_>,
    action: crate::pin_life::Action,
) -> Result<(), String> {
    if !matches!(window_of(&window), Some(Window::Blocked | Window::Change | Window::Unblock)) {
        return Err("not from this window".into());
    }
    shared.dialogs.closed(window.label());
    let _ = window.destroy();
    crate::pin_life::start(&app, action);
    Ok(())
}

/// « Annuler » or « Fermer » in a dialog: a waiting login gets USER_CANCELLED.
#[tauri::command]
pub fn dialog_close(window: WebviewWindow, shared: AppState<'_>) {
    shared.dialogs.closed(window.label());
    let _ = window.destroy();
}

/// The card state as the tray shows it, and every reader.
#[tauri::command]
pub async fn status_view(shared: AppState<'_>) -> Result<Value, String> {
    let shared = Arc::clone(&shared);
    tauri::async_runtime::spawn_blocking(move || {
        let lang = shared.lang;
        let scanned = shared.scan();
        let overall = cpx_agent::card::Overall::of(scanned.as_deref().map_err(|c| *c));
        let scanned = scanned.unwrap_or_default();
        let message = overall.text_for(&scanned).get(lang);
        let readers: Vec<Value> = scanned.iter().map(|r| cli::reader_view(lang, r)).collect();
        let server = shared.server_error.lock().unwrap_or_else(|p| p.into_inner()).clone().map(|(code, detail)| {
            Problem { detail: Some(detail), ..Problem::new(code, lang) }.to_value()
        });
        use base64::Engine;
        let icon = base64::engine::general_purpose::STANDARD.encode(crate::icons::png(overall, 96));
        // No usable keyring: the keys are in files of this user only (a warning, with the fix).
        let keys = cpx_agent::platform::keyring_fallback(shared.agent.config.key_store, &shared.data_dir).map(|dir| {
            let code = cpx_agent::messages::Code::KeyringUnavailable;
            Problem { detail: Some(dir.display().to_string()), ..Problem::new(code, lang) }.to_value()
        });
        json!({
            "keys": keys,
            "state": overall, "icon": format!("data:image/png;base64,{icon}"), "message": message, "fix": overall.fix().map(|f| f.get(lang)),
            "readers": readers, "port": shared.agent.config.port, "server_error": server,
        })
    })
    .await
    .map_err(|e| e.to_string())
}

/// The sites allowed by policy and by the professional.
#[tauri::command]
pub fn sites_view(shared: AppState<'_>) -> Value {
    let policy: Vec<&str> = shared.agent.config.sites.iter().map(|s| s.origin.as_str()).collect();
    let (user, tampered) = match &shared.agent.consent {
        Some(c) => (c.approvals.list(), c.approvals.tampered),
        None => (Vec::new(), false),
    };
    json!({"policy": policy, "user": user, "tampered": tampered})
}

#[tauri::command]
pub fn sites_remove(shared: AppState<'_>, origin: String) -> Result<bool, String> {
    let consent = shared.agent.consent.as_ref().ok_or("no approvals")?;
    let removed = consent.approvals.remove(&origin).map_err(|e| e.to_string())?;
    tracing::info!(%origin, removed, "site approval removed");
    Ok(removed)
}

#[tauri::command]
pub fn about_view(shared: AppState<'_>) -> Value {
    json!({"version": env!("CARGO_PKG_VERSION"), "address": format!("https://127.0.0.1:{}", shared.agent.config.port), "configuration": shared.config_source})
}

fn diagnose_options(shared: &Shared) -> helpdesk::DiagnoseOptions<'_> {
    helpdesk::DiagnoseOptions {
        config: &shared.agent.config,
        config_source: shared.config_source.clone(),
        reader: None,
        origin: None,
        timeout: shared.card_timeout,
        cards: &shared.agent.cards,
        data_dir: shared.data_dir.clone(),
    }
}

/// The checks of `cpx-agent diagnose`, in words.
#[tauri::command]
pub async fn diagnostics_run(shared: AppState<'_>) -> Result<Value, String> {
    let shared = Arc::clone(&shared);
    tauri::async_runtime::spawn_blocking(move || {
        let lang = shared.lang;
        let checks = helpdesk::diagnose(&diagnose_options(&shared));
        let rows: Vec<Value> = checks.iter().map(|c| cli::check_json(lang, c)).collect();
        let worst = checks.iter().map(|c| c.verdict).max_by_key(|v| match v {
            Verdict::Ok => 0,
            Verdict::Warn => 1,
            Verdict::Fail => 2,
        });
        json!({"checks": rows, "worst": worst})
    })
    .await
    .map_err(|e| e.to_string())
}

/// « Copier le rapport »: the redacted report of `cpx-agent report`, on the clipboard.
#[tauri::command]
pub async fn diagnostics_copy(app: tauri::AppHandle, shared: AppState<'_>) -> Result<usize, String> {
    use tauri_plugin_clipboard_manager::ClipboardExt;
    let shared = Arc::clone(&shared);
    let text = tauri::async_runtime::spawn_blocking(move || {
        cpx_agent::helpdesk::report(&diagnose_options(&shared), false)
    })
    .await
    .map_err(|e| e.to_string())?;
    app.clipboard().write_text(text.clone()).map_err(|e| e.to_string())?;
    tracing::info!(bytes = text.len(), "report copied to the clipboard");
    Ok(text.len())
}
