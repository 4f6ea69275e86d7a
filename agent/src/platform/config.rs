//! The agent's configuration: loopback port, the sites allowed to use the card and, for each, where its
//! mTLS login endpoint is and which roots sign that endpoint's certificate. Read from a TOML file
//! (`--config`, default `~/.config/cpx-agent/config.toml`), under the machine's managed policy: a file of the
//! same form that IT or the installer writes (see [`policy_path`]), and on Windows the registry's policy keys
//! ([`crate::platform::policy_registry`]), on macOS a configuration profile's ([`crate::platform::policy_macos`]); what a
//! policy sets wins over the user's file, and its sites come first.
//! Every source is checked key by key ([`crate::platform::policy_keys`]): a malformed key is reported and takes its
//! safe default, nothing stops the agent. With `allow_user_sites = false` in force, the user file's sites
//! are left out (docs/security.md, « Trust model »). This module is the configuration's form; reading and
//! merging the sources is [`crate::platform::layers`]'s.
//!
//! ```toml
//! port = 47413
//! [[site]]
//! origin = "https://portail.example.fr"
//! mtls_endpoint = "https://cpx.portail.example.fr:8444/cpx/login"
//! server_roots = "/etc/cpx-agent/portail-roots.pem"
//! signed_token = false
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::platform::endpoint::Endpoint;
use crate::platform::proxy::ProxySetting;

pub const DEFAULT_PORT: u16 = 47413;

/// The agent's settings, after the managed policy and the user's file are merged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The loopback port pages call.
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
    /// How the portals' mTLS endpoints are reached: `"system"` (the proxy the browsers use, the default),
    /// `"direct"`, or a fixed `"http://host:port"` (docs/proxy.md).
    #[serde(default)]
    pub proxy: ProxySetting,
    /// Whether a reader with a PIN pad takes the code porteur on its keypad: `"auto"` (the default; never
    /// on a reader of the quirk list) or `"off"` (always the agent's dialog).
    #[serde(default)]
    pub pinpad: PinPadPolicy,
    /// Where each setting came from and what was malformed (not a key: filled when the configuration
    /// loads, for `diagnose` and the logs).
    #[serde(skip)]
    pub provenance: Provenance,
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

/// A site allowed to use the card, from managed policy (or the user's file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The page's origin as browsers send it: `https://host[:port]`.
    pub origin: String,
    /// The portal's mTLS login endpoint (never taken from a request), checked when the configuration loads.
    pub mtls_endpoint: Option<Endpoint>,
    /// PEM file with the roots that sign the endpoint's server certificate.
    pub server_roots: Option<PathBuf>,
    /// The site may also ask for a signed token (for portals that cannot terminate mTLS).
    #[serde(default)]
    pub signed_token: bool,
}

/// The `pinpad` key: whether a PIN-pad reader's keypad takes the code porteur (`crate::card::PinPadUse`
/// decides for each reader).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PinPadPolicy {
    /// A reader with a PIN pad takes the code porteur on its keypad (the default).
    #[default]
    Auto,
    /// The code porteur is always asked for in the agent's dialog.
    Off,
}

/// How `cpx-agent serve` asks for the code porteur (the tray app uses its own dialog).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PinPromptConfig {
    /// Ask on the terminal the agent was started from.
    #[default]
    Terminal,
    /// Ask through a pinentry program (Assuan protocol), e.g. /usr/bin/pinentry-gnome3.
    Pinentry {
        /// The pinentry program.
        program: PathBuf,
    },
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
    #[error("{source_name}: {reason}")]
    Policy { source_name: String, reason: String },
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            sites: Vec::new(),
            pin_prompt: PinPromptConfig::default(),
            data_dir: None,
            key_store: KeyStoreKind::default(),
            pki: PkiPolicy::default(),
            log_level: None,
            busy_wait_seconds: default_busy_wait(),
            autostart: true,
            refused_site_quiet_seconds: default_refusal(),
            user_ports: None,
            allow_user_sites: true,
            allowed_origins: Vec::new(),
            browser_policies: false,
            proxy: ProxySetting::System,
            pinpad: PinPadPolicy::Auto,
            provenance: Provenance::default(),
        }
    }
}

