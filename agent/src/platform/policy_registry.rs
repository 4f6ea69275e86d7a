//! The managed policy in the Windows registry: where Group Policy puts it,
//! `HKLM\Software\Policies\Agent CPx` (the machine's) and `HKCU\Software\Policies\Agent CPx` (the user's,
//! from a user Group Policy), and where the MSI puts its properties, `HKLM\Software\Agent CPx\Defaults`
//! (the installer's defaults, [`DEFAULTS_KEY`]). The machine's wins over the user's, both over the policy
//! file, which wins over the installer's defaults; all over the user's configuration file.
//!
//! The values carry the policy file's keys (names compared without case): `port`, `busy_wait_seconds`,
//! `refused_site_quiet_seconds` as REG_DWORD; `autostart`, `allow_user_sites`, `browser_policies` as REG_DWORD 0
//! or 1; `pki`, `log_level`, `key_store`, `data_dir`, `proxy`, `pinpad` as REG_SZ; `allowed_origins` as one REG_SZ whose entries
//! (`origin` or `origin mtls_endpoint`) are separated by `;`; `user_ports` as one REG_SZ `first-last` (or
//! `first;last`). Each allowed site is a subkey of `site` (taken in the order of the
//! subkeys' names, numbers in numeric order) with `origin`, `mtls_endpoint`, `server_roots` (REG_SZ) and
//! `signed_token` (REG_DWORD 0 or 1). Any other subkey is a table of the same name (`pin_prompt`).
//!
//! The mapping onto the policy file's form is plain code, tested on every OS; only the reading of the
//! registry is Windows-only.

use crate::platform::layers::PolicyLayer;
use crate::platform::policy_keys::PolicyProblem;

/// The policy key under HKLM and HKCU.
pub const KEY: &str = r"Software\Policies\Agent CPx";

/// Keys whose REG_SZ is a list of numbers, separated by `;` or `-` (`user_ports`: `47500-47599`).
const NUMBER_LISTS: &[&str] = &["user_ports"];

/// A registry value as the policy reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegData {
    /// REG_DWORD or REG_QWORD.
    Number(u64),
    /// REG_SZ or REG_EXPAND_SZ (not expanded).
    Text(String),
    /// Any other type (its REG_* number).
    Other(u32),
}

/// A registry key: its values and its subkeys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegKey {
    pub values: Vec<(String, RegData)>,
    pub subkeys: Vec<(String, RegKey)>,
}

fn bad(source: &str, name: &str, reason: impl std::fmt::Display, site: Option<String>) -> PolicyProblem {
    let key = name.split('\\').next().unwrap_or(name).to_owned();
    PolicyProblem {
        source: source.to_owned(),
        instead: crate::platform::policy_keys::instead(&key),
        key,
        reason: format!(r"{name}: {reason}"),
        site,
    }
}

/// The values of `key` in the policy file's form; a value that cannot be mapped is left out and reported.
fn values(key: &RegKey, source: &str, problems: &mut Vec<PolicyProblem>) -> toml::Table {
    let mut table = toml::Table::new();
    for (name, data) in &key.values {
        let name = name.to_ascii_lowercase();
        let value = match data {
            RegData::Number(n) if crate::platform::policy_keys::FLAGS.contains(&name.as_str()) => match n {
                0 => toml::Value::Boolean(false),
                1 => toml::Value::Boolean(true),
                other => {
                    problems.push(bad(source, &name, format!("{other} is neither 0 (no) nor 1 (yes)"), None));
                    continue;
                }
            },
            RegData::Number(n) => match i64::try_from(*n) {
                Ok(n) => toml::Value::Integer(n),
                Err(e) => {
                    problems.push(bad(source, &name, e, None));
                    continue;
                }
            },
            // A list in one REG_SZ, as an MSI property writes it: entries separated by `;`.
            RegData::Text(t) if crate::platform::policy_keys::TEXT_LISTS.contains(&name.as_str()) => {
                crate::platform::policy_keys::split_list(t)
            }
            // Numbers in one REG_SZ: `first;last` (or `first-last`).
            RegData::Text(t) if NUMBER_LISTS.contains(&name.as_str()) => {
                let numbers: Result<Vec<_>, _> = t
                    .split([';', '-'])
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(|e| e.parse::<i64>().map(toml::Value::Integer))
                    .collect();
                match numbers {
                    Ok(n) => toml::Value::Array(n),
                    Err(_) => {
                        problems.push(bad(
                            source,
                            &name,
                            format!("{t:?} is not numbers separated by `;`"),
                            None,
                        ));
                        continue;
                    }
                }
            }
            RegData::Text(t) => toml::Value::String(t.clone()),
            RegData::Other(kind) => {
                problems.push(bad(
                    source,
                    &name,
                    format!("registry type {kind} is neither REG_DWORD nor REG_SZ"),
                    None,
                ));
                continue;
            }
        };
        table.insert(name, value);
    }
    table
}

