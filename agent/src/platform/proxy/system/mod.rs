//! The proxy the OS configures for one https URL, as the browsers read it:
//!
//! - every OS: the loopback never goes through a proxy;
//! - Linux ([`linux`]): the environment (`https_proxy`, `all_proxy`, `no_proxy`, either case), then the
//!   desktop's settings (GNOME's `org.gnome.system.proxy`: manual, or automatic through libproxy's
//!   `proxy` command when installed);
//! - Windows ([`windows`]): the user's WinINet settings (automatic detection/WPAD and PAC scripts
//!   evaluated by WinHTTP, then the manual proxy and its bypass list), then WinHTTP's machine setting
//!   (`netsh winhttp set proxy`);
//! - macOS ([`macos`]): SystemConfiguration's proxies (the HTTPS proxy and its exceptions; a PAC script
//!   evaluated by CFNetwork).

#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(windows)]
pub mod windows;

use super::no_proxy::{bypassed, is_loopback};
use super::{ProxyServer, Route};

/// The route the OS gives for `https://host:port/`.
pub fn route(host: &str, port: u16) -> Route {
    if is_loopback(host) {
        return Route::direct("loopback (never through a proxy)");
    }
    #[cfg(target_os = "linux")]
    {
        from_env(host, port, &|k| std::env::var(k).ok()).unwrap_or_else(|| linux::desktop(host, port))
    }
    #[cfg(windows)]
    {
        windows::route(host, port)
    }
    #[cfg(target_os = "macos")]
    {
        from_env(host, port, &|k| std::env::var(k).ok()).unwrap_or_else(|| macos::route(host, port))
    }
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    {
        from_env(host, port, &|k| std::env::var(k).ok())
            .unwrap_or_else(|| Route::direct("no proxy configured"))
    }
}

/// The environment's proxy for an https URL, as curl reads it: `https_proxy`, else `all_proxy` (lower
/// case first), unless `no_proxy` covers the host. `None`: the environment sets no proxy.
pub fn from_env(host: &str, port: u16, var: &dyn Fn(&str) -> Option<String>) -> Option<Route> {
    let get =
        |name: &str| var(name).or_else(|| var(&name.to_ascii_uppercase())).filter(|v| !v.trim().is_empty());
    let (name, value) = ["https_proxy", "all_proxy"].iter().find_map(|n| get(n).map(|v| (*n, v)))?;
    if let Some(list) = get("no_proxy") {
        if bypassed(&list, host, port) {
            return Some(Route::direct(format!("no_proxy ({list})")));
        }
    }
    match ProxyServer::parse(&value) {
        Ok(p) => Some(Route::via(p, name)),
        Err(e) => {
            tracing::warn!(variable = name, error = %e, "proxy variable not understood, ignored");
            None
        }
    }
}

/// A proxy list as WinINet, PAC results and desktop settings write it (`host:port`, or
/// `http=a:80;https=b:443`, or `PROXY a:80; DIRECT`): the proxy for https, `None` for direct.
pub fn pick_https(list: &str) -> Option<ProxyServer> {
    let entries: Vec<&str> = list.split([';', ' ']).map(str::trim).filter(|e| !e.is_empty()).collect();
    // A PAC answer: `PROXY host:port`, `HTTPS host:port`…, `DIRECT`.
    if entries.iter().any(|e| e.eq_ignore_ascii_case("PROXY") || e.eq_ignore_ascii_case("DIRECT")) {
        let mut words = entries.iter();
        while let Some(w) = words.next() {
            if w.eq_ignore_ascii_case("DIRECT") {
                return None;
            }
            if w.eq_ignore_ascii_case("PROXY") {
                return words.next().and_then(|a| ProxyServer::parse(a).ok());
            }
        }
        return None;
    }
    let scheme = |s: &str| entries.iter().find_map(|e| e.strip_prefix(s)).map(str::to_owned);
    let chosen =
        scheme("https=").or_else(|| entries.iter().find(|e| !e.contains('=')).map(|e| (*e).to_owned()))?;
    ProxyServer::parse(&chosen).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn environment() {
        let r =
            from_env("cpx.portail.fr", 443, &env(&[("https_proxy", "http://proxy.chu.fr:3128")])).unwrap();
        assert_eq!(
            (r.proxy.unwrap().authority(), r.source.as_str()),
            ("proxy.chu.fr:3128".into(), "https_proxy")
        );
        let r =
            from_env("a.fr", 443, &env(&[("HTTPS_PROXY", "proxy:8080"), ("ALL_PROXY", "other:1")])).unwrap();
        assert_eq!(r.proxy.unwrap().authority(), "proxy:8080");
        let r = from_env("a.fr", 443, &env(&[("all_proxy", "http://other:1")])).unwrap();
        assert_eq!(r.source, "all_proxy");
        // http_proxy alone is for http:// URLs: the portal's endpoint is https.
        assert_eq!(from_env("a.fr", 443, &env(&[("http_proxy", "http://p:1")])), None);
        let r = from_env(
            "cpx.chu.fr",
            443,
            &env(&[("https_proxy", "http://p:1"), ("NO_PROXY", "localhost,.chu.fr")]),
        )
        .unwrap();
        assert!(r.proxy.is_none() && r.source.starts_with("no_proxy"), "{r:?}");
        // Not understood: ignored (the desktop's settings apply).
        assert_eq!(from_env("a.fr", 443, &env(&[("https_proxy", "socks5://p:1")])), None);
    }

    #[test]
    fn proxy_lists() {
        assert_eq!(pick_https("proxy:8080").unwrap().authority(), "proxy:8080");
        assert_eq!(pick_https("http=a:80;https=b:443;ftp=c:21").unwrap().authority(), "b:443");
        assert_eq!(pick_https("http=a:80"), None);
        assert_eq!(pick_https("PROXY p1:3128; PROXY p2:3128; DIRECT").unwrap().authority(), "p1:3128");
        assert_eq!(pick_https("DIRECT"), None);
        assert_eq!(pick_https(""), None);
    }
}
