//! Browsers' Local Network Access, as users of a real portal meet it: the demo portal on a public address
//! (PUBLIC_TEST_IP, put on the loopback of the isolated stack's private network namespace), Debian's
//! headless Chromium, the real agent on 127.0.0.1 and a virtual card.
//!
//! Without a browser policy Chromium refuses the page's calls to 127.0.0.1 (headless, the permission
//! prompt is denied): the login page says so (LOCAL_NETWORK_BLOCKED), nothing reaches the agent. With the
//! policy file that `cpx-agent browser-policies apply` writes (seen by that Chromium only, through a
//! private bind mount on /etc/chromium), the card login goes through. With the policy but without the
//! agent's CA trusted, the page says the certificate is not trusted (the agent's plain-HTTP hint); with
//! the agent stopped, that it does not answer. Screenshots under target/test-out/lna-*/.

use std::path::Path;
use std::process::Command;

use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess, PUBLIC_TEST_IP};
use cpx_tests::browser::Browser;
use cpx_tests::{binary, insert, out_dir, stack};

/// Puts PUBLIC_TEST_IP on the loopback; only ever inside the isolated stack (its own network namespace).
fn public_address_on_loopback() {
    stack(); // asserts that we run inside `stack.sh isolated`
    let shown = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .expect("ip (apt-get install iproute2)");
    if !String::from_utf8_lossy(&shown.stdout).contains(&format!(" {PUBLIC_TEST_IP}/")) {
        let ok = Command::new("ip")
            .args(["addr", "add", &format!("{PUBLIC_TEST_IP}/32"), "dev", "lo"])
            .status()
            .unwrap();
        assert!(ok.success(), "ip addr add {PUBLIC_TEST_IP}");
    }
}

/// `cpx-agent browser-policies apply` as an installer runs it, writing under `root` instead of `/`.
fn apply_browser_policies(dir: &Path, origin: &str, root: &Path) -> String {
    std::fs::create_dir_all(root).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, format!("browser_policies = true\nallowed_origins = [\"{origin}\"]\n")).unwrap();
    let out = binary("cpx-agent")
        .args(["browser-policies", "apply", "--root"])
        .arg(root)
        .env("CPX_AGENT_POLICY", &policy)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser-policies apply failed: {said}");
    said
}

const BLOCKED: &str = "Le navigateur empêche ce site de joindre l'Agent CPx";

#[test]
fn a_public_portal_needs_the_browser_policy_that_the_installer_writes() {
    public_address_on_loopback();
    let dir = out_dir("lna-policy");
    let pki = server_pki(&dir.join("pki"));
    let agent_port = free_port();
    let portal = PortalProcess::start_public(&dir.join("portal"), &pki, agent_port, PUBLIC_TEST_IP);
    assert!(portal.origin.starts_with(&format!("https://{PUBLIC_TEST_IP}:")));
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    let agent_ca = agent.dir.join("data/local-ca.pem");
    let cas: [&Path; 2] = [&agent_ca, &pki.ca_pem];
    let reader = stack().reader();
    let _card = insert("cps3", &reader);

    // No policy: an empty /etc/chromium for this browser.
    let empty = dir.join("etc-without-policy");
    std::fs::create_dir_all(&empty).unwrap();
    {
        let b = Browser::start_with(&dir.join("browser-without"), &cas, Some(&empty));
        b.goto(&format!("{}/", portal.origin));
        let state = b.wait_text("#card-state", BLOCKED);
        assert!(
            state.contains("autorisez l'accès aux appareils et applications de cet ordinateur"),
            "says what to do: {state}"
        );
        assert_eq!(
            b.execute("return document.getElementById('card-state').dataset.code"),
            "LOCAL_NETWORK_BLOCKED"
        );
        b.screenshot("01-sans-strategie-etat");
        b.click("#card-login");
        let e = b.wait_text("#card-error", BLOCKED);
        assert!(e.contains("stratégies de navigateur de l'Agent CPx"), "names the IT fix: {e}");
        assert_eq!(
            b.execute("return document.getElementById('card-error').dataset.code"),
            "LOCAL_NETWORK_BLOCKED"
        );
        b.screenshot("02-sans-strategie-connexion-refusee");
        assert!(agent.dialogs().is_empty(), "no PIN dialog: nothing reached the agent");
        assert!(
            !agent.logs().contains(&portal.origin),
            "the agent never saw the page's origin:\n{}",
            agent.logs()
        );
    }

    // The installer's policy: Chromium sees it as /etc/chromium/policies/managed.
    let root = dir.join("root");
    let said = apply_browser_policies(&dir, &portal.origin, &root);
    let file = root.join("etc/chromium/policies/managed/agent-cpx-lna.json");
    let written: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}\n{said}", file.display())),
    )
    .unwrap();
    assert_eq!(written["LoopbackNetworkAllowedForUrls"], serde_json::json!([portal.origin]));
    {
        let b = Browser::start_with(&dir.join("browser-with"), &cas, Some(&root.join("etc/chromium")));
        b.goto(&format!("{}/", portal.origin));
        b.wait_text("#card-state", "Carte CPS insérée et reconnue — JEAN DUPONT");
        b.screenshot("03-avec-strategie-carte-prete");
        agent.answer_pins(&["1234"]);
        b.click("#card-login");
        b.wait_path("/premiere-connexion");
        b.screenshot("04-avec-strategie-connexion-par-carte");
        let dialog = agent.dialogs().pop().expect("the PIN dialog");
        assert!(dialog.contains(&format!("Le site {}", portal.origin)), "{dialog}");
    }

    // The policy, but the agent's local CA not trusted by this browser: the agent's plain-HTTP hint.
    {
        let b = Browser::start_with(
            &dir.join("browser-untrusted"),
            &[pki.ca_pem.as_path()],
            Some(&root.join("etc/chromium")),
        );
        b.goto(&format!("{}/", portal.origin));
        b.wait_text(
            "#card-state",
            "Le certificat local de l'Agent CPx n'est pas approuvé par les navigateurs",
        );
        assert_eq!(
            b.execute("return document.getElementById('card-state').dataset.code"),
            "LOOPBACK_NOT_TRUSTED"
        );
        b.screenshot("05-certificat-local-non-approuve");
    }

    // The policy, and no agent.
    drop(agent);
    {
        let b = Browser::start_with(&dir.join("browser-no-agent"), &cas, Some(&root.join("etc/chromium")));
        b.goto(&format!("{}/", portal.origin));
        b.wait_text("#card-state", "L'Agent CPx ne répond pas sur cet ordinateur");
        assert_eq!(
            b.execute("return document.getElementById('card-state').dataset.code"),
            "AGENT_UNREACHABLE"
        );
        b.screenshot("06-agent-arrete");
    }
}
