//! The HTTP front of `cpx-agent serve`, in-process (no socket, no TLS): the bytes a client sends are
//! parsed by hyper's HTTP/1.1 server, as in `server::serve`, and each request goes through
//! `server::admit`, the agent's own handling up to the card (Host check, Origin access, routing, content
//! type, body limit, JSON, challenge). Requests admitted for the card are checked, then answered here:
//! no PC/SC call, no PIN prompt.
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cpx_agent::card::{CardChoice, PinPrompt, PinRequest, PromptError};
use cpx_agent::loopback::{admit, Admission, Agent};
use cpx_agent::platform::{Config, Site};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A prompt the fuzzed code must never reach.
struct NoPrompt;

impl PinPrompt for NoPrompt {
    fn ask(&self, _: &PinRequest) -> Result<cpx_card::Pin, PromptError> {
        panic!("the PIN prompt was reached");
    }
    fn choose_card(&self, _: &CardChoice) -> Result<usize, PromptError> {
        panic!("the card choice was reached");
    }
}

const PORT: u16 = 47413;

fn agent() -> &'static Arc<Agent> {
    static AGENT: OnceLock<Arc<Agent>> = OnceLock::new();
    AGENT.get_or_init(|| {
        let mut config = Config { port: PORT, ..Config::default() };
        config.sites = vec![
            Site {
                origin: "https://portail.example.fr".into(),
                mtls_endpoint: cpx_agent::card::Endpoint::parse("https://portail.example.fr:8444/cpx/login")
                    .ok(),
                server_roots: None,
                signed_token: true,
            },
            Site {
                origin: "https://mtls.example.fr:8443".into(),
                mtls_endpoint: cpx_agent::card::Endpoint::parse("https://mtls.example.fr:8444/cpx/login")
                    .ok(),
                server_roots: None,
                signed_token: false,
            },
        ];
        Arc::new(Agent {
            config,
            cards: cpx_agent::card::CardService::new(
                cpx_card::CertCache::memory(),
                Duration::from_secs(1),
                Duration::from_secs(1),
            ),
            prompt: Arc::new(NoPrompt),
            consent: None,
        })
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime"))
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let agent = agent();
    let header = |name: hyper::header::HeaderName| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let host = header(hyper::header::HOST);
    let origin = header(hyper::header::ORIGIN);
    let host_ok = matches!(host.as_deref(), Some(h) if h == format!("127.0.0.1:{PORT}") || h == format!("localhost:{PORT}"));
    let site = origin.as_deref().and_then(|o| agent.config.site(o)).cloned();
    Ok(match admit(agent, Duration::from_secs(1), req).await {
        Admission::Answer(r) => {
            assert!(r.status().as_u16() >= 200);
            r
        }
        Admission::Status { allowed, cors, .. } => {
            assert!(host_ok, "status admitted with Host {host:?}");
            assert_eq!(allowed, site.is_some(), "status for {origin:?}");
            assert_eq!(cors, site.map(|s| s.origin));
            Response::new(Full::new(Bytes::from_static(b"status")))
        }
        Admission::Login(login) => {
            assert!(host_ok, "login admitted with Host {host:?}");
            let site = site.unwrap_or_else(|| panic!("login admitted for {origin:?}, not in policy"));
            assert_eq!(login.origin(), site.origin);
            assert!(!login.token() || site.signed_token, "token for a site without it");
            assert!(cpx_agent::card::check_challenge(login.challenge()).is_ok());
            Response::new(Full::new(Bytes::from_static(b"login")))
        }
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        // As `server::serve` sets the connection up (timer and header deadline), minus TLS.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(hyper_util::rt::TokioIo::new(server), hyper::service::service_fn(handle));
        let (mut from_agent, mut to_agent) = tokio::io::split(client);
        let send = async move {
            let _ = to_agent.write_all(data).await;
            let _ = to_agent.shutdown().await;
        };
        let receive = async move {
            let mut answers = Vec::new();
            let _ = from_agent.read_to_end(&mut answers).await;
        };
        let _ = tokio::join!(conn, send, receive);
    });
});
