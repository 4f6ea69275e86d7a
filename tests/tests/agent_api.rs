//! `cpx-agent serve` end to end: the loopback HTTPS API called as a page would (Origin, Host, CORS), the
//! PIN asked through a (scripted) pinentry, the card on the real pcscd/vpcd stack, and the mTLS login
//! accepted by nginx (`ssl_verify_client on`) configured with the test IGC-Santé CAs.
//!
//! The tests of this file run one at a time: the agent logs in with the CPx card it finds in any reader.

use std::sync::Mutex;

use base64::Engine;
use cpx_tests::agent::{server_pki, AgentProcess, Nginx};
use cpx_tests::{insert, insert_with, logged_commands, out_dir, stack, Options};
use serde_json::json;
use sha2::{Digest, Sha256};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ORIGIN: &str = "https://portal.test";

fn challenge() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn site(endpoint_port: u16, roots: &std::path::Path) -> String {
    format!("[[site]]\norigin = \"{ORIGIN}\"\nmtls_endpoint = \"https://127.0.0.1:{endpoint_port}/cpx/login\"\nserver_roots = \"{}\"\nsigned_token = true\n", roots.display())
}

fn login(agent: &AgentProcess, origin: &str, body: &str) -> cpx_tests::agent::HttpAnswer {
    agent.request(
        "POST",
        "/v1/authenticate",
        &[("Origin", origin), ("Content-Type", "application/json")],
        Some(body),
    )
}

struct Setup {
    agent: AgentProcess,
    _nginx: Nginx,
}

fn setup(name: &str) -> Setup {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    let agent = AgentProcess::start(&dir.join("agent"), &site(nginx.port, &pki.ca_pem));
    Setup { agent, _nginx: nginx }
}

#[test]
fn mtls_login_accepted_by_nginx_cps3_tls12_cps4_tls13() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-nginx");
    let reader = stack().reader();
    for (persona, tls, id) in [("cps3", "TLSv1.2", "899700123456"), ("cps4", "TLSv1.3", "899700234567")] {
        let card = insert(persona, &reader);
        s.agent.answer_pins(&["1234"]);
        let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        assert_eq!(r.status, 200, "{persona}: {}", r.body);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some(ORIGIN));
        let v = r.json();
        assert_eq!(v["tls"], tls, "{persona}: {v}");
        // nginx escapes the DN's UTF-8 bytes (\C3\A9), which is not JSON: the agent hands it over as text.
        let portal = v["portal"]["text"].as_str().map_or_else(|| v["portal"].to_string(), str::to_owned);
        assert!(portal.contains("\"verify\":\"SUCCESS\""), "nginx verified the card certificate: {portal}");
        assert!(portal.contains(&format!("\"protocol\":\"{tls}\"")), "{portal}");
        assert!(portal.contains(&format!("CN={id}")), "{portal}");
        let dialog = s.agent.dialogs().pop().expect("the PIN was asked");
        assert!(
            dialog.starts_with(&format!("Le site {ORIGIN}")),
            "the dialog names the site first: {dialog}"
        );
        assert!(dialog.contains("Essais restants : 3 sur 3"), "{dialog}");
        card.remove();
    }
}

#[test]
fn wrong_pin_then_right_pin_blocked_expired_and_cancel() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-pin");
    let reader = stack().reader();
    {
        let _card = insert("cps3", &reader);
        s.agent.answer_pins(&["0000", "1234", "cancel"]);
        let wrong = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        assert_eq!(wrong.status, 403, "{}", wrong.body);
        let e = &wrong.json()["error"];
        assert_eq!((e["code"].as_str(), e["tries_left"].as_u64()), (Some("PIN_WRONG"), Some(2)), "{e}");
        assert!(e["message"].as_str().unwrap().contains("Code porteur incorrect"));
        assert!(e["message_en"].as_str().is_some() && e["fix"].as_str().is_some() && e["retriable"] == true);
        let right = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        assert_eq!(right.status, 200, "{}", right.body);
        assert!(
            s.agent.dialogs()[1].contains("Essais restants : 2 sur 3"),
            "the second dialog shows the try spent"
        );
        let cancelled = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        assert_eq!(
            (cancelled.status, cancelled.json()["error"]["code"].as_str()),
            (409, Some("USER_CANCELLED"))
        );
    }
    for (persona, code) in [("cps3-blocked", "PIN_BLOCKED"), ("cps3-expired", "CERTIFICATE_EXPIRED")] {
        let log = out_dir(&format!("api-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let before = s.agent.dialogs().len();
        let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (403, Some(code)),
            "{persona}: {}",
            r.body
        );
        assert_eq!(s.agent.dialogs().len(), before, "{persona}: refused before any PIN prompt");
        let verifies = logged_commands(&log)
            .into_iter()
            .filter(|c| c.starts_with("0020") && c.contains("secret"))
            .count();
        assert_eq!(verifies, 0, "{persona}: no VERIFY sent");
    }
}

