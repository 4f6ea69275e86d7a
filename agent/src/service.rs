//! Starting the agent, shared by `cpx-agent serve` and the tray app: where its files go, which secret
//! store holds its keys, the loopback certificate, the card service and the listening socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cpx_card::CertCache;

use crate::card_service::CardService;
use crate::config::{Config, KeyStoreKind};
use crate::consent::{Approvals, Consent, ConsentPrompt};
use crate::localca::{self, LoopbackIdentity};
use crate::pin_prompt::PinPrompt;
use crate::secrets::{FileStore, KeyringStore, SecretStore};
use crate::server::Agent;

fn home() -> PathBuf {
    std::env::var_os("HOME").map(Into::into).unwrap_or_else(|| ".".into())
}

/// The default configuration file: `~/.config/cpx-agent/config.toml`.
pub fn default_config_path() -> PathBuf {
    home().join(".config/cpx-agent/config.toml")
}

/// The configuration given (or the default file when it exists) under the machine's managed policy (when
/// it exists); and which file set what.
pub fn load_config(path: Option<PathBuf>) -> Result<(Config, String), String> {
    let default_path = default_config_path();
    let user = path.or_else(|| default_path.exists().then_some(default_path));
    let policy = Some(crate::config::policy_path()).filter(|p| p.exists());
    Config::load_layered(user.as_deref(), policy.as_deref()).map(|(c, p)| (c, p.describe())).map_err(|e| e.to_string())
}

/// The data folder: given, or from the configuration, or `~/.local/share/cpx-agent`.
pub fn data_dir(given: Option<PathBuf>, config: &Config) -> PathBuf {
    given.or_else(|| config.data_dir.clone()).unwrap_or_else(|| home().join(".local/share/cpx-agent"))
}

/// The certificate cache in the user's cache folder (public data only), or memory when there is none.
pub fn card_cache() -> CertCache {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    cache_dir(var("CPX_AGENT_CACHE_DIR"), var("XDG_CACHE_HOME"), var("HOME")).map_or_else(CertCache::memory, |d| CertCache::in_dir(d.join("cards")))
}

/// The cache folder, never relative (a relative folder would follow the current directory): the explicit
/// one, else `$XDG_CACHE_HOME/cpx-agent`, else `$HOME/.cache/cpx-agent`. As the XDG Base Directory
/// specification says, an empty or relative `XDG_CACHE_HOME` is ignored (the default is used); an empty
/// or relative `HOME` gives no folder (the cache stays in memory).
pub fn cache_dir(explicit: Option<PathBuf>, xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    let absolute = |p: Option<PathBuf>| p.filter(|p| p.is_absolute());
    absolute(explicit)
        .or_else(|| absolute(xdg_cache_home).map(|d| d.join("cpx-agent")))
        .or_else(|| absolute(home).map(|h| h.join(".cache/cpx-agent")))
}

/// The store of the agent's own secrets (loopback key, approvals' integrity key). Call before any async
/// runtime starts (the Secret Service client runs its own executor).
pub fn secret_store(config: &Config, data_dir: &Path) -> Result<Box<dyn SecretStore>, String> {
    Ok(match config.key_store {
        KeyStoreKind::Keyring => Box::new(KeyringStore::native().map_err(|e| e.to_string())?),
        KeyStoreKind::File => Box::new(FileStore { dir: data_dir.join("secrets") }),
    })
}

/// What a running agent is made of.
pub struct Prepared {
    pub agent: Arc<Agent>,
    pub identity: LoopbackIdentity,
}

/// The parts of an agent. With a consent prompt (the tray app), sites outside policy may ask and the
/// professional's approvals are loaded from `data_dir`.
pub fn prepare(
    config: Config,
    data_dir: &Path,
    store: &dyn SecretStore,
    cache: CertCache,
    card_timeout: Duration,
    prompt: Arc<dyn PinPrompt>,
    consent: Option<Arc<dyn ConsentPrompt>>,
) -> Result<Prepared, String> {
    let identity = localca::load_or_create(data_dir, store).map_err(|e| e.to_string())?;
    let consent = match consent {
        Some(prompt) => {
            let approvals = Arc::new(Approvals::open(data_dir, store).map_err(|e| e.to_string())?);
            Some(Consent::new(approvals, prompt, Duration::from_secs(config.refused_site_quiet_seconds)))
        }
        None => None,
    };
    let cards = CardService::new(cache, card_timeout, Duration::from_secs(config.busy_wait_seconds));
    Ok(Prepared { agent: Arc::new(Agent { config, cards, prompt, consent }), identity })
}

/// The loopback socket of the agent.
pub async fn bind(port: u16) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("port {port} on 127.0.0.1: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_folder_is_never_relative() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(cache_dir(None, p("/x/cache"), p("/home/a")), p("/x/cache/cpx-agent"));
        // Empty or relative XDG_CACHE_HOME: ignored, the default under HOME.
        assert_eq!(cache_dir(None, p(""), p("/home/a")), p("/home/a/.cache/cpx-agent"));
        assert_eq!(cache_dir(None, p("cache"), p("/home/a")), p("/home/a/.cache/cpx-agent"));
        assert_eq!(cache_dir(None, None, p("/home/a")), p("/home/a/.cache/cpx-agent"));
        // No usable HOME either: no folder (memory only), never the current directory.
        assert_eq!(cache_dir(None, p(""), p("")), None);
        assert_eq!(cache_dir(None, None, p("relative/home")), None);
        assert_eq!(cache_dir(p("rel"), None, p("/home/a")), p("/home/a/.cache/cpx-agent"));
        assert_eq!(cache_dir(p("/explicit"), p("/x"), p("/home/a")), p("/explicit"));
    }
}
