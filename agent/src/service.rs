//! Starting the agent, shared by `cpx-agent serve` and the tray app: where its files go, which secret
//! store holds its keys, the loopback certificate, the card service and the listening socket.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cpx_card::CertCache;

use crate::card::card_service::CardService;
use crate::card::consent::{Consent, ConsentPrompt};
use crate::card::pin_prompt::PinPrompt;
use crate::loopback::server::Agent;
use crate::platform::config::{Config, KeyStoreKind};
use crate::platform::localca::{self, LoopbackIdentity};
use crate::platform::secrets::{self, KeyringStore, PrivateFileStore, SecretStore};

/// Why the agent cannot start: each step of the startup says its own way.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration (or a managed policy) cannot be read.
    #[error(transparent)]
    Config(#[from] crate::platform::config::ConfigError),
    /// The loopback certificate cannot be made or read.
    #[error(transparent)]
    Identity(#[from] crate::platform::localca::LocalCaError),
    /// The approvals of sites outside policy cannot be read.
    #[error(transparent)]
    Consent(#[from] crate::card::consent::ConsentError),
    /// The data folder cannot be made private to the user (0700).
    #[error("{}: {source}", dir.display())]
    DataDir {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The loopback port cannot be listened on.
    #[error("port {port} on 127.0.0.1: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// Why (taken, not allowed…).
        source: std::io::Error,
    },
    /// `user_ports` is no range of ports.
    #[error("user_ports [{first}, {last}] is not a range of ports")]
    NotARange {
        /// The first port.
        first: u16,
        /// The last port.
        last: u16,
    },
    /// Every port of `user_ports` is taken.
    #[error("no free port in {first}-{last} on 127.0.0.1: {why}")]
    NoFreePort {
        /// The first port.
        first: u16,
        /// The last port.
        last: u16,
        /// The last port's error.
        why: String,
    },
}

impl StartError {
    /// The catalogue's code for it: a port already taken is AGENT_PORT_TAKEN, the rest AGENT_ERROR.
    pub fn code(&self) -> crate::messages::Code {
        use crate::messages::Code;
        match self {
            StartError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
                Code::AgentPortTaken
            }
            StartError::NoFreePort { .. } => Code::AgentPortTaken,
            _ => Code::AgentError,
        }
    }
}

/// The default configuration file (Linux `~/.config/cpx-agent/config.toml`; the others: [`crate::platform::paths`]).
pub fn default_config_path() -> PathBuf {
    crate::platform::paths::current().config_file
}

/// The configuration given (or the default file when it exists) under the machine's managed policy (when
/// it exists); and which file set what. Malformed keys do not stop it: they are at their safe defaults
/// and listed in `Config::provenance` (shown by `diagnose`, logged by [`Provenance::log_problems`]).
///
/// [`Provenance::log_problems`]: crate::platform::config::Provenance::log_problems
pub fn load_config(path: Option<PathBuf>) -> Result<(Config, String), StartError> {
    let default_path = default_config_path();
    let user = path.or_else(|| default_path.exists().then_some(default_path));
    let policy_file = crate::platform::config::policy_path();
    let policy = Some(policy_file.clone()).filter(|p| p.exists());
    let mut layers = crate::platform::policy_registry::layers();
    layers.extend(crate::platform::policy_macos::layers());
    layers.extend(policy.as_deref().map(crate::platform::layers::PolicyLayer::from_machine_file));
    // The MSI's properties, below every policy source (a GPO's value wins).
    layers.extend(crate::platform::policy_registry::defaults_layers());
    let (mut config, mut provenance) = Config::load_with_policies(user.as_deref(), layers)?;
    if crate::platform::config::policy_env_ignored() {
        let ignored = crate::platform::policy_keys::PolicyProblem {
            source: "CPX_AGENT_POLICY".into(),
            key: "*".into(),
            reason: "an environment variable names no machine policy in a release build".into(),
            instead: format!("the machine policy is read from {}", policy_file.display()),
            site: None,
        };
        provenance.problems.push(ignored.clone());
        config.provenance.problems.push(ignored);
    }
    Ok((config, provenance.describe()))
}

/// The data folder: given, or from the configuration, or the OS's (Linux `~/.local/share/cpx-agent`).
pub fn data_dir(given: Option<PathBuf>, config: &Config) -> PathBuf {
    given.or_else(|| config.data_dir.clone()).unwrap_or_else(|| crate::platform::paths::current().data_dir)
}

/// The certificate cache in the user's cache folder (public data only), or memory when there is none (no
/// home folder: the OS's folder would be relative).
pub fn card_cache() -> CertCache {
    // Never relative (a relative folder would follow the current directory): CPX_AGENT_CACHE_DIR, else the
    // OS's folder (paths.rs ignores an empty or relative XDG_CACHE_HOME, as the XDG specification says).
    let dir = std::env::var_os("CPX_AGENT_CACHE_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .or_else(|| Some(crate::platform::paths::current().cache_dir));
    dir.filter(|d| d.is_absolute()).map_or_else(CertCache::memory, |d| CertCache::in_dir(d.join("cards")))
}

/// The store of the agent's own secrets (loopback key, approvals' integrity key). Call before any async
/// runtime starts (the Secret Service client runs its own executor). With `key_store = "keyring"` and no
/// usable keyring (a session without a Secret Service, a keyring that stays locked), this user's files
/// ([`PrivateFileStore`], 0600) instead: the agent starts, and the status window and `diagnose` say so
/// (`KEYRING_UNAVAILABLE`). A keyring found again later gets the files' secrets ([`secrets::move_into`]).
pub fn secret_store(config: &Config, data_dir: &Path) -> Result<Box<dyn SecretStore>, StartError> {
    let files = PrivateFileStore::in_data_dir(data_dir);
    if config.key_store == KeyStoreKind::File {
        return Ok(Box::new(files));
    }
    let keyring = match KeyringStore::usable(localca::KEY_NAME) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, dir = %files.dir().display(), "no usable keyring: the agent's keys are kept in files of this user only");
            return Ok(Box::new(files));
        }
    };
    match secrets::move_into(&files, &keyring) {
        Ok(moved) if !moved.is_empty() => tracing::info!(?moved, "keys moved from files into the keyring"),
        Ok(_) => {}
        Err(e) => {
            // The files are the newest copies: keep using them rather than the keyring's.
            tracing::warn!(error = %e, dir = %files.dir().display(), "keys not moved into the keyring; kept in files");
            return Ok(Box::new(files));
        }
    }
    Ok(Box::new(keyring))
}