#[test]
fn hostile_requests_get_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-hostile");
    let reader = stack().reader();
    let log = out_dir("api-hostile-card").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    s.agent.answer_pins(&["1234", "1234"]);
    let body = json!({"challenge": challenge()}).to_string();

    // A page on an origin that is not allowed: no prompt, no signature, no CORS.
    let r = login(&s.agent, "https://evil.example", &body);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("ORIGIN_NOT_ALLOWED")));
    assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    // No Origin at all (a script outside a browser).
    let r = s.agent.request("POST", "/v1/authenticate", &[("Content-Type", "application/json")], Some(&body));
    assert_eq!(r.status, 403);
    // DNS rebinding: the right origin through another host name.
    let r = s.agent.request(
        "POST",
        "/v1/authenticate",
        &[
            ("Host", &format!("attacker.example:{}", s.agent.port)),
            ("Origin", ORIGIN),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    );
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("HOST_NOT_ALLOWED")));
    assert!(s.agent.dialogs().is_empty(), "no PIN prompt for any of these");
    assert!(!logged_commands(&log).iter().any(|c| c.starts_with("0088")), "the card signed nothing");

    // Bad requests from an allowed origin.
    let short = json!({"challenge": base64::engine::general_purpose::STANDARD.encode([1u8; 16])}).to_string();
    assert_eq!(login(&s.agent, ORIGIN, &short).json()["error"]["code"], "CHALLENGE_INVALID");
    assert_eq!(login(&s.agent, ORIGIN, "{\"nonce\": 1}").json()["error"]["code"], "BAD_REQUEST");
    let plain = s.agent.request(
        "POST",
        "/v1/authenticate",
        &[("Origin", ORIGIN), ("Content-Type", "text/plain")],
        Some(&body),
    );
    assert_eq!(plain.status, 415, "a simple (no-preflight) request is refused");
    let big = json!({"challenge": "A".repeat(20_000)}).to_string();
    assert_eq!(login(&s.agent, ORIGIN, &big).status, 413);
    assert_eq!(s.agent.request("GET", "/v1/nothing", &[("Origin", ORIGIN)], None).status, 404);
    assert!(s.agent.dialogs().is_empty());

    // CORS preflight: allowed origin only, with Private Network Access.
    let pre = s.agent.request(
        "OPTIONS",
        "/v1/authenticate",
        &[
            ("Origin", ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Private-Network", "true"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some(ORIGIN));
    assert_eq!(pre.header("Access-Control-Allow-Private-Network"), Some("true"));
    let pre = s.agent.request(
        "OPTIONS",
        "/v1/authenticate",
        &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")],
        None,
    );
    assert_eq!(pre.status, 403);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), None);

    // Status: liveness only without Origin; holder only for an allowed origin.
    let bare = s.agent.request("GET", "/v1/status", &[], None).json();
    assert_eq!(bare, serde_json::json!({"agent": "cpx-agent"}), "liveness only, not the version");
    let allowed = s.agent.request("GET", "/v1/status", &[("Origin", ORIGIN)], None);
    let v = allowed.json();
    let mine = v["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reader"] == reader.name.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["message"], "Carte CPS insérée et reconnue");
    assert_eq!(mine["holder"]["nom"], "DUPONT");
    let other = s.agent.request("GET", "/v1/status", &[("Origin", "https://evil.example")], None);
    assert_eq!(other.header("Access-Control-Allow-Origin"), None);
    assert!(!other.body.contains("DUPONT"), "no identity for an origin that is not allowed");
    assert_eq!(other.json(), serde_json::json!({"agent": "cpx-agent"}), "liveness only, not the version");
    assert!(v["version"].is_string(), "an allowed site gets the version: {v}");
}

