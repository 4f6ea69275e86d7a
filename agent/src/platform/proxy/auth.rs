//! Proxy authentication: the challenges of a `407` (`Proxy-Authenticate`), and the answers the agent can
//! give: Basic with the credentials of the proxy's URL, Negotiate (Kerberos, SPNEGO) with the session's
//! ticket through GSSAPI (Linux, macOS) or SSPI (Windows), NTLM through SSPI (Windows). No password is
//! ever asked for nor stored here: Negotiate and NTLM use the logged-in user's own credentials.

use base64::Engine;

/// An authentication scheme a proxy offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// User and password, base64 (RFC 7617).
    Basic,
    /// Kerberos through SPNEGO (RFC 4559).
    Negotiate,
    /// NTLM (Windows, through SSPI).
    Ntlm,
}

impl Scheme {
    /// The scheme's name in `Proxy-Authenticate`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Basic => "Basic",
            Self::Negotiate => "Negotiate",
            Self::Ntlm => "NTLM",
        }
    }
}

/// One challenge of a `Proxy-Authenticate` header: its scheme as written, and what follows it (a
/// Negotiate token, Basic's `realm=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, as the proxy wrote it.
    pub scheme: String,
    /// What follows the scheme (a realm, a token).
    pub rest: String,
}

impl Challenge {
    /// `Negotiate`, `Basic realm="x"`, `NTLM TlRMTVNT…`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        (!scheme.is_empty()).then(|| Self { scheme: scheme.to_owned(), rest: rest.trim().to_owned() })
    }

    /// The scheme, when the agent speaks it.
    pub fn known(&self) -> Option<Scheme> {
        match self.scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Scheme::Basic),
            "negotiate" => Some(Scheme::Negotiate),
            "ntlm" => Some(Scheme::Ntlm),
            _ => None,
        }
    }

    /// The token following a Negotiate or NTLM scheme (a continuation), decoded.
    pub fn token(&self) -> Option<Vec<u8>> {
        let t = self.rest.split([' ', ',']).next().filter(|t| !t.is_empty() && !t.contains('='))?;
        base64::engine::general_purpose::STANDARD.decode(t).ok()
    }
}

/// What the agent may answer a proxy with.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Basic: user and password (from the proxy's URL).
    pub basic: Option<(String, String)>,
    /// Negotiate (and NTLM on Windows) with the session's own credentials.
    pub negotiate: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field("negotiate", &self.negotiate)
            .finish()
    }
}

impl Credentials {
    /// The session's own credentials (Kerberos ticket, Windows logon); Basic comes from the proxy's URL.
    pub fn system() -> Self {
        Self { basic: None, negotiate: true }
    }
}

/// The `Proxy-Authorization` value of Basic.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A security context in progress (GSSAPI or SSPI): each step takes the proxy's token (none at first)
/// and gives the next token to send.
pub trait Context: Send {
    /// The next token to send, from the proxy's last one (`None` at the start).
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String>;
}

/// A new Negotiate (or NTLM) context for the proxy `host`: the service `HTTP@host`.
pub fn context(scheme: Scheme, host: &str) -> Result<Box<dyn Context>, String> {
    #[cfg(windows)]
    {
        super::sspi::Sspi::new(scheme, host).map(|c| Box::new(c) as Box<dyn Context>)
    }
    #[cfg(unix)]
    {
        match scheme {
            Scheme::Negotiate => super::gssapi::Gss::new(host).map(|c| Box::new(c) as Box<dyn Context>),
            _ => Err(format!("{} is available on Windows only (SSPI)", scheme.name())),
        }
    }
}

/// Whether Negotiate can be tried here at all: the GSSAPI library is there (Linux, macOS); SSPI always
/// is (Windows). For `diagnose`.
pub fn negotiate_available() -> Result<(), String> {
    #[cfg(unix)]
    {
        super::gssapi::available()
    }
    #[cfg(windows)]
    {
        Ok(())
    }
}

/// `Negotiate <base64>` / `NTLM <base64>`.
pub fn header(scheme: Scheme, token: &[u8]) -> String {
    format!("{} {}", scheme.name(), base64::engine::general_purpose::STANDARD.encode(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse("Basic realm=\"Proxy du CHU\"").unwrap();
        assert_eq!((c.known(), c.token()), (Some(Scheme::Basic), None));
        let c = Challenge::parse("Negotiate").unwrap();
        assert_eq!((c.known(), c.token()), (Some(Scheme::Negotiate), None));
        let c = Challenge::parse("negotiate YWJj").unwrap();
        assert_eq!((c.known(), c.token()), (Some(Scheme::Negotiate), Some(b"abc".to_vec())));
        assert_eq!(Challenge::parse("Digest realm=x").unwrap().known(), None);
        assert_eq!(Challenge::parse("  "), None);
        assert_eq!(basic("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(header(Scheme::Negotiate, b"abc"), "Negotiate YWJj");
        let creds = Credentials { basic: Some(("jean".into(), "secret-du-proxy".into())), negotiate: false };
        assert!(!format!("{creds:?}").contains("secret-du-proxy"));
    }
}
