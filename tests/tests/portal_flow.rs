//! The whole card login, page by page, as the portal's own page does it (challenge and finish on the
//! site with the session cookie, authenticate on the agent): first login with linking to an existing
//! account, second login straight in, liberal account creation, replayed and cross-origin challenges,
//! codes redeemed from another session. Real agent, real portal, real pcscd/vpcd and virtual cards.
//! The browser version of these flows is in browser.rs.

use std::sync::Mutex;

use cpx_tests::agent::{server_pki, AgentProcess, PortalProcess, ServerPki};
use cpx_tests::{insert, out_dir, stack};
use serde_json::{json, Value};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    _pki: ServerPki,
}

fn world(name: &str, extra_sites: &str) -> World {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let portal = PortalProcess::start(&dir.join("portal"), &pki);
    portal.add_account("amelie", "mot-de-passe-amelie", "MARTIN", "AMELIE");
    portal.add_account("bruno", "mot-de-passe-bruno", "BERNARD", "BRUNO");
    let agent = AgentProcess::start(&dir.join("agent"), &format!("{}{extra_sites}", portal.agent_site(&pki)));
    World { portal, agent, _pki: pki }
}

impl World {
    /// Challenge (new or given session) → agent → the agent's answer, and the session cookie.
    fn card_step(&self, session: Option<&str>, origin_at_agent: &str) -> (String, String, Value) {
        let r = self.portal.page("POST", "/cpx/challenge", session, "application/json", Some("{}"));
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r.session_cookie().or(session.map(str::to_owned)).expect("session cookie");
        let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
        self.agent.answer_pins(&["1234"]);
        let a = self.agent.request("POST", "/v1/authenticate", &[("Origin", origin_at_agent), ("Content-Type", "application/json")], Some(&json!({"challenge": challenge}).to_string()));
        assert_eq!(a.status, 200, "{}", a.body);
        (cookie, challenge, a.json())
    }

    fn finish(&self, cookie: &str, code: &str) -> cpx_tests::agent::HttpAnswer {
        self.portal.page("POST", "/cpx/finish", Some(cookie), "application/json", Some(&json!({"code": code}).to_string()))
    }
}

#[test]
fn first_login_links_then_second_login_goes_straight_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-link", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);

    let (cookie, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["portal"]["status"], "link_required", "{answer}");
    let fin = w.finish(&cookie, answer["portal"]["code"].as_str().unwrap());
    assert_eq!(fin.json()["next"], "/premiere-connexion");
    let page = w.portal.page("GET", "/premiere-connexion", Some(&cookie), "", None);
    for want in ["Première connexion par carte CPx", "Espace professionnel", "Espace médecin libéral", "value=\"DUPONT\"", "value=\"JEAN\"", "value=\"Médecin\""] {
        assert!(page.body.contains(want), "missing {want:?}");
    }
    // Only the account's owner can link it.
    let bad = w.portal.page("POST", "/premiere-connexion/lier", Some(&cookie), "application/x-www-form-urlencoded", Some("username=amelie&password=devine"));
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("seul le titulaire du compte"));
    let ok = w.portal.page("POST", "/premiere-connexion/lier", Some(&cookie), "application/x-www-form-urlencoded", Some("username=amelie&password=mot-de-passe-amelie"));
    assert_eq!((ok.status, ok.header("Location")), (303, Some("/compte")));
    let account = w.portal.page("GET", "/compte", Some(&cookie), "", None);
    assert!(account.body.contains("Mon compte") && account.body.contains("899700123456") && account.body.contains("amelie"), "{}", account.body);

    // Second card login, a new browser session: straight in.
    let (cookie2, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["portal"]["status"], "authenticated");
    assert_ne!(cookie2, cookie);
    assert_eq!(w.finish(&cookie2, answer["portal"]["code"].as_str().unwrap()).json()["next"], "/compte");
    assert!(w.portal.page("GET", "/compte", Some(&cookie2), "", None).body.contains("amelie"));
}

#[test]
fn liberal_account_created_from_the_card() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-liberal", "");
    let reader = stack().reader();
    let _card = insert("cps4", &reader);
    let (cookie, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["tls"], "TLSv1.3");
    w.finish(&cookie, answer["portal"]["code"].as_str().unwrap());
    let missing = w.portal.page("POST", "/premiere-connexion/creer", Some(&cookie), "application/x-www-form-urlencoded", Some("mail=claire.martin%40example.fr&code_postal=&ville="));
    assert_eq!(missing.status, 400, "code postal and ville are required");
    let made = w.portal.page("POST", "/premiere-connexion/creer", Some(&cookie), "application/x-www-form-urlencoded", Some("mail=claire.martin%40example.fr&telephone=0102030405&code_postal=75012&ville=Paris"));
    assert_eq!(made.status, 303, "{}", made.body);
    let account = w.portal.page("GET", "/compte", Some(&cookie), "", None).body;
    assert!(account.contains("Espace médecin libéral") && account.contains("CLAIRE") && account.contains("899700234567"), "{account}");
}

