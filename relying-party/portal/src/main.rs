//! `cpx-demo-portal`: a reference portal for card login with Agent CPx, modelled on the ViaTrajectoire
//! professional login.
//!
//!   cpx-demo-portal serve --db portal.sqlite --origin https://portal.test:8443 --site 127.0.0.1:8443 \
//!       --mtls 127.0.0.1:8444 --cert server.pem --key server.key --card-anchors igc-sante.pem --crl FILE…
//!
//! Card certificates are refused when their revocation status is unknown: every issuing CA of the
//! anchors needs its CRL (`--crl`, repeated), current (before its nextUpdate); the files are read again
//! when they change. `--allow-unknown-revocation` accepts an unknown status instead, and says so on
//! standard error at start and at each such login.
//!   cpx-demo-portal add-account --db portal.sqlite --username amelie --password … --nom MARTIN --prenom AMELIE

mod crls;
mod db;
mod endpoint;
mod pages;
mod ratelimit;
mod site;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, Subcommand};
use cpx_demo_portal::forms::SESSION_COOKIE;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Parser)]
#[command(
    name = "cpx-demo-portal",
    version,
    about = "Portail de démonstration : connexion par carte CPx avec l'Agent CPx"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the site and its mTLS endpoint.
    Serve {
        #[arg(long)]
        db: PathBuf,
        /// The site's origin as browsers see it, e.g. https://portal.test:8443.
        #[arg(long)]
        origin: String,
        #[arg(long, default_value = "127.0.0.1:8443")]
        site: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8444")]
        mtls: SocketAddr,
        /// Server certificate chain (PEM) for both listeners.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// IGC-Santé trust anchors for card certificates (PEM: roots and issuing CAs).
        #[arg(long)]
        card_anchors: PathBuf,
        /// A CRL file (PEM or DER) of an issuing CA of card certificates; repeat for each CA. Read again
        /// every --crl-reload-seconds when its content changed.
        #[arg(long)]
        crl: Vec<PathBuf>,
        /// How often the CRL files are checked for a new content.
        #[arg(long, default_value_t = 60)]
        crl_reload_seconds: u64,
        /// Accept card certificates whose revocation status is unknown (no CRL of their issuer, or a CRL
        /// past its nextUpdate). Logged at start and at each such login. Never on a production portal.
        #[arg(long)]
        allow_unknown_revocation: bool,
        /// A browser session ends after this many seconds without a request.
        #[arg(long, default_value_t = 30 * 60)]
        session_idle_seconds: i64,
        /// A browser session ends this many seconds after it began, active or not.
        #[arg(long, default_value_t = 12 * 3600)]
        session_max_seconds: i64,
        /// Where the login page finds Agent CPx.
        #[arg(long, default_value = "https://127.0.0.1:47413")]
        agent_url: String,
    },
    /// Create an account (username + password).
    AddAccount {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        nom: String,
        #[arg(long)]
        prenom: String,
        #[arg(long)]
        profession: Option<String>,
    },
}

