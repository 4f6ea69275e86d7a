//! The card login through a hospital's proxy, end to end: Debian's Squid is the only way into the
//! « outside » namespace where the demo portal runs (tests/src/proxy.rs), the mTLS endpoint's name is
//! known to Squid alone, and the agent's TLS handshake with the card runs inside the `CONNECT` tunnel.
//! With no authentication (the proxy fixed by the policy key, or given by `https_proxy`), with Basic, and
//! with Negotiate against a real Kerberos KDC; the proxy's refusal and its demand for credentials the
//! agent lacks come back to the page as catalogue codes; `diagnose` names the proxy of each site and
//! whether the tunnel opens; headless Chromium, through the same proxy, logs in.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use cpx_tests::agent::{free_port, AgentProcess};
use cpx_tests::browser::Browser;
use cpx_tests::proxy::{Hospital, ProxyAuth, BASIC_PASSWORD, BASIC_USER, FORBIDDEN_HOST, MTLS_HOST};
use cpx_tests::{binary, insert, out_dir, poll, stack};
use serde_json::{json, Value};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct World {
    agent: AgentProcess,
    hospital: Hospital,
    dir: std::path::PathBuf,
}

impl std::ops::Deref for World {
    type Target = Hospital;
    fn deref(&self) -> &Hospital {
        &self.hospital
    }
}

/// The hospital with Squid (`auth`) and the portal; the agent with `config` (top-level keys, `{proxy}`
/// replaced by Squid's URL, `{ip}` by its address) before the portal's site, whose endpoint is named
/// `endpoint_host`, and `env`.
fn world(name: &str, auth: ProxyAuth, config: &str, endpoint_host: &str, env: &[(&str, &str)]) -> World {
    let dir = out_dir(name);
    let agent_port = free_port();
    let hospital = Hospital::start(&dir, auth, agent_port);
    let (squid, portal, pki, outside) = (&hospital.squid, &hospital.portal, &hospital.pki, &hospital.outside);
    portal.add_account("amelie", "mot-de-passe-amelie", "MARTIN", "AMELIE");
    let config = config.replace("{proxy}", &squid.url).replace("{ip}", &outside.ip);
    let mut env: Vec<(String, String)> =
        env.iter().map(|(k, v)| (k.to_string(), v.replace("{proxy}", &squid.url))).collect();
    if let Some(kdc) = &hospital.kdc {
        env.push(("KRB5_CONFIG".into(), kdc.config.display().to_string()));
        // The session's ticket, unless the test gives another cache.
        if !env.iter().any(|(k, _)| k == "KRB5CCNAME") {
            let ccache = kdc.dir.join("ccache");
            kdc.kinit(&ccache);
            env.push(("KRB5CCNAME".into(), format!("FILE:{}", ccache.display())));
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let site = portal.agent_site_named(pki, endpoint_host);
    let agent = AgentProcess::start_full(&dir.join("agent"), &format!("{config}{site}"), agent_port, &env);
    World { agent, hospital, dir }
}

impl World {
    /// The page's challenge, then `POST /v1/authenticate` with the code porteur: the agent's answer.
    fn authenticate(&self) -> (String, u16, Value) {
        let (cookie, challenge) = self.portal.challenge();
        self.agent.answer_pins(&["1234"]);
        let a = self.agent.request(
            "POST",
            "/v1/authenticate",
            &[("Origin", &self.portal.origin), ("Content-Type", "application/json")],
            Some(&json!({ "challenge": challenge }).to_string()),
        );
        (cookie, a.status, a.json())
    }

    /// A whole card login: the portal's answer through the agent, and the session it opens.
    fn card_login(&self) {
        let (cookie, status, answer) = self.authenticate();
        assert_eq!(status, 200, "{answer}\n{}", self.agent.logs());
        assert_eq!(answer["portal"]["status"], "link_required", "{answer}");
        let fin = self.portal.finish(&cookie, answer["portal"]["code"].as_str().unwrap());
        assert_eq!(
            (fin.status, fin.json()["next"].as_str()),
            (200, Some("/premiere-connexion")),
            "{}",
            fin.body
        );
    }

    /// Squid logged the tunnel to the mTLS endpoint, by `user` (`-`: none).
    fn tunnel_logged(&self, user: &str) {
        let line = format!("CONNECT {MTLS_HOST}:{} {user} ", self.portal.mtls_port);
        poll("Squid's log of the agent's tunnel", Duration::from_secs(10), || {
            let log = self.squid.access_log();
            log.lines().any(|l| l.contains("TCP_TUNNEL/200") && l.contains(&line)).then_some(())
        });
    }
}

#[test]
fn card_login_through_the_proxy_of_the_policy_without_authentication() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("proxy-login-open", ProxyAuth::None, "proxy = \"{proxy}\"\n", MTLS_HOST, &[]);
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    w.card_login();
    w.tunnel_logged("-");
    // The agent's side of the pair is Squid's client: the login went through the tunnel.
    assert!(w.squid.access_log().contains(&w.outside.inner_ip));
}

#[test]
fn card_login_through_the_proxy_of_https_proxy_in_tls13() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No `proxy` key: the system's, here the environment's.
    let env = [("https_proxy", "{proxy}"), ("no_proxy", "localhost,127.0.0.1")];
    let w = world("proxy-login-env", ProxyAuth::None, "", MTLS_HOST, &env);
    let reader = stack().reader();
    let _card = insert("cps4", &reader);
    let (_, status, answer) = w.authenticate();
    assert_eq!((status, answer["tls"].as_str()), (200, Some("TLSv1.3")), "{answer}");
    w.tunnel_logged("-");
}

