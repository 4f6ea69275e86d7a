//! The sources of the configuration, layered: the managed policy's (a file, the Windows registry's keys, a
//! macOS configuration profile's) above the user's file. Each source is a [`PolicyLayer`], checked key by
//! key ([`crate::platform::policy_keys`]); [`Config::load_with_policies`] merges them, the highest source
//! winning, sites adding up, and says which source set what ([`Provenance`]). The configuration's own form
//! is [`crate::platform::config`], which knows nothing of the sources' checking.

use std::path::Path;

use crate::platform::config::{
    normalise_origin, Config, ConfigError, PolicyProblem, Provenance, Setting, Site,
};
use crate::platform::policy_keys;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::{PkiPolicy, DEFAULT_PORT};
    use std::path::PathBuf;

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
