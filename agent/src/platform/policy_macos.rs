//! The managed policy of a macOS configuration profile: the managed preferences of the domain
//! `fr.agentcpx.agent` (installer/macos/agent-cpx.mobileconfig is an example), which MDM or
//! `profiles`/System Settings install. It wins over the policy file and the user's configuration file,
//! like the Windows registry's policy ([`crate::platform::policy_registry`]).
//!
//! The profile carries the policy file's keys with plist types: `port`, `busy_wait_seconds`,
//! `refused_site_quiet_seconds` as `<integer>`; `autostart`, `allow_user_sites`, `browser_policies`,
//! `signed_token` as `<true/>`/`<false/>` (or the integer 0 or 1); `pki`, `log_level`, `key_store`,
//! `data_dir`, `proxy`, `pinpad` as `<string>`; `allowed_origins` as an `<array>` of strings (or one string whose entries
//! are separated by `;`); `user_ports` as an `<array>` of two integers; `site` as an `<array>` of `<dict>`
//! (`origin`, `mtls_endpoint`, `server_roots`, `signed_token`); `pin_prompt` as a `<dict>`. The profile's
//! own `Payload…` keys are not policy.
//!
//! Only values the system reports as forced (`CFPreferencesAppValueIsForced`: set by a profile, not by
//! `defaults write`) are taken, key by key, for the policy's known keys; a misspelt key in a profile is
//! therefore not seen (the profile's example and `cpx-agent diagnose`, which names the source of each
//! setting, are the checks). The mapping of a plist value tree onto the policy file's form is plain code,
//! tested on every OS; only the reading through CFPreferences is macOS-only.

use crate::platform::layers::PolicyLayer;
use crate::platform::policy_keys::{split_list, PolicyProblem, FLAGS, TEXT_LISTS};

/// The managed preferences domain a profile's settings payload targets (its `PayloadType`, or the
/// domain of a `com.apple.ManagedClient.preferences` payload).
pub const DOMAIN: &str = "fr.agentcpx.agent";

/// How the source of these settings is named (`cpx-agent diagnose`, the logs).
pub const SOURCE: &str = "profil de configuration fr.agentcpx.agent";

/// A property-list value as the policy reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum PlistValue {
    Bool(bool),
    Integer(i64),
    Real(f64),
    String(String),
    Array(Vec<PlistValue>),
    Dict(Vec<(String, PlistValue)>),
    /// Any other type (`<date>`, `<data>`…), by name.
    Other(String),
}

/// A value that has no policy-file form: where it is and why.
struct Unmapped {
    at: String,
    reason: String,
}

