//! The whole card login, page by page, as the portal's own page does it (challenge and finish on the
//! site with the session cookie, authenticate on the agent): first login with linking to an existing
//! account, second login straight in, liberal account creation, replayed and cross-origin challenges,
//! codes redeemed from another session; session ids renewed at each login step (session fixation) and
//! expiring; password attempts rate-limited; card certificates refused when revoked or when their
//! revocation status is unknown, CRLs reloaded; odd form encodings. Real agent, real portal, real
//! pcscd/vpcd and virtual cards. The browser version of these flows is in browser.rs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cpx_tests::agent::{
    server_pki, write_card_crl, write_current_card_crl, AgentProcess, PortalProcess, Request, Server,
    ServerPki, DEFAULT_AGENT_PORT, PORTAL_SESSION_COOKIE,
};
use cpx_tests::{insert, out_dir, stack};
use serde_json::{json, Value};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    _pki: ServerPki,
}

fn world(name: &str, extra_sites: &str) -> World {
    world_with(name, extra_sites, PortalProcess::start)
}

/// A world whose portal `start` starts (other CRLs, other options).
fn world_with(
    name: &str,
    extra_sites: &str,
    start: impl FnOnce(&std::path::Path, &ServerPki) -> PortalProcess,
) -> World {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let portal = start(&dir.join("portal"), &pki);
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
        let a = self.agent.request(
            "POST",
            "/v1/authenticate",
            &[("Origin", origin_at_agent), ("Content-Type", "application/json")],
            Some(&json!({"challenge": challenge}).to_string()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        (cookie, challenge, a.json())
    }

    fn finish(&self, cookie: &str, code: &str) -> cpx_tests::agent::HttpAnswer {
        self.portal.finish(cookie, code)
    }

    /// Finishes a card login; the session id the portal gives in exchange (a new one).
    fn finish_session(&self, cookie: &str, code: &str) -> (cpx_tests::agent::HttpAnswer, String) {
        let fin = self.finish(cookie, code);
        assert_eq!(fin.status, 200, "{}", fin.body);
        let renewed = fin.session_cookie().expect("a new session id at card login");
        assert_ne!(renewed, cookie, "the session id changes at card login");
        (fin, renewed)
    }

    /// Challenge, agent and finish: the session id after the card login.
    fn card_login(&self, session: Option<&str>) -> (String, Value) {
        let (cookie, _, answer) = self.card_step(session, &self.portal.origin);
        let (fin, renewed) = self.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
        (renewed, fin.json())
    }

    /// A form POST of the site's own page.
    fn form(&self, path: &str, cookie: Option<&str>, body: &str) -> cpx_tests::agent::HttpAnswer {
        self.portal.page("POST", path, cookie, "application/x-www-form-urlencoded", Some(body))
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
    let (fin, cookie) = w.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
    assert_eq!(fin.json()["next"], "/premiere-connexion");
    let page = w.portal.page("GET", "/premiere-connexion", Some(&cookie), "", None);
    for want in [
        "Première connexion par carte CPx",
        "Espace professionnel",
        "Espace médecin libéral",
        "value=\"DUPONT\"",
        "value=\"JEAN\"",
        "value=\"Médecin\"",
        "Est-ce bien votre carte ?",
        "<strong>JEAN DUPONT</strong> — Médecin, identifiant national 899700123456",
    ] {
        assert!(page.body.contains(want), "missing {want:?}");
    }
    // The right password, but the professional has not confirmed that the card shown is theirs.
    let unconfirmed =
        w.form("/premiere-connexion/lier", Some(&cookie), "username=amelie&password=mot-de-passe-amelie");
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(unconfirmed.body.contains("cochez « Cette carte est la mienne »"));
    // Only the account's owner can link it.
    let bad = w.portal.page(
        "POST",
        "/premiere-connexion/lier",
        Some(&cookie),
        "application/x-www-form-urlencoded",
        Some("username=amelie&password=devine&carte=899700123456"),
    );
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("seul le titulaire du compte"));
    let ok = w.portal.page(
        "POST",
        "/premiere-connexion/lier",
        Some(&cookie),
        "application/x-www-form-urlencoded",
        Some("username=amelie&password=mot-de-passe-amelie&carte=899700123456"),
    );
    assert_eq!((ok.status, ok.header("Location")), (303, Some("/compte")));
    let cookie = ok.session_cookie().expect("a new session id at linking");
    let account = w.portal.page("GET", "/compte", Some(&cookie), "", None);
    assert!(
        account.body.contains("Mon compte")
            && account.body.contains("899700123456")
            && account.body.contains("amelie"),
        "{}",
        account.body
    );

    // Second card login, a new browser session: straight in.
    let (cookie2, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["portal"]["status"], "authenticated");
    assert_ne!(cookie2, cookie);
    let (fin, cookie2) = w.finish_session(&cookie2, answer["portal"]["code"].as_str().unwrap());
    assert_eq!(fin.json()["next"], "/compte");
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
    let (_, cookie) = w.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
    let missing = w.portal.page(
        "POST",
        "/premiere-connexion/creer",
        Some(&cookie),
        "application/x-www-form-urlencoded",
        Some("mail=claire.martin%40example.fr&code_postal=&ville=&carte=899700234567"),
    );
    assert_eq!(missing.status, 400, "code postal and ville are required");
    let made = w.portal.page(
        "POST",
        "/premiere-connexion/creer",
        Some(&cookie),
        "application/x-www-form-urlencoded",
        Some("mail=claire.martin%40example.fr&telephone=0102030405&code_postal=75012&ville=Paris&carte=899700234567"),
    );
    assert_eq!(made.status, 303, "{}", made.body);
    let cookie = made.session_cookie().expect("a new session id at account creation");
    let account = w.portal.page("GET", "/compte", Some(&cookie), "", None).body;
    assert!(
        account.contains("Espace médecin libéral")
            && account.contains("CLAIRE")
            && account.contains("899700234567"),
        "{account}"
    );
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
    let again = w
        .agent
        .request(
            "POST",
            "/v1/authenticate",
            &[("Origin", &w.portal.origin), ("Content-Type", "application/json")],
            Some(&json!({"challenge": challenge}).to_string()),
        )
        .json();
    assert_eq!(
        (again["portal_status"].as_u64(), again["portal"]["error"]["code"].as_str()),
        (Some(403), Some("CHALLENGE_REPLAYED")),
        "{again}"
    );
    // The code redeemed from another browser session.
    let thief = w
        .portal
        .page("POST", "/cpx/challenge", None, "application/json", Some("{}"))
        .session_cookie()
        .unwrap();
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
    let cross = w.agent.request(
        "POST",
        "/v1/authenticate",
        &[("Origin", "https://other.test"), ("Content-Type", "application/json")],
        Some(&json!({"challenge": challenge}).to_string()),
    );
    assert_ne!(cross.status, 200, "nothing reaches the portal from another origin: {}", cross.body);
    // And straight to the portal's endpoint with another origin (a relay): ORIGIN_MISMATCH.
    let agent_for_relay = AgentProcess::start(
        &out_dir("flow-relay-agent"),
        &w.portal.agent_site(&w._pki).replace(&w.portal.origin, "https://other.test"),
    );
    agent_for_relay.answer_pins(&["1234"]);
    let r = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let relayed = agent_for_relay
        .request(
            "POST",
            "/v1/authenticate",
            &[("Origin", "https://other.test"), ("Content-Type", "application/json")],
            Some(&json!({"challenge": challenge}).to_string()),
        )
        .json();
    assert_eq!(relayed["portal"]["error"]["code"], "ORIGIN_MISMATCH", "{relayed}");
}

#[test]
fn an_identity_linked_to_one_account_cannot_be_linked_to_another() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-double-link", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    // Two browser sessions reach the linking page for the same card.
    let (c1, _) = w.card_login(None);
    let (c2, _) = w.card_login(None);
    let first = w.portal.page(
        "POST",
        "/premiere-connexion/lier",
        Some(&c1),
        "application/x-www-form-urlencoded",
        Some("username=amelie&password=mot-de-passe-amelie&carte=899700123456"),
    );
    assert_eq!(first.status, 303);
    let c1 = first.session_cookie().unwrap();
    let second = w.portal.page(
        "POST",
        "/premiere-connexion/lier",
        Some(&c2),
        "application/x-www-form-urlencoded",
        Some("username=bruno&password=mot-de-passe-bruno&carte=899700123456"),
    );
    assert_eq!(second.status, 409, "{}", second.body);
    assert!(second.body.contains("déjà liée à un autre compte"));
    // After unlinking from amelie's account, bruno can link it.
    assert_eq!(
        w.portal
            .page("POST", "/compte/delier", Some(&c1), "application/x-www-form-urlencoded", Some(""))
            .status,
        303
    );
    let (c3, _, a3) = w.card_step(None, &w.portal.origin);
    assert_eq!(a3["portal"]["status"], "link_required");
    let (_, c3) = w.finish_session(&c3, a3["portal"]["code"].as_str().unwrap());
    let linked = w.portal.page(
        "POST",
        "/premiere-connexion/lier",
        Some(&c3),
        "application/x-www-form-urlencoded",
        Some("username=bruno&password=mot-de-passe-bruno&carte=899700123456"),
    );
    assert_eq!(linked.status, 303);
    let c3 = linked.session_cookie().unwrap();
    // A POST from another origin is refused (CSRF).
    let ca_pem = std::fs::read_to_string(&w._pki.ca_pem).unwrap();
    let portal = Server { ca_pem: &ca_pem, addr: "127.0.0.1", host: "portal.test", port: w.portal.site_port };
    let csrf = portal.send(&Request {
        method: "POST",
        path: "/compte/delier",
        headers: &[
            ("Origin", "https://evil.example"),
            ("Cookie", &format!("{PORTAL_SESSION_COOKIE}={c3}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body: Some(""),
    });
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
    let token = w
        .agent
        .request(
            "POST",
            "/v1/token",
            &[("Origin", &w.portal.origin), ("Content-Type", "application/json")],
            Some(&json!({"challenge": challenge}).to_string()),
        )
        .json();
    assert_eq!(token["algorithm"], "PS256");
    let body = json!({"challenge": challenge, "token": token}).to_string();
    let done = w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&body));
    assert_eq!(
        (done.status, done.json()["next"].as_str()),
        (200, Some("/premiere-connexion")),
        "{}",
        done.body
    );
    let old = cookie;
    let cookie = done.session_cookie().expect("a new session id at card login");
    assert_ne!(cookie, old);
    assert!(w
        .portal
        .page("GET", "/premiere-connexion", Some(&cookie), "", None)
        .body
        .contains("value=\"MARTIN\""));
    // The same token again: the challenge is spent.
    let again = w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&body));
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (403, Some("CHALLENGE_REPLAYED")));
    // A token made for another challenge of this session does not verify.
    let r = w.portal.page("POST", "/cpx/challenge", Some(&cookie), "application/json", Some("{}"));
    let fresh = r.json()["challenge"].as_str().unwrap().to_owned();
    let forged = json!({"challenge": fresh, "token": token}).to_string();
    assert_eq!(
        w.portal.page("POST", "/cpx/token", Some(&cookie), "application/json", Some(&forged)).json()["error"]
            ["code"],
        "CERTIFICATE_REFUSED"
    );
}