/// Subkey names in order: numbers numerically, then the others by name.
fn ordered(subkeys: &[(String, RegKey)]) -> Vec<&(String, RegKey)> {
    let mut sorted: Vec<_> = subkeys.iter().collect();
    sorted.sort_by_key(|(name, _)| {
        (name.parse::<u64>().map_or(1, |_| 0), name.parse::<u64>().unwrap_or(0), name.to_ascii_lowercase())
    });
    sorted
}

/// The policy file's form of the policy key `key`, read at `source` (for the messages), and the values
/// that could not be mapped (left out: the layer sets their keys to their safe defaults; a site with such
/// a value is left out whole).
pub fn to_table(key: &RegKey, source: &str) -> (toml::Table, Vec<PolicyProblem>) {
    let mut problems = Vec::new();
    let mut table = values(key, source, &mut problems);
    for (name, sub) in &key.subkeys {
        let lower = name.to_ascii_lowercase();
        let at = format!(r"{source}\{name}");
        let value = if lower == "site" {
            if !sub.values.is_empty() {
                problems.push(bad(
                    source,
                    name,
                    "sites are subkeys of site (site\\1, site\\2…), not values: those values are ignored",
                    None,
                ));
            }
            let mut sites = Vec::new();
            for (n, s) in ordered(&sub.subkeys) {
                let mut site_problems = Vec::new();
                let site = values(s, &format!(r"{at}\{n}"), &mut site_problems);
                if site_problems.is_empty() {
                    sites.push(toml::Value::Table(site));
                } else {
                    let origin = site
                        .get("origin")
                        .and_then(|o| o.as_str())
                        .and_then(crate::platform::config::normalise_origin);
                    problems.extend(site_problems.into_iter().map(|p| PolicyProblem {
                        key: "site".into(),
                        site: origin.clone(),
                        instead: "this entry is left out (its site is not allowed)".into(),
                        ..p
                    }));
                }
            }
            toml::Value::Array(sites)
        } else {
            let (sub_table, sub_problems) = to_table(sub, &at);
            if !sub_problems.is_empty() {
                problems.push(bad(
                    source,
                    &lower,
                    sub_problems.iter().map(|p| p.reason.as_str()).collect::<Vec<_>>().join("; "),
                    None,
                ));
                continue;
            }
            toml::Value::Table(sub_table)
        };
        table.insert(lower, value);
    }
    (table, problems)
}

/// The registry's policy layers, machine first; none where the keys are absent (and on other OSes). Never
/// fails (a key that cannot be read sets every key to its safe default).
pub fn layers() -> Vec<PolicyLayer> {
    #[cfg(windows)]
    {
        [(winreg::enums::HKEY_LOCAL_MACHINE, "HKLM"), (winreg::enums::HKEY_CURRENT_USER, "HKCU")]
            .into_iter()
            .filter_map(|(hive, name)| layer(hive, name, KEY))
            .collect()
    }
    #[cfg(not(windows))]
    Vec::new()
}

/// The installer's defaults, `HKLM\Software\Agent CPx\Defaults`: the MSI's public properties
/// (installer/windows/agent-cpx.wxs), in the policy key's form. Group Policy never writes there, so the
/// MSI never removes nor reverts what a GPO set; the layer comes after every policy source (a GPO's value,
/// or the policy file's, wins), before the user's file.
pub const DEFAULTS_KEY: &str = r"Software\Agent CPx\Defaults";

/// The installer's defaults layer; none where the key is absent (and on other OSes).
pub fn defaults_layers() -> Vec<PolicyLayer> {
    #[cfg(windows)]
    {
        layer(winreg::enums::HKEY_LOCAL_MACHINE, "HKLM", DEFAULTS_KEY).into_iter().collect()
    }
    #[cfg(not(windows))]
    Vec::new()
}

/// The layer of `key` under `hive` (named `name` in the messages): `None` when the key is absent.
#[cfg(windows)]
fn layer(hive: winreg::HKEY, name: &str, key: &str) -> Option<PolicyLayer> {
    let source = format!(r"{name}\{key}");
    match win::read(hive, key) {
        Ok(Some(found)) => {
            let (table, problems) = to_table(&found, &source);
            Some(PolicyLayer::checked(source, table, problems))
        }
        Ok(None) => None,
        // Present but unreadable: every key at its safe default, reported.
        Err(e) => Some(PolicyLayer::unreadable(source, format!("cannot read: {e}"))),
    }
}

