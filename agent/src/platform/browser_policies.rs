//! The browsers' Local Network Access (LNA) policies for the managed sites (`cpx-agent browser-policies
//! apply | remove`, run by the installers as root/Administrator).
//!
//! Since Chrome/Edge 142 and recent Firefox, a page on a public site that calls the agent on 127.0.0.1 needs
//! the user's permission (« accès au réseau local » / « applications et services de cet appareil »); headless
//! or dismissed, the call fails as if the agent were absent. A managed browser policy lets the organisation's
//! portals through without a prompt:
//!
//! | browser | policy | Linux | Windows |
//! |---|---|---|---|
//! | Chromium, Chrome, Edge | `LocalNetworkAccessAllowedForUrls` (≥ 140), `LoopbackNetworkAllowedForUrls` (≥ 146), the sites' origins | our own file [`FILE_NAME`] in `/etc/chromium/policies/managed`, `/etc/opt/chrome/policies/managed`, `/etc/opt/edge/policies/managed` | numbered REG_SZ values of `HKLM\Software\Policies\{Google\Chrome, Microsoft\Edge}\<policy>` |
//! | Firefox | `LocalNetworkAccess` → `SkipDomains`, the sites' host names | merged into `/etc/firefox/policies/policies.json` | numbered REG_SZ values of `HKLM\Software\Policies\Mozilla\Firefox\LocalNetworkAccess\SkipDomains` |
//!
//! Lists shared with others (Firefox's `policies.json`, the registry's lists) get our entries added next to
//! theirs, never replacing them; what was added (and which folders were created) is kept in a record
//! ([`record_path`]), so that `remove` (and a later `apply` with other sites) takes away only what we wrote.
//! The sites are the machine policy's (policy file and HKLM), never a user's own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::platform::config::{Config, ConfigError};
use crate::platform::layers::PolicyLayer;

/// Our policy file's name in the Chromium family's managed folders.
pub const FILE_NAME: &str = "agent-cpx-lna.json";

/// The Chromium family's policies: all sites of the list may reach local addresses / the loopback.
pub const CHROMIUM_POLICIES: [&str; 2] =
    ["LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls"];

/// The Chromium family on Linux: browser name and managed-policy folder (relative to the root).
pub const CHROMIUM_DIRS: [(&str, &str); 3] = [
    ("Chromium", "etc/chromium/policies/managed"),
    ("Google Chrome", "etc/opt/chrome/policies/managed"),
    ("Microsoft Edge", "etc/opt/edge/policies/managed"),
];

/// Firefox's machine-wide policy file on Linux (relative to the root).
pub const FIREFOX_FILE: &str = "etc/firefox/policies/policies.json";

/// The Windows registry keys (under `HKLM\Software\Policies`) of each browser.
#[cfg_attr(not(windows), allow(dead_code))]
pub const REGISTRY_CHROMIUM: [(&str, &str); 2] =
    [("Google Chrome", r"Google\Chrome"), ("Microsoft Edge", r"Microsoft\Edge")];
#[cfg_attr(not(windows), allow(dead_code))]
pub const REGISTRY_FIREFOX: &str = r"Mozilla\Firefox\LocalNetworkAccess\SkipDomains";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid JSON ({reason}): left untouched; fix or remove it, then run again")]
    NotJson { path: PathBuf, reason: String },
    #[error("{path}: {what} is not a JSON {expected}: left untouched")]
    Shape { path: PathBuf, what: String, expected: &'static str },
    #[error("the machine policy: {0}")]
    Policy(#[from] ConfigError),
    #[error(r"registry key HKLM\Software\Policies\{key}: {source}")]
    Registry { key: String, source: std::io::Error },
    #[error("browser policies are written by the configuration profile on macOS (installer/macos), not by this command")]
    Unsupported,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// What the browsers must let through: the managed sites' origins (Chromium family) and host names
/// (Firefox).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    /// The managed sites' origins (Chromium family).
    pub origins: Vec<String>,
    /// The managed sites' host names (Firefox).
    pub hosts: Vec<String>,
}

impl Wanted {
    /// From the machine policy: nothing when `browser_policies` is off.
    pub fn from_config(config: &Config) -> Self {
        if !config.browser_policies {
            return Self::default();
        }
        let mut origins = Vec::new();
        let mut hosts = Vec::new();
        for site in &config.sites {
            if !origins.contains(&site.origin) {
                origins.push(site.origin.clone());
            }
            if let Some(host) = host_of(&site.origin).filter(|h| !hosts.contains(h)) {
                hosts.push(host);
            }
        }
        Self { origins, hosts }
    }

    /// Nothing to let through.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }
}

/// `https://Portail.example.fr:8443` → `portail.example.fr`; `https://[::1]:8443` → `::1` (Firefox compares
/// the page's bare host).
pub fn host_of(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin).ok().filter(|u| u.scheme() == "https")?;
    Some(match url.host()? {
        url::Host::Domain(name) => name.to_ascii_lowercase(),
        url::Host::Ipv4(address) => address.to_string(),
        url::Host::Ipv6(address) => address.to_string(),
    })
}

