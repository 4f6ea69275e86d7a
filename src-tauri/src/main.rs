//! Agent CPx tray app: a thin shell over `cpx-agent`. It runs the agent's loopback server, shows the card
//! state in the tray, and is the agent's code porteur dialog and site-consent dialog.
//!
//! - [`tray`]: the icon, its tooltip and menu, following the card state; [`icons`]: the icons.
//! - [`dialogs`]: the dialogs as the agent's prompts; [`windows`]: every window and its page.
//! - [`pin_life`]: changing and unblocking the code porteur (menu, blocked notice), through the agent's flow.
//! - [`commands`]: what the pages may call (each window only its own, see `capabilities/`).
//! - [`shared`]: what these parts share.
//!
//! Usage (`cpx-tray --help`): `cpx-tray [--config FILE] [--data-dir DIR] [--show status|diagnostics|sites|about]`.
//! A second start hands its `--show` to the running app (single instance) and exits.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod dialogs;
mod icons;
mod pin_life;
mod shared;
mod tray;
mod windows;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use cpx_agent::messages::{Code, Lang};
use cpx_agent::service;
use tauri::{Manager, RunEvent, WindowEvent};

use crate::dialogs::Dialogs;
use crate::shared::Shared;
use crate::windows::Window;

/// Longest wait for one card call.
const CARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The command line; `CPX_AGENT_CONFIG` and `CPX_AGENT_DATA_DIR` stand for `--config` and `--data-dir`, as
/// for `cpx-agent`.
#[derive(Parser, Debug)]
#[command(
    name = "cpx-tray",
    version,
    about = "Agent CPx dans la barre des tâches : état de la carte, saisie du code porteur, autorisation des sites ; \
             fait tourner le serveur local de l'agent.",
    after_help = "A second start hands --show to the running app (the status window by default) and exits."
)]
struct Args {
    /// Configuration file (default ~/.config/cpx-agent/config.toml).
    #[arg(long, env = "CPX_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder: local CA, approved sites (default ~/.local/share/cpx-agent).
    #[arg(long, env = "CPX_AGENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Window to show at start (or in the running app, on a second start).
    #[arg(long, value_parser = window_parser())]
    show: Option<Window>,
    /// Writes the app's icon files into this folder and exits (packaging).
    #[arg(long, hide = true, value_name = "DIR")]
    write_icons: Option<PathBuf>,
    /// Started by the session's autostart entry (a second start then shows nothing).
    #[arg(long, hide = true)]
    autostart: bool,
}

/// `--show`'s values: the windows of the tray menu.
fn window_parser() -> impl clap::builder::TypedValueParser<Value = Window> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["status", "diagnostics", "sites", "about"])
        .try_map(|name: String| tray::menu_target(&name).ok_or("not a window of the tray menu"))
}

/// French unless the OS asks for English (`CPX_AGENT_LANG=fr|en` wins).
fn os_lang() -> Lang {
    let tag = std::env::var("CPX_AGENT_LANG")
        .ok()
        .or_else(sys_locale::get_locale)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if tag.starts_with("en") {
        Lang::En
    } else {
        Lang::Fr
    }
}

/// Runs the agent's loopback server on the app's runtime; why it stopped goes to the status window.
fn serve(prepared: service::Prepared, shared: Arc<Shared>) {
    tauri::async_runtime::spawn(async move {
        let port = prepared.agent.config.port;
        let result = match service::bind(port).await {
            Ok(listener) => cpx_agent::loopback::serve(prepared.agent, &prepared.identity, listener)
                .await
                .map_err(|e| (Code::AgentError, e.to_string())),
            Err(e) => Err((e.code(), e.to_string())),
        };
        if let Err((code, detail)) = result {
            tracing::error!(?code, error = %detail, "loopback server not running");
            *shared.server_error.lock().unwrap_or_else(|p| p.into_inner()) = Some((code, detail));
        }
    });
}