/// Polls `check` until it holds, for `limit` at most.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    cpx_tests::poll(what, limit, || check().then_some(()));
}

#[test]
fn a_session_id_set_before_login_is_not_the_one_after() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-fixation", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    // An id the attacker got from the portal (any visit makes one) and planted in the victim's browser.
    let planted = || {
        w.portal
            .page("POST", "/cpx/challenge", None, "application/json", Some("{}"))
            .session_cookie()
            .unwrap()
    };
    let logged_in_as = |cookie: &str| {
        let page = w.portal.page("GET", "/compte", Some(cookie), "", None);
        (page.status == 200).then_some(page.body)
    };

    // Password login.
    let fixed = planted();
    let r = w.form("/login", Some(&fixed), "username=bruno&password=mot-de-passe-bruno");
    assert_eq!(r.status, 303, "{}", r.body);
    let after = r.session_cookie().expect("a session cookie set at login");
    assert_ne!(after, fixed, "password login keeps the planted session id");
    assert!(logged_in_as(&after).is_some_and(|b| b.contains("bruno")));
    assert!(logged_in_as(&fixed).is_none(), "the planted id is logged in");

    // Card login (first time: linking) from a planted id, then the link.
    let fixed = planted();
    let (cookie, _, answer) = w.card_step(Some(&fixed), &w.portal.origin);
    assert_eq!(cookie, fixed, "the challenge belongs to the session that asked");
    let (_, pending) = w.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
    assert_eq!(
        w.portal.page("GET", "/premiere-connexion", Some(&fixed), "", None).status,
        403,
        "the planted id sees the card's identity"
    );
    assert!(w
        .portal
        .page("GET", "/premiere-connexion", Some(&pending), "", None)
        .body
        .contains("value=\"DUPONT\""));
    let linked = w.form(
        "/premiere-connexion/lier",
        Some(&pending),
        "username=amelie&password=mot-de-passe-amelie&carte=899700123456",
    );
    assert_eq!(linked.status, 303, "{}", linked.body);
    let after = linked.session_cookie().expect("a new session id at linking");
    assert_ne!(after, pending);
    assert!(logged_in_as(&after).is_some_and(|b| b.contains("amelie")));
    assert!(logged_in_as(&pending).is_none() && logged_in_as(&fixed).is_none());

    // Card login of a linked card from a planted id: straight in, under a new id.
    let fixed = planted();
    let (after, fin) = w.card_login(Some(&fixed));
    assert_eq!(fin["next"], "/compte");
    assert!(logged_in_as(&after).is_some_and(|b| b.contains("amelie")));
    assert!(logged_in_as(&fixed).is_none(), "the planted id is logged in after a card login");
}

