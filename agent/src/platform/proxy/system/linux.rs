//! The desktop's proxy settings on Linux: GNOME's `org.gnome.system.proxy` (read with `gsettings`, as
//! GNOME's browsers do). Mode `manual`: the HTTPS proxy (else the HTTP one with `use-same-proxy`) and
//! `ignore-hosts`; mode `auto`: the PAC script evaluated by libproxy's `proxy` command when it is
//! installed (`libproxy-tools`), otherwise straight to the portal, said in the route's source.

use std::process::Command;

use crate::platform::proxy::no_proxy::bypassed;
use crate::platform::proxy::{ProxyServer, Route};

/// The route GNOME's settings give, `direct` when there are none.
pub fn desktop(host: &str, port: u16) -> Route {
    desktop_with(host, port, &gsettings, &libproxy)
}

/// The same with its two readers given (tests).
pub fn desktop_with(
    host: &str,
    port: u16,
    get: &dyn Fn(&str, &str) -> Option<String>,
    pac: &dyn Fn(&str) -> Option<String>,
) -> Route {
    const BASE: &str = "org.gnome.system.proxy";
    let mode = get(BASE, "mode").and_then(|v| gvariant_string(&v));
    match mode.as_deref() {
        Some("manual") => {
            let ignore =
                get(BASE, "ignore-hosts").map(|v| gvariant_strings(&v).join(",")).unwrap_or_default();
            if bypassed(&ignore, host, port) {
                return Route::direct(format!("GNOME: ignore-hosts ({ignore})"));
            }
            let server = |schema: &str| {
                let h = get(schema, "host").and_then(|v| gvariant_string(&v)).filter(|h| !h.is_empty())?;
                let p = get(schema, "port")
                    .and_then(|v| v.trim().trim_start_matches("uint32 ").parse::<u16>().ok())?;
                (p != 0).then(|| ProxyServer::parse(&format!("{h}:{p}")).ok()).flatten()
            };
            let https = server(&format!("{BASE}.https"));
            let same = get(BASE, "use-same-proxy").is_some_and(|v| v.trim() == "true");
            let chosen = https.or_else(|| same.then(|| server(&format!("{BASE}.http"))).flatten());
            match chosen {
                Some(mut p) => {
                    // GNOME keeps Basic credentials for the HTTP proxy only.
                    let http = format!("{BASE}.http");
                    if get(&http, "use-authentication").is_some_and(|v| v.trim() == "true") {
                        let user = get(&http, "authentication-user").and_then(|v| gvariant_string(&v));
                        let password =
                            get(&http, "authentication-password").and_then(|v| gvariant_string(&v));
                        if let (Some(u), Some(pw)) = (user, password) {
                            p.basic = Some((u, pw));
                        }
                    }
                    Route::via(p, "GNOME (manual)")
                }
                None => Route::direct("GNOME: manual, but no HTTPS proxy set"),
            }
        }
        Some("auto") => {
            let url = get(BASE, "autoconfig-url").and_then(|v| gvariant_string(&v)).unwrap_or_default();
            let target = format!("https://{}/", crate::platform::proxy::connect::authority(host, port));
            match pac(&target) {
                Some(answer) => match super::pick_https(&answer) {
                    Some(p) => Route::via(p, format!("GNOME (automatic, PAC {url}, libproxy)")),
                    None => Route::direct(format!("GNOME (automatic, PAC {url}, libproxy): DIRECT")),
                },
                None => Route::direct(format!(
                    "GNOME: automatic (PAC {url}) not evaluated: libproxy's `proxy` command is not installed"
                )),
            }
        }
        _ => Route::direct("no proxy configured"),
    }
}

