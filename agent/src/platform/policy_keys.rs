//! The keys the agent reads from each source of settings (policy file, registry, macOS profile, the user's
//! file), each key's safe default, and the checking of one source key by key: a malformed key is reported
//! (source, key, reason) and set to its safe default in that source's place, so that a typo in a policy
//! never stops the agent and never opens more than the policy meant (docs/deploiement.md, section 5).
//!
//! The list of keys is not written by hand: it is read from [`Config`]'s own deserialiser ([`keys`]), so a
//! new field of `Config` is a new key everywhere (the templates' test fails until they have it).

use serde::de::{self, Deserializer, Visitor};

pub use crate::platform::config::PolicyProblem;
use crate::platform::config::{normalise_origin, Config, Site, DEFAULT_PORT};
use crate::platform::endpoint::Endpoint;

/// What a malformed key becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum SafeDefault {
    /// The source sets this value instead (it still wins over the sources below it).
    Value(toml::Value),
    /// The source sets nothing for the key (the sources below, else the built-in default, apply).
    Unset,
    /// A list of entries (sites): each malformed entry is left out, the others stay.
    DropEntries,
}

/// The safe default of each key the agent reads; `None` for a key it does not read.
pub fn safe_default(key: &str) -> Option<SafeDefault> {
    use toml::Value::{Boolean, Integer, String as Text};
    use SafeDefault::*;
    Some(match key {
        "port" => Value(Integer(DEFAULT_PORT.into())),
        "site" | "allowed_origins" => DropEntries,
        // No external program: the terminal, or the tray's own dialog.
        "pin_prompt" => Value(toml::Value::Table(toml::toml! { kind = "terminal" })),
        "data_dir" | "log_level" | "user_ports" => Unset,
        // The OS keyring, not a file.
        "key_store" => Value(Text("keyring".into())),
        // Production cards only.
        "pki" => Value(Text("production".into())),
        "busy_wait_seconds" => Value(Integer(90)),
        "autostart" => Value(Boolean(true)),
        "refused_site_quiet_seconds" => Value(Integer(60)),
        // Only the managed sites: no consent dialog, no user sites.
        "allow_user_sites" => Value(Boolean(false)),
        // Nothing is written into the browsers' policies.
        "browser_policies" => Value(Boolean(false)),
        // The proxy the OS gives, as the browsers use it.
        "proxy" => Value(Text("system".into())),
        // A PIN-pad reader's keypad when the reader has one (the code porteur never crosses the computer).
        "pinpad" => Value(Text("auto".into())),
        _ => return None,
    })
}

/// The keys of `Config` (a `[[site]]` table is `site`), in its order: what every source may set.
pub fn keys() -> &'static [&'static str] {
    fields::<Config>()
}

/// The keys of one `[[site]]` entry.
#[cfg(test)]
pub fn site_keys() -> &'static [&'static str] {
    fields::<Site>()
}

/// Keys that are yes/no, which a source holding only numbers (a registry REG_DWORD, a profile editor that
/// writes integers) gives as 0 or 1.
#[cfg_attr(not(any(windows, target_os = "macos")), allow(dead_code))]
pub const FLAGS: &[&str] = &["autostart", "signed_token", "allow_user_sites", "browser_policies"];

/// Keys that are lists of text, which a source may give as one string (an MSI property in a REG_SZ, a
/// profile's `<string>`), entries separated by `;` or line breaks ([`split_list`]).
#[cfg_attr(not(any(windows, target_os = "macos")), allow(dead_code))]
pub const TEXT_LISTS: &[&str] = &["allowed_origins"];

/// The entries of a text list given as one string: separated by `;` or line breaks, blanks dropped.
#[cfg_attr(not(any(windows, target_os = "macos")), allow(dead_code))]
pub fn split_list(text: &str) -> toml::Value {
    toml::Value::Array(
        text.split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| toml::Value::String(e.into()))
            .collect(),
    )
}

/// The keys of `[pin_prompt]` (an enum tagged by `kind`, which serde cannot list).
#[cfg(all(test, not(windows)))]
pub const PIN_PROMPT_KEYS: &[&str] = &["kind", "program"];

