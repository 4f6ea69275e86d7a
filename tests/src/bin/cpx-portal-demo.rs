//! `cpx-portal-demo`: the demo portal, the agent and a virtual CPS3 in the isolated test stack, and
//! headless Chromium logging in with the card, step by step, with a screenshot of each page.
//! Run it with `./scripts/demo-portal.sh`.

use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::{insert, out_dir, stack};

fn main() {
    let dir = out_dir("demo-portal");
    let pki = server_pki(&dir.join("pki"));
    let agent_port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
    portal.add_account("amelie", "mot-de-passe-amelie", "MARTIN", "AMELIE");
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    println!("portail : {} (compte amelie / mot-de-passe-amelie)", portal.origin);
    println!(
        "agent   : https://127.0.0.1:{agent_port} (autorité locale {})",
        agent.dir.join("data/local-ca.pem").display()
    );
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    println!("carte   : cps3 (Dr Jean DUPONT) dans « {} », code porteur 1234", reader.name);
    let b = Browser::start(&dir.join("browser"), &[&agent.dir.join("data/local-ca.pem"), &pki.ca_pem]);
    let step = |n: &str, what: &str| println!("  {} — {what}", b.screenshot(n).display());

    b.goto(&format!("{}/", portal.origin));
    b.wait_text("#card-state", "Carte CPS insérée et reconnue");
    step("1-connexion", "page de connexion, « Carte CPS insérée et reconnue »");
    agent.answer_pins(&["1234"]);
    b.click("#card-login");
    b.wait_path("/premiere-connexion");
    println!(
        "  fenêtre du code porteur : {}",
        agent.dialogs().pop().unwrap_or_default().replace('\n', " / ")
    );
    step("2-premiere-connexion", "première connexion : lier la carte ou créer un compte");
    b.type_into("#link-username", "amelie");
    b.type_into("#link-password", "mot-de-passe-amelie");
    b.click("#link-confirm");
    b.click("form[action='/premiere-connexion/lier'] button");
    b.wait_path("/compte");
    step("3-mon-compte", "carte liée au compte amelie");
    b.click("form[action='/deconnexion'] button");
    b.wait_path("/");
    agent.answer_pins(&["1234"]);
    b.click("#card-login");
    b.wait_path("/compte");
    step("4-connexion-directe", "deuxième connexion par carte : directement dans le compte");
}