#[test]
fn card_login_through_the_proxy_of_gnomes_settings() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No `proxy` key, no proxy variable: GNOME's settings (`gsettings`, here from a keyfile backend in
    // the test's folder, as a session's dconf would give them).
    let dir = out_dir("proxy-login-gnome-settings");
    let settings = dir.join("glib-2.0/settings");
    std::fs::create_dir_all(&settings).unwrap();
    let (config_home, keyfile) = (dir.display().to_string(), settings.join("keyfile"));
    let env = [("GSETTINGS_BACKEND", "keyfile"), ("XDG_CONFIG_HOME", config_home.as_str())];
    let w = world("proxy-login-gnome", ProxyAuth::None, "", MTLS_HOST, &env);
    std::fs::write(
        &keyfile,
        format!(
            "[system/proxy]\nmode='manual'\nignore-hosts=['localhost', '127.0.0.0/8']\n\n[system/proxy/https]\nhost='{}'\nport={}\n",
            w.outside.ip, w.squid.port
        ),
    )
    .unwrap();
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    w.card_login();
    w.tunnel_logged("-");
    // GNOME's ignore-hosts covers the endpoint: straight, and its name is unknown without the proxy.
    std::fs::write(&keyfile, format!("[system/proxy]\nmode='manual'\nignore-hosts=['*.portal.test']\n\n[system/proxy/https]\nhost='{}'\nport={}\n", w.outside.ip, w.squid.port)).unwrap();
    let (_, _, answer) = w.authenticate();
    assert_eq!(answer["error"]["code"], "PORTAL_UNREACHABLE", "{answer}");
}

#[test]
fn card_login_through_a_proxy_asking_for_basic() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let config = format!("proxy = \"http://{BASIC_USER}:{BASIC_PASSWORD}@{{ip}}:3128\"\n");
    let w = world("proxy-login-basic", ProxyAuth::Basic, &config, MTLS_HOST, &[]);
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    w.card_login();
    w.tunnel_logged(BASIC_USER);
    cpx_tests::assert_no_pin(&w.agent.logs(), &["1234"]);
    assert!(!w.agent.logs().contains(BASIC_PASSWORD), "the proxy's password is never logged");
}

#[test]
fn card_login_through_a_proxy_asking_for_negotiate_with_the_sessions_kerberos_ticket() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("proxy-login-negotiate", ProxyAuth::Negotiate, "proxy = \"{proxy}\"\n", MTLS_HOST, &[]);
    assert!(w.kdc.is_some());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    w.card_login();
    w.tunnel_logged(&format!("{}@{}", cpx_tests::proxy::KRB_USER, cpx_tests::proxy::REALM));
}