#[test]
fn sessions_expire_idle_and_at_their_absolute_lifetime() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Idle: 3 s without a request ends the session.
    let idle = world_with("flow-session-idle", "", |dir, pki| {
        let crl = dir.join("card-ca.crl");
        std::fs::create_dir_all(dir).unwrap();
        write_current_card_crl(&crl);
        PortalProcess::start_full(dir, pki, DEFAULT_AGENT_PORT, Some(&crl), &["--session-idle-seconds", "3"])
    });
    let cookie =
        idle.form("/login", None, "username=amelie&password=mot-de-passe-amelie").session_cookie().unwrap();
    assert_eq!(idle.portal.page("GET", "/compte", Some(&cookie), "", None).status, 200);
    let mut last_seen = Instant::now();
    eventually(Duration::from_secs(30), "the idle session ends", || {
        // Each request keeps it alive: let the idle time pass between two.
        if last_seen.elapsed() < Duration::from_millis(3500) {
            return false;
        }
        last_seen = Instant::now();
        idle.portal.page("GET", "/compte", Some(&cookie), "", None).status == 303
    });
    drop(idle);
    // Absolute: a session used all the time still ends after 5 s.
    let absolute = world_with("flow-session-absolute", "", |dir, pki| {
        let crl = dir.join("card-ca.crl");
        std::fs::create_dir_all(dir).unwrap();
        write_current_card_crl(&crl);
        PortalProcess::start_full(dir, pki, DEFAULT_AGENT_PORT, Some(&crl), &["--session-max-seconds", "5"])
    });
    let cookie = absolute
        .form("/login", None, "username=amelie&password=mot-de-passe-amelie")
        .session_cookie()
        .unwrap();
    assert_eq!(absolute.portal.page("GET", "/compte", Some(&cookie), "", None).status, 200);
    eventually(Duration::from_secs(30), "the session ends at its absolute lifetime", || {
        absolute.portal.page("GET", "/compte", Some(&cookie), "", None).status == 303
    });
}

