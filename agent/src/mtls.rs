//! The agent's TLS client with the card's key: the portal's mTLS endpoint sees a client certificate
//! whose signature the card makes. rustls hands the signer the raw handshake message; the agent hashes it
//! and the card signs the digest. CPS3 (PKCS#1 v1.5 only) gets TLS 1.2; CPS4 gets TLS 1.3 with RSA-PSS
//! (and TLS 1.2 for servers that want it). Over that channel one JSON POST carries the page's challenge
//! and origin; the portal's answer goes back to the page as it is.
//!
//! The portal is on the other side of the network: the whole exchange (connection, handshake, request,
//! answer) has one deadline, and the answer is read up to [`MAX_ANSWER`] bytes. A portal that dribbles
//! its answer or sends without end gets [`AnswerProblem::TooSlow`] or [`AnswerProblem::TooLarge`].

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpx_card::{CardError, CpxCard, Pin, SignScheme};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use sha2::Digest;

/// An `https://host[:port]/path` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("https://")?;
        let (authority, path) =
            rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => (h, p.parse().ok()?),
            _ => (authority, 443),
        };
        (!host.is_empty() && !host.contains([':', '@', ' '])).then(|| Self {
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// The most the agent reads of a portal's answer (head and body): a login answer is a few hundred bytes.
pub const MAX_ANSWER: usize = 64 * 1024;

/// What was wrong with the portal's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerProblem {
    #[error("{endpoint}: unreadable HTTP answer")]
    Unreadable { endpoint: String },
    #[error("{endpoint}: answer larger than {limit} bytes, not read further")]
    TooLarge { endpoint: String, limit: usize },
    #[error("{endpoint}: no complete answer within {seconds} s")]
    TooSlow { endpoint: String, seconds: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum MtlsError {
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("TLS with {0}: {1}")]
    Tls(String, String),
    /// The card failed to sign (wrong PIN, card removed…): the handshake stopped there.
    #[error(transparent)]
    Card(CardError),
    #[error(transparent)]
    BadAnswer(AnswerProblem),
}

/// The card, the PIN for its one signature, and what went wrong if the card refused.
struct CardSlot {
    card: Box<dyn CpxCard>,
    pin: Option<Pin>,
    error: Option<CardError>,
    /// Time the card took to sign (VERIFY + signature), for the timings the page gets.
    card_time: std::time::Duration,
}

#[derive(Clone)]
struct SharedCard(Arc<Mutex<CardSlot>>);

impl std::fmt::Debug for SharedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CPx card")
    }
}

#[derive(Debug)]
struct CardKey {
    card: SharedCard,
    schemes: Vec<(SignatureScheme, SignScheme)>,
}

impl SigningKey for CardKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        self.schemes.iter().find(|(tls, _)| offered.contains(tls)).map(|(tls, card)| {
            Box::new(CardSigner { card: self.card.clone(), tls: *tls, scheme: *card }) as Box<dyn Signer>
        })
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct CardSigner {
    card: SharedCard,
    tls: SignatureScheme,
    scheme: SignScheme,
}

impl Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest = match self.scheme {
            SignScheme::RsaPkcs1Sha256 | SignScheme::RsaPssSha256 => sha2::Sha256::digest(message).to_vec(),
            SignScheme::RsaPkcs1Sha384 => sha2::Sha384::digest(message).to_vec(),
            SignScheme::RsaPkcs1Sha512 => sha2::Sha512::digest(message).to_vec(),
        };
        let mut slot = self.card.0.lock().map_err(|_| rustls::Error::General("card lock".into()))?;
        // The PIN serves one signature: a second request to sign gets nothing (no PIN retry, ever).
        let Some(pin) = slot.pin.take() else {
            return Err(rustls::Error::General("code porteur already used".into()));
        };
        let started = std::time::Instant::now();
        let signed = slot.card.authenticate(&pin, self.scheme, &digest);
        slot.card_time += started.elapsed();
        match signed {
            Ok(sig) => Ok(sig),
            Err(e) => {
                slot.error = Some(e);
                Err(rustls::Error::General("the card did not sign".into()))
            }
        }
    }
    fn scheme(&self) -> SignatureScheme {
        self.tls
    }
}