#[test]
fn replayed_cross_origin_and_stolen_codes_are_refused() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The agent also allows another site: a page there gets a card login, but not into this portal.
    let other = "[[site]]\norigin = \"https://other.test\"\nmtls_endpoint = \"https://127.0.0.1:1/none\"\nserver_roots = \"/dev/null\"\n";
    let w = world("flow-hostile", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let (cookie, challenge, answer) = w.card_step(None, &w.portal.origin);
    // Replay: the same challenge a second time.
    w.agent.answer_pins(&["1234"]);
    let again = w.agent.request("POST", "/v1/authenticate", &[("Origin", &w.portal.origin), ("Content-Type", "application/json")], Some(&json!({"challenge": challenge}).to_string())).json();
    assert_eq!((again["portal_status"].as_u64(), again["portal"]["error"]["code"].as_str()), (Some(403), Some("CHALLENGE_REPLAYED")), "{again}");
    // The code redeemed from another browser session.
    let thief = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}")).session_cookie().unwrap();
    let stolen = w.finish(&thief, answer["portal"]["code"].as_str().unwrap());
    assert_eq!((stolen.status, stolen.json()["error"]["code"].as_str()), (403, Some("CODE_REFUSED")));
    // …which also spent it: the rightful session cannot use it either now (single use).
    assert_eq!(w.finish(&cookie, answer["portal"]["code"].as_str().unwrap()).status, 403);
    drop(w);

    // Issued for this portal's origin, used from another origin's page through the agent.
    let w = world("flow-cross-origin", other);
    let r = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    // The other site is configured with this portal's endpoint by an attacker? No: the agent posts to the
    // endpoint configured for the page's origin. Here the page of other.test sends the portal's
    // challenge; the agent carries origin other.test to other.test's endpoint, which is not the portal.
    w.agent.answer_pins(&["1234"]);
    let cross = w.agent.request("POST", "/v1/authenticate", &[("Origin", "https://other.test"), ("Content-Type", "application/json")], Some(&json!({"challenge": challenge}).to_string()));
    assert_ne!(cross.status, 200, "nothing reaches the portal from another origin: {}", cross.body);
    // And straight to the portal's endpoint with another origin (a relay): ORIGIN_MISMATCH.
    let agent_for_relay = AgentProcess::start(&out_dir("flow-relay-agent"), &w.portal.agent_site(&w._pki).replace(&w.portal.origin, "https://other.test"));
    agent_for_relay.answer_pins(&["1234"]);
    let r = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let relayed = agent_for_relay.request("POST", "/v1/authenticate", &[("Origin", "https://other.test"), ("Content-Type", "application/json")], Some(&json!({"challenge": challenge}).to_string())).json();
    assert_eq!(relayed["portal"]["error"]["code"], "ORIGIN_MISMATCH", "{relayed}");
}

#[test]
fn an_identity_linked_to_one_account_cannot_be_linked_to_another() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-double-link", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    // Two browser sessions reach the linking page for the same card.
    let (c1, _, a1) = w.card_step(None, &w.portal.origin);
    w.finish(&c1, a1["portal"]["code"].as_str().unwrap());
    let (c2, _, a2) = w.card_step(None, &w.portal.origin);
    w.finish(&c2, a2["portal"]["code"].as_str().unwrap());
    let first = w.portal.page("POST", "/premiere-connexion/lier", Some(&c1), "application/x-www-form-urlencoded", Some("username=amelie&password=mot-de-passe-amelie"));
    assert_eq!(first.status, 303);
    let second = w.portal.page("POST", "/premiere-connexion/lier", Some(&c2), "application/x-www-form-urlencoded", Some("username=bruno&password=mot-de-passe-bruno"));
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(second.body.contains("déjà liée à un autre compte"));
    // After unlinking from amelie's account, bruno can link it.
    assert_eq!(w.portal.page("POST", "/compte/delier", Some(&c1), "application/x-www-form-urlencoded", Some("")).status, 303);
    let (c3, _, a3) = w.card_step(None, &w.portal.origin);
    assert_eq!(a3["portal"]["status"], "link_required");
    w.finish(&c3, a3["portal"]["code"].as_str().unwrap());
    assert_eq!(w.portal.page("POST", "/premiere-connexion/lier", Some(&c3), "application/x-www-form-urlencoded", Some("username=bruno&password=mot-de-passe-bruno")).status, 303);
    // A POST from another origin is refused (CSRF).
    let csrf = cpx_tests::agent::https_to(
        &std::fs::read_to_string(&w._pki.ca_pem).unwrap(), "127.0.0.1", "portal.test", w.portal.site_port, "POST", "/compte/delier",
        &[("Origin", "https://evil.example"), ("Cookie", &format!("cpx_session={c3}")), ("Content-Type", "application/x-www-form-urlencoded")], Some(""),
    );
    assert_eq!(csrf.status, 403);
}

#[test]
fn signed_token_login_through_the_page() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-token", "");
    let reader = stack().reader();
    let _card = insert("cps4", &reader);
    let r = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
    let cookie = r.session_cookie().unwrap();
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    w.agent.answer_pins(&["1234"]);
    let token = w.agent.request("POST", "/v1/token", &[("Origin", &w.portal.origin), ("Content-Type", "application/json")], Some(&json!({"challenge": challenge}).to_string())).json();
    assert_eq!(token["algorithm"], "PS256");
    let body = json!({"challenge": challenge, "token": token}).to_string();
    let done = w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&body));
    assert_eq!((done.status, done.json()["next"].as_str()), (200, Some("/premiere-connexion")), "{}", done.body);
    assert!(w.portal.page("GET", "/premiere-connexion", Some(&cookie), "", None).body.contains("value=\"MARTIN\""));
    // The same token again: the challenge is spent.
    let again = w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&body));
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (403, Some("CHALLENGE_REPLAYED")));
    // A token made for another challenge of this session does not verify.
    let r = w.portal.page("POST", "/cpx/challenge", Some(&cookie), "application/json", Some("{}"));
    let fresh = r.json()["challenge"].as_str().unwrap().to_owned();
    let forged = json!({"challenge": fresh, "token": token}).to_string();
    assert_eq!(w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&forged)).json()["error"]["code"], "CERTIFICATE_REFUSED");
}
