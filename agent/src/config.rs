//! The agent's configuration: loopback port, the sites allowed to use the card and, for each, where its
//! mTLS login endpoint is and which roots sign that endpoint's certificate. Read from a TOML file
//! (`--config`, default `~/.config/cpx-agent/config.toml`), under the machine's managed policy: a file of the
//! same form that IT or the installer writes (see [`policy_path`]), and on Windows the registry's policy keys
//! ([`crate::policy_registry`]), on macOS a configuration profile's ([`crate::policy_macos`]); what a
//! policy sets wins over the user's file, and its sites come first.
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
    /// After « Refuser », how long the site is refused without asking again (no dialog spam), seconds.
    #[serde(default = "default_refusal")]
    pub refused_site_quiet_seconds: u64,
    /// On a shared computer (terminal server, several sessions): the loopback ports of the users'
    /// agents, `[first, last]`. Set (by the machine policy), the agent listens on a port of its own in
    /// that range and the machine-wide broker (`cpx-agent broker`, on `port`) tells each user's pages
    /// which one (docs/multi-user.md).
    pub user_ports: Option<[u16; 2]>,
    /// Whether the professional may allow sites that are not in the managed policy (the consent dialog,
    /// the user file's sites). A managed policy turns it off; the user's file cannot turn it on again.
    #[serde(default = "default_true")]
    pub allow_user_sites: bool,
    /// Managed sites in the one-line form an installer's property carries (MSI `ALLOWED_ORIGINS`, debconf):
    /// each entry is `origin` or `origin mtls_endpoint`. Each becomes a `site` when the configuration
    /// loads; a `site` entry with the same origin wins.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Write the browsers' Local Network Access policies for the managed sites
    /// (`cpx-agent browser-policies apply`, run by the installers), so that no browser prompt is shown.
    #[serde(default)]
    pub browser_policies: bool,
}

fn default_refusal() -> u64 {
    60
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
    #[error("{source_name}: {reason}")]
    Policy { source_name: String, reason: String },
    #[error("{path}: site origin {origin:?} is not of the form https://host[:port]")]
    BadOrigin { path: PathBuf, origin: String },
}

impl Default for Config {
    fn default() -> Self {
        Self { port: DEFAULT_PORT, sites: Vec::new(), pin_prompt: PinPromptConfig::default(), data_dir: None, key_store: KeyStoreKind::default(), pki: PkiPolicy::default(), log_level: None, busy_wait_seconds: default_busy_wait(), autostart: true, refused_site_quiet_seconds: default_refusal(), user_ports: None, allow_user_sites: true, allowed_origins: Vec::new(), browser_policies: false }
    }
}

/// One source of managed policy: where it was read (for the helpdesk) and what it sets, in the form of
/// the configuration file. Sources listed first win.
#[derive(Debug, Clone)]
pub struct PolicyLayer {
    /// The file, or the registry key, it was read from.
    pub source: String,
    pub table: toml::Table,
}

impl PolicyLayer {
    /// The policy file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(Self { source: path.display().to_string(), table: read_table(path)? })
    }

    /// A policy from another source (the Windows registry, a macOS profile), checked alone so that an error names it.
    pub fn from_table(source: String, table: toml::Table) -> Result<Self, ConfigError> {
        toml::Value::Table(table.clone()).try_into::<Config>().map_err(|e| ConfigError::Policy { source_name: source.clone(), reason: e.to_string() })?;
        Ok(Self { source, table })
    }
}

/// Where the settings in force came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub user_file: Option<PathBuf>,
    /// Each managed policy source, highest first, with the top-level keys it sets that no higher source
    /// sets (`site` for its sites: sites add up).
    pub policies: Vec<(String, Vec<String>)>,
    /// Top-level keys set by the user's file and not by a policy.
    pub from_user: Vec<String>,
}

impl Provenance {
    /// For the helpdesk: which source set what.
    pub fn describe(&self) -> String {
        let list = |keys: &[String]| if keys.is_empty() { "nothing".into() } else { keys.join(", ") };
        let mut parts: Vec<String> = self.policies.iter().map(|(source, keys)| format!("managed policy {source} sets: {}", list(keys))).collect();
        if let Some(u) = &self.user_file {
            parts.push(format!("user file {} sets: {}", u.display(), list(&self.from_user)));
        }
        if parts.is_empty() { "built-in defaults".into() } else { format!("{}; the rest: built-in defaults", parts.join("; ")) }
    }
}

/// The machine's managed policy file: `CPX_AGENT_POLICY`, else `/etc/cpx-agent/policy.toml` (Linux),
/// `/Library/Application Support/Agent CPx/policy.toml` (macOS), `%ProgramData%\Agent CPx\policy.toml`.
pub fn policy_path() -> PathBuf {
    std::env::var_os("CPX_AGENT_POLICY").map_or_else(|| crate::paths::current().policy_file, Into::into)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    // Checked alone first, so that an error names the file it is in.
    toml::from_str::<Config>(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })
}