#[derive(Debug)]
struct CardResolver(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for CardResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS schemes a card can produce, best first, and the protocol versions that go with them.
fn tls_for(
    card: &dyn CpxCard,
) -> (Vec<(SignatureScheme, SignScheme)>, Vec<&'static rustls::SupportedProtocolVersion>) {
    let mut schemes = Vec::new();
    for s in card.schemes() {
        let tls = match s {
            SignScheme::RsaPssSha256 => SignatureScheme::RSA_PSS_SHA256,
            SignScheme::RsaPkcs1Sha256 => SignatureScheme::RSA_PKCS1_SHA256,
            SignScheme::RsaPkcs1Sha384 => SignatureScheme::RSA_PKCS1_SHA384,
            SignScheme::RsaPkcs1Sha512 => SignatureScheme::RSA_PKCS1_SHA512,
        };
        schemes.push((tls, *s));
    }
    // TLS 1.3 allows only RSA-PSS for CertificateVerify: a card without PSS (CPS3) gets TLS 1.2 only.
    let versions = if card.schemes().contains(&SignScheme::RsaPssSha256) {
        vec![&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        vec![&rustls::version::TLS12]
    };
    (schemes, versions)
}

/// What the portal answered.
#[derive(Debug)]
pub struct PortalAnswer {
    pub status: u16,
    pub body: Vec<u8>,
    pub tls_version: String,
    /// Time spent in the card during the handshake.
    pub card_time: Duration,
}

/// Opens the mTLS channel to `endpoint` with the card (one signature, `pin`), POSTs `body` (JSON) and
/// returns the card with the portal's answer; all of it within `timeout`.
pub fn post_with_card(
    endpoint: &Endpoint,
    roots: rustls::RootCertStore,
    card: Box<dyn CpxCard>,
    pin: Pin,
    body: &[u8],
    timeout: Duration,
) -> (Box<dyn CpxCard>, Result<PortalAnswer, MtlsError>) {
    let cert = CertificateDer::from(card.certificate().to_vec());
    let (schemes, versions) = tls_for(card.as_ref());
    let shared = SharedCard(Arc::new(Mutex::new(CardSlot {
        card,
        pin: Some(pin),
        error: None,
        card_time: Duration::ZERO,
    })));
    let key = CardKey { card: shared.clone(), schemes };
    let result = exchange(endpoint, roots, cert, key, &versions, body, timeout);
    let slot = match Arc::try_unwrap(shared.0) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(_) => unreachable!("the TLS config is dropped when the exchange ends"),
    };
    let result = match (result, slot.error) {
        (Err(_), Some(card_error)) => Err(MtlsError::Card(card_error)),
        (r, _) => r.map(|a| PortalAnswer { card_time: slot.card_time, ..a }),
    };
    (slot.card, result)
}

fn exchange(
    endpoint: &Endpoint,
    roots: rustls::RootCertStore,
    cert: CertificateDer<'static>,
    key: CardKey,
    versions: &[&'static rustls::SupportedProtocolVersion],
    body: &[u8],
    timeout: Duration,
) -> Result<PortalAnswer, MtlsError> {
    let deadline = std::time::Instant::now() + timeout;
    let name = format!("{}:{}", endpoint.host, endpoint.port);
    let too_slow = || {
        MtlsError::BadAnswer(AnswerProblem::TooSlow { endpoint: name.clone(), seconds: timeout.as_secs() })
    };
    let tls_err = |e: rustls::Error| MtlsError::Tls(name.clone(), e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = CardResolver(Arc::new(CertifiedKey::new(vec![cert], Arc::new(key))));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(tls_err)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(resolver));
    let server_name = ServerName::try_from(endpoint.host.clone())
        .map_err(|e| MtlsError::Tls(name.clone(), e.to_string()))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name).map_err(tls_err)?;
    let addr = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| MtlsError::Unreachable(name.clone(), e.to_string()))?
        .next()
        .ok_or_else(|| MtlsError::Unreachable(name.clone(), "no address".into()))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| MtlsError::Unreachable(name.clone(), e.to_string()))?;
    // Small handshake records back to back: without this, Nagle and delayed ACK add ~40 ms to TLS 1.2.
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: cpx-agent/{}\r\n\r\n",
        endpoint.path,
        if endpoint.port == 443 { endpoint.host.clone() } else { name.clone() },
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    let io_err = |e: std::io::Error| match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(t) => MtlsError::Tls(name.clone(), t.to_string()),
        None => MtlsError::Tls(name.clone(), e.to_string()),
    };
    // The handshake (the card signs in it), a record at a time, within the deadline.
    while tls.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(too_slow());
        }
        let _ = tls.sock.set_read_timeout(Some(left));
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(too_slow())
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    tls.write_all(head.as_bytes())
        .and_then(|_| tls.write_all(body))
        .and_then(|_| tls.flush())
        .map_err(io_err)?;
    if std::time::Instant::now() >= deadline {
        return Err(too_slow());
    }
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Each read may wait only for what is left of the deadline: a byte now and then does not reset it.
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(too_slow());
        }
        let _ = tls.sock.set_read_timeout(Some(left));
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&chunk[..n]);
                if raw.len() > MAX_ANSWER {
                    return Err(MtlsError::BadAnswer(AnswerProblem::TooLarge {
                        endpoint: name.clone(),
                        limit: MAX_ANSWER,
                    }));
                }
                // A complete answer (by its Content-Length) ends the read even if the server keeps the
                // connection open.
                if answer_complete(&raw) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(too_slow())
            }
            // Servers that close without close_notify: keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(io_err(e)),
        }
    }
    let tls_version = match tls.conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "TLS",
    }
    .to_owned();
    let (status, body) = parse_http(&raw)
        .ok_or_else(|| MtlsError::BadAnswer(AnswerProblem::Unreadable { endpoint: name.clone() }))?;
    Ok(PortalAnswer { status, body, tls_version, card_time: Duration::ZERO })
}