fn value(key: &str, v: &PlistValue, at: &str) -> Result<toml::Value, Unmapped> {
    let bad = |reason: String| Unmapped { at: at.to_owned(), reason };
    Ok(match v {
        PlistValue::Bool(b) => toml::Value::Boolean(*b),
        PlistValue::Integer(n) if FLAGS.contains(&key) => match n {
            0 => toml::Value::Boolean(false),
            1 => toml::Value::Boolean(true),
            other => return Err(bad(format!("{other} is neither 0 (no) nor 1 (yes)"))),
        },
        PlistValue::Integer(n) => toml::Value::Integer(*n),
        PlistValue::Real(r) => toml::Value::Float(*r),
        PlistValue::String(s) if TEXT_LISTS.contains(&key) => split_list(s),
        PlistValue::String(s) => toml::Value::String(s.clone()),
        PlistValue::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| value("", item, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        PlistValue::Dict(entries) => {
            let mut out = toml::Table::new();
            for (name, v) in entries {
                let lower = name.to_ascii_lowercase();
                out.insert(lower.clone(), value(&lower, v, &format!("{at}.{name}"))?);
            }
            toml::Value::Table(out)
        }
        PlistValue::Other(kind) => {
            return Err(bad(format!(
                "a <{kind}> is not a policy value (integer, string, true/false, array or dict)"
            )))
        }
    })
}

fn problem(key: &str, unmapped: Unmapped, site: Option<String>) -> PolicyProblem {
    PolicyProblem {
        source: SOURCE.into(),
        key: key.into(),
        reason: format!("{}: {}", unmapped.at, unmapped.reason),
        instead: crate::platform::policy_keys::instead(key),
        site,
    }
}

/// The policy file's form of the profile's settings (the profile's `Payload…` keys left out), and the
/// values that have none (left out: the layer sets their keys to their safe defaults; a site with such
/// a value is left out whole).
pub fn to_table(settings: &[(String, PlistValue)]) -> (toml::Table, Vec<PolicyProblem>) {
    let (mut table, mut problems) = (toml::Table::new(), Vec::new());
    for (name, v) in settings.iter().filter(|(k, _)| !k.starts_with("Payload")) {
        let key = name.to_ascii_lowercase();
        let mapped = match (key.as_str(), v) {
            ("site", PlistValue::Array(entries)) => {
                let mut sites = Vec::new();
                for (i, entry) in entries.iter().enumerate() {
                    match value("", entry, &format!("{name}[{i}]")) {
                        Ok(site) => sites.push(site),
                        Err(e) => {
                            let origin = match entry {
                                PlistValue::Dict(d) => d.iter().find_map(|(k, v)| match v {
                                    PlistValue::String(o) if k.eq_ignore_ascii_case("origin") => {
                                        crate::platform::config::normalise_origin(o)
                                    }
                                    _ => None,
                                }),
                                _ => None,
                            };
                            problems.push(problem("site", e, origin));
                        }
                    }
                }
                Ok(toml::Value::Array(sites))
            }
            _ => value(&key, v, name),
        };
        match mapped {
            Ok(mapped) => {
                table.insert(key, mapped);
            }
            Err(e) => problems.push(problem(&key, e, None)),
        }
    }
    (table, problems)
}

/// The layer of these settings, checked key by key like every source; `None` when the profile sets nothing.
pub fn layer_of(settings: &[(String, PlistValue)]) -> Option<PolicyLayer> {
    let (table, problems) = to_table(settings);
    if table.is_empty() && problems.is_empty() {
        return None;
    }
    Some(PolicyLayer::checked(SOURCE.into(), table, problems))
}

/// The configuration profile's policy layer: none without a profile (and on other OSes). Never fails.
pub fn layers() -> Vec<PolicyLayer> {
    #[cfg(target_os = "macos")]
    return layer_of(&mac::forced(DOMAIN, crate::platform::policy_keys::keys())).into_iter().collect();
    #[cfg(not(target_os = "macos"))]
    Vec::new()
}

#[cfg(target_os = "macos")]
#[allow(unsafe_code)] // CoreFoundation: CFPreferences
mod mac {
    use super::PlistValue;
    use core_foundation::array::CFArray;
    use core_foundation::base::{CFType, TCFType};
    use core_foundation::boolean::CFBoolean;
    use core_foundation::dictionary::CFDictionary;
    use core_foundation::number::CFNumber;
    use core_foundation::string::CFString;
    use core_foundation_sys::number::CFNumberIsFloatType;
    use core_foundation_sys::preferences::{CFPreferencesAppValueIsForced, CFPreferencesCopyAppValue};

    /// The values of `keys` in `domain` that a configuration profile forces.
    pub fn forced(domain: &str, keys: &[&str]) -> Vec<(String, PlistValue)> {
        let app = CFString::new(domain);
        let mut out = Vec::new();
        for key in keys {
            let k = CFString::new(key);
            // SAFETY: both are valid CFStrings for the length of the calls; the copied value is owned
            // (create rule) and released when its wrapper drops.
            unsafe {
                if CFPreferencesAppValueIsForced(k.as_concrete_TypeRef(), app.as_concrete_TypeRef()) == 0 {
                    continue;
                }
                let v = CFPreferencesCopyAppValue(k.as_concrete_TypeRef(), app.as_concrete_TypeRef());
                if v.is_null() {
                    continue;
                }
                out.push((key.to_string(), convert(&CFType::wrap_under_create_rule(v))));
            }
        }
        out
    }

    fn convert(v: &CFType) -> PlistValue {
        if let Some(b) = v.downcast::<CFBoolean>() {
            return PlistValue::Bool(b.into());
        }
        if let Some(n) = v.downcast::<CFNumber>() {
            // SAFETY: a valid CFNumber.
            let float = unsafe { CFNumberIsFloatType(n.as_concrete_TypeRef()) } != 0;
            return match (float, n.to_i64(), n.to_f64()) {
                (false, Some(i), _) => PlistValue::Integer(i),
                (_, _, Some(f)) => PlistValue::Real(f),
                _ => PlistValue::Other("number".into()),
            };
        }
        if let Some(s) = v.downcast::<CFString>() {
            return PlistValue::String(s.to_string());
        }
        if let Some(a) = v.downcast::<CFArray>() {
            // SAFETY: the array's items are CF objects it retains while we hold it.
            return PlistValue::Array(
                a.get_all_values()
                    .into_iter()
                    // SAFETY: the array's items are CF objects it retains while we hold it.
                    .map(|item| convert(&unsafe { CFType::wrap_under_get_rule(item) }))
                    .collect(),
            );
        }
        if let Some(d) = v.downcast::<CFDictionary>() {
            let (keys, values) = d.get_keys_and_values();
            let mut entries = Vec::new();
            for (k, item) in keys.into_iter().zip(values) {
                // SAFETY: the dictionary's keys and values are CF objects it retains while we hold it.
                let (k, item) =
                    unsafe { (CFType::wrap_under_get_rule(k), CFType::wrap_under_get_rule(item)) };
                let name = k.downcast::<CFString>().map_or_else(|| format!("{k:?}"), |s| s.to_string());
                entries.push((name, convert(&item)));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            return PlistValue::Dict(entries);
        }
        PlistValue::Other(format!("{v:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::Config;

    fn s(v: &str) -> PlistValue {
        PlistValue::String(v.into())
    }

    fn site(origin: &str, signed: bool) -> PlistValue {
        PlistValue::Dict(vec![
            ("origin".into(), s(origin)),
            ("signed_token".into(), PlistValue::Bool(signed)),
        ])
    }

    #[test]
    fn profile_values_map_onto_the_policy_file_form() {
        let settings = vec![
            ("PayloadType".into(), s(DOMAIN)),
            ("PayloadUUID".into(), s("5B1C3E0A-0000-4000-8000-000000000001")),
            ("port".into(), PlistValue::Integer(48000)),
            ("autostart".into(), PlistValue::Integer(0)),
            ("allow_user_sites".into(), PlistValue::Bool(false)),
            ("pki".into(), s("production")),
            (
                "user_ports".into(),
                PlistValue::Array(vec![PlistValue::Integer(48100), PlistValue::Integer(48199)]),
            ),
            (
                "site".into(),
                PlistValue::Array(vec![site("https://b.example", true), site("https://c.example", false)]),
            ),
            (
                "allowed_origins".into(),
                PlistValue::Array(vec![
                    s("https://a.example https://cpx.a.example/login"),
                    s("https://B.example"),
                ]),
            ),
            ("pin_prompt".into(), PlistValue::Dict(vec![("kind".into(), s("terminal"))])),
        ];
        let layer = layer_of(&settings).expect("a layer");
        assert_eq!(layer.source, SOURCE);
        assert!(
            !layer.table.keys().any(|k| k.starts_with("payload")),
            "Payload keys are not policy: {:?}",
            layer.table.keys().collect::<Vec<_>>()
        );
        let (c, p) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert_eq!(
            (c.port, c.autostart, c.allow_user_sites, c.pki, c.user_ports),
            (48000, false, false, crate::platform::config::PkiPolicy::Production, Some([48100, 48199]))
        );
        assert_eq!(
            c.site_summary(),
            [
                ("https://b.example", None, true),
                ("https://c.example", None, false),
                ("https://a.example", Some("https://cpx.a.example/login"), false)
            ]
        );
        assert!(
            p.describe().starts_with("managed policy profil de configuration fr.agentcpx.agent sets: "),
            "{}",
            p.describe()
        );
    }

    #[test]
    fn allowed_origins_as_one_string_and_no_settings() {
        let layer =
            layer_of(&[("allowed_origins".into(), s("https://a.example; https://b.example;"))]).unwrap();
        let (c, _) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://a.example", "https://b.example"]
        );
        assert!(
            layer_of(&[("PayloadVersion".into(), PlistValue::Integer(1))]).is_none(),
            "a profile without settings is no layer"
        );
    }

    #[test]
    fn a_bad_value_is_reported_with_its_key_and_takes_its_safe_default() {
        let problems = |settings: &[(String, PlistValue)]| layer_of(settings).expect("a layer").problems;
        let p = problems(&[
            ("browser_policies".into(), PlistValue::Integer(2)),
            ("allow_user_sites".into(), PlistValue::Other("date".into())),
        ]);
        assert!(p.iter().all(|p| p.source == SOURCE), "{p:?}");
        assert!(p.iter().any(|p| p.key == "browser_policies" && p.reason.contains("neither 0")), "{p:?}");
        let bad_site = site("https://m.example", false);
        let PlistValue::Dict(mut entries) = bad_site else { unreachable!() };
        entries.push(("server_roots".into(), PlistValue::Other("data".into())));
        let layer = layer_of(&[(
            "site".into(),
            PlistValue::Array(vec![PlistValue::Dict(entries), site("https://ok.example", false)]),
        )])
        .unwrap();
        assert!(
            layer.problems.iter().any(|p| p.key == "site"
                && p.reason.contains("site[0].server_roots")
                && p.site.as_deref() == Some("https://m.example")),
            "{:?}",
            layer.problems
        );
        let (c, _) = Config::load_with_policies(None, vec![layer]).unwrap();
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://ok.example"],
            "the malformed site is left out"
        );
        let (c, _) = Config::load_with_policies(
            None,
            vec![layer_of(&[("allow_user_sites".into(), PlistValue::Integer(7))]).unwrap()],
        )
        .unwrap();
        assert!(!c.allow_user_sites, "a malformed allow_user_sites is false, never open");
        assert!(
            problems(&[("prot".into(), PlistValue::Integer(1))]).iter().any(|p| p.key == "prot"),
            "an unknown key is reported"
        );
        assert!(
            problems(&[("port".into(), s("47413"))]).iter().any(|p| p.key == "port"),
            "a wrong type is reported"
        );
    }

    #[test]
    fn the_profile_wins_over_the_policy_file() {
        let dir = std::env::temp_dir().join(format!("cpx-macpolicy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.toml");
        std::fs::write(
            &file,
            "port = 2000\nbusy_wait_seconds = 6\n[[site]]\norigin = \"https://f.example\"\n",
        )
        .unwrap();
        let profile = layer_of(&[
            ("port".into(), PlistValue::Integer(3000)),
            ("site".into(), PlistValue::Array(vec![site("https://m.example", false)])),
        ])
        .unwrap();
        let (c, p) = Config::load_with_policies(None, vec![profile, PolicyLayer::from_file(&file)]).unwrap();
        assert_eq!((c.port, c.busy_wait_seconds), (3000, 6));
        assert_eq!(
            c.sites.iter().map(|s| s.origin.as_str()).collect::<Vec<_>>(),
            ["https://m.example", "https://f.example"]
        );
        assert!(
            p.describe().starts_with(&format!("managed policy {SOURCE} sets: port, site; managed policy ")),
            "{}",
            p.describe()
        );
    }
}