/// The machine policy alone (the policy file and, on Windows, HKLM's policy key then the installer's
/// defaults), without any user's file or HKCU.
pub fn machine_config() -> Result<Config, Error> {
    let mut layers: Vec<PolicyLayer> = crate::platform::policy_registry::layers()
        .into_iter()
        .filter(|l| l.source.starts_with("HKLM"))
        .collect();
    let file = crate::platform::config::policy_path();
    if file.exists() {
        layers.push(PolicyLayer::from_machine_file(&file));
    }
    layers.extend(crate::platform::policy_registry::defaults_layers());
    Ok(Config::load_with_policies(None, layers)?.0)
}

/// One thing done (or found) in one browser's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub browser: String,
    /// The file or registry key.
    pub place: String,
    pub action: Action,
    /// The entries written or removed.
    pub entries: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Written,
    Removed,
}

/// What `apply` or `remove` did, and what an administrator should look at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub changes: Vec<Change>,
    /// Another policy source that sets the same policy (the browser then takes one of them only).
    pub warnings: Vec<String>,
}

/// What was written into places shared with others, to take away exactly that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Folders created (relative to the root), removed again when empty.
    #[serde(default)]
    pub created_dirs: Vec<String>,
    /// Host names added to Firefox's `SkipDomains` in policies.json.
    #[serde(default)]
    pub firefox_domains: Vec<String>,
    /// Registry values added: key under `...\Policies`, value name, data.
    #[serde(default)]
    pub registry: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub key: String,
    pub name: String,
    pub value: String,
}

impl Record {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Where the record is kept: Linux `<root>/var/lib/cpx-agent/browser-policies.json`, Windows
/// `%ProgramData%\Agent CPx\browser-policies.json` (next to the policy file).
pub fn record_path(root: &Path) -> PathBuf {
    if cfg!(windows) {
        crate::platform::paths::current().policy_file.with_file_name("browser-policies.json")
    } else {
        root.join("var/lib/cpx-agent/browser-policies.json")
    }
}

pub fn read_record(path: &Path) -> Result<Record, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| Error::NotJson { path: path.into(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
        Err(e) => Err(Error::Io { path: path.into(), source: e }),
    }
}

fn write_record(path: &Path, record: &Record) -> Result<(), Error> {
    if record.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { path: path.into(), source: e })
            }
            _ => {
                // Its folder too, when nothing else is kept there (fails harmlessly otherwise).
                let _ = path.parent().map(std::fs::remove_dir);
                Ok(())
            }
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    write_file(path, &serde_json::to_string_pretty(record).unwrap_or_default())
}

/// Written aside and renamed: a browser starting now never reads half a file.
fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension("json.cpx-tmp");
    std::fs::write(&tmp, format!("{text}\n")).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Creates `dir` (relative to `root`) and its missing parents, recording the ones created.
fn make_dirs(root: &Path, dir: &str, record: &mut Record) -> Result<(), Error> {
    let mut so_far = PathBuf::new();
    for part in Path::new(dir).components() {
        so_far.push(part);
        let full = root.join(&so_far);
        if !full.is_dir() {
            std::fs::create_dir(&full).map_err(io(&full))?;
            let name = so_far.to_string_lossy().replace('\\', "/");
            if !record.created_dirs.contains(&name) {
                record.created_dirs.push(name);
            }
        }
    }
    Ok(())
}

/// Removes the recorded folders that are empty, deepest first; keeps the others recorded.
fn remove_empty_dirs(root: &Path, record: &mut Record) {
    let mut dirs = record.created_dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in dirs {
        let full = root.join(&d);
        let gone = !full.exists() || std::fs::remove_dir(&full).is_ok();
        if gone {
            record.created_dirs.retain(|x| *x != d);
        }
    }
}

