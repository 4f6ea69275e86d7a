//! The agent's TLS client with the card's key: the portal's mTLS endpoint sees a client certificate
//! whose signature the card makes. rustls hands the signer the raw handshake message; the agent hashes it
//! and the card signs the digest. CPS3 (PKCS#1 v1.5 only) gets TLS 1.2; CPS4 gets TLS 1.3 with RSA-PSS
//! (and TLS 1.2 for servers that want it). Over that channel one JSON POST carries the page's challenge
//! and origin; the portal's answer goes back to the page as it is.
//!
//! The way to the endpoint is the proxy the browsers use, if any ([`crate::platform::proxy`]): the
//! handshake then runs inside the proxy's `CONNECT` tunnel, end to end; without a proxy every address of
//! the endpoint's name is tried in turn.
//!
//! The request and its answer are HTTP/1.1 by hyper's client over the tokio-rustls stream. The portal is
//! on the other side of the network: the whole exchange (connection, handshake, request, answer) has one
//! deadline, and the answer is read up to [`MAX_ANSWER`] bytes (its body; its head within hyper's buffer
//! of that size). A portal that dribbles
//! its answer or sends without end gets [`AnswerProblem::TooSlow`] or [`AnswerProblem::TooLarge`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpx_card::{CardError, CpxCard, Pin, PinPad, PinPadError, SignScheme};
use cpx_pcsc::pinpad::ReaderAnswer;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use sha2::Digest;

use crate::failure::Failure;
use crate::messages::Code;
use crate::platform::endpoint::Endpoint;
use crate::platform::proxy::{self, ProxyError, ProxySetting};

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
    #[error("{endpoint}: answer cut before its end (no length, connection closed without close_notify)")]
    CutShort { endpoint: String },
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
    /// The PIN-pad reader answered of its own (timeout, cancel on its keypad…): the handshake stopped there.
    #[error(transparent)]
    Keypad(ReaderAnswer),
    /// The way to the endpoint could not be opened: the proxy refused, asked for credentials the agent
    /// lacks, did not answer; or, straight to the portal, no address of its name answered.
    #[error(transparent)]
    Proxy(ProxyError),
    #[error(transparent)]
    BadAnswer(AnswerProblem),
}

impl From<MtlsError> for Failure {
    fn from(e: MtlsError) -> Self {
        match &e {
            MtlsError::Card(c) => Failure::from(c),
            MtlsError::Keypad(a) => Failure::from_keypad(&PinPadError::Reader(*a), None),
            MtlsError::Proxy(p) => Failure::new(p.code()).detail(e.to_string()),
            MtlsError::Unreachable(..) => Failure::new(Code::PortalUnreachable).detail(e.to_string()),
            MtlsError::Tls(..) | MtlsError::BadAnswer(_) => {
                Failure::new(Code::PortalTls).detail(e.to_string())
            }
        }
    }
}

/// How the code porteur reaches the card for one signature: typed in the agent's prompt, or on the
/// reader's keypad (the reader builds the VERIFY; the code porteur never crosses the computer).
pub enum PinEntry {
    /// Typed in the agent's dialog, the terminal or pinentry.
    Typed(Pin),
    /// Typed on the reader's keypad.
    Keypad(PinPad),
}

/// The card, the code porteur's entry for its one signature, and what went wrong if the card refused.
struct CardSlot {
    card: Box<dyn CpxCard>,
    pin: Option<PinEntry>,
    error: Option<PinPadError>,
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
        let signed = match &pin {
            PinEntry::Typed(pin) => {
                slot.card.authenticate(pin, self.scheme, &digest).map_err(PinPadError::Card)
            }
            PinEntry::Keypad(pad) => slot.card.authenticate_on_reader(pad, self.scheme, &digest),
        };
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

/// Opens the mTLS channel to `endpoint` (through the proxy `proxy` chooses) with the card (one signature,
/// `pin`), POSTs `body` (JSON) and returns the card with the portal's answer; all of it within `timeout`.
pub fn post_with_card(
    endpoint: &Endpoint,
    proxy: &ProxySetting,
    roots: rustls::RootCertStore,
    card: Box<dyn CpxCard>,
    pin: PinEntry,
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
    let result = exchange(endpoint, proxy, roots, cert, key, &versions, body, timeout);
    let slot = match Arc::try_unwrap(shared.0) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(_) => unreachable!("the TLS config is dropped when the exchange ends"),
    };
    let result = match (result, slot.error) {
        (Err(_), Some(PinPadError::Card(card_error))) => Err(MtlsError::Card(card_error)),
        (Err(_), Some(PinPadError::Reader(answer))) => Err(MtlsError::Keypad(answer)),
        (r, _) => r.map(|a| PortalAnswer { card_time: slot.card_time, ..a }),
    };
    (slot.card, result)
}

