//! `cpx-agent report`: a bundle to attach to a helpdesk ticket — versions, OS, the diagnose checks
//! (readers, ATRs, card types), recent log lines. Never a PIN (none is ever logged); the identifiant
//! national and the holder's names are masked unless the user asks to include them, and so are the
//! sites the professional used: every `http(s)://host[:port]` in the log lines becomes « [site N] »
//! (numbered, so that the helpdesk can follow one site through the lines) unless the user asks to
//! include them (`--include-origins`). The configured sites stay in the checks: IT set them.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::card::scan::ScanOptions;
use crate::helpdesk::diagnose::{self, Check, Options};

/// What the user asked to keep in the report (both masked by default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    /// The holder's names and identifiant national.
    pub identity: bool,
    /// The sites (origins) in the log lines.
    pub origins: bool,
}

/// Runs the checks and builds the report, masking the identities of the cards present wherever they
/// appear and the sites in the log lines (the tray's « copier le rapport »).
pub fn gather(opts: &Options, include_identity: bool) -> String {
    gather_with(opts, Include { identity: include_identity, origins: false })
}

/// The same, keeping what `include` says (`cpx-agent report`).
pub fn gather_with(opts: &Options, include: Include) -> String {
    let checks = diagnose::run(opts);
    let mut identities = Vec::new();
    let scan_options = ScanOptions { with_pin: false, reader: opts.reader.clone() };
    let scanned = opts.cards.scan_blocking(&scan_options).unwrap_or_default();
    for card in scanned.iter().filter_map(|r| r.card.as_ref()) {
        let id = &card.identity;
        identities.extend([id.national_id.clone(), id.nom.clone(), id.prenom.clone(), id.display_name()]);
    }
    build_with(&checks, &opts.config_source, identities, crate::helpdesk::logging::recent_lines(200), include)
}

