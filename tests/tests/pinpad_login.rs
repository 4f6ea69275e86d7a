//! The card login of a page in headless Chromium with the code porteur typed on the keypad of the
//! virtual PIN-pad reader (`tests/stack/pinpad.c`), through the real agent (`cpx-agent serve`, its pinentry
//! prompt), pcscd and the demo portal; CPS3 and CPS4. A wrong code then the right one, cancel on the
//! keypad, the reader's timeout, a blocked card never asked, `pinpad = "off"` and a quirk-listed reader
//! falling back to the prompt. In each, the code porteur is nowhere on the computer's side: not in the
//! agent's logs (trace level), not in any structure the agent sent the reader, and every VERIFY the card
//! received came from the reader (one per code typed on its keypad). The page sees no difference: the same
//! answers and codes as with the prompt. Screenshots under target/test-out/pinpad-login-*/browser.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::pinpad::{borrow, Keypad, PinPadGuard};
use cpx_tests::{assert_no_pin, insert_with, logged_commands, out_dir, Card, Options};

/// The personas' code porteur.
const CODE: &str = "1234";
const WRONG: &str = "0000";
const WAIT: Duration = Duration::from_secs(30);
/// The words of the keypad notice (agent/src/messages.rs, prompt::KEYPAD_ASK and KEYPAD_CANCEL).
const KEYPAD_ASK: &str = "Saisissez votre code porteur sur le clavier du lecteur";
const KEYPAD_CANCEL: &str = "Pour annuler, appuyez sur la touche Annuler du lecteur";

/// The agent sees every reader: one login at a time, so that no other test's card is offered.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    browser: Browser,
    /// Taken out before its reader is given back.
    _card: Card,
    pad: PinPadGuard,
    apdu_log: PathBuf,
}

/// The portal, the agent (with `top` keys in its configuration), Chromium, and `persona`'s card in a
/// PIN-pad reader (`quirk_listed`: the OMNIKEY-named one).
fn world(name: &str, persona: &str, quirk_listed: bool, top: &str) -> World {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, port);
    let agent =
        AgentProcess::start_full(&dir.join("agent"), &format!("{top}{}", portal.agent_site(&pki)), port, &[]);
    let browser = Browser::start(&dir.join("browser"), &[&agent.dir.join("data/local-ca.pem"), &pki.ca_pem]);
    let pad = borrow(quirk_listed);
    let apdu_log = dir.join("apdu.log");
    let _card = insert_with(persona, &pad.reader, &Options::default(), Some(&apdu_log));
    World { portal, agent, browser, _card, pad, apdu_log }
}

impl World {
    /// The portal's login page, once it shows the card.
    fn open_login_page(&self) {
        self.browser.goto(&format!("{}/", self.portal.origin));
        self.browser.wait_text("#card-state", "insérée et reconnue");
    }

    /// Clicks « Se connecter avec ma carte » and waits for the page's error.
    fn login_fails(&self, words: &str) -> String {
        self.browser.click("#card-login");
        self.browser.wait_text("#card-error", words)
    }

    /// The keypad notices the pinentry showed.
    fn keypad_notices(&self) -> Vec<String> {
        self.agent.dialogs().into_iter().filter(|d| d.contains(KEYPAD_ASK)).collect()
    }

    /// What the agent logged, and the structures it sent the reader: none holds the code porteur.
    fn assert_code_nowhere(&self, structures: &[String]) {
        assert_no_pin(&self.agent.logs(), &[CODE, WRONG]);
        assert_no_pin(&self.agent.stderr(), &[CODE, WRONG]);
        for s in structures {
            assert_no_pin(s, &[CODE, WRONG]);
            assert!(s.ends_with("FFFFFFFFFFFFFFFF"), "the template holds only padding: {s}");
        }
    }

    /// The VERIFYs with data the card received.
    fn verifies(&self) -> Vec<String> {
        logged_commands(&self.apdu_log).into_iter().filter(|c| c.contains("secret")).collect()
    }
}

/// [`cpx_tests::pinpad::typist`] with this file's wait.
fn typist(pad: &PinPadGuard, keys: &'static str) -> JoinHandle<(String, String)> {
    cpx_tests::pinpad::typist(pad, keys, WAIT)
}

