//! The agent's configuration: loopback port, the sites allowed to use the card and, for each, where its
//! mTLS login endpoint is and which roots sign that endpoint's certificate. Read from a TOML file
//! (`--config`, default `~/.config/cpx-agent/config.toml`), under the machine's managed policy: a file of the
//! same form that IT or the installer writes (see [`policy_path`]), and on Windows the registry's policy keys
//! ([`crate::platform::policy_registry`]), on macOS a configuration profile's ([`crate::platform::policy_macos`]); what a
//! policy sets wins over the user's file, and its sites come first.
//! Every source is checked key by key ([`crate::platform::policy_keys`]): a malformed key is reported and takes its
//! safe default, nothing stops the agent. With `allow_user_sites = false` in force, the user file's sites
//! are left out (docs/security.md, « Trust model »).
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

use serde::{Deserialize, Serialize};

use crate::platform::endpoint::Endpoint;
use crate::platform::policy_keys::{self, PolicyProblem};
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

/// One source of settings, checked key by key: where it was read (for the helpdesk), what it sets in
/// the form of the configuration file, and what was malformed in it (set to its safe default, see
/// [`crate::platform::policy_keys`]). Sources listed first win.
#[derive(Debug, Clone)]
pub struct PolicyLayer {
    /// The file, or the registry key, it was read from.
    pub source: String,
    /// Its well-formed keys, and the safe defaults of the malformed ones.
    pub table: toml::Table,
    pub problems: Vec<PolicyProblem>,
    /// Origins of its malformed site entries: no lower source may allow them.
    pub claimed: Vec<String>,
}

impl PolicyLayer {
    /// The policy file at `path`. Never fails: an unreadable file, or one that is not TOML, sets every
    /// key to its safe default and says so in `problems`.
    pub fn from_file(path: &Path) -> Self {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_text(source, &text),
            Err(e) => Self::unreadable(source, format!("cannot read: {e}")),
        }
    }

    /// The machine's policy file (issue 19): read only when root owns it and nobody else can write it nor
    /// the folders above it (Unix); otherwise ignored, every key left to the sources below it, and said in
    /// the problems (`diagnose`). A file named by `CPX_AGENT_POLICY` (debug builds, tests) and the Windows
    /// file (Wine, the tests' Windows, keeps no descriptor to check) are read as [`Self::from_file`] does.
    pub fn from_machine_file(path: &Path) -> Self {
        #[cfg(unix)]
        if path == crate::platform::paths::current().policy_file {
            if let Err(why) = crate::platform::admin_owned::check_unix_path(path) {
                return Self::not_trusted(path.display().to_string(), why.to_string());
            }
        }
        Self::from_file(path)
    }

    /// A source that another account could have written: nothing of it applies, and the problem says why.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn not_trusted(source: String, reason: String) -> Self {
        let problem = PolicyProblem {
            source: source.clone(),
            key: "*".into(),
            reason: format!("not protected, ignored: {reason}"),
            instead: "none of this file applies: it must belong to root and be writable by no other account, nor its folders".into(),
            site: None,
        };
        Self::checked(source, toml::Table::new(), vec![problem])
    }

    /// A policy file's text, checked key by key; text that is not TOML sets every key to its safe default.
    fn from_text(source: String, text: &str) -> Self {
        match toml::from_str::<toml::Table>(text) {
            Ok(table) => Self::from_table(source, table),
            Err(e) => Self::unreadable(source, format!("not a TOML file: {}", e.message().trim())),
        }
    }

    /// A policy from another source (the Windows registry, a macOS profile), checked key by key
    /// (malformed keys are in `problems`).
    pub fn from_table(source: String, table: toml::Table) -> Self {
        Self::checked(source, table, Vec::new())
    }

    /// As [`Self::from_table`], with the problems found while reading the source (a registry value of the
    /// wrong type): their keys are set to their safe defaults too.
    pub fn checked(source: String, table: toml::Table, read_problems: Vec<PolicyProblem>) -> Self {
        let checked = policy_keys::check(&source, table);
        Self::from_checked(source, checked, read_problems)
    }

    /// A source that exists but cannot be read: every key at its safe default, reported.
    pub fn unreadable(source: String, reason: String) -> Self {
        let checked = policy_keys::unreadable(&source, reason);
        Self::from_checked(source, checked, Vec::new())
    }

    fn from_checked(
        source: String,
        mut checked: policy_keys::Checked,
        read_problems: Vec<PolicyProblem>,
    ) -> Self {
        for p in &read_problems {
            match policy_keys::safe_default(&p.key) {
                Some(policy_keys::SafeDefault::Value(v)) => {
                    checked.table.insert(p.key.clone(), v);
                }
                Some(policy_keys::SafeDefault::Unset) => {
                    checked.table.remove(&p.key);
                }
                _ => checked.claimed.extend(p.site.clone()),
            }
        }
        let mut problems = read_problems;
        problems.append(&mut checked.problems);
        Self { source, table: checked.table, problems, claimed: checked.claimed }
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

/// The user's file: read errors stop (the file was named), its content is checked key by key.
fn user_layer(path: &Path) -> Result<PolicyLayer, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    Ok(PolicyLayer::from_text(path.display().to_string(), &text))
}