/// Log levels `log_level` takes.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// The field names a derived `Deserialize` hands to `deserialize_struct`.
fn fields<T: de::DeserializeOwned>() -> &'static [&'static str] {
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl std::fmt::Display for Found {
        fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Found(&[])
        }
    }
    struct Grab;
    impl<'de> Deserializer<'de> for Grab {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! { bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any }
    }
    match T::deserialize(Grab) {
        Err(Found(f)) => f,
        Ok(_) => &[],
    }
}

/// One source, checked key by key.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Only well-formed keys and entries, and the safe defaults of the malformed ones.
    pub table: toml::Table,
    pub problems: Vec<PolicyProblem>,
    /// Origins of malformed site entries: no lower source may allow them.
    pub claimed: Vec<String>,
}

/// A source that could not be read as TOML at all: every key at its safe default.
pub fn unreadable(source: &str, reason: String) -> Checked {
    let mut table = toml::Table::new();
    for key in keys() {
        if let Some(SafeDefault::Value(v)) = safe_default(key) {
            table.insert((*key).to_owned(), v);
        }
    }
    let problem = PolicyProblem {
        source: source.into(),
        key: "*".into(),
        reason,
        instead: "every key at its safe default (managed sites only, production cards, no user sites)".into(),
        site: None,
    };
    Checked { table, problems: vec![problem], claimed: Vec::new() }
}

/// What the agent does instead of a malformed `key`.
pub fn instead(key: &str) -> String {
    match safe_default(key) {
        Some(SafeDefault::Value(v)) => format!("{key} = {v}"),
        Some(SafeDefault::Unset) => "not set by this source".into(),
        Some(SafeDefault::DropEntries) => "this entry is left out (its site is not allowed)".into(),
        None => "ignored".into(),
    }
}

