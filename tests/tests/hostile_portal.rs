//! A hostile portal cannot hold the agent: its mTLS endpoint (a TLS server in this test that asks for
//! and verifies the card's client certificate, as a real portal does) answers without end (1 GiB), a
//! byte now and then, not at all, or half an answer without a length cut without TLS's close_notify. The
//! agent stops reading at its answer cap or at its deadline, or refuses the cut answer, and gives the
//! page a typed error; the server sees the agent hang up early.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpx_tests::agent::{server_pki, AgentProcess, ServerPki};
use cpx_tests::{insert, out_dir, stack};
use rustls::pki_types::pem::PemObject;
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ORIGIN: &str = "https://portal.test";

#[derive(Clone, Copy)]
enum Behaviour {
    /// Announces 1 GiB and sends it as fast as it can.
    Flood,
    /// Sends its head, then one byte every 500 ms.
    Dribble,
    /// Completes the handshake, reads the request and never answers.
    Silent,
    /// Answers with no length, half a body, then closes the TCP connection without TLS's close_notify:
    /// what an attacker on the path who cuts the connection leaves.
    CutShort,
}

struct HostilePortal {
    port: u16,
    /// Body bytes sent.
    sent: Arc<AtomicU64>,
    /// How the connection ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
}

impl HostilePortal {
    fn start(pki: &ServerPki, behaviour: Behaviour) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut card_cas = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(&pki.card_cas_pem).unwrap() {
            card_cas.add(c.unwrap()).unwrap();
        }
        let client_verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(card_cas), provider.clone())
                .build()
                .unwrap();
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(&pki.cert_pem)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&pki.key_pem).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(client_verifier)
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sent, ended) = (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(None)));
        let (sent2, ended2) = (sent.clone(), ended.clone());
        std::thread::spawn(move || {
            let Ok((tcp, _)) = listener.accept() else { return };
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let end = |why: String| *ended2.lock().unwrap() = Some(why);
            // The request: head and its JSON body (the handshake, with the card's signature, comes first).
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&request).contains("\"origin\"") {
                match tls.read(&mut buf) {
                    Ok(0) => return end("closed before the request".into()),
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                    Err(e) => return end(format!("request: {e}")),
                }
            }
            let started = Instant::now();
            let head: &[u8] = match behaviour {
                Behaviour::Flood => {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
                }
                Behaviour::Dribble => {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                }
                Behaviour::Silent => b"",
                Behaviour::CutShort => {
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"status\":\"authenticated\",\"code\":\"ab"
                }
            };
            if let Err(e) = tls.write_all(head).and_then(|_| tls.flush()) {
                return end(format!("head: {e}"));
            }
            if let Behaviour::CutShort = behaviour {
                // TCP closed under TLS: no close_notify.
                let _ = tls.sock.shutdown(std::net::Shutdown::Both);
                return end("agent hung up: cut by the server".into());
            }
            let chunk = vec![b' '; 64 * 1024];
            loop {
                // Two minutes at most, whatever the agent does.
                if started.elapsed() > Duration::from_secs(120) || sent2.load(Ordering::Relaxed) >= 1 << 30 {
                    return end("server gave up".into());
                }
                let written = match behaviour {
                    Behaviour::Flood => tls.write_all(&chunk).and_then(|_| tls.flush()).map(|_| chunk.len()),
                    Behaviour::Dribble => {
                        std::thread::sleep(Duration::from_millis(500));
                        tls.write_all(b" ").and_then(|_| tls.flush()).map(|_| 1)
                    }
                    Behaviour::CutShort => Ok(0),
                    Behaviour::Silent => {
                        std::thread::sleep(Duration::from_millis(200));
                        // Sees the agent hang up: a read returns 0 or fails once it has.
                        tls.sock.set_nonblocking(true).unwrap();
                        let mut probe = [0u8; 1];
                        let r = tls.sock.peek(&mut probe);
                        tls.sock.set_nonblocking(false).unwrap();
                        match r {
                            Ok(0) => Err(std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "agent hung up",
                            )),
                            Ok(_) => Ok(0),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
                            Err(e) => Err(e),
                        }
                    }
                };
                match written {
                    Ok(n) => {
                        sent2.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) => return end(format!("agent hung up after {:?}: {e}", started.elapsed())),
                }
            }
        });
        Self { port, sent, ended }
    }

    fn wait_end(&self) -> String {
        cpx_tests::poll("the hostile portal's connection ending", Duration::from_secs(150), || {
            self.ended.lock().unwrap().clone()
        })
    }
}

/// A card login against the hostile portal: the agent's answer (status, error code, detail) and how the
/// server saw the connection end.
fn login_against(name: &str, behaviour: Behaviour) -> (u16, String, String, String, u64) {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let portal = HostilePortal::start(&pki, behaviour);
    let site = format!("[[site]]\norigin = \"{ORIGIN}\"\nmtls_endpoint = \"https://127.0.0.1:{}/cpx/login\"\nserver_roots = \"{}\"\n", portal.port, pki.ca_pem.display());
    let agent = AgentProcess::start(&dir.join("agent"), &site);
    agent.answer_pins(&["1234"]);
    let challenge = base64_challenge();
    let r = agent.request(
        "POST",
        "/v1/authenticate",
        &[("Origin", ORIGIN), ("Content-Type", "application/json")],
        Some(&json!({"challenge": challenge}).to_string()),
    );
    let v = r.json();
    let ended = portal.wait_end();
    (
        r.status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        v["error"]["detail"].as_str().unwrap_or_default().to_owned(),
        ended,
        portal.sent.load(Ordering::Relaxed),
    )
}

fn base64_challenge() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn a_portal_answer_without_end_is_cut_at_the_cap() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let (status, code, detail, ended, sent) = login_against("hostile-flood", Behaviour::Flood);
    assert_eq!((status, code.as_str()), (502, "PORTAL_TLS"), "{detail}");
    assert!(detail.contains("answer larger than 65536 bytes"), "{detail}");
    assert!(ended.starts_with("agent hung up"), "{ended}");
    // What the kernel's buffers hold on both sides, not the gigabyte.
    assert!(sent < 32 << 20, "the agent read {sent} bytes");
}

#[test]
fn a_portal_that_dribbles_or_says_nothing_meets_the_deadline() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    for (name, behaviour) in [("hostile-dribble", Behaviour::Dribble), ("hostile-silent", Behaviour::Silent)]
    {
        let (status, code, detail, ended, _) = login_against(name, behaviour);
        assert_eq!((status, code.as_str()), (502, "PORTAL_TLS"), "{name}: {detail}");
        assert!(detail.contains("no complete answer within 15 s"), "{name}: {detail}");
        assert!(ended.starts_with("agent hung up"), "{name}: {ended}");
    }
}

#[test]
fn a_portal_answer_cut_before_its_end_is_an_error() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let (status, code, detail, _, _) = login_against("hostile-cut", Behaviour::CutShort);
    assert_eq!((status, code.as_str()), (502, "PORTAL_TLS"), "{detail}");
    assert!(detail.contains("answer cut before its end"), "{detail}");
}