/// What a running agent is made of.
pub struct Prepared {
    /// What the server serves with.
    pub agent: Arc<Agent>,
    /// The loopback certificate and key.
    pub identity: LoopbackIdentity,
}

/// The parts of an agent. With a consent prompt (the tray app) and `allow_user_sites`, sites outside policy
/// may ask and the professional's approvals are loaded from `data_dir`.
pub fn prepare(
    config: Config,
    data_dir: &Path,
    store: &dyn SecretStore,
    cache: CertCache,
    card_timeout: Duration,
    prompt: Arc<dyn PinPrompt>,
    consent: Option<Arc<dyn ConsentPrompt>>,
) -> Result<Prepared, StartError> {
    crate::platform::secrets::private_data_dir(data_dir)
        .map_err(|source| StartError::DataDir { dir: data_dir.to_path_buf(), source })?;
    let identity = loopback_identity(data_dir, store)?;
    let consent = Consent::for_config(&config, data_dir, store, consent)?;
    let cards = CardService::new(cache, card_timeout, Duration::from_secs(config.busy_wait_seconds));
    let sites = std::sync::RwLock::new(config.sites.clone());
    let agent = Arc::new(Agent { config, cards, prompt, consent, sites });
    watch_sites(&agent, SITES_RELOAD);
    Ok(Prepared { agent, identity })
}

/// Reads each card as soon as it is inserted (and the cards already there when the agent starts), in the
/// background, so that a professional who clicks later finds the card known: the login then costs the
/// card-known commands only (docs/card-sessions.md, « A card that never left its reader »). The same scan
/// as the tray's watch ([`crate::card::watch`]): the card service's permit (a login waits for a read in
/// progress, then finds the card known), the certificate cache's rules (a card swapped or pulled during
/// the read changes the reader's event count and is read again; a certificate renewed in place fails the
/// signature check). `cpx-agent serve` runs it; the tray app's own watch does the same for it. Each card
/// read is logged (« card read on insertion »). Dropping the returned watch stops it.
pub fn read_cards_on_insertion(agent: &Arc<Agent>) -> crate::card::Watch {
    use crate::card::ScanOptions;
    use crate::messages::SlotState;
    crate::card::watch(agent.cards.clone(), ScanOptions { with_pin: false, reader: None }, |update| {
        let cpx_pcsc::MonitorEvent::CardInserted { reader, .. } = &update.event else { return };
        let report = update.readers.iter().flatten().find(|r| &r.reader == reader);
        match report.map(|r| (r.state, r.card.as_ref())) {
            Some((SlotState::CardReady, Some(card))) => tracing::info!(
                reader = %reader,
                generation = card.generation.name(),
                ms = update.at.elapsed().as_millis() as u64,
                "card read on insertion: its certificate is cached for the next login"
            ),
            other => {
                tracing::debug!(reader = %reader, state = ?other.map(|o| o.0), "card inserted, not ready")
            }
        }
    })
}