/// Logs in from Chromium with the code typed on the keypad: a wrong code (the page says so, with the tries
/// left), cancel on the keypad, the reader's timeout (no try spent for either), then the right code.
fn keypad_login(persona: &str, holder: &str, header: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world(&format!("pinpad-login-{persona}"), persona, false, "");
    let b = &w.browser;
    w.open_login_page();
    b.screenshot(&format!("{persona}-1-page"));
    let mut structures = Vec::new();

    // A wrong code: the card's answer, as with the prompt (PIN_WRONG, 2 tries left).
    let typing = typist(&w.pad, "0000E");
    let e = w.login_fails("Code porteur incorrect");
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(sw, "63C2");
    assert!(structure.ends_with(&format!("{header}FFFFFFFFFFFFFFFF")), "{structure}");
    structures.push(structure);
    b.screenshot(&format!("{persona}-2-code-incorrect"));
    let notice = w.keypad_notices().pop().expect("the keypad notice was shown");
    for words in [&w.portal.origin as &str, holder, "Essais restants : 3 sur 3", KEYPAD_ASK, KEYPAD_CANCEL] {
        assert!(notice.contains(words), "{words:?} in {notice}");
    }
    assert!(notice.contains("cesse d'attendre"), "what to do on a timeout: {notice}");
    assert!(!e.is_empty());

    // Cancel on the keypad: USER_CANCELLED, as « Annuler » in the prompt.
    let typing = typist(&w.pad, "12C");
    w.login_fails("Connexion annulée");
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(sw, "6401");
    structures.push(structure);
    assert!(w.keypad_notices().last().unwrap().contains("Essais restants : 2 sur 3"));

    // No key at all: the reader gives up; the page says what to do.
    let typing = typist(&w.pad, "");
    let e = w.login_fails("Le lecteur a cessé d'attendre le code porteur");
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(sw, "6400");
    structures.push(structure);
    assert!(e.contains("Recommencez la connexion"), "{e}");
    b.screenshot(&format!("{persona}-3-delai-depasse"));
    assert_eq!(w.verifies().len(), 1, "neither cancel nor the timeout reached the card");

    // The right code: logged in, as with the prompt.
    let typing = typist(&w.pad, "1234E");
    b.click("#card-login");
    b.wait_path("/premiere-connexion");
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(sw, "9000");
    structures.push(structure);
    b.screenshot(&format!("{persona}-4-connecte"));
    // The notice went away with the reader's command: no pinentry left running.
    let children = cpx_tests::child_commands(w.agent.pid());
    assert!(children.iter().all(|c| !c.contains("pinentry") && !c.contains("sleep")), "{children:?}");
    let notices = w.keypad_notices();
    assert_eq!(notices.len(), 4, "one notice per login: {notices:?}");
    assert!(notices[3].contains("Essais restants : 2 sur 3"), "{}", notices[3]);

    // Nothing was asked in the prompt; every VERIFY the card got was built by the reader (one per code
    // typed on the keypad: the wrong one and the right one), with data the computer never had.
    assert!(
        w.agent.dialogs().iter().all(|d| d.contains(KEYPAD_ASK)),
        "no code porteur prompt: {:?}",
        w.agent.dialogs()
    );
    let verifies = w.verifies();
    assert_eq!(verifies.len(), 2, "{verifies:?}");
    assert!(verifies.iter().all(|c| c.starts_with(header)), "{verifies:?}");
    w.assert_code_nowhere(&structures);
    let logs = w.agent.logs();
    assert!(logs.contains("\"apdu\""), "the agent logged at trace level");
}

#[test]
fn cps3_login_from_chromium_with_the_code_typed_on_the_keypad() {
    keypad_login("cps3", "JEAN DUPONT", "0020000108");
}

#[test]
fn cps4_login_from_chromium_with_the_code_typed_on_the_keypad() {
    keypad_login("cps4", "CLAIRE MARTIN", "0120008108");
}

#[test]
fn a_blocked_card_is_never_prompted_on_the_keypad() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for persona in ["cps3-blocked", "cps4-blocked"] {
        let w = world(&format!("pinpad-login-{persona}"), persona, false, "");
        let mut keypad = Keypad::connect(&w.pad);
        w.open_login_page();
        w.login_fails("Code porteur bloqué");
        assert!(keypad.said_nothing(), "{persona}: the reader was asked for a code on a blocked card");
        assert!(w.keypad_notices().is_empty(), "{persona}: {:?}", w.agent.dialogs());
        assert!(w.verifies().is_empty(), "{persona}: no VERIFY with data");
    }
}

