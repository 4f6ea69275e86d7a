//! The hosts a proxy is not used for: the loopback always, and the OS's bypass list (`no_proxy`, GNOME's
//! `ignore-hosts`, WinINet's `ProxyOverride`, macOS's `ExceptionsList`), in the forms they share:
//! `*` (everything), a domain and its subdomains (`chu.fr`, `.chu.fr`, `*.chu.fr`), an address or a
//! network (`10.0.0.0/8`), `<local>` (names without a dot), an optional `:port` after an entry.

use std::net::IpAddr;

/// The loopback: `localhost` and its subdomains, 127.0.0.0/8, ::1.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Whether `host` (and `port`) matches one entry of a bypass list given as text, entries separated by
/// commas, semicolons or blanks.
pub fn bypassed(list: &str, host: &str, port: u16) -> bool {
    list.split([',', ';', ' ', '\t', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|e| matches(e, host, port))
}

/// One entry against one host.
pub fn matches(entry: &str, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').trim_matches(['[', ']']).to_ascii_lowercase();
    let entry = entry.trim().to_ascii_lowercase();
    if entry == "*" {
        return true;
    }
    if entry == "<local>" {
        return !host.contains('.') && !host.contains(':');
    }
    // An optional port: `host:443`, `[::1]:443` (a bare IPv6 address has colons of its own).
    let (entry, entry_port) = split_port(&entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    let entry = entry.trim_start_matches("http://").trim_start_matches("https://");
    // A network.
    if let Some((net, bits)) = entry.split_once('/') {
        let (Ok(net), Ok(bits), Ok(addr)) =
            (net.parse::<IpAddr>(), bits.parse::<u32>(), host.parse::<IpAddr>())
        else {
            return false;
        };
        return in_network(addr, net, bits);
    }
    if let (Ok(a), Ok(b)) = (entry.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return a == b;
    }
    // A domain: `chu.fr`, `.chu.fr`, `*.chu.fr` cover the domain and its subdomains; other wildcards
    // (`*chu.fr`, `10.*`) match as a glob.
    let bare = entry.trim_start_matches("*.").trim_start_matches('.');
    if !bare.contains('*') {
        return host == bare || host.ends_with(&format!(".{bare}"));
    }
    glob(entry, &host)
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, after)) = rest.split_once(']') {
            return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            (h, p.parse().ok())
        }
        _ => (entry, None),
    }
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        for h in ["localhost", "LOCALHOST.", "a.localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["portail.fr", "10.0.0.1", "localhost.fr", "::2"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn bypass_lists() {
        let list =
            "localhost, .chu-exemple.fr;*.intra.fr 10.0.0.0/8,fe80::/10  <local> portail.fr:8443 *mgr*";
        for (host, port) in [
            ("chu-exemple.fr", 443),
            ("cpx.chu-exemple.fr", 443),
            ("a.b.intra.fr", 443),
            ("intra.fr", 443),
            ("10.20.30.40", 443),
            ("fe80::1", 443),
            ("serveur", 443),
            ("portail.fr", 8443),
            ("sub.portail.fr", 8443),
            ("webmgr.ars.fr", 443),
        ] {
            assert!(bypassed(list, host, port), "{host}:{port}");
        }
        for (host, port) in [
            ("chu-exemple.fr.evil.com", 443),
            ("evilchu-exemple.fr", 443),
            ("11.0.0.1", 443),
            ("portail.fr", 443),
            ("cpx.ameli.fr", 443),
        ] {
            assert!(!bypassed(list, host, port), "{host}:{port}");
        }
        assert!(bypassed("*", "anything.fr", 1));
        assert!(!bypassed("", "anything.fr", 1));
        assert!(matches("[::1]:443", "::1", 443) && !matches("[::1]:443", "::1", 80));
        assert!(matches("192.168.1.5", "192.168.1.5", 1) && !matches("192.168.1.5", "192.168.1.6", 1));
    }
}