fn origin_of(v: &toml::Value) -> Option<String> {
    v.get("origin").and_then(|o| o.as_str()).and_then(normalise_origin)
}

/// `higher` over `lower`: its settings win, its sites come first and a lower site with the same origin
/// is dropped.
fn overlay(lower: &toml::Table, higher: &toml::Table) -> toml::Table {
    let mut merged = lower.clone();
    for (key, value) in higher {
        if key == "site" {
            let mut sites = value.as_array().cloned().unwrap_or_default();
            let managed: Vec<_> = sites.iter().filter_map(origin_of).collect();
            let lower_sites = lower.get("site").and_then(|v| v.as_array()).cloned().unwrap_or_default();
            sites.extend(lower_sites.into_iter().filter(|s| origin_of(s).is_none_or(|o| !managed.contains(&o))));
            merged.insert(key.clone(), toml::Value::Array(sites));
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

impl Config {
    /// The user's file under the managed policy file (either may be absent): the policy's settings win,
    /// its sites come first and a user site with the same origin is dropped.
    pub fn load_layered(user: Option<&Path>, policy: Option<&Path>) -> Result<(Self, Provenance), ConfigError> {
        let layers = policy.map(PolicyLayer::from_file).transpose()?.into_iter().collect();
        Self::load_with_policies(user, layers)
    }

    /// The user's file under managed policy sources, the first of `policies` winning over the next ones,
    /// all of them over the user's file.
    pub fn load_with_policies(user: Option<&Path>, policies: Vec<PolicyLayer>) -> Result<(Self, Provenance), ConfigError> {
        let user_table = user.map(read_table).transpose()?.unwrap_or_default();
        let mut merged = user_table.clone();
        for layer in policies.iter().rev() {
            merged = overlay(&merged, &layer.table);
        }
        let at = policies.first().map(|l| l.source.clone()).or_else(|| user.map(|u| u.display().to_string())).unwrap_or_else(|| "(defaults)".into());
        let mut config: Config = toml::Value::Table(merged).try_into().map_err(|e| ConfigError::Policy { source_name: at.clone(), reason: e.to_string() })?;
        for entry in config.allowed_origins.clone() {
            let mut words = entry.split_whitespace();
            let (Some(origin), endpoint, None) = (words.next(), words.next(), words.next()) else {
                return Err(ConfigError::Policy { source_name: at.clone(), reason: format!("allowed_origins entry {entry:?} is not `origin` or `origin mtls_endpoint`") });
            };
            if !config.sites.iter().any(|s| normalise_origin(&s.origin) == normalise_origin(origin)) {
                config.sites.push(Site { origin: origin.into(), mtls_endpoint: endpoint.map(Into::into), server_roots: None, signed_token: false });
            }
        }
        for site in &mut config.sites {
            site.origin = normalise_origin(&site.origin).ok_or_else(|| ConfigError::BadOrigin { path: at.clone().into(), origin: site.origin.clone() })?;
        }
        let mut set_above: Vec<String> = Vec::new();
        let mut layers = Vec::new();
        for layer in &policies {
            let keys: Vec<String> = layer.table.keys().filter(|k| *k == "site" || !set_above.contains(k)).cloned().collect();
            set_above.extend(layer.table.keys().cloned());
            layers.push((layer.source.clone(), keys));
        }
        let provenance = Provenance {
            user_file: user.map(Into::into),
            policies: layers,
            from_user: user_table.keys().filter(|k| !set_above.contains(*k) || *k == "site").cloned().collect(),
        };
        Ok((config, provenance))
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

    #[test]
    fn managed_policy_wins_and_its_sites_come_first() {
        let dir = std::env::temp_dir().join(format!("cpx-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let user = dir.join("user.toml");
        let policy = dir.join("policy.toml");
        std::fs::write(&user, "port = 1000\nlog_level = \"debug\"\n[[site]]\norigin = \"https://a.example\"\n[[site]]\norigin = \"https://B.example\"\n").unwrap();
        std::fs::write(&policy, "port = 2000\n[[site]]\norigin = \"https://b.example\"\nsigned_token = true\n").unwrap();
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert_eq!(c.port, 2000);
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        assert_eq!(c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(), ["https://b.example", "https://a.example"]);
        assert!(c.sites[0].signed_token, "the policy's version of a site wins");
        assert_eq!(p.policies, [(policy.display().to_string(), vec!["port".to_owned(), "site".to_owned()])]);
        assert_eq!(p.from_user, ["log_level", "site"]);
        assert!(p.describe().contains("managed policy") && p.describe().contains("port, site"), "{}", p.describe());
        std::fs::write(&policy, "port = \"x\"\n").unwrap();
        let e = Config::load_layered(Some(&user), Some(&policy)).unwrap_err().to_string();
        assert!(e.contains("policy.toml"), "the error names the file: {e}");
        let (c, p) = Config::load_layered(None, None).unwrap();
        assert_eq!((c.port, p.describe()), (DEFAULT_PORT, "built-in defaults".to_owned()));
    }
}