/// The per-user autostart entry follows the configuration's `autostart` (`cpx_agent::platform::Autostart`: the
/// HKCU Run value, ~/.config/autostart/agent-cpx.desktop, the user's LaunchAgent); none where the
/// installer's machine-wide entry already starts the tray in every session.
fn follow_autostart(wanted: bool) {
    let result = std::env::current_exe().map_err(|e| e.to_string()).and_then(|program| {
        cpx_agent::platform::Autostart::current()
            .and_then(|a| a.follow(wanted, &program))
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(plan) => tracing::debug!(?plan, wanted, "per-user autostart"),
        Err(e) => tracing::warn!(error = %e, wanted, "per-user autostart not changed"),
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    // WebDriver may drive the web views (and so read the PIN dialog) only in the tests' debug builds.
    if !cfg!(debug_assertions) {
        std::env::remove_var("TAURI_WEBVIEW_AUTOMATION");
    }
    // --help and --version print and exit 0; a usage error exits 2 (as `cpx-agent`).
    let args = Args::parse();
    if let Some(dir) = args.write_icons {
        for name in icons::APP_ICON_FILES {
            if let Err(e) = std::fs::write(dir.join(name), icons::app_icon(name).unwrap_or_default()) {
                eprintln!("cpx-tray: {}: {e}", dir.join(name).display());
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    let lang = os_lang();
    let (config, config_source) = match service::load_config(args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpx-tray: {e}");
            return ExitCode::from(1);
        }
    };
    let _log_guard = cpx_agent::helpdesk::init_logging(config.log_level.as_deref())
        .map_err(|e| eprintln!("cpx-tray: no log file ({e})"))
        .ok();
    // Malformed keys are at their safe defaults: said in the log (and in the diagnostics window).
    config.provenance.log_problems();
    let data_dir = service::data_dir(args.data_dir, &config);
    // Before any async runtime: the Secret Service client runs its own executor.
    let store = match service::secret_store(&config, &data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpx-tray: {e}");
            return ExitCode::from(1);
        }
    };
    let show_first = args.show;
    let mut config = Some(config);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(move |app, argv, _cwd| {
            // A second start at login (a per-user and a machine-wide entry both there): nothing to show.
            let second = Args::try_parse_from(&argv).ok();
            if second.as_ref().is_some_and(|a| a.autostart) {
                return;
            }
            // A second start: show what it asked for (the status window by default).
            let window = second.and_then(|a| a.show).unwrap_or(Window::Status);
            if let Err(e) = windows::show(app, window, lang) {
                tracing::warn!(error = %e, "window not shown");
            }
        }))
        .plugin(tauri_plugin_clipboard_manager::init())
        .invoke_handler(tauri::generate_handler![
            commands::labels,
            commands::dialog_view,
            commands::pin_submit,
            commands::consent_answer,
            commands::choice_answer,
            commands::dialog_close,
            commands::status_view,
            commands::sites_view,
            commands::sites_remove,
            commands::about_view,
            commands::diagnostics_run,
            commands::diagnostics_copy,
            commands::pin_life_codes,
            commands::pin_life_confirm,
            commands::pin_life_start,
        ])
        .setup(move |app| {
            let config = config.take().ok_or("setup ran twice")?;
            let handle = app.handle().clone();
            let dialogs = Arc::new(Dialogs::new(handle.clone(), lang));
            let autostart = config.autostart;
            let prepared = service::prepare(
                config,
                &data_dir,
                store.as_ref(),
                service::card_cache(),
                CARD_TIMEOUT,
                dialogs.clone(),
                Some(dialogs.clone()),
            )?;
            let shared = Arc::new(Shared {
                lang,
                agent: prepared.agent.clone(),
                dialogs,
                config_source,
                data_dir: data_dir.clone(),
                card_timeout: CARD_TIMEOUT,
                state: Mutex::new(cpx_agent::card::Overall::NoCard),
                server_error: Mutex::new(None),
            });
            app.manage(shared.clone());

            let state = shared.overall();
            *shared.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
            tray::build(&handle, lang, state)?;
            app.manage(Mutex::new(Some(tray::watch(handle.clone(), shared.clone()))));
            let tray_ms = started.elapsed().as_secs_f64() * 1000.0;

            let port = prepared.agent.config.port;
            serve(prepared, shared.clone());
            follow_autostart(autostart);
            // WebDriver (tests) drives the app through its first web view, which must outlive the others.
            if std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() == Ok("true") {
                tauri::WebviewWindowBuilder::new(
                    app,
                    "automation",
                    tauri::WebviewUrl::App("index.html".into()),
                )
                .visible(false)
                .build()?;
            }
            if let Some(window) = show_first {
                windows::show(&handle, window, lang)?;
            }
            tracing::info!(state = ?state, tray_ms, port, "tray ready");
            println!(
                "cpx-tray: ready in {tray_ms:.0} ms ({}), https://127.0.0.1:{port}",
                state.text().get(lang)
            );
            Ok(())
        })
        .on_window_event(|window, event| {
            if let WindowEvent::Destroyed = event {
                if let Some(shared) = window.try_state::<Arc<Shared>>() {
                    shared.dialogs.closed(window.label());
                }
            }
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cpx-tray: {e}");
            return ExitCode::from(1);
        }
    };
    app.run(|_app, event| {
        // Closing the last window keeps the app in the tray; « Quitter » exits.
        if let RunEvent::ExitRequested { api, code: None, .. } = event {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["cpx-tray", "--show", "sites", "--config", "/c.toml"]).unwrap();
        assert_eq!(
            (args.show, args.config.as_deref()),
            (Some(Window::Sites), Some(std::path::Path::new("/c.toml")))
        );
        assert!(Args::try_parse_from(["cpx-tray", cpx_agent::platform::AUTOSTART_ARG]).unwrap().autostart);
        let unknown = Args::try_parse_from(["cpx-tray", "--show", "pin"]).unwrap_err();
        assert_eq!(unknown.kind(), clap::error::ErrorKind::InvalidValue, "the PIN dialog is no menu window");
        assert_eq!(unknown.exit_code(), 2, "a usage error exits 2");
        let help = Args::try_parse_from(["cpx-tray", "--help"]).unwrap_err();
        assert_eq!((help.kind(), help.exit_code()), (clap::error::ErrorKind::DisplayHelp, 0));
        assert!(help.to_string().contains("[possible values: status, diagnostics, sites, about]"), "{help}");
    }
}