/// A login where the code porteur is asked for in the prompt (pinentry), though the card sits in a reader
/// that claims a PIN pad: its keypad is never asked.
fn prompt_login(name: &str, quirk_listed: bool, top: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for persona in ["cps3", "cps4"] {
        let w = world(&format!("{name}-{persona}"), persona, quirk_listed, top);
        let mut keypad = Keypad::connect(&w.pad);
        w.open_login_page();
        w.agent.answer_pins(&[CODE]);
        w.browser.click("#card-login");
        w.browser.wait_path("/premiere-connexion");
        assert!(keypad.said_nothing(), "{persona}: the keypad was asked");
        let dialogs = w.agent.dialogs();
        assert_eq!(dialogs.len(), 1, "{persona}: {dialogs:?}");
        assert!(dialogs[0].contains("Essais restants : 3 sur 3") && !dialogs[0].contains(KEYPAD_ASK));
        assert_eq!(w.verifies().len(), 1, "{persona}: the VERIFY the agent sent");
        w.assert_code_nowhere(&[]);
    }
}

#[test]
fn pinpad_off_asks_for_the_code_in_the_prompt() {
    prompt_login("pinpad-login-off", false, "pinpad = \"off\"\n");
}

#[test]
fn a_quirk_listed_reader_is_not_used_as_a_pin_pad() {
    prompt_login("pinpad-login-quirk", true, "");
}

/// The signed token with the code typed on the keypad, through the API as a page calls it (every answer
/// checked against docs/openapi.yaml): the reader's timeout is PINPAD_TIMEOUT, its cancel USER_CANCELLED,
/// a wrong code PIN_WRONG with the tries left, the right one a token whose signature verifies.
#[test]
fn signed_token_with_the_code_typed_on_the_keypad() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let origin = "https://portal.test";
    let dir = out_dir("pinpad-login-token");
    let agent = AgentProcess::start(
        &dir.join("agent"),
        &format!("[[site]]\norigin = \"{origin}\"\nsigned_token = true\n"),
    );
    let pad = borrow(false);
    let log = dir.join("apdu.log");
    let _card = insert_with("cps4", &pad.reader, &Options::default(), Some(&log));
    let challenge = "A".repeat(43) + "=";
    let token = |keys: &'static str| {
        let typing = typist(&pad, keys);
        let r = agent.request(
            "POST",
            "/v1/token",
            &[("Origin", origin), ("Content-Type", "application/json")],
            Some(&serde_json::json!({ "challenge": challenge }).to_string()),
        );
        (r, typing.join().unwrap())
    };
    let (r, (_, sw)) = token("");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str(), sw.as_str()),
        (409, Some("PINPAD_TIMEOUT"), "6400")
    );
    let (r, (_, sw)) = token("C");
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str(), sw.as_str()),
        (409, Some("USER_CANCELLED"), "6401")
    );
    let (r, (_, sw)) = token("0000E");
    assert_eq!((r.status, r.json()["error"]["code"].as_str(), sw.as_str()), (403, Some("PIN_WRONG"), "63C2"));
    assert_eq!(r.json()["error"]["tries_left"], 2, "{}", r.body);
    let (r, (structure, sw)) = token("1234E");
    assert_eq!((r.status, sw.as_str()), (200, "9000"), "{}", r.body);
    let v = r.json();
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = b64.decode(v["certificate"].as_str().unwrap()).unwrap();
    let sig = b64.decode(v["signature"].as_str().unwrap()).unwrap();
    let digest =
        Sha256::digest([Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat());
    cpx_tests::verify_signature(&cert, cpx_card::SignScheme::RsaPssSha256, &digest, &sig)
        .expect("the token verifies");
    assert_no_pin(&agent.logs(), &[CODE, WRONG]);
    assert_no_pin(&structure, &[CODE, WRONG]);
    let verifies: Vec<_> = logged_commands(&log).into_iter().filter(|c| c.contains("secret")).collect();
    assert_eq!(verifies.len(), 2, "the wrong and the right code, built by the reader: {verifies:?}");
}
