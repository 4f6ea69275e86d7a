//! The machine-wide broker of a shared computer (terminal server, several sessions at once). Each user's
//! agent serves only its own user, on a port of its own; the broker listens on the agent's usual port and
//! answers a page's `GET /v1/status` with the port of the agent of the user whose browser asks:
//! `{"agent": "cpx-agent-broker", "agent_port": N}`. It finds that port in the system's socket table (the
//! listening socket in the users' range owned by the caller's user: no other user can own it, so the
//! broker needs no registration it would have to trust). It never forwards a request and never sees a
//! challenge, a PIN or an identity; anything but the status is refused with USE_USER_AGENT.
//! See docs/multi-user.md.

use std::convert::Infallible;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header;
use hyper::{Method, Request, Response};
use serde_json::json;
use tokio::net::TcpListener;

use crate::loopback::api::{ApiError, Problem};
use crate::loopback::limits::{self, Gate, Limits};
use crate::loopback::peer::{self, UserId};
use crate::loopback::server::{error_response, json_response, lang_of, preflight};
use crate::messages::Code;
use crate::platform::config::normalise_origin;
use crate::platform::localca::LoopbackIdentity;

pub struct Broker {
    /// The port the broker listens on (the agent's usual port).
    pub port: u16,
    /// Where the users' agents listen.
    pub user_ports: RangeInclusive<u16>,
}

/// Serves for ever (accept errors are retried; see [`crate::loopback::limits`]).
pub async fn serve(
    broker: Arc<Broker>,
    identity: &LoopbackIdentity,
    listener: TcpListener,
) -> std::io::Result<()> {
    let acceptor = crate::loopback::server::tls_acceptor(identity)?;
    let gate = Gate::new(Limits::for_this_process());
    tracing::info!(
        port = broker.port,
        first = broker.user_ports.start(),
        last = broker.user_ports.end(),
        "broker serving"
    );
    let mut pause = Duration::ZERO;
    loop {
        let (tcp, remote) = limits::accept(&listener, &mut pause).await;
        let Some(mut slot) = gate.enter() else { continue };
        let (acceptor, broker, limits) = (acceptor.clone(), broker.clone(), gate.limits.clone());
        tokio::spawn(async move {
            let Ok(local) = tcp.local_addr() else { return };
            let owner = tokio::task::spawn_blocking(move || peer::owner_of_client(local, remote)).await;
            let user = match owner {
                Ok(Ok(u)) => u,
                Ok(Err(e)) => {
                    tracing::warn!(%remote, error = %e, "connection closed: the client's user cannot be known");
                    return;
                }
                Err(_) => return,
            };
            if !slot.assign(format!("user {user}")) {
                return;
            }
            let Ok(Ok(stream)) = tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await else {
                return;
            };
            let user = Arc::new(user);
            let service = hyper::service::service_fn(move |req| handle(broker.clone(), user.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// The port of `user`'s agent, if it runs.
async fn agent_port_of(broker: &Broker, user: &UserId) -> Result<Option<u16>, ApiError> {
    let (user, range) = (user.clone(), broker.user_ports.clone());
    let ports = tokio::task::spawn_blocking(move || peer::listening_ports_of(&user, range))
        .await
        .map_err(|e| ApiError::new(Code::AgentError).detail(e.to_string()))?
        .map_err(|e| ApiError::new(Code::AgentError).detail(e.to_string()))?;
    Ok(ports.first().copied())
}

async fn handle(
    broker: Arc<Broker>,
    user: Arc<UserId>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let lang = lang_of(&req);
    let port = broker.port;
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if host != format!("127.0.0.1:{port}") && host != format!("localhost:{port}") {
        return Ok(error_response(&ApiError::new(Code::HostNotAllowed), lang, None));
    }
    // Any https page may learn where its user's agent is (a port number): that agent decides the rest.
    let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).and_then(normalise_origin);
    let cors = origin.as_deref();
    let found = agent_port_of(&broker, &user).await;
    tracing::info!(method = %req.method(), path = req.uri().path(), %user, agent_port = ?found.as_ref().ok().copied().flatten(), "broker request");
    Ok(match (req.method().clone(), req.uri().path()) {
        (Method::OPTIONS, _) => preflight(cors, "GET"),
        (Method::GET, "/v1/status") => match found {
            Ok(Some(agent_port)) => json_response(
                200,
                &json!({"agent": "cpx-agent-broker", "version": env!("CARGO_PKG_VERSION"), "agent_port": agent_port}),
                cors,
            ),
            Ok(None) => error_response(
                &ApiError::new(Code::UserAgentNotRunning).detail(format!(
                    "no agent of user {user} listens on {}-{}",
                    broker.user_ports.start(),
                    broker.user_ports.end()
                )),
                lang,
                cors,
            ),
            Err(e) => error_response(&e, lang, cors),
        },
        _ => {
            let problem =
                Problem { agent_port: found.ok().flatten(), ..Problem::new(Code::UseUserAgent, lang) };
            json_response(Code::UseUserAgent.http_status(), &problem.answer(), cors)
        }
    })
}