#[test]
fn password_attempts_are_rate_limited_per_account() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-rate-limit", "");
    for i in 0..5 {
        let r = w.form("/login", None, &format!("username=amelie&password=devine-{i}"));
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    // The right password now: refused all the same, with the French message and its code.
    let r = w.form("/login", None, "username=amelie&password=mot-de-passe-amelie");
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.session_cookie().is_none());
    assert!(
        r.body.contains("data-code=\"LOGIN_RATE_LIMITED_ACCOUNT\"")
            && r.body
                .contains("Trop de tentatives de connexion pour cet identifiant : réessayez dans 15 minutes"),
        "{}",
        r.body
    );
    assert!(r.header("Retry-After").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s > 0 && s <= 900));
    // Another account is not affected.
    let other = w.form("/login", None, "username=bruno&password=mot-de-passe-bruno");
    assert_eq!(other.status, 303);
}

#[test]
fn a_percent_before_a_multibyte_character_does_not_crash_the_portal() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-percent", "");
    for body in [
        "username=%aé&password=x",
        "username=%&password=%",
        "username=%G1&password=%é",
        "username=ami%C3%A9&password=%FF",
    ] {
        let r = w.form("/login", None, body);
        assert_eq!(r.status, 401, "{body}: {}", r.body);
        assert!(r.body.contains("Identifiant ou mot de passe incorrect"), "{body}");
    }
    // Encoded forms still decode: a password with a space, a `+` and an accent.
    w.portal.add_account("zoe", "mot de+passe é", "ZOLA", "ZOE");
    let r = w.form("/login", None, "username=zoe&password=mot+de%2Bpasse+%C3%A9");
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn revoked_cards_and_unknown_revocation_status_are_refused_and_crls_reload() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let now = cpx_tests::crl::now();
    let day = 24 * 3600;
    let refusal = |w: &World| {
        let (_, _, answer) = w.card_step(None, &w.portal.origin);
        (
            answer["portal_status"].as_u64(),
            answer["portal"]["error"]["code"].as_str().map(str::to_owned),
            answer["portal"]["error"]["message"].as_str().unwrap_or_default().to_owned(),
        )
    };

    // A CRL that is out of date (its nextUpdate passed): the status is unknown, the login refused.
    let w = world_with("flow-crl-stale", "", |dir, pki| {
        std::fs::create_dir_all(dir).unwrap();
        let crl = dir.join("card-ca.crl");
        write_card_crl(&crl, &[], now - 30 * day, now - day);
        PortalProcess::start_full(dir, pki, DEFAULT_AGENT_PORT, Some(&crl), &["--crl-reload-seconds", "1"])
    });
    let (status, code, message) = refusal(&w);
    assert_eq!((status, code.as_deref()), (Some(403), Some("REVOCATION_UNKNOWN")), "{message}");
    assert!(message.contains("liste de révocation absente ou périmée"), "{message}");
    // The CRL is published anew (revoking this very card): the portal reloads it without a restart.
    let crl = w.portal.crl.clone().unwrap();
    write_card_crl(&crl, &[cpx_sim::pki::DUPONT.auth.cert_pem], now - 60, now + day);
    eventually(Duration::from_secs(30), "the new CRL is in force", || {
        w.portal.stderr().contains("CRL reloaded")
    });
    let (status, code, _) = refusal(&w);
    assert_eq!((status, code.as_deref()), (Some(403), Some("CERTIFICATE_REVOKED")));
    // And lifted again.
    write_current_card_crl(&crl);
    eventually(Duration::from_secs(30), "the CRL without the card is in force", || {
        w.portal.stderr().matches("CRL reloaded").count() >= 2
    });
    let (cookie, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["portal"]["status"], "link_required", "{answer}");
    w.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
    drop(w);

    // No CRL at all for the cards' issuer: refused…
    let w = world_with("flow-crl-none", "", |dir, pki| {
        PortalProcess::start_full(dir, pki, DEFAULT_AGENT_PORT, None, &[])
    });
    let (status, code, message) = refusal(&w);
    assert_eq!((status, code.as_deref()), (Some(403), Some("REVOCATION_UNKNOWN")), "{message}");
    drop(w);
    // …unless the portal says, and logs, that it accepts an unknown status.
    let w = world_with("flow-crl-allowed", "", |dir, pki| {
        PortalProcess::start_full(dir, pki, DEFAULT_AGENT_PORT, None, &["--allow-unknown-revocation"])
    });
    assert!(w.portal.stderr().contains("WARNING --allow-unknown-revocation"), "{}", w.portal.stderr());
    let (cookie, _, answer) = w.card_step(None, &w.portal.origin);
    assert_eq!(answer["portal"]["status"], "link_required", "{answer}");
    w.finish_session(&cookie, answer["portal"]["code"].as_str().unwrap());
    eventually(Duration::from_secs(10), "the login without revocation check is logged", || {
        w.portal.stderr().contains("accepted without revocation check")
    });
}