/// Keys whose entries add up from source to source (sites); the others: the highest source wins.
const LISTS_OF_SITES: [&str; 2] = ["site", "allowed_origins"];

impl Config {
    /// The user's file under the managed policy file (either may be absent): the policy's settings win,
    /// its sites come first and a user site with the same origin is dropped.
    pub fn load_layered(
        user: Option<&Path>,
        policy: Option<&Path>,
    ) -> Result<(Self, Provenance), ConfigError> {
        let layers = policy.map(PolicyLayer::from_machine_file).into_iter().collect();
        Self::load_with_policies(user, layers)
    }

    /// The user's file under managed policy sources, the first of `policies` winning over the next ones,
    /// all of them over the user's file. Sites add up, the highest source's entry for an origin winning;
    /// with `allow_user_sites = false` in force, the user file's sites are left out. Malformed keys are
    /// at their safe defaults and listed in the provenance (also kept in `Config::provenance`).
    pub fn load_with_policies(
        user: Option<&Path>,
        policies: Vec<PolicyLayer>,
    ) -> Result<(Self, Provenance), ConfigError> {
        let user_layer = user.map(user_layer).transpose()?;
        let sources: Vec<(&PolicyLayer, bool)> =
            policies.iter().map(|l| (l, true)).chain(user_layer.iter().map(|l| (l, false))).collect();
        let mut merged = toml::Table::new();
        let mut settings = Vec::new();
        for key in policy_keys::keys().iter().filter(|k| !LISTS_OF_SITES.contains(k)) {
            if let Some((layer, managed)) = sources.iter().find(|(l, _)| l.table.contains_key(*key)) {
                let value = layer.table[*key].clone();
                settings.push(Setting {
                    key: (*key).into(),
                    value: value.to_string(),
                    source: layer.source.clone(),
                    managed: *managed,
                });
                merged.insert((*key).into(), value);
            }
        }
        let at = policies
            .first()
            .map(|l| l.source.clone())
            .or_else(|| user.map(|u| u.display().to_string()))
            .unwrap_or_else(|| "(defaults)".into());
        let mut config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| ConfigError::Policy { source_name: at.clone(), reason: e.to_string() })?;
        let user_sites_off_by = (!config.allow_user_sites).then(|| {
            settings
                .iter()
                .find(|s| s.key == "allow_user_sites")
                .map_or_else(|| "built-in".into(), |s| s.source.clone())
        });
        let mut taken: Vec<String> = Vec::new();
        for (layer, managed) in &sources {
            if !managed && user_sites_off_by.is_some() {
                continue;
            }
            let mut add = |site: Site| {
                let Some(origin) = normalise_origin(&site.origin) else { return };
                if !taken.contains(&origin) {
                    settings.push(Setting {
                        key: "site".into(),
                        value: origin.clone(),
                        source: layer.source.clone(),
                        managed: *managed,
                    });
                    taken.push(origin.clone());
                    config.sites.push(Site { origin, ..site });
                }
            };
            for entry in layer.table.get("site").and_then(|v| v.as_array()).into_iter().flatten() {
                if let Ok(site) = entry.clone().try_into::<Site>() {
                    add(site);
                }
            }
            for entry in layer
                .table
                .get("allowed_origins")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str())
            {
                if let Ok((origin, endpoint)) = policy_keys::parse_allowed_origin(entry) {
                    config.allowed_origins.push(entry.to_owned());
                    add(Site { origin, mtls_endpoint: endpoint, server_roots: None, signed_token: false });
                }
            }
            taken.extend(layer.claimed.iter().cloned());
        }
        let mut set_above: Vec<String> = Vec::new();
        let mut layers = Vec::new();
        for layer in &policies {
            let keys: Vec<String> = layer
                .table
                .keys()
                .filter(|k| LISTS_OF_SITES.contains(&k.as_str()) || !set_above.contains(k))
                .cloned()
                .collect();
            set_above.extend(layer.table.keys().cloned());
            layers.push((layer.source.clone(), keys));
        }
        let provenance = Provenance {
            user_file: user.map(Into::into),
            policies: layers,
            from_user: user_layer
                .iter()
                .flat_map(|l| l.table.keys())
                .filter(|k| !set_above.contains(*k) || LISTS_OF_SITES.contains(&k.as_str()))
                .cloned()
                .collect(),
            settings,
            problems: sources.iter().flat_map(|(l, _)| l.problems.iter().cloned()).collect(),
            user_sites_off_by,
        };
        config.provenance = provenance.clone();
        Ok((config, provenance))
    }

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
    fn managed_policy_wins_and_its_sites_come_first() {
        let dir = std::env::temp_dir().join(format!("cpx-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let user = dir.join("user.toml");
        let policy = dir.join("policy.toml");
        std::fs::write(&user, "port = 1000\nlog_level = \"debug\"\n[[site]]\norigin = \"https://a.example\"\n[[site]]\norigin = \"https://B.example\"\n").unwrap();
        std::fs::write(
            &policy,
            "port = 2000\n[[site]]\norigin = \"https://b.example\"\nsigned_token = true\n",
        )
        .unwrap();
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert_eq!(c.port, 2000);
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://b.example", "https://a.example"]
        );
        assert!(c.sites[0].signed_token, "the policy's version of a site wins");
        assert_eq!(p.policies, [(policy.display().to_string(), vec!["port".to_owned(), "site".to_owned()])]);
        assert_eq!(p.from_user, ["log_level", "site"]);
        assert!(
            p.describe().contains("managed policy") && p.describe().contains("port, site"),
            "{}",
            p.describe()
        );
        std::fs::write(&policy, "port = \"x\"\n").unwrap();
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert_eq!(c.port, DEFAULT_PORT, "a malformed policy port is the default port, not the user's");
        assert_eq!(
            (p.problems[0].source.as_str(), p.problems[0].key.as_str()),
            (policy.to_str().unwrap(), "port"),
            "{:?}",
            p.problems
        );
        let (c, p) = Config::load_layered(None, None).unwrap();
        assert_eq!((c.port, p.describe()), (DEFAULT_PORT, "built-in defaults".to_owned()));
    }

    fn files(name: &str, user: &str, policy: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cpx-trust-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (u, p) = (dir.join("user.toml"), dir.join("policy.toml"));
        std::fs::write(&u, user).unwrap();
        std::fs::write(&p, policy).unwrap();
        (u, p)
    }

    fn origins(c: &Config) -> Vec<&str> {
        c.sites.iter().map(|s| s.origin.as_str()).collect()
    }

    const USER: &str = "allow_user_sites = true\nallowed_origins = [\"https://mine.example\"]\n[[site]]\norigin = \"https://perso.example\"\n[[site]]\norigin = \"https://portail.example.fr\"\nsigned_token = true\nserver_roots = \"/home/me/roots.pem\"\n";

    #[test]
    fn without_user_sites_only_the_managed_sites_are_allowed() {
        let (user, policy) = files(
            "off",
            USER,
            "allow_user_sites = false\n[[site]]\norigin = \"https://portail.example.fr\"\n",
        );
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert!(!c.allow_user_sites, "the user's file cannot turn it on again");
        assert_eq!(
            origins(&c),
            ["https://portail.example.fr"],
            "the user file's sites and allowed_origins are left out"
        );
        assert!(
            !c.sites[0].signed_token && c.sites[0].server_roots.is_none(),
            "the policy's entry for its own site, not the user's"
        );
        assert_eq!(p.user_sites_off_by.as_deref(), Some(policy.to_str().unwrap()));
        assert!(p.describe().contains("user sites off"), "{}", p.describe());
        // Allowed: the user's sites come after the policy's, and never replace the policy's entry.
        let (user, policy) = files("on", USER, "[[site]]\norigin = \"https://portail.example.fr\"\n");
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert_eq!(
            origins(&c),
            ["https://portail.example.fr", "https://perso.example", "https://mine.example"]
        );
        assert!(!c.sites[0].signed_token, "the user file gives the managed site no more trust");
        assert_eq!(p.user_sites_off_by, None);
        let managed = p.managed_lines();
        assert_eq!(
            managed,
            [format!("site https://portail.example.fr  ({})", policy.display())],
            "only the policy's settings are managed"
        );
    }

    #[test]
    fn a_policy_that_is_not_toml_allows_the_managed_sites_only_and_says_so() {
        let (user, policy) = files("garbage", USER, "allow_user_sites = fals\n[[site]\n");
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert!(!c.allow_user_sites && !c.browser_policies);
        assert_eq!((c.pki, c.port), (PkiPolicy::Production, DEFAULT_PORT));
        assert!(c.sites.is_empty(), "{:?}", origins(&c));
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(
            p.problems[0].key == "*" && p.problems[0].reason.contains("not a TOML file"),
            "{:?}",
            p.problems
        );
        assert_eq!(c.provenance.problems, p.problems, "the configuration carries its provenance");
    }

    #[test]
    fn a_malformed_policy_site_is_allowed_by_no_source() {
        let (user, policy) = files("claimed", USER, "[[site]]\norigin = \"https://portail.example.fr\"\nsigned_tokn = true\n[[site]]\norigin = \"https://other.example\"\n");
        let (c, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        assert_eq!(
            origins(&c),
            ["https://other.example", "https://perso.example", "https://mine.example"],
            "not the user's version of the malformed managed site"
        );
        assert_eq!(p.problems[0].site.as_deref(), Some("https://portail.example.fr"), "{:?}", p.problems);
    }

    #[test]
    fn managed_settings_name_their_source() {
        let (user, policy) = files(
            "sources",
            "log_level = \"debug\"\npki = \"both\"\n",
            "pki = \"production\"\nbrowser_policies = true\n",
        );
        let (_, p) = Config::load_layered(Some(&user), Some(&policy)).unwrap();
        let at = policy.display();
        assert_eq!(
            p.managed_lines(),
            [format!("pki = \"production\"  ({at})"), format!("browser_policies = true  ({at})")]
        );
        assert!(p
            .settings
            .iter()
            .any(|s| s.key == "log_level" && !s.managed && s.source == user.display().to_string()));
    }

    #[test]
    fn the_policy_variable_is_honoured_in_debug_builds_only() {
        let machine = crate::platform::paths::current().policy_file;
        assert_eq!(policy_path_from(Some("/tmp/mine.toml".into()), false), machine, "a release build");
        assert_eq!(policy_path_from(Some("/tmp/mine.toml".into()), true), PathBuf::from("/tmp/mine.toml"));
        assert_eq!(policy_path_from(None, true), machine);
    }

    #[cfg(unix)]
    #[test]
    fn a_policy_file_others_can_write_is_not_trusted() {
        let layer = PolicyLayer::not_trusted(
            "/etc/cpx-agent/policy.toml".into(),
            "/etc/cpx-agent: every account can change it".into(),
        );
        assert!(layer.table.is_empty(), "nothing of it applies");
        assert_eq!(layer.problems.len(), 1);
        assert!(layer.problems[0].reason.starts_with("not protected, ignored"), "{:?}", layer.problems);
        // A file elsewhere (CPX_AGENT_POLICY in the tests) is read as it is.
        let dir = std::env::temp_dir().join(format!("cpx-policy-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.toml");
        std::fs::write(&file, "port = 47999\n").unwrap();
        assert!(PolicyLayer::from_machine_file(&file).problems.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