/// "23/11/2026".
pub fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).map_or_else(
        |_| "?".into(),
        |t| {
            let d = t.date();
            format!("{:02}/{:02}/{:04}", d.day(), u8::from(d.month()), d.year())
        },
    )
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::AddAccount { db, username, password, nom, prenom, profession } => {
            let r = db::Db::open(&db).and_then(|d| {
                d.create_account(&db::AccountFields {
                    username: &username,
                    password: Some(&password),
                    nom: &nom,
                    prenom: &prenom,
                    profession: profession.as_deref(),
                    kind: "pro",
                    ..Default::default()
                })
            });
            match r {
                Ok(id) => {
                    println!("compte {username} créé (id {id})");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cpx-demo-portal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            db,
            origin,
            site,
            mtls,
            cert,
            key,
            card_anchors,
            crl,
            crl_reload_seconds,
            allow_unknown_revocation,
            session_idle_seconds,
            session_max_seconds,
            agent_url,
        } => {
            let options = Options {
                crl_reload: Duration::from_secs(crl_reload_seconds.max(1)),
                allow_unknown_revocation,
                sessions: db::SessionLimits { idle: session_idle_seconds, absolute: session_max_seconds },
            };
            match serve(db, origin, site, mtls, cert, key, card_anchors, crl, agent_url, options) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cpx-demo-portal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// What `serve` takes beyond addresses and files.
struct Options {
    crl_reload: Duration,
    allow_unknown_revocation: bool,
    sessions: db::SessionLimits,
}

#[allow(clippy::too_many_arguments)]
fn serve(
    db: PathBuf,
    origin: String,
    site: SocketAddr,
    mtls: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    anchors: PathBuf,
    crl: Vec<PathBuf>,
    agent_url: String,
    options: Options,
) -> Result<(), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    let anchors_pem = std::fs::read_to_string(&anchors).map_err(|e| format!("{}: {e}", anchors.display()))?;
    let crl_files = crls::CrlFiles::new(crl);
    let verifier = cpx_verifier::Verifier::from_pem(&anchors_pem, &crl_files.initial()?)
        .map_err(|e| e.to_string())?
        .allow_unknown_revocation(options.allow_unknown_revocation);
    if options.allow_unknown_revocation {
        eprintln!("cpx-demo-portal: WARNING --allow-unknown-revocation: card certificates whose revocation status is unknown (no CRL of their issuer, or an out-of-date one) are ACCEPTED; each such login is logged");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let mut roots = rustls::RootCertStore::empty();
    for a in verifier.anchor_certs() {
        roots.add(a.clone()).map_err(|e| e.to_string())?;
    }
    let client_verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
    let mtls_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs.clone(), key.clone_key())
        .map_err(|e| e.to_string())?;
    let site_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;

    let portal = Arc::new(state::Portal {
        db: db::Db::open(&db).map_err(|e| e.to_string())?,
        challenges: cpx_verifier::ChallengeStore::new(),
        codes: Mutex::default(),
        verifier,
        origin: origin.trim_end_matches('/').to_owned(),
        agent_url,
        sessions: options.sessions,
        limiter: ratelimit::Limiter::new(ratelimit::Limits::default()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let site_listener = tokio::net::TcpListener::bind(site).await.map_err(|e| format!("{site}: {e}"))?;
        let mtls_listener = tokio::net::TcpListener::bind(mtls).await.map_err(|e| format!("{mtls}: {e}"))?;
        println!("cpx-demo-portal: site {} on {site}, mTLS endpoint on {mtls}", portal.origin);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::spawn(crl_files.watch(portal.clone(), options.crl_reload));
        let a = tokio::spawn(accept_loop(site_listener, Arc::new(site_config), portal.clone(), false));
        let b = tokio::spawn(accept_loop(mtls_listener, Arc::new(mtls_config), portal, true));
        let _ = tokio::try_join!(a, b);
        Ok(())
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    portal: Arc<state::Portal>,
    mtls: bool,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    while let Ok((tcp, peer)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let (acceptor, portal) = (acceptor.clone(), portal.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await
            else {
                return;
            };
            let client_cert: Option<Vec<u8>> =
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (portal, client_cert) = (portal.clone(), client_cert.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(
                        respond(&portal, req, mtls, client_cert.as_deref(), peer.ip()).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn respond(
    portal: &Arc<state::Portal>,
    req: hyper::Request<hyper::body::Incoming>,
    mtls: bool,
    client_cert: Option<&[u8]>,
    client: std::net::IpAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = Limited::new(body, 64 * 1024).collect().await.map(|b| b.to_bytes()) else {
        return plain(
            413,
            "application/json",
            r#"{"error":{"code":"TOO_LARGE","message":"Requête trop grande"}}"#.into(),
        );
    };
    if mtls {
        if (parts.method.as_str(), parts.uri.path()) != ("POST", "/cpx/login") {
            return plain(404, "application/json", r#"{"error":{"code":"NOT_FOUND"}}"#.into());
        }
        let (portal, client_cert) = (portal.clone(), client_cert.map(<[u8]>::to_vec));
        let answered =
            tokio::task::spawn_blocking(move || endpoint::login(&portal, client_cert.as_deref(), &body))
                .await;
        let (status, v) =
            answered.unwrap_or_else(|_| (500, serde_json::json!({"error": {"code": "PORTAL_ERROR"}})));
        return plain(status, "application/json", v.to_string());
    }
    let header = |h: header::HeaderName| parts.headers.get(h).and_then(|v| v.to_str().ok());
    let session =
        header(header::COOKIE).and_then(|c| cpx_demo_portal::forms::session_cookie(c).map(str::to_owned));
    let (method, path) = (parts.method.as_str().to_owned(), parts.uri.path().to_owned());
    let (origin, content_type) =
        (header(header::ORIGIN).map(str::to_owned), header(header::CONTENT_TYPE).unwrap_or("").to_owned());
    // The handler hashes passwords (argon2) and queries SQLite: off the runtime's worker threads.
    let portal = portal.clone();
    let handled = tokio::task::spawn_blocking(move || {
        site::handle(
            &portal,
            site::SiteRequest {
                method: &method,
                path: &path,
                origin: origin.as_deref(),
                session,
                content_type: &content_type,
                body: &body,
                client: Some(client),
            },
        )
    })
    .await;
    let Ok(reply) = handled else {
        return plain(500, "application/json", r#"{"error":{"code":"PORTAL_ERROR"}}"#.into());
    };
    let mut r = plain(reply.status, reply.content_type, reply.body);
    let h = r.headers_mut();
    if let Some(to) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, to);
    }
    if let Some(s) = reply.set_session {
        if let Ok(v) =
            HeaderValue::from_str(&format!("{SESSION_COOKIE}={s}; Path=/; HttpOnly; Secure; SameSite=Strict"))
        {
            h.insert(header::SET_COOKIE, v);
        }
    }
    if let Some(seconds) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if reply.clear_session {
        h.insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("")),
        );
    }
    r
}

fn plain(status: u16, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    h.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
    r
}