/// One setting in force and the source that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The key (`site` for each allowed site, whose origin is then the value).
    pub key: String,
    /// The value in force, as TOML.
    pub value: String,
    /// The file, registry key or profile that set it.
    pub source: String,
    /// Set by a managed policy (not the user's file).
    pub managed: bool,
}

/// One malformed key in one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyProblem {
    /// The file, registry key or profile it is in.
    pub source: String,
    /// The top-level key (`*` for the whole source).
    pub key: String,
    /// What is wrong, for the helpdesk.
    pub reason: String,
    /// What the agent does instead.
    pub instead: String,
    /// In a site entry: its origin, when it could be read (that origin is then allowed by no lower source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// Where the settings in force came from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub user_file: Option<PathBuf>,
    /// Each managed policy source, highest first, with the top-level keys it sets that no higher source
    /// sets (`site` and `allowed_origins` for its sites: sites add up).
    pub policies: Vec<(String, Vec<String>)>,
    /// Top-level keys set by the user's file and not by a policy.
    pub from_user: Vec<String>,
    /// Each key a source sets, and each allowed site, with that source: what the helpdesk reads.
    pub settings: Vec<Setting>,
    /// The malformed keys of every source, and what the agent does instead.
    pub problems: Vec<PolicyProblem>,
    /// The source whose `allow_user_sites = false` is in force: the user file's sites, the professional's
    /// approvals and the consent dialog are off.
    pub user_sites_off_by: Option<String>,
}

impl Provenance {
    /// For the helpdesk: which source set what.
    pub fn describe(&self) -> String {
        let list = |keys: &[String]| if keys.is_empty() { "nothing".into() } else { keys.join(", ") };
        let mut parts: Vec<String> = self
            .policies
            .iter()
            .map(|(source, keys)| format!("managed policy {source} sets: {}", list(keys)))
            .collect();
        if let Some(u) = &self.user_file {
            parts.push(format!("user file {} sets: {}", u.display(), list(&self.from_user)));
        }
        let mut said = if parts.is_empty() {
            "built-in defaults".into()
        } else {
            format!("{}; the rest: built-in defaults", parts.join("; "))
        };
        if let Some(by) = &self.user_sites_off_by {
            said.push_str(&format!("; user sites off (allow_user_sites = false, {by})"));
        }
        said
    }

    /// The settings a managed policy sets, one per line: `key = value  (source)`.
    pub fn managed_lines(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|s| s.managed)
            .map(|s| {
                if s.key == "site" {
                    format!("site {}  ({})", s.value, s.source)
                } else {
                    format!("{} = {}  ({})", s.key, s.value, s.source)
                }
            })
            .collect()
    }

    /// Each problem in the log (warn), for `serve` and the tray app once their log is open.
    pub fn log_problems(&self) {
        for p in &self.problems {
            tracing::warn!(source = %p.source, key = %p.key, reason = %p.reason, instead = %p.instead, "malformed setting: its safe default is in force");
        }
        if let Some(by) = &self.user_sites_off_by {
            tracing::info!(source = %by, "allow_user_sites = false: managed sites only (no user sites, approvals nor consent dialog)");
        }
    }
}

/// The machine's managed policy file: `/etc/cpx-agent/policy.toml` (Linux), `/Library/Application
/// Support/Agent CPx/policy.toml` (macOS), `%ProgramData%\Agent CPx\policy.toml`. `CPX_AGENT_POLICY` names
/// another file only in debug builds (the tests): it is an environment variable the user controls, and a
/// release build takes the machine policy only from places the user cannot write (docs/security.md,
/// « Trust model »).
pub fn policy_path() -> PathBuf {
    policy_path_from(std::env::var_os("CPX_AGENT_POLICY"), cfg!(debug_assertions))
}

/// `CPX_AGENT_POLICY` is set and this build ignores it.
pub fn policy_env_ignored() -> bool {
    !cfg!(debug_assertions) && std::env::var_os("CPX_AGENT_POLICY").is_some()
}

fn policy_path_from(env: Option<std::ffi::OsString>, honour_env: bool) -> PathBuf {
    env.filter(|_| honour_env).map_or_else(|| crate::platform::paths::current().policy_file, Into::into)
}