/// The Chromium family on Linux: our own file in each browser's managed folder.
fn chromium_files(
    root: &Path,
    wanted: &Wanted,
    record: &mut Record,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    for (browser, dir) in CHROMIUM_DIRS {
        let file = root.join(dir).join(FILE_NAME);
        if wanted.is_empty() {
            if file.exists() {
                std::fs::remove_file(&file).map_err(io(&file))?;
                outcome.changes.push(Change {
                    browser: browser.into(),
                    place: file.display().to_string(),
                    action: Action::Removed,
                    entries: Vec::new(),
                });
            }
            continue;
        }
        make_dirs(root, dir, record)?;
        let mut doc = Map::new();
        for policy in CHROMIUM_POLICIES {
            doc.insert(policy.into(), json!(wanted.origins));
        }
        write_file(&file, &serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default())?;
        outcome.changes.push(Change {
            browser: browser.into(),
            place: file.display().to_string(),
            action: Action::Written,
            entries: wanted.origins.clone(),
        });
        // Another file of the folder setting the same policy: the browser keeps one of them only.
        for other in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            let path = other.path();
            if path.file_name().is_some_and(|n| n == FILE_NAME)
                || path.extension().is_none_or(|e| e != "json")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let Ok(Value::Object(theirs)) = serde_json::from_str::<Value>(&text) else { continue };
            for policy in CHROMIUM_POLICIES.iter().filter(|p| theirs.contains_key(**p)) {
                outcome.warnings.push(format!("{} also sets {policy}: {browser} takes one file's list only; put the sites' origins ({}) in that file too", path.display(), wanted.origins.join(", ")));
            }
        }
    }
    Ok(())
}

/// Firefox on Linux: our host names merged into `SkipDomains` of policies.json, other policies kept
/// (agent/src/platform/firefox_policies.rs).
fn firefox_file(
    root: &Path,
    wanted: &Wanted,
    record: &mut Record,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    use crate::platform::firefox_policies::{edit_list, Next, PolicyFileError};
    let path = root.join(FIREFOX_FILE);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    // Ours from an earlier run go first, then the wanted ones that are not there already.
    let mut removed = Vec::new();
    let mut added = Vec::new();
    let next = edit_list(existing.as_deref(), "LocalNetworkAccess", "SkipDomains", |list| {
        list.retain(|v| match v.as_str() {
            Some(s) if record.firefox_domains.iter().any(|d| d == s) => {
                removed.push(s.to_owned());
                false
            }
            _ => true,
        });
        for host in &wanted.hosts {
            if !list.iter().any(|v| v.as_str() == Some(host)) {
                list.push(json!(host));
                added.push(host.clone());
            }
        }
    })
    .map_err(|e| match e {
        PolicyFileError::NotJson(reason) => Error::NotJson { path: path.clone(), reason },
        PolicyFileError::Shape { what, expected } => Error::Shape { path: path.clone(), what, expected },
    })?;
    match next {
        Next::Unchanged => {}
        Next::Write(text) => {
            if let Some(dir) = path.parent().and_then(|d| d.strip_prefix(root).ok()) {
                make_dirs(root, &dir.to_string_lossy(), record)?;
            }
            write_file(&path, text.trim_end())?;
        }
        Next::Remove => std::fs::remove_file(&path).map_err(io(&path))?,
    }
    // What we put there and was not there before; a host already listed by the administrator stays theirs.
    let kept_ours: Vec<String> =
        record.firefox_domains.iter().filter(|d| wanted.hosts.contains(d)).cloned().collect();
    record.firefox_domains =
        kept_ours.into_iter().chain(added.iter().cloned()).collect::<BTreeSet<_>>().into_iter().collect();
    let place = path.display().to_string();
    let gone: Vec<String> = removed.into_iter().filter(|r| !wanted.hosts.contains(r)).collect();
    if !gone.is_empty() {
        outcome.changes.push(Change {
            browser: "Firefox".into(),
            place: place.clone(),
            action: Action::Removed,
            entries: gone,
        });
    }
    if !wanted.is_empty() {
        outcome.changes.push(Change {
            browser: "Firefox".into(),
            place,
            action: Action::Written,
            entries: wanted.hosts.clone(),
        });
    }
    Ok(())
}

