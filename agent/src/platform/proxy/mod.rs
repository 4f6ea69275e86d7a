//! The way out to a portal's mTLS endpoint: straight to it, or through the HTTP proxy the browser uses
//! (an HTTP `CONNECT` tunnel, inside which the TLS handshake with the card runs end to end).
//!
//! - [`ProxySetting`]: the `proxy` policy key: `system` (the default: what the OS says), `direct`, or a
//!   fixed `http://host:port`.
//! - [`system`]: the OS's proxy configuration for one URL: environment variables and the desktop's
//!   settings (GNOME) on Linux, WinHTTP/WinINet with PAC and WPAD on Windows, SystemConfiguration on macOS.
//! - [`tunnel`]: the `CONNECT` exchange, with proxy authentication ([`auth`]: Basic, Negotiate/Kerberos
//!   through GSSAPI or SSPI, NTLM through SSPI).
//! - [`connect`]: every address of a name tried in turn, not only the first.
//!
//! Failures are [`ProxyError`]s, each with its catalogue code ([`ProxyError::code`]).

pub mod auth;
pub mod connect;
#[cfg(unix)]
mod gssapi;
pub mod no_proxy;
#[cfg(windows)]
mod sspi;
pub mod system;
pub mod tunnel;

use std::time::Duration;

use crate::messages::Code;

pub use connect::connect_any;
pub use tunnel::open_tunnel;

/// The `proxy` policy key: how the agent reaches the portals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// The proxy the OS configures for the browsers (the default).
    #[default]
    System,
    /// Never a proxy.
    Direct,
    /// This proxy for every portal.
    Fixed(ProxyServer),
}

/// Why a `proxy` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("proxy {0:?}: expected \"system\", \"direct\" or http://host:port")]
    /// A value that is neither `system`, `direct` nor a proxy URL.
    Unknown(String),
    #[error("proxy {0:?}: only http:// proxies are supported (the tunnel to the portal is TLS already)")]
    /// A proxy URL whose scheme is not `http`.
    Scheme(String),
}

impl ProxySetting {
    /// Reads the policy key's value: `system`, `direct` or `http://host:port`.
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        match text.trim() {
            "" | "system" => Ok(Self::System),
            "direct" | "none" => Ok(Self::Direct),
            other => ProxyServer::parse(other).map(Self::Fixed),
        }
    }
}

impl std::fmt::Display for ProxySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Direct => f.write_str("direct"),
            Self::Fixed(p) => write!(f, "{p}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ProxySetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ProxySetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An HTTP proxy: host, port, and the Basic credentials written in its URL, if any
/// (`http://user:password@proxy:3128`, as `https_proxy` often carries them).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyServer {
    /// The proxy's host name or address.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// User and password for Basic, when the setting carries them.
    pub basic: Option<(String, String)>,
}

impl std::fmt::Debug for ProxyServer {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyServer({self})")
    }
}

