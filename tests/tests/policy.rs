//! The machine policy over the user's file, end to end with `cpx-agent serve` (docs/security.md, « Trust
//! model »): with `allow_user_sites = false` a site the user's file lists is refused like any unknown site,
//! without a dialog; a malformed policy key does not stop the agent, its safe default is in force and the
//! log says so. The machine policy is the debug build's `CPX_AGENT_POLICY` (release builds ignore it).

use cpx_tests::agent::{free_port, AgentProcess, HttpAnswer};
use cpx_tests::out_dir;
use serde_json::json;

const MANAGED: &str = "https://portail.example.fr";
const PERSO: &str = "https://perso.example";

/// The user's file: its own site (with signed tokens, the most it can ask for).
fn user_sites() -> String {
    format!("[[site]]\norigin = \"{PERSO}\"\nsigned_token = true\n")
}

fn start(name: &str, policy: &str) -> AgentProcess {
    let dir = out_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let policy_file = dir.join("policy.toml");
    std::fs::write(&policy_file, policy).unwrap();
    AgentProcess::start_full(
        &dir.join("agent"),
        &user_sites(),
        free_port(),
        &[("CPX_AGENT_POLICY", policy_file.to_str().unwrap())],
    )
}

/// A signed-token request with a challenge too short: an allowed origin gets CHALLENGE_INVALID (it passed
/// the origin gate), a refused one ORIGIN_NOT_ALLOWED. The card is never reached.
fn token(agent: &AgentProcess, origin: &str) -> HttpAnswer {
    let body = json!({"challenge": "AAAA"}).to_string();
    agent.request(
        "POST",
        "/v1/token",
        &[("Origin", origin), ("Content-Type", "application/json")],
        Some(&body),
    )
}

fn code(answer: &HttpAnswer) -> String {
    answer.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn without_user_sites_a_site_of_the_user_file_is_refused_with_no_dialog() {
    let agent = start("policy-user-sites-off", &format!("allow_user_sites = false\npki = \"prod\"\n[[site]]\norigin = \"{MANAGED}\"\nsigned_token = true\n"));
    let refused = token(&agent, PERSO);
    assert_eq!((refused.status, code(&refused)), (403, "ORIGIN_NOT_ALLOWED".to_owned()), "{}", refused.body);
    assert_eq!(refused.header("Access-Control-Allow-Origin"), None);
    let preflight = agent.request(
        "OPTIONS",
        "/v1/token",
        &[("Origin", PERSO), ("Access-Control-Request-Method", "POST")],
        None,
    );
    assert_eq!((preflight.status, preflight.header("Access-Control-Allow-Origin")), (403, None));
    let managed = token(&agent, MANAGED);
    assert_eq!(
        (managed.status, code(&managed)),
        (400, "CHALLENGE_INVALID".to_owned()),
        "the managed site passes the gate: {}",
        managed.body
    );
    assert!(agent.dialogs().is_empty(), "no dialog for either");
    // The malformed key did not stop the agent: its safe default is in force, and the log says so.
    let logs = agent.logs();
    assert!(
        logs.contains("malformed setting") && logs.contains("\"pki\"") && logs.contains("production"),
        "{logs}"
    );
}

#[test]
fn with_user_sites_the_same_site_of_the_user_file_is_allowed() {
    let agent = start("policy-user-sites-on", &format!("[[site]]\norigin = \"{MANAGED}\"\n"));
    let allowed = token(&agent, PERSO);
    assert_eq!((allowed.status, code(&allowed)), (400, "CHALLENGE_INVALID".to_owned()), "{}", allowed.body);
    assert_eq!(allowed.header("Access-Control-Allow-Origin"), Some(PERSO));
    assert!(!agent.logs().contains("malformed setting"));
}

/// A policy change reaches a running agent, without a reinstall nor a restart: a site the administrator
/// adds to the policy file (as Ansible would) is let through, a site removed is refused again.
#[test]
fn a_site_added_to_the_policy_file_is_allowed_without_a_restart() {
    const LATER: &str = "https://ajoute.example.fr";
    let policy = format!("allow_user_sites = false\n[[site]]\norigin = \"{MANAGED}\"\nsigned_token = true\n");
    let dir = out_dir("policy-reload");
    let file = dir.join("policy.toml");
    std::fs::write(&file, &policy).unwrap();
    let agent = AgentProcess::start_full(
        &dir.join("agent"),
        &user_sites(),
        free_port(),
        &[("CPX_AGENT_POLICY", file.to_str().unwrap())],
    );
    let before = token(&agent, LATER);
    assert_eq!((before.status, code(&before)), (403, "ORIGIN_NOT_ALLOWED".to_owned()), "{}", before.body);
    let added = format!("{policy}[[site]]\norigin = \"{LATER}\"\nsigned_token = true\n");
    std::fs::write(&file, added).unwrap();
    let answer = cpx_tests::poll("the added site let through", std::time::Duration::from_secs(20), || {
        let a = token(&agent, LATER);
        (a.status == 400).then_some(a)
    });
    assert_eq!(code(&answer), "CHALLENGE_INVALID", "{}", answer.body);
    assert!(agent.logs().contains("the allowed sites changed"), "the log says so");
    // Removed again: refused again.
    std::fs::write(&file, &policy).unwrap();
    cpx_tests::poll("the removed site refused", std::time::Duration::from_secs(20), || {
        (token(&agent, LATER).status == 403).then_some(())
    });
    assert_eq!(token(&agent, MANAGED).status, 400, "the managed site still passes");
}