impl Config {
    /// The configuration of the site with this origin (as the browser sent it).
    pub fn site(&self, origin: &str) -> Option<&Site> {
        let origin = normalise_origin(origin)?;
        self.sites.iter().find(|s| s.origin == origin)
    }
}

/// `https://Host:443` → `https://host`; `None` for anything that is not an https origin as a browser sends
/// it (`https://host[:port]`, nothing after the authority, no user info). The URL rules are
/// [`url::Url`]'s, as for the mTLS endpoints ([`Endpoint`]).
pub fn normalise_origin(origin: &str) -> Option<String> {
    // The serialised origin has no path, query nor fragment, not even a `/`.
    let rest = origin.strip_prefix("https://")?;
    // nor anything the URL parser would drop or mend (spaces, tabs, line feeds).
    if rest.contains(|c: char| matches!(c, '/' | '?' | '#' | '\\') || c.is_whitespace() || c.is_control()) {
        return None;
    }
    let url = url::Url::parse(origin).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(match url.port() {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    })
}

#[cfg(test)]
impl Config {
    /// The sites as (origin, mTLS endpoint, signed token), for the policy sources' tests.
    pub(crate) fn site_summary(&self) -> Vec<(&str, Option<&str>, bool)> {
        self.sites
            .iter()
            .map(|s| (s.origin.as_str(), s.mtls_endpoint.as_ref().map(|e| e.as_str()), s.signed_token))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_https_and_normalised() {
        assert_eq!(
            normalise_origin("https://Portail.Example.fr").as_deref(),
            Some("https://portail.example.fr")
        );
        assert_eq!(
            normalise_origin("https://portail.example.fr:443").as_deref(),
            Some("https://portail.example.fr")
        );
        assert_eq!(normalise_origin("https://203.0.113.5:8443").as_deref(), Some("https://203.0.113.5:8443"));
        assert_eq!(normalise_origin("https://[::1]:8443").as_deref(), Some("https://[::1]:8443"));
        assert_eq!(normalise_origin("https://[::1]:443").as_deref(), Some("https://[::1]"));
        for bad in [
            "http://portail.example.fr",
            "https://",
            "https://a/b",
            "null",
            "https://a:99999",
            "https://u@a",
            "https://u:p@a",
            "https://a b",
            "https://a ",
            "https://a\tb",
            "https://[::1",
            "https://a/",
            "https://a?x",
            "*",
        ] {
            assert_eq!(normalise_origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_sites() {
        let c: Config = toml::from_str("port = 1234\n[[site]]\norigin = \"https://a.fr\"\nmtls_endpoint = \"https://m.a.fr:8444/login\"\n").unwrap();
        assert_eq!(c.port, 1234);
        let endpoint = c.sites[0].mtls_endpoint.as_ref().unwrap();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port, endpoint.path.as_str()),
            ("m.a.fr", 8444, "/login")
        );
        // One rule for origins and endpoints: an IPv6 literal is fine in both.
        let c: Config = toml::from_str(
            "[[site]]\norigin = \"https://[::1]:8443\"\nmtls_endpoint = \"https://[::1]:8444/login\"\n",
        )
        .unwrap();
        assert_eq!(c.sites[0].mtls_endpoint.as_ref().unwrap().host, "::1");
        assert_eq!(normalise_origin(&c.sites[0].origin).as_deref(), Some("https://[::1]:8443"));
        let refused = toml::from_str::<Config>(
            "[[site]]\norigin = \"https://a.fr\"\nmtls_endpoint = \"https://u@m.a.fr/login\"\n",
        );
        assert!(refused.unwrap_err().to_string().contains("user info"), "user info refused when it loads");
        assert!(toml::from_str::<Config>("prot = 1").is_err(), "unknown keys are refused");
    }

    #[test]
    fn the_policy_variable_is_honoured_in_debug_builds_only() {
        let machine = crate::platform::paths::current().policy_file;
        assert_eq!(policy_path_from(Some("/tmp/mine.toml".into()), false), machine, "a release build");
        assert_eq!(policy_path_from(Some("/tmp/mine.toml".into()), true), PathBuf::from("/tmp/mine.toml"));
        assert_eq!(policy_path_from(None, true), machine);
    }
}