/// Replaces each `http://` or `https://` origin in `lines` with « [site N] », the same N for the same
/// origin.
pub fn mask_origins(lines: &[String]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    lines
        .iter()
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut rest = line.as_str();
            while let Some(at) = ["https://", "http://"]
                .iter()
                .filter_map(|scheme| rest.find(scheme).map(|i| (i, scheme.len())))
                .min()
            {
                let (start, scheme_len) = at;
                let authority = rest[start + scheme_len..]
                    .find(|c: char| {
                        !(c.is_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_' | '@' | '%'))
                    })
                    .map_or(rest.len(), |n| start + scheme_len + n);
                out.push_str(&rest[..start]);
                let origin = &rest[start..authority];
                if authority == start + scheme_len {
                    out.push_str(origin);
                } else {
                    let next = seen.len() + 1;
                    let n = *seen.entry(origin.to_ascii_lowercase()).or_insert(next);
                    out.push_str(&format!("[site {n}]"));
                }
                rest = &rest[authority..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// "899700123456" → "89••••••••56" (enough to tell two cards apart); "JEAN DUPONT" → "J••• D•••••".
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n >= 8 && chars.iter().filter(|c| c.is_ascii_digit()).count() * 2 > n {
        return chars.iter().enumerate().map(|(i, c)| if i < 2 || i >= n - 2 { *c } else { '•' }).collect();
    }
    s.split(' ')
        .map(|w| w.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '•' }).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// True for what looks like an identifiant national: 8 + 11 digits (RPPS) or 0 + 9 characters (ADELI).
fn national_id_like(token: &str) -> bool {
    let digits = token.bytes().filter(u8::is_ascii_digit).count();
    (token.len() == 12 && token.starts_with('8') && digits == 12)
        || (token.len() == 10
            && token.starts_with('0')
            && digits >= 7
            && token.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Masks the known identities (national ids, names) and anything shaped like a national id.
pub fn redact(text: &str, known: &[String]) -> String {
    let mut out = text.to_owned();
    let mut known: Vec<&String> = known.iter().filter(|k| k.chars().count() >= 2).collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in known {
        out = out.replace(k.as_str(), &mask(k));
    }
    let mut result = String::with_capacity(out.len());
    let mut token = String::new();
    for c in out.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() {
            token.push(c);
            continue;
        }
        if national_id_like(&token) {
            result.push_str(&mask(&token));
        } else {
            result.push_str(&token);
        }
        token.clear();
        result.push(c);
    }
    result.pop();
    result
}

/// Values of identity fields in a JSON log line (holder, nom, prenom, national_id), to be masked.
fn identities_in_log(line: &str, into: &mut Vec<String>) {
    if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) {
        let fields = o.get("fields").and_then(Value::as_object).cloned().unwrap_or_default();
        for key in ["holder", "nom", "prenom", "national_id"] {
            if let Some(v) = fields.get(key).or_else(|| o.get(key)).and_then(Value::as_str) {
                into.push(v.to_owned());
                into.extend(v.split_whitespace().map(str::to_owned));
            }
        }
    }
}

fn os() -> Value {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let pretty =
        release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_owned());
    json!({"family": std::env::consts::OS, "arch": std::env::consts::ARCH, "release": pretty})
}

/// The report. `identities` are the names and national ids of the cards present (from a scan); the
/// sites in the log lines are masked.
#[cfg(test)]
pub fn build(
    checks: &[Check],
    config_source: &str,
    identities: Vec<String>,
    log_lines: Vec<String>,
    include_identity: bool,
) -> String {
    build_with(
        checks,
        config_source,
        identities,
        log_lines,
        Include { identity: include_identity, origins: false },
    )
}

/// The report, keeping what `include` says.
pub fn build_with(
    checks: &[Check],
    config_source: &str,
    mut identities: Vec<String>,
    log_lines: Vec<String>,
    include: Include,
) -> String {
    let include_identity = include.identity;
    let log_lines = if include.origins { log_lines } else { mask_origins(&log_lines) };
    let report = json!({
        "agent_version": env!("CARGO_PKG_VERSION"),
        "generated_at_unix": crate::card::scan::now_unix(),
        "os": os(),
        "configuration": config_source,
        "checks": checks,
        "first_fault": crate::helpdesk::diagnose::first_fault(checks).map(|c| json!({"check": c.id, "code": c.code})),
        "log": log_lines,
        "identity_included": include_identity,
        "origins_included": include.origins,
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if include_identity {
        return text;
    }
    for line in &log_lines {
        identities_in_log(line, &mut identities);
    }
    redact(&text, &identities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_and_shaped_identities() {
        let t = redact(
            "JEAN DUPONT (899700123456), ADELI 0751012345, port 47413, serial 992138450",
            &["DUPONT".into(), "JEAN".into()],
        );
        assert!(
            !t.contains("DUPONT")
                && !t.contains("JEAN")
                && !t.contains("899700123456")
                && !t.contains("0751012345"),
            "{t}"
        );
        assert!(t.contains("47413") && t.contains("992138450"), "other numbers stay: {t}");
        assert_eq!(mask("899700123456"), "89••••••••56");
        assert_eq!(mask("JEAN DUPONT"), "J••• D•••••");
    }

    #[test]
    fn names_from_log_lines_are_masked_too() {
        let line =
            r#"{"fields":{"message":"card chosen","holder":"CLAIRE MARTIN","national_id":"899700234567"}}"#;
        let out = build(&[], "test", vec![], vec![line.to_owned()], false);
        assert!(!out.contains("MARTIN") && !out.contains("CLAIRE") && !out.contains("899700234567"), "{out}");
        let kept = build(&[], "test", vec![], vec![line.to_owned()], true);
        assert!(kept.contains("CLAIRE MARTIN"));
    }

    #[test]
    fn visited_sites_are_masked_unless_asked() {
        let lines = vec![
            r#"{"fields":{"message":"request","origin":"https://cabinet.example.fr:8443","path":"/v1/authenticate"}}"#.to_owned(),
            r#"{"fields":{"message":"site consent","origin":"https://autre-site.example","decision":"Refuse"}}"#.to_owned(),
            r#"{"fields":{"message":"request","origin":"https://CABINET.example.fr:8443","endpoint":"http://10.0.0.1/x"}}"#.to_owned(),
        ];
        let masked = build(&[], "test", vec![], lines.clone(), false);
        for site in ["cabinet.example.fr", "CABINET", "autre-site.example", "10.0.0.1"] {
            assert!(!masked.contains(site), "{site} in the report: {masked}");
        }
        assert!(
            masked.contains("[site 1]") && masked.contains("[site 2]") && masked.contains("[site 3]/x"),
            "{masked}"
        );
        assert!(!masked.contains("[site 4]"), "one number per site: {masked}");
        assert!(masked.contains("\"origins_included\": false"));
        let kept = build_with(&[], "test", vec![], lines, Include { identity: false, origins: true });
        assert!(
            kept.contains("https://cabinet.example.fr:8443") && kept.contains("https://autre-site.example"),
            "{kept}"
        );
        assert_eq!(
            mask_origins(&["no site, just https:// and text".to_owned()]),
            vec!["no site, just https:// and text".to_owned()]
        );
    }
}
