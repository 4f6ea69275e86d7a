//! The tray icon and its menu. Its look, its tooltip and the menu's first line (the state in words: Linux
//! panels show no tooltip) follow the card state: the PC/SC monitor wakes a thread on every reader or card
//! event, which rescans and changes them when the verdict changes. Nothing runs between events.

use std::sync::Arc;

use cpx_agent::card::{self, Overall, Watch};
use cpx_agent::messages::{labels, Lang, Text};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager};

use crate::shared::Shared;
use crate::windows::{self, Window};

const TRAY_ID: &str = "cpx";
/// The drawn size; the panel scales it (16 to 32 px in practice).
const ICON_SIZE: u32 = 32;

pub fn icon(state: Overall) -> Image<'static> {
    Image::new_owned(crate::icons::draw(state, ICON_SIZE), ICON_SIZE, ICON_SIZE)
}

fn tooltip(state: Overall, lang: Lang) -> String {
    format!("Agent CPx — {}", state.text().get(lang))
}

/// Which window a menu entry (or `--show NAME`) opens; `None` for « Quitter ».
pub fn menu_target(id: &str) -> Option<Window> {
    match id {
        "status" => Some(Window::Status),
        "diagnostics" => Some(Window::Diagnostics),
        "sites" => Some(Window::Sites),
        "about" => Some(Window::About),
        _ => None,
    }
}

/// The menu's first line: the state in words (not clickable).
struct StateLine(MenuItem<tauri::Wry>);

pub fn build(app: &AppHandle, lang: Lang, state: Overall) -> tauri::Result<TrayIcon> {
    let t = labels(lang);
    let text = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or(k).to_owned();
    let state_line = MenuItem::with_id(app, "state", state.text().get(lang), false, None::<&str>)?;
    let items = [
        ("status", "menu_status"),
        ("diagnostics", "menu_diagnostics"),
        ("sites", "menu_sites"),
        ("about", "menu_about"),
    ];
    let mut entries: Vec<MenuItem<_>> = Vec::new();
    for (id, key) in items {
        entries.push(MenuItem::with_id(app, id, text(key), true, None::<&str>)?);
    }
    // Changing and unblocking the code porteur: the agent's flow in the app's own windows.
    let change = MenuItem::with_id(app, "change_pin", text("menu_change_pin"), true, None::<&str>)?;
    let unblock = MenuItem::with_id(app, "unblock", text("menu_unblock"), true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", text("menu_quit"), true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let top_separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(
        app,
        &[
            &state_line,
            &top_separator,
            &entries[0],
            &change,
            &unblock,
            &entries[1],
            &entries[2],
            &entries[3],
            &separator,
            &quit,
        ],
    )?;
    app.manage(StateLine(state_line));
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(state))
        .tooltip(tooltip(state, lang))
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| match menu_target(event.id().as_ref()) {
            Some(window) => {
                if let Err(e) = windows::show(app, window, lang) {
                    tracing::warn!(error = %e, "window not shown");
                }
            }
            None if event.id().as_ref() == "quit" => app.exit(0),
            None if event.id().as_ref() == "change_pin" => {
                crate::pin_life::start(app, crate::pin_life::Action::Change)
            }
            None if event.id().as_ref() == "unblock" => {
                crate::pin_life::start(app, crate::pin_life::Action::Unblock)
            }
            None => {}
        })
        .build(app)
}

/// Sets the tray's icon to `state`; true when it changed.
fn set(app: &AppHandle, shared: &Shared, state: Overall) -> bool {
    let mut current = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    if *current == state {
        return false;
    }
    *current = state;
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_icon(Some(icon(state)));
    }
    true
}

/// Puts `words` (the state in words, naming a ready card's own type: « Carte CPE insérée et reconnue »)
/// in the tooltip and the menu's first line.
fn say(app: &AppHandle, lang: Lang, words: Text) {
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_tooltip(Some(format!("Agent CPx — {}", words.get(lang))));
    }
    if let Some(line) = app.try_state::<StateLine>() {
        let _ = line.0.set_text(words.get(lang));
    }
}

/// Scans now and shows the state found (after the code porteur was changed or unblocked: no reader event
/// tells it).
pub fn refresh(app: &AppHandle, shared: &Shared) {
    let scanned = shared.scan();
    let state = Overall::of(scanned.as_deref().map_err(|c| *c));
    set(app, shared, state);
    say(app, shared.lang, state.text_for(scanned.as_deref().unwrap_or(&[])));
}

/// Follows the card state until the app exits.
pub fn watch(app: AppHandle, shared: Arc<Shared>) -> Watch {
    let cards = shared.agent.cards.clone();
    let mut said: Option<&'static str> = None;
    card::watch(cards, Shared::scan_options(), move |update| {
        let state = update.overall;
        let words = state.text_for(update.readers.as_deref().unwrap_or(&[]));
        let changed = set(&app, &shared, state);
        if changed || said != Some(words.fr) {
            say(&app, shared.lang, words);
            said = Some(words.fr);
        }
        if changed {
            // From pcscd's report of the event to the new icon.
            tracing::info!(state = ?state, event = ?update.event, ms = update.at.elapsed().as_secs_f64() * 1000.0, "tray state");
        }
    })
}
