//! `cpx-agent`: the agent's command line. Parses the arguments and dispatches; what is printed is rendered
//! by `cpx_agent::cli`, the exit statuses are `cpx_agent::cli::ExitStatus` (which also writes the help's
//! section about them).

use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use cpx_agent::card::CardService;
use cpx_agent::card::{ReaderReport, ScanOptions};
use cpx_agent::cli::ExitStatus;
use cpx_agent::cli::{self, colour_enabled};
use cpx_agent::messages::{Code, Lang, SlotState};
use cpx_card::CertCache;
use cpx_pcsc::{Monitor, MonitorEvent};

#[derive(Parser)]
#[command(name = "cpx-agent", version, about = cpx_agent::messages::names::CLI_ABOUT.fr, after_help = ExitStatus::help())]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Language of the messages.
    #[arg(long, global = true, value_enum, default_value_t = Lang::Fr, env = "CPX_LANG")]
    lang: Lang,
    /// Machine-readable output (one JSON document; one JSON object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    /// Longest wait for one card call, in milliseconds (a mute card is given up after this).
    #[arg(long, global = true, default_value_t = 3000, env = "CPX_CARD_TIMEOUT_MS")]
    card_timeout: u64,
    /// Only this reader.
    #[arg(long, global = true)]
    reader: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Each reader and its card: « Carte CPS insérée et reconnue », « Carte CPS mal insérée / non reconnue »…
    Status,
    /// The CPx card: type, holder, national id, certificate validity, tries left on the code porteur.
    Card,
    /// One line per event (card inserted or removed, reader plugged or unplugged, service stopped or started).
    Watch {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Ordered checks naming the fault and its fix (service, readers, card, PIN, certificate, port,
    /// configuration, portals).
    #[command(after_help = ExitStatus::sentence(&ExitStatus::DIAGNOSE))]
    Diagnose {
        /// Configuration file (default ~/.config/cpx-agent/config.toml).
        #[arg(long, env = "CPX_AGENT_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Also check that this site (origin) is configured.
        #[arg(long)]
        origin: Option<String>,
        /// Installed and healthy, without a card: the exit status counts only the checks of the
        /// installation (loopback port, local CA and its trust, key store, configuration, managed
        /// policy), not the PC/SC service, the reader, the card nor the portals (compliance scripts,
        /// SCCM/Intune detection).
        #[arg(long)]
        health: bool,
    },
    /// A redacted bundle for a helpdesk ticket: versions, OS, checks, readers, ATRs, recent log lines.
    Report {
        /// Where to write the report (JSON).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Keep the holder's names and identifiant national (masked by default).
        #[arg(long)]
        include_identity: bool,
        /// Keep the sites (origins) that used the agent in the log lines (masked by default).
        #[arg(long)]
        include_origins: bool,
        #[arg(long, env = "CPX_AGENT_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// The error catalogue: every code, its messages and what to do.
    Errors {
        /// As the Markdown of docs/errors.md.
        #[arg(long)]
        markdown: bool,
        /// The helpdesk page instead, as the Markdown of docs/helpdesk.md (`--lang en`: docs/helpdesk.en.md).
        #[arg(long, requires = "markdown")]
        helpdesk: bool,
    },
    /// Change the code porteur (the current one, then the new one twice) or unblock the card with its code
    /// de déblocage, on this terminal, or through the configuration's pinentry program (`[pin_prompt]`
    /// kind = "pinentry"). Exit status: 0 done, 1 internal error, 3 PC/SC service stopped, 4 no reader, 5
    /// no card, 6 no usable CPx card, 7 refused (wrong or blocked code, codes that differ, cancelled).
    Pin {
        #[command(subcommand)]
        action: PinAction,
        /// Configuration file (default ~/.config/cpx-agent/config.toml): its `[pin_prompt]`.
        #[arg(long, env = "CPX_AGENT_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// On a shared computer: the machine-wide broker on the agent's usual port, which tells each user's
    /// pages the port of that user's own agent (docs/multi-user.md).
    Broker {
        /// Port on 127.0.0.1 (default: the configuration's `port`).
        #[arg(long)]
        port: Option<u16>,
        /// The users' agents' ports, FIRST-LAST (default: the configuration's `user_ports`).
        #[arg(long, value_name = "FIRST-LAST", value_parser = port_range)]
        user_ports: Option<[u16; 2]>,
        /// Folder of the broker's local CA and loopback certificate (machine-wide; trusted by the installer).
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// Configuration (the machine policy is read as for `serve`).
        #[arg(long, env = "CPX_AGENT_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// The browsers' Local Network Access policies for the managed sites (run by the installers, as
    /// root/Administrator): `apply` writes them from the machine policy (`browser_policies` and the sites;
    /// the flag off: removes ours), `remove` takes away what was written (docs/deploiement.md, section 6).
    /// Exit status: 0 done, 1 failed (what was written before the failure is recorded, for `remove`).
    BrowserPolicies {
        #[command(subcommand)]
        action: BrowserPoliciesAction,
        /// Linux: write under this folder instead of / (tests, system images).
        #[arg(long, global = true, default_value = "/")]
        root: std::path::PathBuf,
    },
    /// Run as root by the installers: the machine's loopback identity (local CA and 127.0.0.1 certificate
    /// in the machine data folder, made once) trusted machine-wide (system store and browsers' policies on
    /// Linux, System keychain on macOS, LocalMachine Root store on Windows).
    InstallTrust,
    /// Run as root by the installers' removal: takes the machine's local CA out of every store
    /// `install-trust` put it in, then deletes the machine's loopback identity.
    UninstallTrust,
    /// The tray app's per-user autostart entry: on, off, status (the Run value under HKCU on Windows,
    /// ~/.config/autostart/agent-cpx.desktop on Linux, a LaunchAgent on macOS).
    Autostart {
        #[arg(value_enum)]
        action: AutostartAction,
        /// The program the entry starts (default: cpx-tray next to cpx-agent).
        #[arg(long)]
        program: Option<std::path::PathBuf>,
    },
    /// The loopback HTTPS endpoint that portals' login pages call (headless; the tray app runs the same).
    Serve {
        /// Configuration file (default ~/.config/cpx-agent/config.toml).
        #[arg(long, env = "CPX_AGENT_CONFIG")]
        config: Option<std::path::PathBuf>,
        /// Port on 127.0.0.1 (overrides the configuration).
        #[arg(long)]
        port: Option<u16>,
        /// Folder of the local CA and loopback certificate (default ~/.local/share/cpx-agent).
        #[arg(long, env = "CPX_AGENT_DATA_DIR")]
        data_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum BrowserPoliciesAction {
    /// Write the policies for the machine policy's sites (Chromium, Chrome, Edge, Firefox); with
    /// `browser_policies` off, remove ours.
    Apply,
    /// Remove the policies this command wrote, and only those.
    Remove,
    /// Windows: register the scheduled task that runs `apply` as LocalSystem at boot, after each Group
    /// Policy refresh and every hour, so a policy changed by GPO or Intune reaches the browsers (the MSI
    /// runs it).
    Schedule,
    /// Windows: remove that scheduled task (the MSI's uninstall runs it).
    Unschedule,
}

#[derive(Subcommand, Clone, Copy)]
enum PinAction {
    /// Change the code porteur: the current code, then the new one twice.
    Change,
    /// Unblock the card: the code de déblocage (its tries shown first), then the new code porteur twice.
    Unblock,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AutostartAction {
    On,
    Off,
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global.clone();
    let cache = card_cache();
    match cli.command {
        Command::Status => run_scan(&g, &cli_cards(&g, cache), false),
        Command::Card => run_scan(&g, &cli_cards(&g, cache), true),
        Command::Watch { count, timeout } => {
            watch(&g, &cli_cards(&g, cache), count, timeout.map(Duration::from_secs_f64))
        }
        Command::Serve { config, port, data_dir } => serve(&g, cache, config, port, data_dir),
        Command::Broker { port, user_ports, data_dir, config } => broker(port, user_ports, data_dir, config),
        Command::Diagnose { config, origin, health } => diagnose(&g, config, origin, health),
        Command::Errors { markdown, helpdesk } => errors(&g, markdown, helpdesk),
        Command::Pin { action, config } => pin(&g, &cli_cards(&g, cache), action, config),
        Command::BrowserPolicies { action, root } => browser_policies(&g, action, &root),
        Command::InstallTrust => machine_trust(&g, true),
        Command::UninstallTrust => machine_trust(&g, false),
        Command::Autostart { action, program } => autostart(&g, action, program),
        Command::Report { out, include_identity, include_origins, config } => report(
            &g,
            &cli_cards(&g, cache),
            out,
            cpx_agent::helpdesk::Include { identity: include_identity, origins: include_origins },
            config,
        ),
    }
}

use cpx_agent::service::{card_cache, load_config};

/// This command's own way to the card (a CLI process has its own card service, hence its own permit).
fn cli_cards(g: &Global, cache: CertCache) -> Arc<CardService> {
    let timeout = Duration::from_millis(g.card_timeout);
    CardService::new(cache, timeout, timeout)
}

/// What `diagnose` and `report` check: the configuration in force, where it came from, the data folder.
fn config_to_check(
    command: &str,
    config: Option<std::path::PathBuf>,
) -> Result<(cpx_agent::platform::Config, String, std::path::PathBuf), ExitCode> {
    let (config, source) = load_config(config).map_err(|e| {
        eprintln!("cpx-agent {command}: {e}");
        ExitCode::from(ExitStatus::Internal)
    })?;
    let data_dir =
        cpx_agent::service::data_dir(std::env::var_os("CPX_AGENT_DATA_DIR").map(Into::into), &config);
    Ok((config, source, data_dir))
}

fn report(
    g: &Global,
    cards: &CardService,
    out: std::path::PathBuf,
    include: cpx_agent::helpdesk::Include,
    config: Option<std::path::PathBuf>,
) -> ExitCode {
    let (config, config_source, data_dir) = match config_to_check("report", config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = cpx_agent::helpdesk::DiagnoseOptions {
        config: &config,
        config_source,
        reader: g.reader.clone(),
        origin: None,
        timeout: Duration::from_millis(g.card_timeout),
        cards,
        data_dir,
    };
    let text = cpx_agent::helpdesk::report_with(&opts, include);
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("cpx-agent report: {}: {e}", out.display());
        return ExitCode::from(ExitStatus::Internal);
    }
    println!("{}", out.display());
    ExitCode::SUCCESS
}

fn autostart(g: &Global, action: AutostartAction, program: Option<std::path::PathBuf>) -> ExitCode {
    use cpx_agent::platform::{default_program, Autostart};
    let result = Autostart::current().and_then(|a| {
        match action {
            AutostartAction::On => a.enable(&program.map_or_else(default_program, Ok)?)?,
            AutostartAction::Off => {
                a.disable()?;
            }
            AutostartAction::Status => {}
        }
        a.status()
    });
    let status = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cpx-agent autostart: {e}");
            return ExitCode::from(ExitStatus::Internal);
        }
    };
    if g.json {
        println!("{}", serde_json::to_string(&status).unwrap_or_default());
    } else {
        println!("{}", cli::autostart_text(g.lang, &status));
    }
    ExitCode::SUCCESS
}

fn errors(g: &Global, markdown: bool, helpdesk: bool) -> ExitCode {
    if helpdesk {
        print!("{}", cpx_agent::helpdesk::helpdesk_markdown(g.lang));
    } else if markdown {
        print!("{}", cpx_agent::messages::catalogue_markdown());
    } else {
        for code in Code::ALL {
            if g.json {
                println!("{}", cli::problem_json(g.lang, code));
            } else {
                println!("{}", cli::catalogue_entry_text(g.lang, code));
            }
        }
    }
    ExitCode::SUCCESS
}

/// `cpx-agent pin change|unblock`: the flow of `cpx_agent::card::change_pin`/`unblock_pin` with the
/// terminal's dialog, or the configured pinentry's; the codes go from the dialog to the card, never
/// printed nor logged.
fn pin(g: &Global, cards: &CardService, action: PinAction, config: Option<std::path::PathBuf>) -> ExitCode {
    use cpx_agent::card::{change_pin, unblock_pin, CodeDialog, PinentryCodeDialog, TerminalCodeDialog};
    use cpx_agent::messages::pin_life;
    use cpx_agent::platform::PinPromptConfig;
    let (title, done) = match action {
        PinAction::Change => (pin_life::CHANGE_TITLE, pin_life::CHANGED),
        PinAction::Unblock => (pin_life::UNBLOCK_TITLE, pin_life::UNBLOCKED),
    };
    let (config, _) = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpx-agent pin: {e}");
            return ExitCode::from(ExitStatus::Internal);
        }
    };
    let dialog: Box<dyn CodeDialog> = match config.pin_prompt {
        PinPromptConfig::Terminal => Box::new(TerminalCodeDialog { lang: g.lang, title }),
        PinPromptConfig::Pinentry { program } => {
            Box::new(PinentryCodeDialog { program, lang: g.lang, title })
        }
    };
    let reader = g.reader.as_deref();
    let result = cards.blocking(|c| match action {
        PinAction::Change => change_pin(c, reader, dialog.as_ref(), config.pinpad),
        PinAction::Unblock => unblock_pin(c, reader, dialog.as_ref(), config.pinpad),
    });
    let code = match result {
        Ok(Ok(())) => {
            if g.json {
                println!("{}", serde_json::json!({"done": true, "message": done.get(g.lang)}));
            } else {
                println!("{}", done.get(g.lang));
            }
            return ExitCode::SUCCESS;
        }
        Err(code) => code,
        Ok(Err(e)) => {
            if let (Some(tries), false) = (e.tries_left(), g.json) {
                eprintln!("{}", cli::tries_text(g.lang, tries, 3));
            }
            e.code()
        }
    };
    if g.json {
        println!("{}", cli::problem_json(g.lang, code));
    } else {
        eprintln!("{}", cli::problem_text(g.lang, code, colour_enabled()));
    }
    let status = match code {
        Code::PcscServiceStopped => ExitStatus::ServiceStopped,
        Code::NoReader => ExitStatus::NoReader,
        Code::NoCard | Code::NoCpxCard => ExitStatus::NoCard,
        Code::CardNotCpx | Code::CardMute | Code::CardInUse | Code::Contactless => ExitStatus::NotUsable,
        Code::AgentError | Code::PromptUnavailable => ExitStatus::Internal,
        _ => ExitStatus::CannotLogIn,
    };
    ExitCode::from(status)
}

fn diagnose(
    g: &Global,
    config: Option<std::path::PathBuf>,
    origin: Option<String>,
    health: bool,
) -> ExitCode {
    use cpx_agent::helpdesk;
    let (config, config_source, data_dir) = match config_to_check("diagnose", config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let cards = cli_cards(g, CertCache::memory());
    let opts = helpdesk::DiagnoseOptions {
        config: &config,
        config_source,
        reader: g.reader.clone(),
        origin,
        timeout: Duration::from_millis(g.card_timeout),
        cards: &cards,
        data_dir,
    };
    let checks = helpdesk::diagnose(&opts);
    let (status, first) = match health {
        true => (ExitStatus::of_health(&checks), helpdesk::health_first_fault(&checks)),
        false => (ExitStatus::of_checks(&checks), helpdesk::first_fault(&checks)),
    };
    if g.json {
        let list: Vec<_> = checks.iter().map(|c| cli::check_json(g.lang, c)).collect();
        let first = first.map(|c| serde_json::json!({"check": c.id, "code": c.code}));
        let p = &config.provenance;
        let policy = serde_json::json!({
            "managed": p.settings.iter().filter(|s| s.managed).collect::<Vec<_>>(),
            "settings": p.settings,
            "problems": p.problems,
            "user_sites_off_by": p.user_sites_off_by,
        });
        println!(
            "{}",
            serde_json::json!({"checks": list, "first_fault": first, "exit_status": status.code(), "health": health, "policy": policy})
        );
    } else {
        let colour = colour_enabled();
        for c in &checks {
            println!("{}", cli::check_text(g.lang, c, colour));
        }
    }
    ExitCode::from(status)
}

/// `browser-policies apply|remove`.
fn browser_policies(g: &Global, action: BrowserPoliciesAction, root: &std::path::Path) -> ExitCode {
    use cpx_agent::platform::{
        apply_browser_policies, browser_policies_config, remove_browser_policies, BrowserPolicies,
    };
    let result = match action {
        BrowserPoliciesAction::Schedule | BrowserPoliciesAction::Unschedule => {
            return browser_policies_task(g, matches!(action, BrowserPoliciesAction::Schedule));
        }
        BrowserPoliciesAction::Apply => {
            browser_policies_config().and_then(|c| apply_browser_policies(root, &c))
        }
        BrowserPoliciesAction::Remove => {
            remove_browser_policies(root).map(|o| (BrowserPolicies::default(), o))
        }
    };
    let (wanted, outcome) = match result {
        Ok(r) => r,
        Err(e) => return browser_policies_failed(g, &e),
    };
    if g.json {
        println!(
            "{}",
            serde_json::json!({"ok": true, "origins": wanted.origins, "hosts": wanted.hosts, "changes": outcome.changes, "warnings": outcome.warnings})
        );
        return ExitCode::SUCCESS;
    }
    let nothing_wanted = matches!(action, BrowserPoliciesAction::Apply) && wanted.is_empty();
    print!("{}", cli::browser_policies_text(g.lang, nothing_wanted, &outcome, colour_enabled()));
    ExitCode::SUCCESS
}

/// `browser-policies schedule|unschedule`: the Windows scheduled task.
fn browser_policies_task(g: &Global, schedule: bool) -> ExitCode {
    use cpx_agent::messages::label;
    use cpx_agent::platform::policy_task::{self, TASK_NAME};
    let result = if schedule { policy_task::schedule() } else { policy_task::unschedule() };
    match result {
        Ok(()) if g.json => println!("{}", serde_json::json!({"ok": true, "task": TASK_NAME})),
        Ok(()) => {
            let text = if schedule { label::BP_SCHEDULED } else { label::BP_UNSCHEDULED };
            println!("{}", cpx_agent::said::fill(text.get(g.lang), &[("task", TASK_NAME)]));
        }
        Err(e) => return browser_policies_failed(g, &e),
    }
    ExitCode::SUCCESS
}

/// A `browser-policies` action that failed: its error (JSON or stderr), exit 1.
fn browser_policies_failed(g: &Global, e: &dyn std::fmt::Display) -> ExitCode {
    if g.json {
        println!("{}", serde_json::json!({"ok": false, "error": e.to_string()}));
    } else {
        eprintln!("cpx-agent browser-policies: {e}");
    }
    ExitCode::from(ExitStatus::Internal)
}

/// `install-trust` / `uninstall-trust`: what was done, one line each; exit 1 on failure.
fn machine_trust(g: &Global, install: bool) -> ExitCode {
    use cpx_agent::platform::{install_trust, machine_dir, uninstall_trust};
    let dir = machine_dir();
    let (name, done) = if install {
        ("install-trust", install_trust(&dir))
    } else {
        ("uninstall-trust", uninstall_trust(&dir))
    };
    match done {
        Ok(done) => {
            print!("{}", cli::machine_trust_text(g.lang, name, install, &dir, &done));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cpx-agent {name}: {e}");
            ExitCode::from(ExitStatus::Internal)
        }
    }
}

/// `serve`: configuration, loopback identity (created on first start), PIN prompt, then the server.
fn serve(
    g: &Global,
    cache: CertCache,
    config: Option<std::path::PathBuf>,
    port: Option<u16>,
    data_dir: Option<std::path::PathBuf>,
) -> ExitCode {
    use cpx_agent::platform::PinPromptConfig;
    use cpx_agent::service;
    let fail = |what: String| {
        eprintln!("cpx-agent serve: {what}");
        ExitCode::from(ExitStatus::Internal)
    };
    let mut config = match load_config(config) {
        Ok((c, _)) => c,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(p) = port {
        config.port = p;
    }
    let _log_guard = match cpx_agent::helpdesk::init_logging(config.log_level.as_deref()) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("cpx-agent serve: no log file ({e})");
            None
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        port = config.port,
        sites = config.sites.len(),
        "cpx-agent serve starting"
    );
    config.provenance.log_problems();
    for p in &config.provenance.problems {
        eprintln!("cpx-agent serve: {}: {}: {}; instead: {}", p.source, p.key, p.reason, p.instead);
    }
    let data_dir = service::data_dir(data_dir, &config);
    let store = match service::secret_store(&config, &data_dir) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let prompt: std::sync::Arc<dyn cpx_agent::card::PinPrompt> = match &config.pin_prompt {
        PinPromptConfig::Terminal => std::sync::Arc::new(cpx_agent::card::TerminalPrompt),
        PinPromptConfig::Pinentry { program } => {
            std::sync::Arc::new(cpx_agent::card::PinentryPrompt { program: program.clone() })
        }
    };
    // A shared computer: this user's agent on a port of its own, found by pages through the broker.
    let user_listener = match config.user_ports {
        Some([first, last]) => {
            let bound = cpx_agent::loopback::current_user()
                .map_err(|e| e.to_string())
                .and_then(|me| service::bind_user_port(first, last, &me).map_err(|e| e.to_string()));
            match bound {
                Ok(l) => {
                    config.port = l.local_addr().map(|a| a.port()).unwrap_or(config.port);
                    Some(l)
                }
                Err(e) => return fail(e),
            }
        }
        None => None,
    };
    let port = config.port;
    let sites: Vec<String> = config.sites.iter().map(|s| s.origin.clone()).collect();
    // Headless: policy sites only (no one to ask about others).
    let prepared = match service::prepare(
        config,
        &data_dir,
        store.as_ref(),
        cache,
        Duration::from_millis(g.card_timeout),
        prompt,
        None,
    ) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    // Each card read as soon as it is inserted: the first login finds it known.
    let _cards_read = service::read_cards_on_insertion(&prepared.agent);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    runtime.block_on(async move {
        let bound = match user_listener {
            Some(l) => tokio::net::TcpListener::from_std(l).map_err(|e| e.to_string()),
            None => service::bind(port).await.map_err(|e| e.to_string()),
        };
        let listener = match bound {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        println!("cpx-agent: https://127.0.0.1:{port} (local CA: {})", prepared.identity.ca_path.display());
        println!(
            "cpx-agent: allowed sites: {}",
            if sites.is_empty() { "none".to_owned() } else { sites.join(", ") }
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::select! {
            r = cpx_agent::loopback::serve(prepared.agent, &prepared.identity, listener) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e.to_string()),
            },
            _ = shutdown() => ExitCode::SUCCESS,
        }
    })
}

/// `--user-ports FIRST-LAST`: two ports.
fn port_range(text: &str) -> Result<[u16; 2], String> {
    text.split_once('-')
        .and_then(|(a, b)| Some([a.trim().parse().ok()?, b.trim().parse().ok()?]))
        .ok_or_else(|| "expected FIRST-LAST (two ports)".to_owned())
}

/// `broker`: the machine-wide broker of a shared computer.
fn broker(
    port: Option<u16>,
    user_ports: Option<[u16; 2]>,
    data_dir: std::path::PathBuf,
    config: Option<std::path::PathBuf>,
) -> ExitCode {
    let fail = |what: String| {
        eprintln!("cpx-agent broker: {what}");
        ExitCode::from(ExitStatus::Internal)
    };
    let config = match load_config(config) {
        Ok((c, _)) => c,
        Err(e) => return fail(e.to_string()),
    };
    let range = user_ports.or(config.user_ports);
    let Some([first, last]) = range.filter(|[a, b]| a <= b) else {
        return fail(
            "no users' ports: give --user-ports FIRST-LAST or set user_ports in the machine policy".into(),
        );
    };
    let port = port.unwrap_or(config.port);
    let _log_guard = cpx_agent::helpdesk::init_logging(config.log_level.as_deref()).ok();
    config.provenance.log_problems();
    // The broker's key stays in its own folder (a service has no user keyring).
    let store = cpx_agent::platform::FileStore { dir: data_dir.join("secrets") };
    let identity = match cpx_agent::platform::load_or_create_identity(&data_dir, &store) {
        Ok(i) => i,
        Err(e) => return fail(e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    runtime.block_on(async move {
        let listener = match cpx_agent::service::bind(port).await {
            Ok(l) => l,
            Err(e) => return fail(e.to_string()),
        };
        println!(
            "cpx-agent broker: https://127.0.0.1:{port} (users' agents on {first}-{last}; local CA: {})",
            identity.ca_path.display()
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let broker = std::sync::Arc::new(cpx_agent::loopback::Broker { port, user_ports: first..=last });
        tokio::select! {
            r = cpx_agent::loopback::serve_broker(broker, &identity, listener) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e.to_string()),
            },
            _ = shutdown() => ExitCode::SUCCESS,
        }
    })
}

async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn options(g: &Global, with_pin: bool) -> ScanOptions {
    ScanOptions { with_pin, reader: g.reader.clone() }
}

fn run_scan(g: &Global, cards: &CardService, detailed: bool) -> ExitCode {
    let reports = match cards.scan_blocking(&options(g, detailed)) {
        Ok(r) => r,
        Err(code) => return service_error(g, code),
    };
    if reports.is_empty() {
        let code = if g.reader.is_some() { Code::ReaderUnavailable } else { Code::NoReader };
        print_problem(g, code);
        return ExitCode::from(ExitStatus::NoReader);
    }
    if g.json {
        let out: Vec<_> = reports.iter().map(|r| cli::report_json(g.lang, r)).collect();
        println!("{}", serde_json::json!({"service": "running", "readers": out}));
    } else {
        let colour = colour_enabled();
        for r in &reports {
            println!("{}", cli::report_text(g.lang, r, detailed, colour));
        }
    }
    let ready: Vec<&ReaderReport> = reports.iter().filter(|r| r.state == SlotState::CardReady).collect();
    let status = if ready.iter().any(|r| r.codes.is_empty()) {
        ExitStatus::Ready
    } else if !ready.is_empty() {
        ExitStatus::CannotLogIn
    } else if reports.iter().all(|r| r.state == SlotState::NoCard) {
        ExitStatus::NoCard
    } else {
        ExitStatus::NotUsable
    };
    ExitCode::from(status)
}

fn service_error(g: &Global, code: Code) -> ExitCode {
    print_problem(g, code);
    ExitCode::from(if matches!(code, Code::PcscServiceStopped | Code::PcscServiceFault) {
        ExitStatus::ServiceStopped
    } else {
        ExitStatus::Internal
    })
}

/// A problem instead of the readers (`status`, `card`): with `--json`, the readers' document, empty.
fn print_problem(g: &Global, code: Code) {
    if g.json {
        let service = if code == Code::PcscServiceStopped { "stopped" } else { "running" };
        let mut v = cli::problem_json(g.lang, code);
        v["service"] = service.into();
        v["readers"] = serde_json::json!([]);
        println!("{v}");
    } else {
        println!("{}", cli::problem_text(g.lang, code, colour_enabled()));
    }
}

/// `watch`: the monitor's events, one line each; an inserted card is identified at once and the line
/// says how long after pcscd's event it was ready.
fn watch(g: &Global, cards: &CardService, count: Option<usize>, timeout: Option<Duration>) -> ExitCode {
    let (tx, rx) = mpsc::channel();
    let monitor = Monitor::start(move |event, at| {
        let _ = tx.send((event, at));
    });
    let start = Instant::now();
    let deadline = timeout.map(|t| start + t);
    let colour = colour_enabled();
    let mut seen = 0;
    loop {
        if count.is_some_and(|n| seen >= n) {
            break;
        }
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let next = match wait {
            Some(w) => rx.recv_timeout(w).ok(),
            None => rx.recv().ok(),
        };
        let Some((event, at)) = next else { break };
        seen += 1;
        print_event(g, &event, at, cards, colour);
    }
    monitor.stop();
    ExitCode::SUCCESS
}

fn print_event(g: &Global, event: &MonitorEvent, at: Instant, cards: &CardService, colour: bool) {
    let lang = g.lang;
    let stamp = clock();
    // An inserted card is identified now: the report and the time from pcscd's event to "ready".
    let report = match event {
        MonitorEvent::CardInserted { reader, atr } => {
            let info = cpx_pcsc::ReaderInfo {
                name: reader.clone(),
                state: cpx_pcsc::SlotState::Present,
                atr: atr.clone(),
            };
            // The CLI's own service: nothing else holds its card, the report always comes.
            cards.report_blocking(&info, &options(g, false)).ok().map(|r| (r, at.elapsed()))
        }
        _ => None,
    };
    let report = report.as_ref().map(|(r, ready)| (r, *ready));
    if g.json {
        println!("{}", cli::event_json(lang, event, &stamp, report));
    } else {
        println!("{}", cli::event_lines(lang, event, &stamp, report, colour));
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// The time of day in UTC, HH:MM:SS.mmm (the watch lines; UTC so that lines from several machines compare).
fn clock() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ms = now.as_millis() % 1000;
    let s = now.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ports_are_two_ports() {
        assert_eq!(port_range("48100-48199"), Ok([48100, 48199]));
        assert_eq!(port_range(" 48100 - 48199 "), Ok([48100, 48199]));
        for bad in ["48100", "a-b", "48100-70000", ""] {
            assert!(port_range(bad).is_err(), "{bad}");
        }
        let args = |ports: &str| {
            Cli::try_parse_from(["cpx-agent", "broker", "--data-dir", "/x", "--user-ports", ports])
        };
        assert!(args("48100-48199").is_ok());
        assert!(args("48100").is_err());
    }
}