#[test]
fn signed_token_binds_origin_and_challenge() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-token");
    let reader = stack().reader();
    for persona in ["cps3", "cps4"] {
        let _card = insert(persona, &reader);
        s.agent.answer_pins(&["1234"]);
        let c = challenge();
        let r = s.agent.request(
            "POST",
            "/v1/token",
            &[("Origin", ORIGIN), ("Content-Type", "application/json")],
            Some(&json!({"challenge": c}).to_string()),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        let b64 = base64::engine::general_purpose::STANDARD;
        let cert = b64.decode(v["certificate"].as_str().unwrap()).unwrap();
        let sig = b64.decode(v["signature"].as_str().unwrap()).unwrap();
        let signed = [Sha256::digest(ORIGIN.as_bytes()), Sha256::digest(c.as_bytes())].concat();
        let digest = Sha256::digest(&signed);
        let scheme = if v["algorithm"] == "PS256" {
            cpx_card::SignScheme::RsaPssSha256
        } else {
            cpx_card::SignScheme::RsaPkcs1Sha256
        };
        cpx_tests::verify_signature(&cert, scheme, &digest, &sig).expect("token signature verifies");
        // The same signature does not verify for another origin.
        let other =
            Sha256::digest([Sha256::digest(b"https://evil.example"), Sha256::digest(c.as_bytes())].concat());
        assert!(cpx_tests::verify_signature(&cert, scheme, &other, &sig).is_err());
        assert_eq!(v["algorithm"], if persona == "cps4" { "PS256" } else { "RS256" });
    }
}

#[test]
fn card_pulled_mid_handshake() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-pull");
    let reader = stack().reader();
    {
        let _card = insert("pull-mid-sign", &reader);
        s.agent.answer_pins(&["1234"]);
        let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        let code = r.json()["error"]["code"].as_str().unwrap_or_default().to_owned();
        assert_eq!(code, "CARD_REMOVED", "{}", r.body);
    }
    let _card = insert("cps3", &reader);
    s.agent.answer_pins(&["1234"]);
    let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
    assert_eq!(r.status, 200, "the agent works again with the next card: {}", r.body);
}

#[test]
fn mtls_login_accepted_by_openssl_s_server() {
    use cpx_tests::agent::OpensslServer;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("api-s_server");
    let pki = server_pki(&dir.join("pki"));
    let reader = stack().reader();
    for (persona, tls) in [("cps3", "TLSv1.2"), ("cps4", "TLSv1.3")] {
        let sdir = dir.join(persona);
        let server = OpensslServer::start(&sdir, &pki, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"linked\":false}");
        let agent = AgentProcess::start(&sdir.join("agent"), &site(server.port, &pki.ca_pem));
        let _card = insert(persona, &reader);
        agent.answer_pins(&["1234"]);
        let c = challenge();
        let r = login(&agent, ORIGIN, &json!({"challenge": c}).to_string());
        let seen = server.output(&sdir);
        assert_eq!(r.status, 200, "{persona}: {}\ns_server: {seen}", r.body);
        let v = r.json();
        assert_eq!((v["tls"].as_str(), v["portal"]["linked"].as_bool()), (Some(tls), Some(false)), "{v}");
        assert!(seen.contains(&c), "s_server received the challenge through the verified channel:\n{seen}");
        assert!(seen.contains(ORIGIN), "and the origin");
    }
}