#[cfg(windows)]
mod win {
    use super::{RegData, RegKey};
    use winreg::enums::{RegType, KEY_READ};
    use winreg::types::FromRegValue;

    /// The key `path` under `hive` with everything below it; `None` when it does not exist.
    pub fn read(hive: winreg::HKEY, path: &str) -> std::io::Result<Option<RegKey>> {
        match winreg::RegKey::predef(hive).open_subkey_with_flags(path, KEY_READ) {
            Ok(key) => walk(&key).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn walk(key: &winreg::RegKey) -> std::io::Result<RegKey> {
        let mut out = RegKey::default();
        for entry in key.enum_values() {
            let (name, value) = entry?;
            let data = match value.vtype {
                RegType::REG_DWORD => RegData::Number(u32::from_reg_value(&value)?.into()),
                RegType::REG_QWORD => RegData::Number(u64::from_reg_value(&value)?),
                RegType::REG_SZ | RegType::REG_EXPAND_SZ => RegData::Text(String::from_reg_value(&value)?),
                other => RegData::Other(other as u32),
            };
            out.values.push((name, data));
        }
        for name in key.enum_keys() {
            let name = name?;
            let sub = key.open_subkey_with_flags(&name, KEY_READ)?;
            out.subkeys.push((name.clone(), walk(&sub)?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::Config;

    fn text(s: &str) -> RegData {
        RegData::Text(s.into())
    }

    fn site(origin: &str, signed: u64) -> RegKey {
        RegKey {
            values: vec![("origin".into(), text(origin)), ("signed_token".into(), RegData::Number(signed))],
            subkeys: vec![],
        }
    }

    #[test]
    fn registry_values_map_onto_the_policy_file_form() {
        let key = RegKey {
            values: vec![
                ("Port".into(), RegData::Number(48000)),
                ("autostart".into(), RegData::Number(0)),
                ("pki".into(), text("production")),
            ],
            subkeys: vec![(
                "site".into(),
                RegKey {
                    values: vec![],
                    subkeys: vec![
                        ("10".into(), site("https://c.example", 0)),
                        ("2".into(), site("https://b.example", 1)),
                    ],
                },
            )],
        };
        let (table, problems) = to_table(&key, r"HKLM\X");
        assert_eq!(problems, []);
        let config: Config = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(
            (config.port, config.autostart, config.pki),
            (48000, false, crate::platform::config::PkiPolicy::Production)
        );
        assert_eq!(
            config.sites.iter().map(|s| (s.origin.as_str(), s.signed_token)).collect::<Vec<_>>(),
            [("https://b.example", true), ("https://c.example", false)],
            "site\\2 before site\\10"
        );
    }

    #[test]
    fn allowed_origins_in_one_value_become_sites_after_the_full_ones() {
        let key = RegKey {
            values: vec![
                (
                    "ALLOWED_ORIGINS".into(),
                    text("https://a.example https://cpx.a.example/login; https://b.example;"),
                ),
                ("allow_user_sites".into(), RegData::Number(0)),
            ],
            subkeys: vec![(
                "site".into(),
                RegKey { values: vec![], subkeys: vec![("1".into(), site("https://B.example", 1))] },
            )],
        };
        let layer = PolicyLayer::from_table("HKLM".into(), to_table(&key, "HKLM").0);
        let (c, _) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert_eq!(
            c.site_summary(),
            [
                ("https://b.example", None, true),
                ("https://a.example", Some("https://cpx.a.example/login"), false)
            ],
            "the full site entry wins"
        );
        assert!(!c.allow_user_sites);
        let bad = RegKey {
            values: vec![("allowed_origins".into(), text("https://a.example x y; https://b.example"))],
            subkeys: vec![],
        };
        let layer = PolicyLayer::from_table("HKLM".into(), to_table(&bad, "HKLM").0);
        let (c, p) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://b.example"],
            "the malformed entry alone is left out"
        );
        assert!(
            p.problems[0].reason.contains("is not `origin` or `origin mtls_endpoint`")
                && p.problems[0].key == "allowed_origins",
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn a_bad_value_is_reported_and_its_key_gets_its_safe_default() {
        let key = RegKey {
            values: vec![
                ("allow_user_sites".into(), RegData::Number(2)),
                ("port".into(), RegData::Other(3)),
                ("prot".into(), RegData::Number(1)),
                ("pki".into(), text("prod")),
                ("user_ports".into(), text("47500-47599")),
            ],
            subkeys: vec![
                (
                    "site".into(),
                    RegKey {
                        values: vec![],
                        subkeys: vec![
                            ("1".into(), site("https://ok.example", 1)),
                            ("2".into(), site("https://bad.example", 7)),
                        ],
                    },
                ),
                (
                    "PIN_PROMPT".into(),
                    RegKey {
                        values: vec![
                            ("kind".into(), text("pinentry")),
                            ("program".into(), RegData::Other(7)),
                        ],
                        subkeys: vec![],
                    },
                ),
            ],
        };
        let (table, problems) = to_table(&key, r"HKLM\X");
        assert!(
            problems.iter().any(|p| p.key == "pin_prompt" && p.reason.contains("program")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(
                |p| p.key == "allow_user_sites" && p.reason.contains(r"allow_user_sites: 2 is neither 0")
            ),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.key == "port" && p.reason.contains("registry type 3")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.key == "site" && p.site.as_deref() == Some("https://bad.example")),
            "{problems:?}"
        );
        let layer = PolicyLayer::checked(r"HKLM\X".into(), table, problems);
        let (c, p) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert!(!c.allow_user_sites, "a malformed allow_user_sites is false");
        assert_eq!(
            (c.port, c.pki, c.user_ports),
            (
                crate::platform::config::DEFAULT_PORT,
                crate::platform::config::PkiPolicy::Production,
                Some([47500, 47599])
            )
        );
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://ok.example"],
            "the site with a bad value is not allowed"
        );
        assert_eq!(
            c.pin_prompt,
            crate::platform::config::PinPromptConfig::Terminal,
            "a malformed pin_prompt is the terminal"
        );
        let keys: Vec<&str> = p.problems.iter().map(|p| p.key.as_str()).collect();
        for key in ["allow_user_sites", "port", "site", "prot", "pki"] {
            assert!(keys.contains(&key), "{key} reported: {keys:?}");
        }
        assert!(p.problems.iter().all(|p| p.source.starts_with(r"HKLM\X")), "{:?}", p.problems);
    }

    #[test]
    fn machine_wins_over_user_and_both_over_the_files() {
        let dir = std::env::temp_dir().join(format!("cpx-regpolicy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (user, file) = (dir.join("user.toml"), dir.join("policy.toml"));
        std::fs::write(
            &user,
            "port = 1000\nlog_level = \"debug\"\nbusy_wait_seconds = 5\nautostart = true\n",
        )
        .unwrap();
        std::fs::write(&file, "port = 2000\nbusy_wait_seconds = 6\n").unwrap();
        let layer =
            |source: &str, key: RegKey| PolicyLayer::from_table(source.into(), to_table(&key, source).0);
        let hklm = layer(
            "HKLM",
            RegKey {
                values: vec![("port".into(), RegData::Number(3000))],
                subkeys: vec![(
                    "site".into(),
                    RegKey { values: vec![], subkeys: vec![("1".into(), site("https://m.example", 0))] },
                )],
            },
        );
        let hkcu = layer(
            "HKCU",
            RegKey {
                values: vec![
                    ("port".into(), RegData::Number(4000)),
                    ("autostart".into(), RegData::Number(0)),
                ],
                subkeys: vec![(
                    "site".into(),
                    RegKey {
                        values: vec![],
                        subkeys: vec![
                            ("1".into(), site("https://u.example", 0)),
                            ("2".into(), site("https://M.example", 1)),
                        ],
                    },
                )],
            },
        );
        let (c, p) =
            Config::load_with_policies(Some(&user), vec![hklm, hkcu, PolicyLayer::from_file(&file)]).unwrap();
        assert_eq!(c.port, 3000, "HKLM wins");
        assert!(!c.autostart, "HKCU wins over the user's file");
        assert_eq!(c.busy_wait_seconds, 6, "the policy file wins over the user's file");
        assert_eq!(c.log_level.as_deref(), Some("debug"), "the user's file fills the rest");
        let sites: Vec<_> = c.sites.iter().map(|s| (s.origin.as_str(), s.signed_token)).collect();
        assert_eq!(
            sites,
            [("https://m.example", false), ("https://u.example", false)],
            "the machine's version of a site wins"
        );
        let said = p.describe();
        assert!(said.starts_with("managed policy HKLM sets: port, site; managed policy HKCU sets: autostart, site; managed policy "), "{said}");
        assert!(
            said.contains("sets: busy_wait_seconds; user file") && said.contains("sets: log_level; the rest"),
            "{said}"
        );
    }
}