/// Writes (non-empty `wanted`) or removes (empty) the Linux policy files under `root`, keeping the record
/// at `record_file`.
pub fn sync_files(root: &Path, record_file: &Path, wanted: &Wanted) -> Result<Outcome, Error> {
    if !root.is_dir() {
        return Err(Error::Io {
            path: root.into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "the root folder does not exist"),
        });
    }
    let mut record = read_record(record_file)?;
    let mut outcome = Outcome::default();
    let result = chromium_files(root, wanted, &mut record, &mut outcome)
        .and_then(|()| firefox_file(root, wanted, &mut record, &mut outcome));
    if wanted.is_empty() {
        remove_empty_dirs(root, &mut record);
    }
    // The record is kept even after a failure part-way: what was written is still ours to remove.
    write_record(record_file, &record)?;
    result.map(|()| outcome)
}

/// A numbered list of the registry (`1`, `2`…): the entries to add so that every wanted value is there,
/// each under the lowest free number. Chrome reads such a list from `1` up to the first missing number,
/// so a value must never land after a gap.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn numbered_additions(existing: &[(String, String)], wanted: &[String]) -> Vec<(String, String)> {
    let mut used: BTreeSet<u64> = existing.iter().filter_map(|(n, _)| n.parse::<u64>().ok()).collect();
    let mut out = Vec::new();
    for w in wanted {
        if !existing.iter().any(|(_, v)| v == w) && !out.iter().any(|(_, v)| v == w) {
            let free = (1..).find(|n| !used.contains(n)).unwrap_or(1);
            used.insert(free);
            out.push((free.to_string(), w.clone()));
        }
    }
    out
}

/// A numbered list of the registry after our recorded entries are taken away: the names to delete (only
/// where the value is still the one we wrote).
#[cfg_attr(not(windows), allow(dead_code))]
pub fn numbered_removals(existing: &[(String, String)], ours: &[RegistryEntry], key: &str) -> Vec<String> {
    ours.iter()
        .filter(|e| e.key == key && existing.iter().any(|(n, v)| *n == e.name && *v == e.value))
        .map(|e| e.name.clone())
        .collect()
}

/// The registry side (Windows): numbered REG_SZ lists under `base` (`Software\Policies` of HKLM; tests use
/// a key of their own).
#[cfg(windows)]
pub mod registry {
    use super::*;
    use winreg::enums::{KEY_READ, KEY_WRITE};
    use winreg::types::FromRegValue;

    /// Every list we use: (browser, key under `base`, values wanted).
    fn lists(wanted: &Wanted) -> Vec<(&'static str, String, Vec<String>)> {
        let mut out = Vec::new();
        for (browser, key) in REGISTRY_CHROMIUM {
            for policy in CHROMIUM_POLICIES {
                out.push((browser, format!(r"{key}\{policy}"), wanted.origins.clone()));
            }
        }
        out.push(("Firefox", REGISTRY_FIREFOX.to_owned(), wanted.hosts.clone()));
        out
    }