#[test]
fn parallel_password_guesses_are_counted_before_the_hash() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-parallel-guesses", "");
    // 12 guesses sent at once over 12 connections: only the account's 5 reach the password check.
    let start = std::sync::Barrier::new(12);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let guesses: Vec<_> = (0..12)
            .map(|i| {
                let (w, start) = (&w, &start);
                s.spawn(move || {
                    start.wait();
                    w.form("/login", None, &format!("username=amelie&password=devine-{i}")).status
                })
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401), count(429)), (5, 7), "{statuses:?}");
    assert_eq!(w.form("/login", None, "username=amelie&password=mot-de-passe-amelie").status, 429);
}

#[test]
fn the_session_cookie_is_host_only_and_a_foreign_card_can_be_turned_down() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("flow-not-my-card", "");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let (cookie, _, answer) = w.card_step(None, &w.portal.origin);
    let fin = w.finish(&cookie, answer["portal"]["code"].as_str().unwrap());
    let set = fin.header("Set-Cookie").expect("a session cookie").to_owned();
    assert!(set.starts_with("__Host-cpx_session="), "{set}");
    for part in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let pending = fin.session_cookie().unwrap();
    // The same session id under the unprefixed name (which a sibling host could set) is no session.
    let ca_pem = std::fs::read_to_string(&w._pki.ca_pem).unwrap();
    let portal = Server { ca_pem: &ca_pem, addr: "127.0.0.1", host: "portal.test", port: w.portal.site_port };
    let unprefixed = portal.send(&Request {
        method: "GET",
        path: "/premiere-connexion",
        headers: &[("Cookie", &format!("cpx_session={pending}"))],
        body: None,
    });
    assert_eq!(unprefixed.status, 403);
    // « Ce n'est pas ma carte »: the card is not linked, the pending session ends, and the page says why.
    let refused = w.form("/premiere-connexion/refuser", Some(&pending), "");
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("un autre programme se fait peut-être passer pour l'Agent CPx"));
    assert!(refused.header("Set-Cookie").is_some_and(|c| c.contains("Max-Age=0")));
    let late = w.form(
        "/premiere-connexion/lier",
        Some(&pending),
        "username=amelie&password=mot-de-passe-amelie&carte=899700123456",
    );
    assert_eq!(late.status, 403);
    // The card is still unlinked: its next login asks again.
    let (_, _, again) = w.card_step(None, &w.portal.origin);
    assert_eq!(again["portal"]["status"], "link_required");
}