fn gsettings(schema: &str, key: &str) -> Option<String> {
    let out = Command::new("gsettings").args(["get", schema, key]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// libproxy's answer for `url` (`http://proxy:3128`, `direct://`).
fn libproxy(url: &str) -> Option<String> {
    let out = Command::new("proxy").arg(url).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.split_whitespace().next()?.to_owned();
    Some(if first.starts_with("direct://") {
        "DIRECT".into()
    } else {
        format!("PROXY {}", first.trim_start_matches("http://"))
    })
}

/// `'text'` → `text` (GVariant's text form; `\'` and `\\` unescaped).
pub fn gvariant_string(v: &str) -> Option<String> {
    let v = v.trim();
    let inner = v
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `['a', 'b']` (or `@as []`) → the strings.
pub fn gvariant_strings(v: &str) -> Vec<String> {
    let v = v.trim().trim_start_matches("@as").trim();
    let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else { return Vec::new() };
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in inner.chars() {
        match quote {
            Some(q) if escaped => {
                current.push(c);
                escaped = false;
                let _ = q;
            }
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => {
                items.push(std::mem::take(&mut current));
                quote = None;
            }
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str, &str) -> Option<String> {
        move |schema, key| {
            let full = format!("{schema} {key}");
            pairs.iter().find(|(k, _)| *k == full).map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn gvariants() {
        assert_eq!(gvariant_string("'manual'\n").as_deref(), Some("manual"));
        assert_eq!(gvariant_string("'l\\'hôpital'").as_deref(), Some("l'hôpital"));
        assert_eq!(gvariant_string("3128"), None);
        assert_eq!(
            gvariant_strings("['localhost', '127.0.0.0/8', \"::1\"]"),
            ["localhost", "127.0.0.0/8", "::1"]
        );
        assert!(gvariant_strings("@as []").is_empty());
    }

    #[test]
    fn gnome_manual_auto_and_none() {
        let manual = settings(&[
            ("org.gnome.system.proxy mode", "'manual'"),
            ("org.gnome.system.proxy ignore-hosts", "['localhost', '*.intra.chu.fr']"),
            ("org.gnome.system.proxy.https host", "'proxy.chu.fr'"),
            ("org.gnome.system.proxy.https port", "3128"),
            ("org.gnome.system.proxy.http use-authentication", "true"),
            ("org.gnome.system.proxy.http authentication-user", "'jean'"),
            ("org.gnome.system.proxy.http authentication-password", "'pw'"),
        ]);
        let no_pac = |_: &str| None;
        let r = desktop_with("cpx.portail.fr", 443, &manual, &no_pac);
        let p = r.proxy.unwrap();
        assert_eq!(
            (p.authority(), p.basic),
            ("proxy.chu.fr:3128".into(), Some(("jean".into(), "pw".into())))
        );
        assert!(desktop_with("dpi.intra.chu.fr", 443, &manual, &no_pac).proxy.is_none());

        let same = settings(&[
            ("org.gnome.system.proxy mode", "'manual'"),
            ("org.gnome.system.proxy use-same-proxy", "true"),
            ("org.gnome.system.proxy.https host", "''"),
            ("org.gnome.system.proxy.http host", "'p'"),
            ("org.gnome.system.proxy.http port", "8080"),
        ]);
        assert_eq!(desktop_with("a.fr", 443, &same, &no_pac).proxy.unwrap().authority(), "p:8080");

        let auto = settings(&[
            ("org.gnome.system.proxy mode", "'auto'"),
            ("org.gnome.system.proxy autoconfig-url", "'http://wpad/wpad.dat'"),
        ]);
        let r = desktop_with("a.fr", 443, &auto, &no_pac);
        assert!(r.proxy.is_none() && r.source.contains("not evaluated"), "{r:?}");
        let pac = |url: &str| (url == "https://a.fr:443/").then(|| "PROXY pac-proxy:3128".to_owned());
        assert_eq!(desktop_with("a.fr", 443, &auto, &pac).proxy.unwrap().authority(), "pac-proxy:3128");

        let none = settings(&[("org.gnome.system.proxy mode", "'none'")]);
        assert!(desktop_with("a.fr", 443, &none, &no_pac).proxy.is_none());
        assert!(desktop_with("a.fr", 443, &|_: &str, _: &str| None, &no_pac).proxy.is_none());
    }
}