impl std::fmt::Display for ProxyServer {
    /// `http://host:port` (never the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

impl ProxyServer {
    /// `http://host:port`, `host:port` or `host` (port 80 for `http://`, 3128 otherwise is not guessed:
    /// a bare host gets 80, as curl does).
    pub fn parse(text: &str) -> Result<Self, SettingError> {
        let text = text.trim();
        let with_scheme = if text.contains("://") { text.to_owned() } else { format!("http://{text}") };
        let url = url::Url::parse(&with_scheme).map_err(|_| SettingError::Unknown(text.into()))?;
        if url.scheme() != "http" {
            return Err(SettingError::Scheme(text.into()));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(SettingError::Unknown(text.into())),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(SettingError::Unknown(text.into()));
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let basic = (!url.username().is_empty())
            .then(|| (decode(url.username()), decode(url.password().unwrap_or_default())));
        Ok(Self { host, port: url.port_or_known_default().unwrap_or(80), basic })
    }

    /// `host:port` (`[::1]:3128`).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How one portal is reached, and what said so (for `diagnose` and the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `None`: straight to the portal.
    pub proxy: Option<ProxyServer>,
    /// Where the choice comes from: « policy », « https_proxy », « GNOME », « WinHTTP (PAC …) »…
    pub source: String,
}

impl Route {
    /// No proxy, and what chose that.
    pub fn direct(source: impl Into<String>) -> Self {
        Self { proxy: None, source: source.into() }
    }
    /// Through `proxy`, and what chose it.
    pub fn via(proxy: ProxyServer, source: impl Into<String>) -> Self {
        Self { proxy: Some(proxy), source: source.into() }
    }
}

/// The route to `host:port` (an https URL) under `setting`.
pub fn route_for(setting: &ProxySetting, host: &str, port: u16) -> Route {
    match setting {
        ProxySetting::Direct => Route::direct("policy: direct"),
        ProxySetting::Fixed(_) if no_proxy::is_loopback(host) => {
            Route::direct("loopback (never through a proxy)")
        }
        ProxySetting::Fixed(p) => Route::via(p.clone(), "policy"),
        ProxySetting::System => system::route(host, port),
    }
}

/// Why the way to a portal could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Straight to the portal: no address of the name answered.
    #[error("cannot reach {target}: {why}")]
    Unreachable {
        /// The portal's `host:port`.
        target: String,
        /// Why.
        why: String,
    },
    /// The proxy itself cannot be reached.
    #[error("cannot reach the proxy {proxy}: {why}")]
    ProxyUnreachable {
        /// The proxy.
        proxy: String,
        /// Why.
        why: String,
    },
    /// The proxy answered the CONNECT with a refusal (403, 502…).
    #[error("the proxy {proxy} refused the tunnel to {target}: {status} {reason}")]
    Refused {
        /// The proxy.
        proxy: String,
        /// The portal's `host:port`.
        target: String,
        /// The proxy's status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The proxy asks for authentication the agent cannot give (no credentials for the schemes offered).
    #[error("the proxy {proxy} asks for authentication ({offered}) and the agent has no credentials for it")]
    AuthRequired {
        /// The proxy.
        proxy: String,
        /// The schemes it offered.
        offered: String,
    },
    /// The agent authenticated and the proxy still refused, or the Kerberos/SSPI side failed.
    #[error("authentication to the proxy {proxy} failed ({scheme}): {why}")]
    AuthFailed {
        /// The proxy.
        proxy: String,
        /// The scheme tried.
        scheme: String,
        /// Why it failed.
        why: String,
    },
    /// Not an HTTP answer, or a head too large.
    #[error("the proxy {proxy} gave an unreadable answer: {why}")]
    BadAnswer {
        /// The proxy.
        proxy: String,
        /// What was wrong.
        why: String,
    },
    /// The deadline passed while connecting or in the CONNECT exchange.
    #[error("no answer from the proxy {proxy} within {seconds} s")]
    TooSlow {
        /// The proxy.
        proxy: String,
        /// The time it had.
        seconds: u64,
    },
}

impl ProxyError {
    /// The catalogue code of this failure.
    pub fn code(&self) -> Code {
        match self {
            Self::Unreachable { .. } => Code::PortalUnreachable,
            Self::ProxyUnreachable { .. } | Self::TooSlow { .. } => Code::ProxyUnreachable,
            Self::Refused { .. } | Self::BadAnswer { .. } => Code::ProxyRefused,
            Self::AuthRequired { .. } => Code::ProxyAuthRequired,
            Self::AuthFailed { .. } => Code::ProxyAuthFailed,
        }
    }
}

/// Opens a TCP stream to `host:port` by `route`: a tunnel through the proxy, or straight (every address of
/// the name tried), within `timeout`. The stream carries the TLS handshake next.
pub async fn open(
    route: &Route,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, ProxyError> {
    let deadline = tokio::time::Instant::now() + timeout;
    match &route.proxy {
        None => connect_any(host, port, deadline)
            .await
            .map_err(|why| ProxyError::Unreachable { target: connect::authority(host, port), why }),
        Some(proxy) => open_tunnel(proxy, host, port, deadline, &auth::Credentials::system()).await,
    }
}

/// [`open`] for callers without a runtime (`diagnose`, a tunnel probe): a runtime of its own on this
/// thread; the stream, past the proxy's answer, in blocking mode.
pub fn open_blocking(
    route: &Route,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<std::net::TcpStream, ProxyError> {
    let failed = |why: String| match &route.proxy {
        Some(p) => ProxyError::ProxyUnreachable { proxy: p.to_string(), why },
        None => ProxyError::Unreachable { target: connect::authority(host, port), why },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    runtime.block_on(async {
        let tcp = open(route, host, port, timeout).await?.into_std().map_err(|e| failed(e.to_string()))?;
        tcp.set_nonblocking(false).map_err(|e| failed(e.to_string()))?;
        Ok(tcp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(ProxySetting::parse("system"), Ok(ProxySetting::System));
        assert_eq!(ProxySetting::parse(""), Ok(ProxySetting::System));
        assert_eq!(ProxySetting::parse("direct"), Ok(ProxySetting::Direct));
        let ProxySetting::Fixed(p) = ProxySetting::parse("http://proxy.chu.fr:3128").unwrap() else {
            panic!()
        };
        assert_eq!((p.host.as_str(), p.port, p.basic.is_none()), ("proxy.chu.fr", 3128, true));
        assert_eq!(p.to_string(), "http://proxy.chu.fr:3128");
        let p = ProxyServer::parse("10.1.2.3:8080").unwrap();
        assert_eq!(p.authority(), "10.1.2.3:8080");
        let p = ProxyServer::parse("http://jean%40chu:s%3Ecret@[::1]:3128/").unwrap();
        assert_eq!(p.basic, Some(("jean@chu".into(), "s>cret".into())));
        assert_eq!((p.authority(), p.to_string()), ("[::1]:3128".into(), "http://[::1]:3128".into()));
        assert!(!format!("{p:?}").contains("cret"), "the password is never printed");
        assert_eq!(ProxyServer::parse("http://proxy").unwrap().port, 80);
        assert!(matches!(ProxySetting::parse("https://proxy:3128"), Err(SettingError::Scheme(_))));
        assert!(matches!(ProxySetting::parse("socks5://proxy:1080"), Err(SettingError::Scheme(_))));
        assert!(matches!(ProxySetting::parse("http://proxy:3128/pac"), Err(SettingError::Unknown(_))));
        assert!(matches!(ProxySetting::parse("http://:3128"), Err(SettingError::Unknown(_))));
        let s: ProxySetting =
            toml::from_str::<toml::Table>("proxy = \"direct\"").unwrap()["proxy"].clone().try_into().unwrap();
        assert_eq!(s, ProxySetting::Direct);
    }

    #[test]
    fn a_fixed_proxy_is_not_used_for_the_loopback() {
        let fixed = ProxySetting::parse("http://proxy:3128").unwrap();
        assert!(route_for(&fixed, "127.0.0.1", 8443).proxy.is_none());
        assert!(route_for(&fixed, "localhost", 8443).proxy.is_none());
        assert!(route_for(&fixed, "::1", 8443).proxy.is_none());
        assert_eq!(route_for(&fixed, "cpx.portail.fr", 443).proxy.unwrap().authority(), "proxy:3128");
        assert!(route_for(&ProxySetting::Direct, "cpx.portail.fr", 443).proxy.is_none());
    }
}