/// Whether `raw` holds a whole answer with a Content-Length (head and that many body bytes).
fn answer_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let Ok(head) = std::str::from_utf8(&raw[..split]) else { return false };
    let length = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding");
    matches!(length, Some(n) if !chunked && raw.len() - split - 4 >= n)
}

/// Status and body of an HTTP/1.1 answer (Content-Length, chunked, or until close).
pub fn parse_http(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
            "content-length" => length = v.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = rest;
        loop {
            let eol = at.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&at[..eol]).ok()?.split(';').next()?.trim(), 16)
                    .ok()?;
            at = &at[eol + 2..];
            if size == 0 {
                break out;
            }
            out.extend_from_slice(at.get(..size)?);
            at = at.get(size + 2..)?;
        }
    } else {
        match length {
            Some(n) => rest.get(..n)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("https://m.a.fr:8444/cpx/login"),
            Some(Endpoint { host: "m.a.fr".into(), port: 8444, path: "/cpx/login".into() })
        );
        assert_eq!(Endpoint::parse("https://m.a.fr").unwrap().port, 443);
        assert_eq!(Endpoint::parse("http://m.a.fr"), None);
        assert_eq!(Endpoint::parse("https://:1/x"), None);
    }

    #[test]
    fn http_answers() {
        assert_eq!(
            parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Some((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse_http(
                b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
            ),
            Some((401, b"abc".to_vec()))
        );
        assert_eq!(parse_http(b"garbage"), None);
        assert_eq!(parse_http(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"), None);
    }
}
