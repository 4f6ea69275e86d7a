//! A portal's mTLS login endpoint, as the configuration names it and the TLS client with the card's key
//! (`crate::card`) reaches it.

/// A portal's mTLS login endpoint, `https://host[:port]/path`: parsed once, when the configuration loads
/// ([`crate::platform::config::Site`]), by the same URL rules as the origins ([`url::Url`]). A host may be
/// a name, an IPv4 address or a bracketed IPv6 one (`https://[::1]:8443/login`); user info, a fragment or
/// another scheme are refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Endpoint {
    url: url::Url,
    /// The host as the TLS name and the socket address take it (an IPv6 address without brackets).
    pub host: String,
    /// The TCP port (443 when the URL names none).
    pub port: u16,
    /// The path and query the POST goes to.
    pub path: String,
}

/// Why a string is not an mTLS endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("mtls_endpoint {0:?} is not a URL: {1}")]
    NotUrl(String, url::ParseError),
    #[error("mtls_endpoint {0:?} is not an https:// address")]
    NotHttps(String),
    #[error("mtls_endpoint {0:?} has user info (not allowed)")]
    UserInfo(String),
    #[error("mtls_endpoint {0:?} has a fragment (not allowed)")]
    Fragment(String),
}

impl Endpoint {
    /// Parses and checks `https://host[:port]/path`.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let url = url::Url::parse(text).map_err(|e| EndpointError::NotUrl(text.into(), e))?;
        if url.scheme() != "https" {
            return Err(EndpointError::NotHttps(text.into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::UserInfo(text.into()));
        }
        if url.fragment().is_some() {
            return Err(EndpointError::Fragment(text.into()));
        }
        // An https URL always has a host (the parser refuses `https://:1/x`) and a known default port.
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(EndpointError::NotHttps(text.into())),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let path = url[url::Position::BeforePath..url::Position::AfterQuery].to_owned();
        Ok(Self { host, port, path, url })
    }

    /// The endpoint as written in the configuration (normalised: `https://m.a.fr:443/x` → `https://m.a.fr/x`).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// `host:port` (`[::1]:8443`), for messages and the `Host` header of a non-default port.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.url.host_str().unwrap_or_default(), self.port)
    }

    /// The `Host` header: the host alone on port 443.
    pub fn host_header(&self) -> String {
        match self.url.port() {
            None => self.url.host_str().unwrap_or_default().to_owned(),
            Some(_) => self.authority(),
        }
    }
}

impl TryFrom<String> for Endpoint {
    type Error = EndpointError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;

    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://m.a.fr:8444/cpx/login?v=1").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("m.a.fr", 8444, "/cpx/login?v=1"));
        assert_eq!((e.authority(), e.host_header()), ("m.a.fr:8444".into(), "m.a.fr:8444".into()));
        // No port: 443, and the Host header without it; no path: `/`.
        let e = Endpoint::parse("https://M.A.fr").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("m.a.fr", 443, "/"));
        assert_eq!(e.host_header(), "m.a.fr");
        assert_eq!(Endpoint::parse("https://m.a.fr:443/x").unwrap().host_header(), "m.a.fr");
        // IPv6: bracketed in the URL and the Host header, bare for the socket and the TLS name.
        let e = Endpoint::parse("https://[::1]:8443/cpx/login").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("::1", 8443, "/cpx/login"));
        assert_eq!(e.authority(), "[::1]:8443");
        assert!(ServerName::try_from(e.host.clone()).is_ok());
        assert_eq!(Endpoint::parse("https://[::1]/x").unwrap().port, 443);
        // Refused.
        assert!(matches!(Endpoint::parse("http://m.a.fr/x"), Err(EndpointError::NotHttps(_))));
        assert!(matches!(Endpoint::parse("ftp://m.a.fr/x"), Err(EndpointError::NotHttps(_))));
        assert!(matches!(Endpoint::parse("https://u@m.a.fr/x"), Err(EndpointError::UserInfo(_))));
        assert!(matches!(Endpoint::parse("https://u:p@m.a.fr/x"), Err(EndpointError::UserInfo(_))));
        assert!(matches!(Endpoint::parse("https://m.a.fr/x#f"), Err(EndpointError::Fragment(_))));
        for bad in ["https://:1/x", "https://m.a.fr:99999/x", "https://[::1/x", "m.a.fr/x", ""] {
            assert!(matches!(Endpoint::parse(bad), Err(EndpointError::NotUrl(..))), "{bad}");
        }
        // From the configuration's string.
        let e: Endpoint = serde_json::from_str("\"https://[::1]:8443/l\"").unwrap();
        assert_eq!(e.as_str(), "https://[::1]:8443/l");
        assert!(serde_json::from_str::<Endpoint>("\"http://a/l\"").is_err());
    }
}
