//! The card login in a real browser: Debian's headless Chromium, trusting the agent's local CA and the
//! portal's test CA through its NSS database, drives the demo portal's login page, which calls the real
//! agent, which asks the (scripted) pinentry and logs in over mTLS with the virtual card on the real
//! pcscd/vpcd stack. Every page state is saved as a screenshot under target/test-out/browser-*/screenshots.

use std::sync::Mutex;

use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess, ServerPki};
use cpx_tests::browser::Browser;
use cpx_tests::{insert, insert_with, logged_commands, out_dir, stack, Options};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    browser: Browser,
    _pki: ServerPki,
}

fn world(name: &str) -> World {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let agent_port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
    portal.add_account("amelie", "mot-de-passe-amelie", "MARTIN", "AMELIE");
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    let browser = Browser::start(&dir.join("browser"), &[&agent.dir.join("data/local-ca.pem"), &pki.ca_pem]);
    World { portal, agent, browser, _pki: pki }
}

impl World {
    fn login_page(&self) {
        self.browser.goto(&format!("{}/", self.portal.origin));
        self.browser.wait_text("#card-state", "");
    }
}

#[test]
fn card_login_link_second_login_and_liberal_account_in_chromium() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("browser-flows");
    let b = &w.browser;
    let reader = stack().reader();
    {
        let _card = insert("cps3", &reader);
        w.login_page();
        b.wait_text("#card-state", "Carte CPS insérée et reconnue — JEAN DUPONT");
        b.screenshot("01-page-de-connexion-carte-prete");

        w.agent.answer_pins(&["1234"]);
        b.click("#card-login");
        b.wait_path("/premiere-connexion");
        let text = b.page_text();
        for want in ["Première connexion par carte CPx", "Espace professionnel", "Espace médecin libéral"]
        {
            assert!(text.contains(want), "{want:?} missing: {text}");
        }
        // Whose card it is comes first, with « Ce n'est pas ma carte ».
        let holder = b.text("#card-holder");
        assert!(holder.contains("JEAN DUPONT") && holder.contains("899700123456"), "{holder}");
        assert!(b.text("#whose-title").contains("Est-ce bien votre carte ?"));
        b.screenshot("02-premiere-connexion");
        let dialog = w.agent.dialogs().pop().unwrap();
        assert!(
            dialog.contains(&format!("Le site {}", w.portal.origin)),
            "the PIN dialog named the page's site: {dialog}"
        );

        b.type_into("#link-username", "amelie");
        b.type_into("#link-password", "mot-de-passe-amelie");
        b.click("#link-confirm");
        b.click("form[action='/premiere-connexion/lier'] button");
        b.wait_path("/compte");
        b.wait_text("#links", "899700123456");
        b.screenshot("03-mon-compte-carte-liee");

        b.click("form[action='/deconnexion'] button");
        b.wait_path("/");
        b.wait_text("#card-state", "Carte CPS insérée et reconnue");
        w.agent.answer_pins(&["1234"]);
        b.click("#card-login");
        b.wait_path("/compte");
        assert!(b.text("#who").contains("amelie"), "second card login goes straight in");
        b.screenshot("04-deuxieme-connexion-directe");
        b.click("form[action='/deconnexion'] button");
        b.wait_path("/");
    }
    let _card = insert("cps4", &reader);
    b.goto(&format!("{}/", w.portal.origin));
    b.wait_text("#card-state", "CLAIRE MARTIN");
    w.agent.answer_pins(&["1234"]);
    b.click("#card-login");
    b.wait_path("/premiere-connexion");
    b.type_into("#mail", "claire.martin@example.fr");
    b.type_into("#telephone", "0102030405");
    b.type_into("#code_postal", "75012");
    b.type_into("#ville", "Paris");
    b.click("#create-confirm");
    b.screenshot("05-creation-compte-liberal");
    b.click("form[action='/premiere-connexion/creer'] button");
    b.wait_path("/compte");
    b.wait_text("#space", "Espace médecin libéral");
    b.screenshot("06-compte-liberal-cree");
}

#[test]
fn pin_errors_refusals_and_foreign_origins_in_chromium() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("browser-refusals");
    let b = &w.browser;
    let reader = stack().reader();
    {
        let _card = insert("cps3", &reader);
        w.login_page();
        b.wait_text("#card-state", "Carte CPS insérée et reconnue");
        w.agent.answer_pins(&["0000", "1234"]);
        b.click("#card-login");
        let e = b.wait_text("#card-error", "Code porteur incorrect");
        assert!(e.contains("il reste 2 essais"), "{e}");
        b.screenshot("07-code-porteur-incorrect");
        b.click("#card-login");
        b.wait_path("/premiere-connexion");
        assert!(
            w.agent.dialogs()[1].contains("Essais restants : 2 sur 3"),
            "the second dialog shows the try spent"
        );
    }
    for (persona, want, shot) in [
        ("cps3-blocked", "Code porteur bloqué", "08-carte-bloquee"),
        ("cps3-expired", "Le certificat de la carte a expiré", "09-certificat-expire"),
    ] {
        let log = out_dir(&format!("browser-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let dialogs = w.agent.dialogs().len();
        w.login_page();
        b.wait_text("#card-state", want); // said before anyone clicks
        b.click("#card-login");
        let e = b.wait_text("#card-error", want);
        assert!(e.contains("0 825 85 2000"), "the message says what to do: {e}");
        b.screenshot(shot);
        assert_eq!(w.agent.dialogs().len(), dialogs, "{persona}: no PIN dialog");
        assert!(
            !logged_commands(&log).iter().any(|c| c.starts_with("0020") && c.contains("secret")),
            "{persona}: no VERIFY"
        );
    }
    w.login_page();
    b.wait_text("#card-state", "Aucune carte");
    b.screenshot("10-aucune-carte");

    // A page on an origin the agent does not allow: no PIN prompt, no signature.
    let _card =
        insert_with("cps3", &reader, &Options::default(), Some(&out_dir("browser-evil").join("apdu.log")));
    let dialogs = w.agent.dialogs().len();
    let evil = w.portal.origin.replace("portal.test", "evil.test");
    b.goto(&format!("{evil}/"));
    b.wait_text("#card-state", "L'Agent CPx ne répond pas");
    let direct = b.run_async(&format!(
        "fetch('https://127.0.0.1:{}/v1/authenticate', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{challenge: 'A'.repeat(44)}})}}).then(r => done('status ' + r.status), e => done('blocked: ' + e))",
        w.agent.port
    ));
    assert!(
        direct.as_str().unwrap_or_default().starts_with("blocked"),
        "the browser may not call the agent from there: {direct}"
    );
    b.screenshot("11-site-non-autorise");
    assert_eq!(w.agent.dialogs().len(), dialogs, "no PIN dialog for a site that is not allowed");
    assert!(
        !logged_commands(&out_dir("browser-evil").join("apdu.log")).iter().any(|c| c.starts_with("0088")),
        "no signature"
    );
}