/// How often a running agent reads its configuration again (the managed policy's registry keys,
/// configuration profile and policy file, and the user's file): a few small reads.
pub const SITES_RELOAD: Duration = Duration::from_secs(3);

/// Reads the configuration again every `every` while `agent` lives, and puts the allowed sites it finds
/// in force ([`Agent::sites`]): a policy change (a GPO, a profile, the policy file) reaches a running
/// agent without a reinstall nor a restart. A configuration that cannot be read keeps the sites in force.
/// The other settings (port, key store…) apply at the next start.
pub fn watch_sites(agent: &Arc<Agent>, every: Duration) {
    let weak = Arc::downgrade(agent);
    let user_file = agent.config.provenance.user_file.clone();
    let mut failing = false;
    let spawned = std::thread::Builder::new().name("policy-watch".into()).spawn(move || loop {
        std::thread::sleep(every);
        let Some(agent) = weak.upgrade() else { return };
        let fresh = match load_config(user_file.clone()) {
            Ok((config, _)) => config.sites,
            Err(e) => {
                // Said once, not every few seconds.
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "configuration not read again: the sites in force are kept");
                }
                continue;
            }
        };
        failing = false;
        let said = |sites: &[crate::platform::config::Site]| format!("{sites:?}");
        let mut sites = agent.sites.write().unwrap_or_else(|e| e.into_inner());
        if said(&sites) != said(&fresh) {
            let origins: Vec<&str> = fresh.iter().map(|s| s.origin.as_str()).collect();
            tracing::info!(sites = ?origins, "the allowed sites changed: in force now");
            *sites = fresh;
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "the configuration will not be read again while the agent runs");
    }
}

/// The loopback identity: the machine's when an installer made one (`cpx-agent install-trust`, trusted
/// machine-wide), else this user's own (made at the first start in `data_dir`).
pub fn loopback_identity(data_dir: &Path, store: &dyn SecretStore) -> Result<LoopbackIdentity, StartError> {
    let machine = crate::platform::machine_trust::machine_dir();
    match crate::platform::machine_trust::identity(&machine) {
        Some(Ok(identity)) => {
            tracing::info!(dir = %machine.display(), "loopback identity: the machine's");
            return Ok(identity);
        }
        // A damaged machine identity: this user's own, which the browsers may not trust (`diagnose` says).
        Some(Err(e)) => {
            tracing::warn!(dir = %machine.display(), error = %e, "the machine's loopback identity cannot be read; using this user's own")
        }
        None => {}
    }
    Ok(localca::load_or_create(data_dir, store)?)
}

/// The loopback socket of the agent.
pub async fn bind(port: u16) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| StartError::Bind { port, source })
}

/// On a shared computer: a loopback port of this user's own in `first..=last`, tried from a place
/// derived from the user (the same port from one session to the next, most of the time) onwards.
pub fn bind_user_port(
    first: u16,
    last: u16,
    user: &crate::loopback::peer::UserId,
) -> Result<std::net::TcpListener, StartError> {
    if first > last || first == 0 {
        return Err(StartError::NotARange { first, last });
    }
    let span = u32::from(last - first) + 1;
    // FNV-1a of the user's id: stable across runs (unlike the std hasher).
    let hash = user.0.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let mut last_error = None;
    for i in 0..span {
        let port = first as u32 + (hash.wrapping_add(i) % span);
        let Ok(port) = u16::try_from(port) else { break };
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => {
                l.set_nonblocking(true).map_err(|source| StartError::Bind { port, source })?;
                return Ok(l);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(StartError::NoFreePort { first, last, why: last_error.map_or_else(String::new, |e| e.to_string()) })
}