/// The whole exchange on a runtime of its own, on this thread: the card signs inside the handshake
/// (blocking card I/O), which must not hold a worker of the agent's server. The caller is a blocking
/// task ([`crate::card::card_service::CardService::exclusive`]).
#[allow(clippy::too_many_arguments)]
fn exchange(
    endpoint: &Endpoint,
    proxy: &ProxySetting,
    roots: rustls::RootCertStore,
    cert: CertificateDer<'static>,
    key: CardKey,
    versions: &[&'static rustls::SupportedProtocolVersion],
    body: &[u8],
    timeout: Duration,
) -> Result<PortalAnswer, MtlsError> {
    let name = endpoint.authority();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MtlsError::Unreachable(name.clone(), e.to_string()))?;
    // Dropping the runtime at the end closes the connection, whatever state it is in.
    runtime.block_on(exchange_async(endpoint, proxy, roots, cert, key, versions, body, timeout))
}

#[allow(clippy::too_many_arguments)]
async fn exchange_async(
    endpoint: &Endpoint,
    proxy: &ProxySetting,
    roots: rustls::RootCertStore,
    cert: CertificateDer<'static>,
    key: CardKey,
    versions: &[&'static rustls::SupportedProtocolVersion],
    body: &[u8],
    timeout: Duration,
) -> Result<PortalAnswer, MtlsError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let name = endpoint.authority();
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
    // The proxy the browsers use (or none), then a tunnel through it or every address of the name.
    let route = proxy::route_for(proxy, &endpoint.host, endpoint.port);
    tracing::info!(endpoint = %name, proxy = %route.proxy.as_ref().map_or("none".to_owned(), |p| p.to_string()), source = %route.source, "way to the portal");
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let tcp = proxy::open(&route, &endpoint.host, endpoint.port, left).await.map_err(|e| match e {
        ProxyError::Unreachable { why, .. } => MtlsError::Unreachable(name.clone(), why),
        other => MtlsError::Proxy(other),
    })?;
    let io_err =
        |e: &std::io::Error| match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(t) => MtlsError::Tls(name.clone(), t.to_string()),
            None => MtlsError::Tls(name.clone(), e.to_string()),
        };
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let exchange = async {
        // The handshake (the card signs in it).
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|e| io_err(&e))?;
        let tls_version = match tls.get_ref().1.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        }
        .to_owned();
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_ANSWER)
            .handshake(hyper_util::rt::TokioIo::new(EofTolerant(tls, cut.clone())))
            .await
            .map_err(|e| http_err(&name, &e))?;
        tokio::spawn(connection);
        let request = hyper::Request::post(endpoint.path.as_str())
            .header(hyper::header::HOST, endpoint.host_header())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::CONNECTION, "close")
            .header(hyper::header::USER_AGENT, concat!("cpx-agent/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| MtlsError::Tls(name.clone(), e.to_string()))?;
        let answer = sender.send_request(request).await.map_err(|e| http_err(&name, &e))?;
        let status = answer.status().as_u16();
        // A body with neither a length nor chunks ends when the connection does: there, a close without
        // close_notify may be an attacker's cut, not the end.
        let delimited = answer.headers().contains_key(hyper::header::CONTENT_LENGTH)
            || answer.headers().contains_key(hyper::header::TRANSFER_ENCODING);
        let too_large =
            || MtlsError::BadAnswer(AnswerProblem::TooLarge { endpoint: name.clone(), limit: MAX_ANSWER });
        let body = match Limited::new(answer.into_body(), MAX_ANSWER).collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(too_large())
            }
            Err(e) => {
                return Err(match e.downcast_ref::<hyper::Error>() {
                    Some(h) => http_err(&name, h),
                    None => MtlsError::Tls(name.clone(), e.to_string()),
                })
            }
        };
        if !delimited && cut.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(MtlsError::BadAnswer(AnswerProblem::CutShort { endpoint: name.clone() }));
        }
        Ok(PortalAnswer { status, body, tls_version, card_time: Duration::ZERO })
    };
    // The whole exchange, handshake and answer, within the deadline: a byte now and then does not
    // extend it.
    tokio::time::timeout_at(deadline, exchange).await.unwrap_or_else(|_| Err(too_slow()))
}

/// A failure of the HTTP exchange: a TLS or socket error under it is said as such, an answer that is
/// not HTTP is unreadable, a head over [`MAX_ANSWER`] too large.
fn http_err(name: &str, e: &hyper::Error) -> MtlsError {
    if e.is_parse_too_large() {
        return MtlsError::BadAnswer(AnswerProblem::TooLarge { endpoint: name.into(), limit: MAX_ANSWER });
    }
    if e.is_parse() || e.is_parse_status() || e.is_incomplete_message() {
        return MtlsError::BadAnswer(AnswerProblem::Unreadable { endpoint: name.into() });
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(t) = inner.downcast_ref::<rustls::Error>() {
            return MtlsError::Tls(name.into(), t.to_string());
        }
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return MtlsError::Tls(name.into(), t.to_string());
            }
            return MtlsError::Tls(name.into(), io.to_string());
        }
        source = inner.source();
    }
    MtlsError::Tls(name.into(), e.to_string())
}

/// The TLS stream, with a TCP close that came without TLS's `close_notify` read as the end of the
/// answer (servers that do so are common; an answer cut short is still caught by its length), and noted
/// in the flag: an answer without a length that ends so is an error.
struct EofTolerant<S>(S, Arc<std::sync::atomic::AtomicBool>);

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for EofTolerant<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.1.store(true, std::sync::atomic::Ordering::SeqCst);
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for EofTolerant<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