    fn read(hive: &winreg::RegKey, path: &str) -> std::io::Result<Vec<(String, String)>> {
        match hive.open_subkey_with_flags(path, KEY_READ) {
            Ok(k) => Ok(k
                .enum_values()
                .filter_map(Result::ok)
                .filter_map(|(n, v)| String::from_reg_value(&v).ok().map(|v| (n, v)))
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes (non-empty `wanted`) or removes (empty) our entries in `hive\base\…`.
    pub fn sync(
        hive: winreg::HKEY,
        base: &str,
        record_file: &Path,
        wanted: &Wanted,
    ) -> Result<Outcome, Error> {
        let hive = winreg::RegKey::predef(hive);
        let mut record = read_record(record_file)?;
        let mut outcome = Outcome::default();
        let mut failure = None;
        for (browser, key, values) in lists(wanted) {
            let path = format!(r"{base}\{key}");
            let err = |source| Error::Registry { key: key.clone(), source };
            let step = (|| -> Result<(), Error> {
                let existing = read(&hive, &path).map_err(err)?;
                let stale: Vec<RegistryEntry> = record
                    .registry
                    .iter()
                    .filter(|e| e.key == key && !values.contains(&e.value))
                    .cloned()
                    .collect();
                let to_delete = numbered_removals(&existing, &stale, &key);
                if !to_delete.is_empty() {
                    let k = hive.open_subkey_with_flags(&path, KEY_READ | KEY_WRITE).map_err(err)?;
                    for name in &to_delete {
                        k.delete_value(name).map_err(err)?;
                    }
                    outcome.changes.push(Change {
                        browser: browser.into(),
                        place: format!(r"{base}\{key}"),
                        action: Action::Removed,
                        entries: stale.iter().map(|e| e.value.clone()).collect(),
                    });
                }
                record.registry.retain(|e| !(e.key == key && !values.contains(&e.value)));
                let left = read(&hive, &path).map_err(err)?;
                if left.is_empty() && !to_delete.is_empty() {
                    let _ = hive.delete_subkey(&path);
                }
                let adds = numbered_additions(&left, &values);
                if !values.is_empty() {
                    let (k, _) = hive.create_subkey_with_flags(&path, KEY_READ | KEY_WRITE).map_err(err)?;
                    for (name, value) in &adds {
                        k.set_value(name, value).map_err(err)?;
                        record.registry.push(RegistryEntry {
                            key: key.clone(),
                            name: name.clone(),
                            value: value.clone(),
                        });
                    }
                    outcome.changes.push(Change {
                        browser: browser.into(),
                        place: format!(r"{base}\{key}"),
                        action: Action::Written,
                        entries: values.clone(),
                    });
                }
                Ok(())
            })();
            if let Err(e) = step {
                failure.get_or_insert(e);
            }
        }
        write_record(record_file, &record)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }
}

/// `apply`: from the machine policy, write the policies (or remove ours when `browser_policies` is off).
/// `root` is `/` outside tests (Linux).
pub fn apply(root: &Path, config: &Config) -> Result<(Wanted, Outcome), Error> {
    let wanted = Wanted::from_config(config);
    sync(root, &wanted).map(|o| (wanted, o))
}

/// `remove`: take away whatever we wrote.
pub fn remove(root: &Path) -> Result<Outcome, Error> {
    sync(root, &Wanted::default())
}

#[cfg(windows)]
fn sync(root: &Path, wanted: &Wanted) -> Result<Outcome, Error> {
    registry::sync(winreg::enums::HKEY_LOCAL_MACHINE, r"Software\Policies", &record_path(root), wanted)
}

#[cfg(target_os = "macos")]
fn sync(_root: &Path, _wanted: &Wanted) -> Result<Outcome, Error> {
    Err(Error::Unsupported)
}

#[cfg(not(any(windows, target_os = "macos")))]
fn sync(root: &Path, wanted: &Wanted) -> Result<Outcome, Error> {
    sync_files(root, &record_path(root), wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cpx-bp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn wanted(origins: &[&str]) -> Wanted {
        let config = Config {
            browser_policies: true,
            sites: origins
                .iter()
                .map(|o| crate::platform::config::Site {
                    origin: (*o).into(),
                    mtls_endpoint: None,
                    server_roots: None,
                    signed_token: false,
                })
                .collect(),
            ..Config::default()
        };
        Wanted::from_config(&config)
    }

    fn read_json(p: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    #[test]
    fn hosts_and_the_flag() {
        let w = wanted(&[
            "https://portail.example.fr",
            "https://portail.example.fr:8443",
            "https://[::1]:9000",
            "https://203.0.113.5:8443",
        ]);
        assert_eq!(w.hosts, ["portail.example.fr", "::1", "203.0.113.5"]);
        assert_eq!(w.origins.len(), 4);
        let off = Config { browser_policies: false, ..Config::default() };
        assert!(Wanted::from_config(&off).is_empty(), "the flag off: nothing is wanted");
    }

    #[test]
    fn chromium_files_written_then_removed_with_the_folders_we_made() {
        let root = scratch("chromium");
        // Chromium's folder exists (the package made it), Chrome's and Edge's do not.
        std::fs::create_dir_all(root.join("etc/chromium/policies/managed")).unwrap();
        std::fs::write(
            root.join("etc/chromium/policies/managed/theirs.json"),
            r#"{"HomepageLocation": "https://intranet"}"#,
        )
        .unwrap();
        let record = root.join("var/lib/cpx-agent/browser-policies.json");
        let w = wanted(&["https://203.0.113.5:8443", "https://portail.example.fr"]);
        let out = sync_files(&root, &record, &w).unwrap();
        for (_, dir) in CHROMIUM_DIRS {
            let doc = read_json(&root.join(dir).join(FILE_NAME));
            for policy in CHROMIUM_POLICIES {
                assert_eq!(
                    doc[policy],
                    json!(["https://203.0.113.5:8443", "https://portail.example.fr"]),
                    "{dir} {policy}"
                );
            }
        }
        assert!(out.warnings.is_empty(), "{:?}", out.warnings);
        assert_eq!(
            out.changes.iter().filter(|c| c.action == Action::Written).count(),
            4,
            "3 Chromium family + Firefox"
        );
        let rec = read_record(&record).unwrap();
        assert!(
            rec.created_dirs.contains(&"etc/opt/edge".to_owned())
                && !rec.created_dirs.iter().any(|d| d.starts_with("etc/chromium")),
            "{:?}",
            rec.created_dirs
        );

        let out = sync_files(&root, &record, &Wanted::default()).unwrap();
        assert!(out.changes.iter().all(|c| c.action == Action::Removed));
        for (_, dir) in CHROMIUM_DIRS {
            assert!(!root.join(dir).join(FILE_NAME).exists(), "{dir}");
        }
        assert!(root.join("etc/chromium/policies/managed/theirs.json").exists(), "the others' file stays");
        assert!(
            !root.join("etc/opt").exists() && !root.join("etc/firefox").exists(),
            "the folders we made are gone"
        );
        assert!(root.join("etc/chromium/policies/managed").is_dir(), "the package's folder stays");
        assert!(!record.exists(), "nothing left to remember");
    }

    #[test]
    fn another_file_with_the_same_policy_is_reported() {
        let root = scratch("conflict");
        let dir = root.join("etc/opt/chrome/policies/managed");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("gpo.json"),
            r#"{"LocalNetworkAccessAllowedForUrls": ["https://other.example"]}"#,
        )
        .unwrap();
        let out = sync_files(&root, &root.join("state/rec.json"), &wanted(&["https://a.example"])).unwrap();
        assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
        assert!(
            out.warnings[0].contains("gpo.json") && out.warnings[0].contains("https://a.example"),
            "{}",
            out.warnings[0]
        );
    }

    #[test]
    fn firefox_policies_are_merged_and_only_ours_removed() {
        let root = scratch("firefox");
        let file = root.join(FIREFOX_FILE);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let theirs = json!({"policies": {"DisableTelemetry": true, "LocalNetworkAccess": {"Enabled": true, "SkipDomains": ["intranet.example", "portail.example.fr"]}}});
        std::fs::write(&file, theirs.to_string()).unwrap();
        let record = root.join("state/rec.json");

        sync_files(&root, &record, &wanted(&["https://portail.example.fr", "https://b.example:8443"]))
            .unwrap();
        let doc = read_json(&file);
        assert_eq!(doc["policies"]["DisableTelemetry"], json!(true), "other policies kept");
        assert_eq!(doc["policies"]["LocalNetworkAccess"]["Enabled"], json!(true));
        assert_eq!(
            doc["policies"]["LocalNetworkAccess"]["SkipDomains"],
            json!(["intranet.example", "portail.example.fr", "b.example"])
        );
        assert_eq!(
            read_record(&record).unwrap().firefox_domains,
            ["b.example"],
            "portail.example.fr was the administrator's"
        );

        // Another site list: the old one of ours goes, the new one comes.
        sync_files(&root, &record, &wanted(&["https://c.example"])).unwrap();
        assert_eq!(
            read_json(&file)["policies"]["LocalNetworkAccess"]["SkipDomains"],
            json!(["intranet.example", "portail.example.fr", "c.example"])
        );

        sync_files(&root, &record, &Wanted::default()).unwrap();
        assert_eq!(read_json(&file), theirs, "back to the administrator's file");
    }

    #[test]
    fn firefox_file_we_created_goes_and_a_broken_one_is_left_alone() {
        let root = scratch("firefox-new");
        let record = root.join("state/rec.json");
        let file = root.join(FIREFOX_FILE);
        sync_files(&root, &record, &wanted(&["https://a.example"])).unwrap();
        assert_eq!(
            read_json(&file),
            json!({"policies": {"LocalNetworkAccess": {"SkipDomains": ["a.example"]}}})
        );
        sync_files(&root, &record, &Wanted::default()).unwrap();
        assert!(!file.exists() && !root.join("etc/firefox").exists());
        // Created by us, then given a policy by the administrator: only ours go, the file stays theirs.
        sync_files(&root, &record, &wanted(&["https://a.example"])).unwrap();
        std::fs::write(&file, r#"{"policies": {"DisableTelemetry": true, "LocalNetworkAccess": {"SkipDomains": ["a.example"]}}}"#).unwrap();
        sync_files(&root, &record, &Wanted::default()).unwrap();
        assert_eq!(read_json(&file), json!({"policies": {"DisableTelemetry": true}}));
        std::fs::remove_file(&file).unwrap();

        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "{ not json").unwrap();
        let e = sync_files(&root, &record, &wanted(&["https://a.example"])).unwrap_err();
        assert!(matches!(e, Error::NotJson { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ not json", "untouched");
        assert!(
            root.join("etc/chromium/policies/managed").join(FILE_NAME).exists(),
            "the Chromium family was still done"
        );
        assert!(!read_record(&record).unwrap().created_dirs.is_empty(), "and recorded, to be removed later");
    }

    #[test]
    fn numbered_lists_keep_the_others_entries() {
        let existing = vec![
            ("1".to_owned(), "https://other.example".to_owned()),
            ("3".to_owned(), "https://a.example".to_owned()),
        ];
        let adds = numbered_additions(
            &existing,
            &["https://a.example".into(), "https://b.example".into(), "https://c.example".into()],
        );
        assert_eq!(
            adds,
            [
                ("2".to_owned(), "https://b.example".to_owned()),
                ("4".to_owned(), "https://c.example".to_owned())
            ],
            "the gap filled first"
        );
        let ours = vec![
            RegistryEntry { key: "K".into(), name: "8".into(), value: "https://b.example".into() },
            RegistryEntry { key: "K".into(), name: "1".into(), value: "https://mine-once.example".into() },
        ];
        let now = vec![
            ("1".to_owned(), "https://other.example".to_owned()),
            ("8".to_owned(), "https://b.example".to_owned()),
        ];
        assert_eq!(
            numbered_removals(&now, &ours, "K"),
            ["8"],
            "value 1 was changed by someone else: theirs now"
        );
    }

    #[cfg(windows)]
    #[test]
    fn registry_lists_written_and_only_ours_removed() {
        use winreg::enums::{HKEY_CURRENT_USER, KEY_READ};
        use winreg::types::FromRegValue;
        let base = format!(r"Software\cpx-agent-test-{}\Policies", std::process::id());
        let hkcu = winreg::RegKey::predef(HKEY_CURRENT_USER);
        let (chrome, _) =
            hkcu.create_subkey(format!(r"{base}\Google\Chrome\LocalNetworkAccessAllowedForUrls")).unwrap();
        chrome.set_value("1", &"https://gpo.example").unwrap();
        let record = scratch("registry").join("rec.json");
        let values = |key: &str| -> Vec<(String, String)> {
            match hkcu.open_subkey_with_flags(format!(r"{base}\{key}"), KEY_READ) {
                Ok(k) => {
                    let mut v: Vec<(String, String)> = k
                        .enum_values()
                        .map(|r| r.unwrap())
                        .map(|(n, d)| (n, String::from_reg_value(&d).unwrap()))
                        .collect();
                    v.sort();
                    v
                }
                Err(_) => Vec::new(),
            }
        };
        registry::sync(HKEY_CURRENT_USER, &base, &record, &wanted(&["https://portail.example.fr:8443"]))
            .unwrap();
        assert_eq!(
            values(r"Google\Chrome\LocalNetworkAccessAllowedForUrls"),
            [
                ("1".into(), "https://gpo.example".into()),
                ("2".into(), "https://portail.example.fr:8443".into())
            ]
        );
        assert_eq!(
            values(r"Microsoft\Edge\LoopbackNetworkAllowedForUrls"),
            [("1".to_owned(), "https://portail.example.fr:8443".to_owned())]
        );
        assert_eq!(values(REGISTRY_FIREFOX), [("1".to_owned(), "portail.example.fr".to_owned())]);
        registry::sync(HKEY_CURRENT_USER, &base, &record, &Wanted::default()).unwrap();
        assert_eq!(
            values(r"Google\Chrome\LocalNetworkAccessAllowedForUrls"),
            [("1".to_owned(), "https://gpo.example".to_owned())],
            "the GPO's entry stays"
        );
        assert!(
            values(r"Microsoft\Edge\LoopbackNetworkAllowedForUrls").is_empty()
                && values(REGISTRY_FIREFOX).is_empty()
        );
        assert!(!record.exists());
        let _ = hkcu.delete_subkey_all(format!(r"Software\cpx-agent-test-{}", std::process::id()));
    }
}
