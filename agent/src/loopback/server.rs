//! The loopback HTTPS endpoint pages call: `GET /v1/status`, `POST /v1/authenticate`, `POST /v1/token`
//! (docs/openapi.yaml). Listens on 127.0.0.1 only. Every request must name the agent by `Host`
//! (`127.0.0.1:PORT` or `localhost:PORT`: DNS rebinding); `Origin` must be an allowed site for anything
//! beyond a bare liveness answer; CORS is answered to allowed origins only, never with `*`, and with
//! `Access-Control-Allow-Private-Network: true` on preflights. Plain HTTP on the same port gets one answer
//! only, LOOPBACK_NOT_TRUSTED (`426`): the page client's way to tell a certificate its browser refuses from
//! an agent that does not run ([`plain_hint`]).
//!
//! Sites in policy (the configuration's `[[site]]`) are allowed. When the agent runs in the tray app, any
//! other https origin may ask too: the professional is asked once (see [`crate::card::consent`]) and, once allowed, the
//! site gets the signed-token login (the mTLS login needs the endpoint that only policy can name); until
//! then it gets the liveness answer only.
//!
//! Only the agent's own OS user is served: the owner of every client socket is checked ([`crate::loopback::peer`])
//! and another user's requests get OTHER_USER (docs/multi-user.md). Connections are capped in total and
//! per user, and every stage has a deadline ([`crate::loopback::limits`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::card::card_service::CardService;
use crate::card::consent::Consent;
use crate::card::login::{self, LoginAnswer};
use crate::card::pin_prompt::PinPrompt;
use crate::card::scan::{card_label, ReaderReport, ScanOptions};
use crate::loopback::api::{ApiError, Malformed, Problem};
use crate::loopback::limits::{self, Gate, Limits};
use crate::loopback::peer::Peer;
use crate::messages::{Code, Lang, SlotState};
use crate::platform::config::{normalise_origin, Config, Site};
use crate::platform::localca::LoopbackIdentity;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What the loopback server serves with: the configuration, the card, the prompts.
pub struct Agent {
    /// The configuration the agent started with (port, key store, timeouts…).
    pub config: Config,
    /// The allowed sites in force: the configuration's at start, then as the managed policy (or the
    /// user's file) changes while the agent runs ([`crate::service::watch_sites`]): a site added by a GPO,
    /// a profile or the policy file is allowed without a restart, a site removed is refused.
    pub sites: std::sync::RwLock<Vec<Site>>,
    /// The one way to the card.
    pub cards: Arc<CardService>,
    /// Asks for the code porteur.
    pub prompt: Arc<dyn PinPrompt>,
    /// Asking about sites not in policy (the tray app); `None` allows policy sites only (`cpx-agent serve`).
    pub consent: Option<Consent>,
}

/// What an origin may do.
#[derive(Debug, Clone)]
enum Access {
    /// In policy: everything its configuration allows.
    Policy(Site),
    /// Allowed by the professional: status and the signed token.
    Approved(String),
    /// Not decided yet: the professional is asked at its first login.
    Askable(String),
    Denied,
}

impl Access {
    /// The origin CORS answers are addressed to.
    fn cors(&self) -> Option<&str> {
        match self {
            Access::Policy(site) => Some(&site.origin),
            Access::Approved(o) | Access::Askable(o) => Some(o),
            Access::Denied => None,
        }
    }
}

impl Agent {
    fn access(&self, origin: Option<&str>) -> Access {
        let Some(origin) = origin else { return Access::Denied };
        let normalised = normalise_origin(origin);
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        if let Some(site) = sites.iter().find(|s| Some(&s.origin) == normalised.as_ref()) {
            return Access::Policy(site.clone());
        }
        drop(sites);
        match (&self.consent, normalise_origin(origin)) {
            (Some(c), Some(o)) if c.approvals.contains(&o) => Access::Approved(o),
            (Some(_), Some(o)) => Access::Askable(o),
            _ => Access::Denied,
        }
    }
}

/// The TLS side of a loopback server: the loopback certificate, TLS 1.2/1.3, HTTP/1.1 only.
pub fn tls_acceptor(identity: &LoopbackIdentity) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
        .map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

