//! The agent's configuration: loopback port, the sites allowed to use the card and, for each, where its
//! mTLS login endpoint is and which roots sign that endpoint's certificate. Read from a TOML file
//! (`--config`, default `~/.config/cpx-agent/config.toml`); managed policy comes with the installer issue.
//!
//! ```toml
//! port = 47413
//! [[site]]
//! origin = "https://portail.example.fr"
//! mtls_endpoint = "https://cpx.portail.example.fr:8444/cpx/login"
//! server_roots = "/etc/cpx-agent/portail-roots.pem"
//! signed_token = false
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_PORT: u16 = 47413;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_port")]
    pub port: u16,
    /// Sites allowed to ask for a card login.
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    /// How the code porteur is asked for.
    #[serde(default)]
    pub pin_prompt: PinPromptConfig,
    /// Where the local CA and the loopback certificate are kept.
    pub data_dir: Option<PathBuf>,
    /// Where the loopback certificate's private key is kept: "keyring" (the OS keyring) or "file".
    #[serde(default)]
    pub key_store: KeyStoreKind,
    /// Which IGC-Santé the cards must come from: "production", "test" or "both".
    #[serde(default)]
    pub pki: PkiPolicy,
    /// Log level of the log files: error, warn, info (default), debug, trace. `CPX_AGENT_LOG` wins.
    pub log_level: Option<String>,
    /// How long a login waits for the card while another one uses it (a PIN dialog may be open), seconds.
    #[serde(default = "default_busy_wait")]
    pub busy_wait_seconds: u64,
    /// The tray app starts with the user's session (per user; machine-wide autostart is the installer's).
    #[serde(default = "default_true")]
    pub autostart: bool,
}

fn default_true() -> bool {
    true
}

fn default_busy_wait() -> u64 {
    90
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PkiPolicy {
    Production,
    Test,
    #[default]
    Both,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The page's origin as browsers send it: `https://host[:port]`.
    pub origin: String,
    /// The portal's mTLS login endpoint (never taken from a request).
    pub mtls_endpoint: Option<String>,
    /// PEM file with the roots that sign the endpoint's server certificate.
    pub server_roots: Option<PathBuf>,
    /// The site may also ask for a signed token (for portals that cannot terminate mTLS).
    #[serde(default)]
    pub signed_token: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PinPromptConfig {
    /// Ask on the terminal the agent was started from.
    #[default]
    Terminal,
    /// Ask through a pinentry program (Assuan protocol), e.g. /usr/bin/pinentry-gnome3.
    Pinentry { program: PathBuf },
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyStoreKind {
    #[default]
    Keyring,
    File,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("{path}: site origin {origin:?} is not of the form https://host[:port]")]
    BadOrigin { path: PathBuf, origin: String },
}

impl Default for Config {
    fn default() -> Self {
        Self { port: DEFAULT_PORT, sites: Vec::new(), pin_prompt: PinPromptConfig::default(), data_dir: None, key_store: KeyStoreKind::default(), pki: PkiPolicy::default(), log_level: None, busy_wait_seconds: default_busy_wait(), autostart: true }
    }
}

impl Config {
    /// Reads `path`; a missing default file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?;
        for site in &mut config.sites {
            site.origin = normalise_origin(&site.origin).ok_or_else(|| ConfigError::BadOrigin { path: path.into(), origin: site.origin.clone() })?;
        }
        Ok(config)
    }

    /// The configuration of the site with this origin (as the browser sent it).
    pub fn site(&self, origin: &str) -> Option<&Site> {
        let origin = normalise_origin(origin)?;
        self.sites.iter().find(|s| s.origin == origin)
    }
}

/// `https://Host:443` → `https://host`; `None` for anything that is not an https origin.
pub fn normalise_origin(origin: &str) -> Option<String> {
    let rest = origin.strip_prefix("https://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let lower = rest.to_ascii_lowercase();
    let host = lower.strip_suffix(":443").unwrap_or(&lower);
    // A port, unless the colon is inside an IPv6 literal ("[::1]").
    if let Some((h, port)) = host.rsplit_once(':') {
        let is_port = !host.starts_with('[') || h.ends_with(']');
        if is_port && (!port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err()) {
            return None;
        }
    }
    Some(format!("https://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_https_and_normalised() {
        assert_eq!(normalise_origin("https://Portail.Example.fr").as_deref(), Some("https://portail.example.fr"));
        assert_eq!(normalise_origin("https://portail.example.fr:443").as_deref(), Some("https://portail.example.fr"));
        assert_eq!(normalise_origin("https://203.0.113.5:8443").as_deref(), Some("https://203.0.113.5:8443"));
        for bad in ["http://portail.example.fr", "https://", "https://a/b", "null", "https://a:99999", "https://u@a", "*"] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_sites() {
        let c: Config = toml::from_str("port = 1234\n[[site]]\norigin = \"https://a.fr\"\nmtls_endpoint = \"https://m.a.fr:8444/login\"\n").unwrap();
        assert_eq!(c.port, 1234);
        assert_eq!(c.sites[0].mtls_endpoint.as_deref(), Some("https://m.a.fr:8444/login"));
        assert!(toml::from_str::<Config>("prot = 1").is_err(), "unknown keys are refused");
    }
}