/// A key's value alone, as `Config` reads it, with the checks that types do not make.
fn check_value(key: &str, value: &toml::Value) -> Result<(), String> {
    let mut one = toml::Table::new();
    one.insert(key.to_owned(), value.clone());
    let config: Config =
        toml::Value::Table(one).try_into().map_err(|e: toml::de::Error| e.message().trim().to_owned())?;
    match key {
        "port" if config.port == 0 => Err("port 0 is not a port".into()),
        "user_ports" => match config.user_ports {
            Some([first, last]) if first == 0 || first > last => {
                Err(format!("[{first}, {last}] is not a range of ports [first, last]"))
            }
            _ => Ok(()),
        },
        "log_level" => match config.log_level.as_deref() {
            Some(l) if !LOG_LEVELS.contains(&l.to_ascii_lowercase().as_str()) => {
                Err(format!("{l:?} is none of {}", LOG_LEVELS.join(", ")))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// One `[[site]]` entry: a well-formed site with an https origin.
fn check_site(value: &toml::Value) -> Result<(), String> {
    let site: Site = value.clone().try_into().map_err(|e: toml::de::Error| e.message().trim().to_owned())?;
    normalise_origin(&site.origin)
        .ok_or_else(|| format!("origin {:?} is not of the form https://host[:port]", site.origin))?;
    Ok(())
}

/// One `allowed_origins` entry: `origin` or `origin mtls_endpoint`.
pub fn parse_allowed_origin(entry: &str) -> Result<(String, Option<Endpoint>), String> {
    let mut words = entry.split_whitespace();
    let (Some(origin), endpoint, None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("entry {entry:?} is not `origin` or `origin mtls_endpoint`"));
    };
    let origin = normalise_origin(origin)
        .ok_or_else(|| format!("entry {entry:?}: {origin:?} is not of the form https://host[:port]"))?;
    let endpoint = endpoint.map(Endpoint::parse).transpose().map_err(|e| format!("entry {entry:?}: {e}"))?;
    Ok((origin, endpoint))
}

/// Checks `table`, read from `source`, key by key.
pub fn check(source: &str, table: toml::Table) -> Checked {
    let mut out = Checked::default();
    for (key, value) in table {
        let problem = |reason: String, site: Option<String>| PolicyProblem {
            source: source.into(),
            key: key.clone(),
            instead: instead(&key),
            reason,
            site,
        };
        match safe_default(&key) {
            None => out.problems.push(PolicyProblem {
                instead: "ignored".into(),
                ..problem(format!("{key:?} is not a key the agent reads"), None)
            }),
            Some(SafeDefault::DropEntries) => {
                let Some(entries) = value.as_array() else {
                    out.problems.push(PolicyProblem {
                        instead: "the key is left out (none of its sites is allowed)".into(),
                        ..problem(format!("expected a list, found {}", value.type_str()), None)
                    });
                    continue;
                };
                let mut kept = Vec::new();
                for entry in entries {
                    let checked = if key == "site" {
                        check_site(entry)
                    } else {
                        entry
                            .as_str()
                            .ok_or_else(|| format!("expected a string, found {}", entry.type_str()))
                            .and_then(|e| parse_allowed_origin(e).map(drop))
                    };
                    match checked {
                        Ok(()) => kept.push(entry.clone()),
                        Err(reason) => {
                            let origin = if key == "site" {
                                entry.get("origin").and_then(|o| o.as_str())
                            } else {
                                entry.as_str().and_then(|e| e.split_whitespace().next())
                            };
                            let origin = origin.and_then(normalise_origin);
                            out.claimed.extend(origin.clone());
                            out.problems.push(problem(reason, origin));
                        }
                    }
                }
                out.table.insert(key, toml::Value::Array(kept));
            }
            Some(default) => match check_value(&key, &value) {
                Ok(()) => {
                    out.table.insert(key, value);
                }
                Err(reason) => {
                    out.problems.push(problem(reason, None));
                    if let SafeDefault::Value(v) = default {
                        out.table.insert(key, v);
                    }
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_come_from_config_and_each_has_a_safe_default() {
        assert!(
            keys().contains(&"site") && keys().contains(&"allow_user_sites") && keys().contains(&"pki"),
            "{:?}",
            keys()
        );
        assert!(
            !keys().contains(&"sites") && !keys().contains(&"provenance"),
            "serde names, no skipped field: {:?}",
            keys()
        );
        for key in keys() {
            assert!(safe_default(key).is_some(), "{key} has no safe default");
            if let Some(SafeDefault::Value(v)) = safe_default(key) {
                check_value(key, &v).unwrap_or_else(|e| panic!("{key}'s safe default is malformed: {e}"));
            }
        }
        assert_eq!(site_keys(), ["origin", "mtls_endpoint", "server_roots", "signed_token"]);
        assert_eq!(safe_default("prot"), None);
    }

    #[test]
    fn each_malformed_key_gets_its_safe_default_and_is_reported() {
        let table: toml::Table = toml::from_str(
            r#"
            port = 0
            pki = "prod"
            allow_user_sites = "no"
            browser_policies = 1
            log_level = "loud"
            user_ports = [48000, 47000]
            key_store = "file"
            pinpad = "sometimes"
            prot = 1
            allowed_origins = ["https://a.example", "http://b.example", "https://c.example ftp://x", 3]
            [pin_prompt]
            kind = "pinentry"
            [[site]]
            origin = "https://ok.example"
            [[site]]
            origin = "https://Typo.example"
            signed_tokn = true
            [[site]]
            origin = "https://ep.example"
            mtls_endpoint = "http://ep.example/login"
            "#,
        )
        .unwrap();
        let c = check("policy.toml", table);
        let reported: Vec<&str> = c.problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "port",
            "pki",
            "allow_user_sites",
            "browser_policies",
            "log_level",
            "user_ports",
            "prot",
            "pinpad",
            "pin_prompt",
            "site",
            "allowed_origins",
        ] {
            assert!(reported.contains(&key), "{key} reported: {:?}", c.problems);
        }
        assert!(c.problems.iter().all(|p| p.source == "policy.toml" && !p.reason.is_empty()));
        let config: Config =
            toml::Value::Table(c.table.clone()).try_into().expect("what is kept is a valid configuration");
        assert_eq!(config.port, DEFAULT_PORT);
        assert_eq!(config.pki, crate::platform::config::PkiPolicy::Production);
        assert!(!config.allow_user_sites && !config.browser_policies);
        assert_eq!((config.log_level, config.user_ports), (None, None));
        assert_eq!(config.key_store, crate::platform::config::KeyStoreKind::File, "a well-formed key stays");
        assert_eq!(config.pin_prompt, crate::platform::config::PinPromptConfig::Terminal);
        assert_eq!(
            config.pinpad,
            crate::platform::config::PinPadPolicy::Auto,
            "the keypad when there is one"
        );
        assert!(!c.table.contains_key("prot"));
        assert_eq!(
            config.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://ok.example"]
        );
        assert_eq!(config.allowed_origins, ["https://a.example"]);
        assert!(
            !c.claimed.iter().any(|o| o.contains("b.example")),
            "an origin that is not https is no origin: {:?}",
            c.claimed
        );
        for origin in ["https://c.example", "https://typo.example", "https://ep.example"] {
            assert!(c.claimed.iter().any(|o| o == origin), "{origin} claimed: {:?}", c.claimed);
        }
    }

    #[test]
    fn a_source_that_is_not_toml_sets_every_key_to_its_safe_default() {
        let c = unreadable("policy.toml", "expected `=`".into());
        let config: Config = toml::Value::Table(c.table).try_into().unwrap();
        assert!(!config.allow_user_sites && !config.browser_policies);
        assert_eq!((config.pki, config.port), (crate::platform::config::PkiPolicy::Production, DEFAULT_PORT));
        assert_eq!(c.problems[0].key, "*");
    }

    /// The keys of `table` and of its `[[site]]` and `[pin_prompt]` tables, sorted.
    #[cfg(not(windows))]
    fn key_sets(table: &toml::Table) -> (Vec<String>, Vec<String>, Vec<String>) {
        let sorted = |keys: Vec<&String>| {
            let mut k: Vec<String> = keys.into_iter().cloned().collect();
            k.sort();
            k.dedup();
            k
        };
        let sites = table
            .get("site")
            .and_then(|s| s.as_array())
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_table())
            .flat_map(|s| s.keys())
            .collect();
        let pin =
            table.get("pin_prompt").and_then(|p| p.as_table()).into_iter().flat_map(|p| p.keys()).collect();
        (sorted(table.keys().collect()), sorted(sites), sorted(pin))
    }

    #[cfg(not(windows))]
    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        k.sort();
        k
    }

    /// installer/linux/policy.toml, installer/windows/policy/*.admx|adml and installer/macos/agent-cpx.mobileconfig
    /// set every key the agent reads and no other, with values the agent takes (Windows and macOS templates:
    /// scripts/check_policy_templates.py, which also checks the ADMX/ADML's XML and string ids).
    #[cfg(not(windows))]
    #[test]
    fn the_templates_have_every_key_and_no_other() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let wanted = (sorted(keys()), sorted(site_keys()), sorted(PIN_PROMPT_KEYS));
        // Linux: every setting commented out (`#key = value`, `#[[site]]`); uncommented, a valid policy.
        let text = std::fs::read_to_string(root.join("installer/linux/policy.toml")).unwrap();
        assert!(
            toml::from_str::<toml::Table>(&text).unwrap().is_empty(),
            "the Linux template sets nothing as shipped"
        );
        let is_setting = |rest: &str| {
            rest.starts_with('[')
                || rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
        };
        let uncommented: Vec<&str> =
            text.lines().map(|l| l.strip_prefix('#').filter(|rest| is_setting(rest)).unwrap_or(l)).collect();
        let table: toml::Table =
            toml::from_str(&uncommented.join("\n")).expect("the Linux template, uncommented, is TOML");
        assert_eq!(
            key_sets(&table),
            wanted,
            "installer/linux/policy.toml: its keys, its site's, its pin_prompt's"
        );
        let checked = check("installer/linux/policy.toml", table);
        assert_eq!(checked.problems, [], "the Linux template's values");
        // Windows and macOS.
        let wanted_json =
            serde_json::json!({"keys": keys(), "site_keys": site_keys(), "pin_prompt_keys": PIN_PROMPT_KEYS});
        let out = std::process::Command::new("python3")
            .arg(root.join("scripts/check_policy_templates.py"))
            .arg(wanted_json.to_string())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "scripts/check_policy_templates.py:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let payload: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let table = toml::Table::try_from(payload).expect("the profile's payload in the policy file's form");
        assert_eq!(key_sets(&table), wanted, "installer/macos/agent-cpx.mobileconfig");
        assert_eq!(check("agent-cpx.mobileconfig", table).problems, [], "the profile's values");
    }
}