#[test]
fn openapi_lists_every_error_code() {
    let spec = cpx_tests::openapi::Spec::load();
    let documented = spec.error_codes();
    for code in cpx_agent::messages::Code::ALL {
        let name = serde_json::to_value(code).unwrap();
        assert!(documented.iter().any(|d| name == d.as_str()), "{name} missing from docs/openapi.yaml");
    }
    assert_eq!(
        documented.len(),
        cpx_agent::messages::Code::ALL.len(),
        "the document lists codes the agent does not have"
    );
    // The checker itself refuses what the document does not allow.
    assert!(spec.check("GET", "/v1/status", 200, &json!({"agent": "cpx-agent", "version": "0.1.0"})).is_ok());
    assert!(spec.check("GET", "/v1/status", 200, &json!({"agent": "cpx-agent"})).is_ok(), "liveness only");
    assert!(spec.check("GET", "/v1/status", 200, &json!({"version": "0.1.0"})).is_err(), "missing field");
    assert!(
        spec.check("GET", "/v1/status", 200, &json!({"agent": "other", "version": "1"})).is_err(),
        "enum"
    );
    assert!(
        spec.check("GET", "/v1/status", 200, &json!({"agent": "cpx-agent", "version": "1", "pin": "1234"}))
            .is_err(),
        "undocumented field"
    );
    assert!(spec.check("POST", "/v1/authenticate", 418, &json!({})).is_err(), "undocumented status");
}

#[test]
fn two_cpx_cards_the_user_picks_and_other_cards_are_ignored() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-two-cards");
    let (r1, r2, r3) = (stack().reader(), stack().reader(), stack().reader());
    // A bi-fente reader also holds the patient's card: it is not a CPx card and is never offered.
    let _other = insert("not-cpx", &r3);
    let mut readers =
        [(&r1, "cps3", "899700123456", "JEAN DUPONT"), (&r2, "cps4", "899700234567", "CLAIRE MARTIN")];
    readers.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let _a = insert(readers[0].1, readers[0].0);
    let _b = insert(readers[1].1, readers[1].0);
    // "Carte suivante" on the first, "Utiliser cette carte" on the second, then the PIN.
    s.agent.answer_pins(&["no", "yes", "1234"]);
    let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(&format!("CN={}", readers[1].2)), "logged in with the second card: {}", r.body);
    let dialogs = s.agent.dialogs();
    assert_eq!(dialogs.len(), 3, "{dialogs:?}");
    assert!(
        dialogs[0].contains(readers[0].3) && dialogs[1].contains(readers[1].3),
        "each card shown with its holder: {dialogs:?}"
    );
    assert!(dialogs[0].contains(ORIGIN), "the site is named there too");
    // Cancelling the choice.
    s.agent.answer_pins(&["cancel"]);
    let r = login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
    assert_eq!(r.json()["error"]["code"], "USER_CANCELLED");
}

#[test]
fn concurrent_logins_take_turns_on_the_card() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = setup("api-concurrent");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    s.agent.answer_pins(&["1234", "1234", "1234"]);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| login(&s.agent, ORIGIN, &json!({"challenge": challenge()}).to_string()).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![200, 200, 200], "one card operation at a time, each request waits its turn");
    assert_eq!(s.agent.dialogs().len(), 3, "one PIN dialog per login, one after the other");
}

#[test]
fn a_login_waiting_too_long_for_the_card_gets_busy() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("api-busy");
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    // The card is given up after 1 s of waiting; the professional takes 3 s to type the PIN.
    let config = format!("busy_wait_seconds = 1\n{}", site(nginx.port, &pki.ca_pem));
    let agent = AgentProcess::start_full(
        &dir.join("agent"),
        &config,
        cpx_tests::agent::free_port(),
        &[("PINENTRY_DELAY", "3")],
    );
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    agent.answer_pins(&["1234"]);
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| login(&agent, ORIGIN, &json!({"challenge": challenge()}).to_string()));
        // The first login holds the card once its PIN dialog is up (the pinentry is the agent's child).
        cpx_tests::poll("the first login's PIN dialog", std::time::Duration::from_secs(10), || {
            cpx_tests::child_commands(agent.pid()).iter().any(|c| c.contains("pinentry")).then_some(())
        });
        let second = login(&agent, ORIGIN, &json!({"challenge": challenge()}).to_string());
        (first.join().unwrap(), second)
    });
    assert_eq!(
        (second.status, second.json()["error"]["code"].as_str()),
        (409, Some("BUSY")),
        "{}",
        second.body
    );
    assert_eq!(second.json()["error"]["retriable"], true);
    assert_eq!(first.status, 200, "the first login goes on: {}", first.body);
}