/// The per-peer counter's key: the client's OS user, else its address.
pub fn peer_key(peer: &Peer, remote: std::net::SocketAddr) -> String {
    match peer {
        Peer::SameUser => "self".into(),
        Peer::OtherUser(u) => format!("user {u}"),
        Peer::Unknown(_) => format!("address {}", remote.ip()),
    }
}

/// Serves for ever: accept errors are retried (see [`crate::loopback::limits`]); only the setup can fail (the
/// certificate, or the agent's own user that cannot be known).
pub async fn serve(
    agent: Arc<Agent>,
    identity: &LoopbackIdentity,
    listener: TcpListener,
) -> std::io::Result<()> {
    let acceptor = tls_acceptor(identity)?;
    let me = Arc::new(crate::loopback::peer::current_user().map_err(std::io::Error::other)?);
    let gate = Gate::new(Limits::for_this_process());
    tracing::info!(user = %me, max_connections = gate.limits.max_connections, max_per_peer = gate.limits.max_per_peer, "serving this user only");
    let mut pause = Duration::ZERO;
    loop {
        let (tcp, remote) = limits::accept(&listener, &mut pause).await;
        let Some(mut slot) = gate.enter() else {
            tracing::debug!(%remote, "connection closed at once: too many connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok(local) = tcp.local_addr() else { continue };
        // Linux: one netlink round trip, done here so that a flood's connections over a peer's share are
        // closed before the next accept (no pile of accepted descriptors waiting for a lookup).
        #[cfg(target_os = "linux")]
        let peer = {
            let peer = crate::loopback::peer::classify(&me, local, remote);
            if !slot.assign(peer_key(&peer, remote)) {
                tracing::debug!(%remote, "connection closed at once: too many connections from this peer");
                continue;
            }
            peer
        };
        let (acceptor, agent, me, limits) =
            (acceptor.clone(), agent.clone(), me.clone(), gate.limits.clone());
        tokio::spawn(async move {
            // Elsewhere the lookup walks the system's tables: on a blocking thread.
            #[cfg(not(target_os = "linux"))]
            let peer = {
                let peer =
                    tokio::task::spawn_blocking(move || crate::loopback::peer::classify(&me, local, remote))
                        .await
                        .unwrap_or_else(|e| Peer::Unknown(e.to_string()));
                if !slot.assign(peer_key(&peer, remote)) {
                    tracing::debug!(%remote, "connection closed at once: too many connections from this peer");
                    return;
                }
                peer
            };
            #[cfg(target_os = "linux")]
            let _ = &me;
            let peer = Arc::new(peer);
            let (body_read, header_read) = (limits.body_read, limits.header_read);
            // A page's plain-HTTP probe (no TLS handshake first): the hint that tells « certificate not
            // trusted » apart from « agent not running » (see [`plain_hint`]).
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.handshake, tcp.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] != TLS_HANDSHAKE => {
                    let service =
                        hyper::service::service_fn(move |req| plain_hint(agent.clone(), peer.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(header_read)
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                    drop(slot);
                    return;
                }
                Ok(Ok(1)) => {}
                _ => return,
            }
            let Ok(Ok(stream)) = tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req| handle(agent.clone(), peer.clone(), body_read, req));
            // The header deadline also closes a keep-alive connection left idle (hyper starts it as soon
            // as it waits for the next request).
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_read)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// The first byte of a TLS client's connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The answer to plain HTTP on the agent's port: always `426` with LOOPBACK_NOT_TRUSTED, readable (CORS)
/// by the origins the HTTPS API answers. A page whose HTTPS call failed tries `http://127.0.0.1:PORT`
/// (loopback HTTP is not mixed content for browsers): if this answers, the agent runs and the browser
/// refused its certificate. Nothing else is served without TLS; the same user, Host and Origin checks as
/// over HTTPS apply.
async fn plain_hint(
    agent: Arc<Agent>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let lang = lang_of(&req);
    let port = agent.config.port;
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = if !matches!(*peer, Peer::SameUser) {
        error_response(&ApiError::new(Code::OtherUser), lang, None)
    } else if host != format!("127.0.0.1:{port}") && host != format!("localhost:{port}") {
        error_response(&ApiError::new(Code::HostNotAllowed), lang, None)
    } else {
        let access = agent.access(origin.as_deref());
        match *req.method() {
            Method::OPTIONS => preflight(access.cors(), "GET"),
            _ => error_response(
                &ApiError::new(Code::LoopbackNotTrusted)
                    .detail(format!("plain HTTP: the agent answers on https://127.0.0.1:{port} only")),
                lang,
                access.cors(),
            ),
        }
    };
    tracing::info!(method = %req.method(), path = %req.uri().path(), origin = origin.as_deref().unwrap_or(""), status = response.status().as_u16(), "plain HTTP request: TLS hint");
    Ok(response)
}

pub(crate) fn lang_of<B>(req: &Request<B>) -> Lang {
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim_start().to_ascii_lowercase().starts_with("en") {
        Lang::En
    } else {
        Lang::Fr
    }
}

pub(crate) fn json_response(
    status: u16,
    body: &impl serde::Serialize,
    cors: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = cors.and_then(|o| HeaderValue::from_str(o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    r
}

pub(crate) fn error_response(e: &ApiError, lang: Lang, cors: Option<&str>) -> Response<Full<Bytes>> {
    json_response(e.http_status(), &e.to_json(lang), cors)
}

async fn handle(
    agent: Arc<Agent>,
    peer: Arc<Peer>,
    body_deadline: Duration,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let response = match &*peer {
        Peer::SameUser => route(agent, body_deadline, req).await,
        // Another user of the computer (shared workstation, terminal server): nothing, whatever it asks.
        Peer::OtherUser(user) => {
            tracing::warn!(%user, "request refused: the client belongs to another user of this computer");
            error_response(
                &ApiError::new(Code::OtherUser).detail(format!("client user {user}")),
                lang_of(&req),
                None,
            )
        }
        Peer::Unknown(why) => {
            tracing::warn!(%why, "request refused: the client's user cannot be known");
            error_response(
                &ApiError::new(Code::OtherUser).detail(format!("client user unknown: {why}")),
                lang_of(&req),
                None,
            )
        }
    };
    let status = response.status().as_u16();
    tracing::info!(%method, %path, %origin, status, ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    Ok(response)
}

/// What the agent makes of a request before any card call: the answer when it needs no card (refusals,
/// the preflight, unknown paths, malformed bodies), or what it asks of the card.
pub enum Admission {
    /// Answered without the card.
    Answer(Response<Full<Bytes>>),
    /// `GET /v1/status`: readers and card when `allowed`, else only that the agent runs.
    Status {
        /// The origin may see the readers and the card.
        allowed: bool,
        /// The origin to answer to (CORS), when it is allowed.
        cors: Option<String>,
        /// The language of the answer.
        lang: Lang,
    },
    /// `POST /v1/authenticate` or `POST /v1/token` with a well-formed challenge, from an origin that may log in
    /// this way.
    Login(Box<CardLogin>),
}

/// A login request admitted: what the card session needs.
pub struct CardLogin {
    access: Access,
    origin: String,
    token: bool,
    challenge: String,
    site: Option<Site>,
    lang: Lang,
}

impl CardLogin {
    /// The origin the login is for (the CORS origin of the answer).
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// `true` for the signed token (`/v1/token`), `false` for the mTLS login.
    pub fn token(&self) -> bool {
        self.token
    }
    /// The portal's challenge, as checked by [`login::check_challenge`].
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

async fn route(agent: Arc<Agent>, body_deadline: Duration, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match admit(&agent, body_deadline, req).await {
        Admission::Answer(r) => r,
        Admission::Status { allowed, cors, lang } => status(&agent, allowed, cors.as_deref(), lang).await,
        Admission::Login(login) => login_request(&agent, *login).await,
    }
}

/// The agent's handling of a request up to the card: the `Host` check (DNS rebinding), the `Origin`'s
/// access, routing, and for a login the content type, the body (at most 16 KiB, read within
/// `body_deadline`), its JSON and the challenge. Never touches PC/SC nor a prompt (the fuzz target
/// `http_request` drives it with any bytes, docs/fuzzing.md).
pub async fn admit<B>(agent: &Agent, body_deadline: Duration, req: Request<B>) -> Admission
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let lang = lang_of(&req);
    let port = agent.config.port;
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if host != format!("127.0.0.1:{port}") && host != format!("localhost:{port}") {
        tracing::warn!(%host, "request refused: Host is not the agent's");
        return Admission::Answer(error_response(&ApiError::new(Code::HostNotAllowed), lang, None));
    }
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let access = agent.access(origin.as_deref());
    let cors = access.cors().map(str::to_owned);

    match (req.method().clone(), req.uri().path()) {
        (Method::OPTIONS, _) => Admission::Answer(preflight(cors.as_deref(), "GET, POST")),
        (Method::GET, "/v1/status") => {
            // A site not yet allowed learns that the agent runs, nothing about readers or card.
            let allowed = matches!(access, Access::Policy(_) | Access::Approved(_));
            Admission::Status { allowed, cors, lang }
        }
        (Method::POST, path @ ("/v1/authenticate" | "/v1/token")) => {
            let token = path == "/v1/token";
            match admit_login(access, token, req, body_deadline, lang).await {
                Ok(login) => Admission::Login(Box::new(login)),
                // Denied origins get no CORS header either (`cors` is `None`): the page cannot even read
                // the refusal.
                Err(e) => Admission::Answer(error_response(&e, lang, cors.as_deref())),
            }
        }
        _ => Admission::Answer(error_response(&ApiError::new(Code::NotFound), lang, cors.as_deref())),
    }
}

/// The CORS preflight answer: 403 for an origin not allowed; otherwise `methods`, the headers a page
/// sends, and `Access-Control-Allow-Private-Network` (the agent's and the broker's).
pub(crate) fn preflight(cors: Option<&str>, methods: &'static str) -> Response<Full<Bytes>> {
    let Some(origin) = cors else {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    };
    let mut r = json_response(204, &Value::Null, Some(origin));
    *r.body_mut() = Full::new(Bytes::new());
    let h = r.headers_mut();
    h.remove(header::CONTENT_TYPE);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, Accept-Language"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.insert("Access-Control-Allow-Private-Network", HeaderValue::from_static("true"));
    r
}

/// The version, readers, card state and holder, in the words of `cpx-agent status`, for allowed origins;
/// for anyone else (no Origin, a site not in policy nor allowed by the professional) only that the agent
/// runs: not its version, which would tell a page which known flaws to try.
async fn status(agent: &Agent, allowed: bool, cors: Option<&str>, lang: Lang) -> Response<Full<Bytes>> {
    if !allowed {
        return json_response(200, &json!({"agent": "cpx-agent"}), cors);
    }
    let base = json!({"agent": "cpx-agent", "version": env!("CARGO_PKG_VERSION")});
    // Through the card service: during a login, the state before it (see card_service.rs).
    let scanned = agent.cards.scan(ScanOptions { with_pin: true, reader: None }).await;
    let mut body = base;
    match scanned {
        Ok(reports) => {
            body["service"] = "running".into();
            body["readers"] = reports.iter().map(|r| reader_api_json(lang, r)).collect();
        }
        Err(Code::AgentError) => return error_response(&ApiError::new(Code::AgentError), lang, cors),
        Err(code) => {
            body["service"] = if code == Code::PcscServiceStopped { "stopped" } else { "running" }.into();
            body["readers"] = json!([]);
            body["error"] = Problem::new(code, lang).to_value();
        }
    }
    json_response(200, &body, cors)
}

async fn admit_login<B>(
    access: Access,
    token: bool,
    req: Request<B>,
    body_deadline: Duration,
    lang: Lang,
) -> Result<CardLogin, ApiError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(origin) = access.cors().map(str::to_owned) else {
        return Err(ApiError::new(Code::OriginNotAllowed));
    };
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(ApiError::malformed(Malformed::NotJson));
    }
    // A body announced and never sent must not hold the connection open.
    let body =
        match tokio::time::timeout(body_deadline, Limited::new(req.into_body(), MAX_BODY).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return Err(ApiError::malformed(Malformed::TooLarge)),
            Err(_) => return Err(ApiError::malformed(Malformed::TooSlow)),
        };
    let challenge = match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("challenge")?.as_str().map(str::to_owned))
    {
        Some(c) => c,
        None => return Err(ApiError::malformed(Malformed::NoChallenge)),
    };
    login::check_challenge(&challenge)?;
    let site = match &access {
        Access::Policy(site) => Some(site.clone()),
        _ => None,
    };
    match &site {
        Some(site) if token && !site.signed_token => {
            return Err(
                ApiError::new(Code::SiteNotConfigured).detail("signed tokens are not enabled for this site")
            )
        }
        None if !token => return Err(ApiError::new(Code::SiteNotConfigured).detail(
            "the mTLS login needs the site in managed policy; this site may use the signed token (/v1/token)",
        )),
        _ => {}
    }
    Ok(CardLogin { access, origin, token, challenge, site, lang })
}

async fn login_request(agent: &Arc<Agent>, login: CardLogin) -> Response<Full<Bytes>> {
    let CardLogin { access, origin, token, challenge, site, lang } = login;
    let cors = Some(origin.as_str());
    let fail = |e: ApiError| error_response(&e, lang, cors);
    let ask = matches!(access, Access::Askable(_)).then(|| agent.clone());
    let prompt = agent.prompt.clone();
    let proxy = agent.config.proxy.clone();
    let pinpad = agent.config.pinpad;
    let asked_for = origin.clone();
    // Dialogs are shown one at a time: the consent question waits for the card like the PIN dialog does.
    let result = agent
        .cards
        .exclusive(move |cards| {
            if let Some(consent) = ask.as_ref().and_then(|a| a.consent.as_ref()) {
                consent.ask(&asked_for, lang)?;
            }
            match &site {
                Some(site) if !token => login::authenticate(
                    cards,
                    prompt.as_ref(),
                    site,
                    &proxy,
                    pinpad,
                    &asked_for,
                    &challenge,
                    lang,
                )
                .map(LoginAnswer::Mtls),
                _ => login::signed_token(cards, prompt.as_ref(), pinpad, &asked_for, &challenge, lang)
                    .map(LoginAnswer::Token),
            }
        })
        .await;
    match result {
        Ok(answer) => {
            match &answer {
                LoginAnswer::Mtls(done) => {
                    tracing::info!(card_type = done.card_type, tls = %done.tls, portal_status = done.portal_status, "card login done")
                }
                LoginAnswer::Token(token) => {
                    tracing::info!(
                        card_type = token.card_type,
                        algorithm = token.algorithm,
                        "card login done"
                    )
                }
            }
            json_response(200, &answer, cors)
        }
        Err(e) => {
            tracing::info!(code = ?e.code, detail = e.detail.as_deref().unwrap_or(""), "card login refused");
            fail(e.into())
        }
    }
}

/// A reader as `GET /v1/status` gives it to the pages (docs/openapi.yaml): its state and message, what
/// stops a ready card from logging in, the card type and holder.
pub fn reader_api_json(lang: Lang, r: &ReaderReport) -> Value {
    let mut v = json!({"reader": r.reader, "state": r.state, "message": r.message().get(lang), "codes": r.codes, "generation": r.generation});
    // What stops this card from logging in, in words (code porteur blocked, expired…).
    if let Some(code) = r.codes.first().filter(|_| r.state == SlotState::CardReady) {
        v["problem"] = code.entry().message.get(lang).into();
    }
    if let Some(card) = &r.card {
        v["card_type"] = card_label(card).into();
        v["card_kind"] = json!(card.card_type);
        let id = &card.identity;
        v["holder"] = json!({"nom": id.nom, "prenom": id.prenom, "profession": id.profession,
            "national_id": id.national_id, "display": id.display_name(), "nominative": id.nominative,
            "structure": id.structure.as_ref().and_then(|s| s.name.as_deref())});
    }
    v
}