#[test]
fn the_proxys_refusal_and_its_demand_for_credentials_are_typed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    // Basic asked, the agent has no credentials.
    let w = world("proxy-login-auth-required", ProxyAuth::Basic, "proxy = \"{proxy}\"\n", MTLS_HOST, &[]);
    let (_, status, answer) = w.authenticate();
    assert_eq!((status, answer["error"]["code"].as_str()), (502, Some("PROXY_AUTH_REQUIRED")), "{answer}");
    assert!(answer["error"]["message_fr"].as_str().unwrap().contains("proxy"), "{answer}");
    // Negotiate asked, no Kerberos ticket.
    drop(w);
    let no_ticket = [("KRB5CCNAME", "FILE:/nonexistent/ccache")];
    let w =
        world("proxy-login-no-ticket", ProxyAuth::Negotiate, "proxy = \"{proxy}\"\n", MTLS_HOST, &no_ticket);
    let (_, status, answer) = w.authenticate();
    assert_eq!((status, answer["error"]["code"].as_str()), (502, Some("PROXY_AUTH_REQUIRED")), "{answer}");
    assert!(answer["error"]["detail"].as_str().unwrap_or_default().contains("Negotiate"), "{answer}");
    drop(w);
    // The proxy refuses the destination.
    let w = world("proxy-login-refused", ProxyAuth::None, "proxy = \"{proxy}\"\n", FORBIDDEN_HOST, &[]);
    let (_, status, answer) = w.authenticate();
    assert_eq!((status, answer["error"]["code"].as_str()), (502, Some("PROXY_REFUSED")), "{answer}");
    assert!(answer["error"]["detail"].as_str().unwrap_or_default().contains("403"), "{answer}");
    // `direct` by policy: the name is unknown without the proxy.
    drop(w);
    let w = world("proxy-login-direct", ProxyAuth::None, "proxy = \"direct\"\n", MTLS_HOST, &[]);
    let (_, _, answer) = w.authenticate();
    assert_eq!(answer["error"]["code"], "PORTAL_UNREACHABLE", "{answer}");
    assert!(w.squid.access_log().lines().all(|l| !l.contains("CONNECT")), "{}", w.squid.access_log());
}

#[test]
fn diagnose_names_the_proxy_of_each_site_and_tries_the_tunnel() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("proxy-diagnose", ProxyAuth::Basic, "proxy = \"{proxy}\"\n", MTLS_HOST, &[]);
    let out = binary("cpx-agent")
        .args(["diagnose", "--json", "--lang", "en", "--config"])
        .arg(w.agent.dir.join("config.toml"))
        .env("CPX_AGENT_CACHE_DIR", w.dir.join("diag-cache"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    let text = report.to_string();
    assert!(text.contains(&w.squid.url), "the proxy is named: {text}");
    assert!(
        text.contains("PROXY_AUTH_REQUIRED"),
        "the tunnel was tried, and the proxy asked for credentials: {text}"
    );
}

#[test]
fn chromium_through_the_same_proxy_logs_in() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("proxy-login-browser", ProxyAuth::None, "proxy = \"{proxy}\"\n", MTLS_HOST, &[]);
    // The page is on a name only the proxy resolves; its calls to the agent on the loopback need the
    // browser policy that the installer writes (Local Network Access).
    let root = w.dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let policy = w.dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("browser_policies = true\nallowed_origins = [\"{}\"]\n", w.portal.origin),
    )
    .unwrap();
    let out = binary("cpx-agent")
        .args(["browser-policies", "apply", "--root"])
        .arg(&root)
        .env("CPX_AGENT_POLICY", &policy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let agent_ca = w.agent.dir.join("data/local-ca.pem");
    let cas: [&Path; 2] = [&agent_ca, &w.pki.ca_pem];
    let b = Browser::start_full(
        &w.dir.join("browser"),
        &cas,
        Some(&root.join("etc/chromium")),
        &[
            format!("--proxy-server={}", w.squid.url),
            "--host-resolver-rules=MAP portal.test ~NOTFOUND".into(),
        ],
    );
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    b.goto(&format!("{}/", w.portal.origin));
    b.wait_text("#card-state", "Carte CPS insérée et reconnue — JEAN DUPONT");
    b.screenshot("01-page-par-le-proxy");
    w.agent.answer_pins(&["1234"]);
    b.click("#card-login");
    b.wait_path("/premiere-connexion");
    b.screenshot("02-connexion-par-carte-par-le-proxy");
    w.tunnel_logged("-");
    // The browser's own tunnel to the page, logged by Squid when it closes.
    drop(b);
    let page = format!("CONNECT portal.test:{} ", w.portal.site_port);
    poll("Squid's log of the browser's tunnel to the page", Duration::from_secs(20), || {
        w.squid.access_log().lines().any(|l| l.contains("TCP_TUNNEL/200") && l.contains(&page)).then_some(())
    });
}
