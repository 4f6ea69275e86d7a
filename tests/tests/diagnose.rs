//! The helpdesk fault matrix: each fault produced for real on the pcscd/vpcd stack (or the network), and
//! `cpx-agent diagnose` must name exactly that fault, with its code, as its first check that is not fine.
//! (pcscd stopped and no reader configured are in monitor.rs, which owns its pcscd.)

use std::path::PathBuf;
use std::process::Output;

use cpx_tests::agent::{free_port, server_pki, Nginx, OpensslServer};
use cpx_tests::{binary, insert, out_dir, stack, Reader};
use serde_json::Value;

fn config(name: &str, body: &str) -> PathBuf {
    let dir = out_dir(&format!("diagnose-{name}"));
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("port = {}\n{body}", free_port())).unwrap();
    path
}

fn diagnose(reader: &Reader, config: &PathBuf, extra: &[&str]) -> (Output, Value) {
    let out = binary("cpx-agent")
        .args(["diagnose", "--json", "--card-timeout", "500", "--reader", &reader.name, "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out, v)
}

fn first_fault(v: &Value) -> String {
    v["first_fault"]["code"].as_str().unwrap_or("none").to_owned()
}

#[test]
fn card_faults_are_named_first() {
    let reader = stack().reader();
    let plain = config("plain", "");
    let (out, v) = diagnose(&reader, &plain, &[]);
    assert_eq!((first_fault(&v), out.status.code()), ("NO_CARD".into(), Some(9)), "reader without card: {v}");
    for (persona, code, exit) in [
        ("mute", "CARD_MUTE", 9),
        ("not-cpx", "CARD_NOT_CPX", 9),
        ("cps3-variant", "CARD_UNLISTED_VARIANT", 8),
        ("cps3-blocked", "PIN_BLOCKED", 9),
        ("cps3-one-try", "PIN_LAST_TRY", 8),
        ("cps3-expired", "CERTIFICATE_EXPIRED", 9),
    ] {
        let card = insert(persona, &reader);
        let (out, v) = diagnose(&reader, &plain, &[]);
        assert_eq!((first_fault(&v), out.status.code()), (code.to_owned(), Some(exit)), "{persona}: {v}");
        let problem = v["checks"].as_array().unwrap().iter().find(|c| c["code"] == code).unwrap();
        assert!(!problem["problem"]["fix"].as_str().unwrap().is_empty(), "{persona}: the fix is given");
        if persona == "cps3-variant" || persona == "not-cpx" {
            assert!(
                problem["detail"].as_str().unwrap().contains("octets historiques"),
                "unknown ATR printed with its parsed form: {problem}"
            );
        }
        card.remove();
    }
}

/// Every check is said in the chosen language: the same run in French and in English differs in every
/// title and every detail (only technical values such as paths and ATRs are the same), and the French
/// text output has none of the English details.
#[test]
fn details_are_in_the_chosen_language() {
    let reader = stack().reader();
    let _card = insert("cps3-one-try", &reader);
    let config = config("words", "[[site]]\norigin = \"https://portal.test\"\n");
    let run = |lang: &str| diagnose(&reader, &config, &["--origin", "https://other.test", "--lang", lang]).1;
    let (fr, en) = (run("fr"), run("en"));
    let (fr, en) = (fr["checks"].as_array().unwrap(), en["checks"].as_array().unwrap());
    assert!(fr.len() >= 10 && fr.len() == en.len(), "{fr:#?}");
    for (f, e) in fr.iter().zip(en) {
        assert_eq!(f["check"], e["check"]);
        assert_ne!(f["detail"], e["detail"], "{}: the French detail is the English one", f["check"]);
        assert_ne!(f["title"], e["title"], "{}", f["check"]);
    }
    let out = binary("cpx-agent")
        .args([
            "diagnose",
            "--card-timeout",
            "500",
            "--reader",
            &reader.name,
            "--origin",
            "https://other.test",
        ])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 essai(s) restant(s) sur 3"), "{text}");
    for english in
        [": running", "tries left", "issuer ANS", "card present", "not in the configuration", "free (the"]
    {
        assert!(!text.contains(english), "« {english} » in the French output:\n{text}");
    }
}

#[test]
fn policy_exclusive_use_and_port_faults() {
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    // Test card under a production-only policy.
    let (_, v) = diagnose(&reader, &config("production", "pki = \"production\"\n"), &[]);
    assert_eq!(first_fault(&v), "CARD_TEST_ON_PRODUCTION", "{v}");
    // Everything fine with the default policy.
    let plain = config("fine", "");
    let (out, v) = diagnose(&reader, &plain, &[]);
    assert_eq!((first_fault(&v), out.status.code()), ("none".into(), Some(0)), "{v}");
    // The card held exclusively by another program.
    {
        let _held = cpx_pcsc::Connection::connect(
            &reader.name,
            &cpx_pcsc::ConnectionOptions { exclusive: true, ..Default::default() },
        )
        .unwrap();
        let (_, v) = diagnose(&reader, &plain, &[]);
        assert_eq!(first_fault(&v), "CARD_IN_USE", "{v}");
    }
    // The agent's port taken by another program.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let taken = out_dir("diagnose-port").join("config.toml");
    std::fs::write(&taken, format!("port = {port}\n")).unwrap();
    let accept = std::thread::spawn(move || {
        for s in squatter.incoming().take(1) {
            drop(s);
        }
    });
    let (_, v) = diagnose(&reader, &taken, &[]);
    assert_eq!(first_fault(&v), "AGENT_PORT_TAKEN", "{v}");
    let _ = accept.join();
}

#[test]
fn site_and_portal_faults() {
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let dir = out_dir("diagnose-portal");
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    let site = |port: u16| {
        format!("[[site]]\norigin = \"https://portal.test\"\nmtls_endpoint = \"https://localhost:{port}/cpx/login\"\nserver_roots = \"{}\"\n", pki.ca_pem.display())
    };
    let good = config("portal-good", &site(nginx.port));
    let (out, v) = diagnose(&reader, &good, &["--origin", "https://portal.test"]);
    assert_eq!(
        (first_fault(&v), out.status.code()),
        ("none".into(), Some(0)),
        "a reachable endpoint with a trusted certificate: {v}"
    );
    // nginx answers HTTP without the card (400, no certificate) with its Date: the clocks agree.
    let clock = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "clock:https://portal.test")
        .cloned()
        .unwrap_or_default();
    assert!(
        clock["detail"].as_str().unwrap_or_default().contains(" s d'écart avec l'en-tête Date du serveur"),
        "the clock was measured: {clock}"
    );
    let (_, v) = diagnose(&reader, &good, &["--origin", "https://other.test"]);
    assert_eq!(first_fault(&v), "SITE_NOT_CONFIGURED", "{v}");
    let closed = free_port();
    let (_, v) = diagnose(&reader, &config("portal-down", &site(closed)), &[]);
    assert_eq!(first_fault(&v), "PORTAL_UNREACHABLE", "{v}");
}

#[test]
fn clock_skew_against_the_endpoint() {
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let dir = out_dir("diagnose-clock-server");
    let pki = server_pki(&dir.join("pki"));
    // An endpoint whose clock is a year away from ours (or ours from its): its Date header says so.
    let answer = "HTTP/1.1 401 Unauthorized\r\nDate: Sat, 23 Nov 2024 10:00:00 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let server = OpensslServer::answering(&dir.join("s_server"), &pki, false, "HEAD /cpx/login", answer);
    let site = format!("[[site]]\norigin = \"https://portal.test\"\nmtls_endpoint = \"https://localhost:{}/cpx/login\"\nserver_roots = \"{}\"\n", server.port, pki.ca_pem.display());
    let (out, v) = diagnose(&reader, &config("clock", &site), &[]);
    assert_eq!((first_fault(&v), out.status.code()), ("CLOCK_SKEW".into(), Some(9)), "{v}");
}

#[test]
fn the_configuration_check_says_what_managed_policy_sets() {
    let dir = out_dir("diagnose-policy");
    let user = dir.join("config.toml");
    let policy = dir.join("policy.toml");
    std::fs::write(&user, "log_level = \"debug\"\n[[site]]\norigin = \"https://perso.example\"\n").unwrap();
    let port = free_port();
    std::fs::write(
        &policy,
        format!("port = {port}\n[[site]]\norigin = \"https://portail.example.fr\"\nsigned_token = true\n"),
    )
    .unwrap();
    let out = binary("cpx-agent")
        .args(["diagnose", "--json", "--config"])
        .arg(&user)
        .env("CPX_AGENT_POLICY", &policy)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "configuration")
        .cloned()
        .unwrap_or_default();
    let detail = config["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("la politique gérée {} fixe : port, site", policy.display())),
        "{detail}"
    );
    assert!(detail.contains("fixe : log_level, site"), "{detail}");
    assert!(
        detail.contains(&format!("port {port}")) && detail.contains("2 site(s)"),
        "the policy's port is in force: {detail}"
    );
    // Each managed value with its source, in the checks and in the JSON; the user's are not managed.
    let managed =
        v["checks"].as_array().unwrap().iter().find(|c| c["check"] == "policy").cloned().unwrap_or_default();
    let at = policy.display();
    assert!(
        managed["detail"].as_str().unwrap_or_default().contains(&format!("port = {port}  ({at})")),
        "{managed}"
    );
    let listed: Vec<(String, String)> = v["policy"]["managed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap_or_default().to_owned(),
                s["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("port".to_owned(), at.to_string()), ("site".to_owned(), at.to_string())],
        "{}",
        v["policy"]
    );
    assert_eq!(v["policy"]["problems"], serde_json::json!([]));
}

#[test]
fn whether_the_browsers_trust_the_local_ca() {
    let dir = out_dir("diagnose-loopback-trust");
    let store = cpx_agent::platform::FileStore { dir: dir.join("data/secrets") };
    let identity = cpx_agent::platform::load_or_create_identity(&dir.join("data"), &store).unwrap();
    let home = dir.join("home");
    let nss = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nss).unwrap();
    let db = format!("sql:{}", nss.display());
    assert!(std::process::Command::new("certutil")
        .args(["-d", &db, "-N", "--empty-password"])
        .status()
        .unwrap()
        .success());
    let config = config("trust-check", "");
    let trust = || {
        let out = binary("cpx-agent")
            .args(["diagnose", "--json", "--config"])
            .arg(&config)
            .env("HOME", &home)
            .env("CPX_AGENT_DATA_DIR", dir.join("data"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "loopback_trust")
            .cloned()
            .unwrap_or_default()
    };
    let before = trust();
    assert_eq!(
        (before["verdict"].as_str(), before["code"].as_str()),
        (Some("warn"), Some("LOOPBACK_NOT_TRUSTED")),
        "{before}"
    );
    assert!(std::process::Command::new("certutil")
        .args(["-d", &db, "-A", "-t", "C,,", "-n", "Agent CPx local CA", "-i"])
        .arg(&identity.ca_path)
        .status()
        .unwrap()
        .success());
    let after = trust();
    assert_eq!(after["verdict"].as_str(), Some("ok"), "{after}");
    assert!(
        after["detail"].as_str().unwrap_or_default().contains("Chromium/Chrome (~/.pki/nssdb) : approuvé"),
        "{after}"
    );
}

/// `diagnose --health`: « installed and healthy » without a card, for compliance scripts and SCCM/Intune
/// detection. An empty reader or a mute card leaves it at 0 (where plain `diagnose` says 9); what the
/// installation set up (here: the agent's port, taken by another program) makes it fail.
#[test]
fn health_counts_the_installation_not_the_card() {
    let reader = stack().reader();
    let plain = config("health", "");
    let (out, v) = diagnose(&reader, &plain, &[]);
    assert_eq!(out.status.code(), Some(9), "plain diagnose, reader without card: {v}");
    let (out, v) = diagnose(&reader, &plain, &["--health"]);
    assert_eq!((first_fault(&v), out.status.code()), ("none".into(), Some(0)), "--health, no card: {v}");
    assert_eq!(v["health"], true, "{v}");
    assert!(
        v["checks"].as_array().unwrap().iter().any(|c| c["code"] == "NO_CARD"),
        "--health still lists the card's check: {v}"
    );
    let card = insert("mute", &reader);
    let (out, v) = diagnose(&reader, &plain, &["--health"]);
    assert_eq!((first_fault(&v), out.status.code()), ("none".into(), Some(0)), "--health, mute card: {v}");
    card.remove();
    // The agent's port taken by another program: the installation is not healthy.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let taken = out_dir("diagnose-health-port").join("config.toml");
    std::fs::write(&taken, format!("port = {port}\n")).unwrap();
    let accept = std::thread::spawn(move || {
        for s in squatter.incoming().take(1) {
            drop(s);
        }
    });
    let (out, v) = diagnose(&reader, &taken, &["--health"]);
    assert_eq!((first_fault(&v), out.status.code()), ("AGENT_PORT_TAKEN".into(), Some(9)), "{v}");
    let _ = accept.join();
}
