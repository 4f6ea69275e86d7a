//! The driver changes and unblocks the code porteur of virtual CPS3 and CPS4 cards through the real pcscd
//! and vpcd: a wrong current code, a wrong code de déblocage with its tries, a blocked one, and after each
//! success a login with the new code; the card left with no code verified (reset inside the transaction).

use cpx_agent::card::{
    change_pin, unblock_pin, CardLabel, CardService, CodeDialog, KeypadNotice, KeypadStep, PinLifeError,
    PinPadPolicy, PromptError,
};
use cpx_card::PinStatus;
use cpx_card::{CardError, CertCache, CodePorteur, CpxCard, Pin, PinChangeError, UnblockingCode};
use cpx_pcsc::Command;
use cpx_tests::agent::AgentProcess;
use cpx_tests::{
    assert_no_pin, insert_with, logged_commands, open_card, out_dir, stack, verify_signature, Options,
};
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

fn pin(digits: &str) -> Pin {
    Pin::new(digits).unwrap()
}

fn code(digits: &str) -> UnblockingCode {
    UnblockingCode::new(digits).unwrap()
}

/// The references of the code porteur and of the code de déblocage on each persona (VERIFY's P2).
fn references(persona: &str) -> [u8; 2] {
    if persona.starts_with("cps4") {
        [0x81, 0x82]
    } else {
        [0x01, 0x02]
    }
}

/// Logs in with `digits`: VERIFY and a signature that verifies against the card's certificate.
fn login(card: &mut Box<dyn CpxCard>, digits: &str) -> Result<(), CardError> {
    let scheme = card.schemes()[0];
    let digest = Sha256::digest(b"login after the change").to_vec();
    let signature = card.authenticate(&pin(digits), scheme, &digest)?;
    verify_signature(card.certificate(), scheme, &digest, &signature).expect("the signature verifies");
    Ok(())
}

/// The card holds no verified code (code porteur, code de déblocage): a VERIFY without data answers the
/// tries (`63 Cx`), not `90 00`. Sent on the basic channel, where a reset leaves every card.
fn assert_not_verified(card: &mut Box<dyn CpxCard>, persona: &str) {
    for reference in references(persona) {
        let r = card.transport().transmit(&Command::new(0x00, 0x20, 0x00, reference)).unwrap();
        assert_eq!(
            r.sw.0 & 0xFFF0,
            0x63C0,
            "{persona}: the card was left with {reference:02X} verified ({})",
            r.sw
        );
    }
}

/// Commands of the APDU log that carry a secret (the card's log masks it) with this INS.
fn secret_commands(log: &std::path::Path, ins: &str) -> Vec<String> {
    logged_commands(log).into_iter().filter(|c| c.get(2..4) == Some(ins) && c.contains("secret")).collect()
}

#[test]
fn change_the_code_porteur_then_log_in_with_the_new_one() {
    for persona in ["cps3", "cps4"] {
        let reader = stack().reader();
        let log = out_dir(&format!("pin-change-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");

        let wrong = card.change_pin(&pin("0000"), &pin("5678"));
        assert_eq!(wrong, Err(PinChangeError::Card(CardError::WrongPin { tries_left: 2 })), "{persona}");
        assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 2, "{persona}: one try spent");

        card.change_pin(&pin("1234"), &pin("5678")).unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_not_verified(&mut card, persona);
        assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "{persona}: the counter is back");
        assert_eq!(
            login(&mut card, "1234"),
            Err(CardError::WrongPin { tries_left: 2 }),
            "{persona}: old code"
        );
        login(&mut card, "5678").unwrap_or_else(|e| panic!("{persona}: login with the new code: {e}"));

        let changes = logged_commands(&log).into_iter().filter(|c| c.get(2..4) == Some("24")).count();
        assert_eq!(changes, if persona == "cps3" { 2 } else { 1 }, "{persona}: CHANGE REFERENCE DATA sent");
    }
}

#[test]
fn a_blocked_code_porteur_is_not_changed_but_unblocked() {
    for persona in ["cps3-blocked", "cps4-blocked"] {
        let reader = stack().reader();
        let log = out_dir(&format!("pin-unblock-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");
        assert!(card.pin_status().unwrap().unwrap().blocked(), "{persona}");

        assert_eq!(
            card.change_pin(&pin("1234"), &pin("5678")),
            Err(PinChangeError::Card(CardError::PinBlocked)),
            "{persona}"
        );
        assert!(secret_commands(&log, "24").is_empty(), "{persona}: a change reached a blocked code porteur");

        // The tries of the code de déblocage are read before it is typed, without spending one.
        let status = card.unblock_status().unwrap().expect("a contact card has a code de déblocage");
        assert_eq!((status.tries_left, status.max_tries), (3, 3), "{persona}");
        let wrong = card.unblock_pin(&code("87654321"), &pin("4321"));
        assert_eq!(wrong, Err(PinChangeError::WrongUnblockingCode { tries_left: 2 }), "{persona}");
        assert_eq!(card.unblock_status().unwrap().unwrap().tries_left, 2, "{persona}");
        assert!(card.pin_status().unwrap().unwrap().blocked(), "{persona}: still blocked");

        card.unblock_pin(&code("12345678"), &pin("4321")).unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_not_verified(&mut card, persona);
        assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "{persona}: unblocked");
        assert_eq!(
            card.unblock_status().unwrap().unwrap().tries_left,
            3,
            "{persona}: a right code resets it"
        );
        login(&mut card, "4321").unwrap_or_else(|e| panic!("{persona}: login with the new code: {e}"));

        // Two codes de déblocage reached the card (VERIFY with data on its reference), each once.
        let unblock_ref = if persona.starts_with("cps4") { "82" } else { "02" };
        let presented: Vec<String> =
            secret_commands(&log, "20").into_iter().filter(|c| c.get(6..8) == Some(unblock_ref)).collect();
        assert_eq!(presented.len(), 2, "{persona}: {presented:?}");
    }
}

#[test]
fn a_blocked_code_de_deblocage_is_never_presented() {
    for persona in ["cps3-blocked", "cps4-blocked"] {
        let reader = stack().reader();
        let log = out_dir(&format!("unblock-blocked-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");
        for tries_left in [2, 1] {
            assert_eq!(
                card.unblock_pin(&code("00000000"), &pin("4321")),
                Err(PinChangeError::WrongUnblockingCode { tries_left }),
                "{persona}"
            );
        }
        assert_eq!(
            card.unblock_pin(&code("00000000"), &pin("4321")),
            Err(PinChangeError::UnblockingCodeBlocked),
            "{persona}: the last try blocks it"
        );
        assert!(card.unblock_status().unwrap().unwrap().blocked(), "{persona}");
        let sent = secret_commands(&log, "20").len();
        assert_eq!(
            card.unblock_pin(&code("12345678"), &pin("4321")),
            Err(PinChangeError::UnblockingCodeBlocked),
            "{persona}: even the right code"
        );
        assert_eq!(secret_commands(&log, "20").len(), sent, "{persona}: nothing presented to a blocked code");
        assert!(secret_commands(&log, "2C").is_empty(), "{persona}: no RESET RETRY COUNTER with a new code");
        assert!(card.pin_status().unwrap().unwrap().blocked(), "{persona}: the card stays blocked");
    }
    // A card that comes blocked both ways.
    let reader = stack().reader();
    let _card = insert_with("cps3-dead", &reader, &Options::default(), None);
    let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");
    assert!(card.unblock_status().unwrap().unwrap().blocked());
    assert_eq!(card.unblock_pin(&code("12345678"), &pin("4321")), Err(PinChangeError::UnblockingCodeBlocked));
}

#[test]
fn a_code_de_deblocage_of_the_wrong_length_never_reaches_the_card() {
    for bad in ["1234", "123456789", "1234abcd"] {
        assert!(matches!(UnblockingCode::new(bad), Err(PinChangeError::UnblockingCodeFormat)), "{bad}");
    }
    // The card refuses a wrong length by itself too, without spending a try.
    let reader = stack().reader();
    let _card = insert_with("cps3-blocked", &reader, &Options::default(), None);
    let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");
    let t = card.transport();
    let r = t.transmit(&Command::new(0x00, 0x20, 0x00, 0x02).with_data(*b"1234")).unwrap();
    assert_eq!(r.sw.0, 0x6700);
    assert_eq!(card.unblock_status().unwrap().unwrap().tries_left, 3);
}

/// Everything the driver and the PC/SC layer log in this test binary, at trace level (every APDU), as the
/// agent's log files would hold it.
static TRACES: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Traces;

impl std::io::Write for Traces {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        TRACES.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_codes_are_in_no_log_line_nor_any_logged_apdu() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(|| Traces)
        .try_init();
    let (current, new, wrong, unblock, new_after) = ("1234", "5678", "9012", "12345678", "3456");
    for persona in ["cps3", "cps4"] {
        let reader = stack().reader();
        let _card = insert_with(persona, &reader, &Options::default(), None);
        let mut card = open_card(&reader.name, &CertCache::memory()).expect("opens");
        assert!(card.change_pin(&pin(wrong), &pin(new)).is_err(), "{persona}");
        card.change_pin(&pin(current), &pin(new)).unwrap_or_else(|e| panic!("{persona}: {e}"));
        card.unblock_pin(&code(unblock), &pin(new_after)).unwrap_or_else(|e| panic!("{persona}: {e}"));
        login(&mut card, new_after).unwrap_or_else(|e| panic!("{persona}: {e}"));
    }
    let logs = String::from_utf8_lossy(&TRACES.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(logs.contains("\"apdu\""), "trace level is on: {}", &logs[..logs.len().min(2000)]);
    for ins in ["\"ins\":36", "\"ins\":44"] {
        assert!(logs.contains(ins), "CHANGE and RESET RETRY COUNTER logged ({ins})");
    }
    assert_no_pin(&logs, &[current, new, wrong, unblock, new_after]);
}

#[test]
fn a_portal_can_neither_change_nor_unblock_the_code_porteur() {
    // The loopback API has no such route: not in its document, and the running agent knows none.
    let api = std::fs::read_to_string(cpx_tests::root().join("docs/openapi.yaml")).expect("openapi.yaml");
    let routes: Vec<&str> = api.lines().filter(|l| l.starts_with("  /")).collect();
    assert!(!routes.is_empty(), "routes of docs/openapi.yaml");
    for route in &routes {
        let r = route.to_lowercase();
        assert!(
            !["pin", "unblock", "debloc", "code"].iter().any(|w| r.contains(w)),
            "a route for the code: {route}"
        );
    }
    const ORIGIN: &str = "https://portal.test";
    let dir = out_dir("pin-change-no-route");
    let agent = AgentProcess::start(&dir.join("agent"), &format!("[[site]]\norigin = \"{ORIGIN}\"\n"));
    let body = r#"{"current":"1234","new":"5678","unblock":"12345678"}"#;
    for path in
        ["/v1/pin", "/v1/pin/change", "/v1/pin/unblock", "/v1/unblock", "/v1/change-pin", "/v1/card/pin"]
    {
        let answer = agent.request(
            "POST",
            path,
            &[("Origin", ORIGIN), ("Content-Type", "application/json")],
            Some(body),
        );
        assert_eq!(
            (answer.status, answer.json()["error"]["code"].as_str()),
            (404, Some("NOT_FOUND")),
            "{path}"
        );
    }
    assert!(agent.dialogs().is_empty(), "no dialog was opened: {:?}", agent.dialogs());
    assert_no_pin(&agent.logs(), &["1234", "5678", "12345678"]);
}

/// The professional, scripted: what they type, and what they were asked (with the tries shown).
struct Scripted {
    current: &'static str,
    unblock: &'static str,
    new: [&'static str; 2],
    confirm: bool,
    asked: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(current: &'static str, unblock: &'static str, new: [&'static str; 2]) -> Self {
        Self { current, unblock, new, confirm: true, asked: Mutex::new(Vec::new()) }
    }
    fn note(&self, what: String) {
        self.asked.lock().unwrap().push(what);
    }
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl CodeDialog for Scripted {
    fn choose_card(&self, _cards: &[CardLabel]) -> Result<usize, PromptError> {
        panic!("one card per reader: no choice to make");
    }
    fn current_pin(&self, card: &CardLabel, status: PinStatus) -> Result<Zeroizing<String>, PromptError> {
        self.note(format!("current {} {}/{}", card.text, status.tries_left, status.max_tries));
        Ok(Zeroizing::new(self.current.to_owned()))
    }
    fn confirm_last_unblock_try(&self, _card: &CardLabel) -> Result<bool, PromptError> {
        self.note("confirm last try".into());
        Ok(self.confirm)
    }
    fn unblocking_code(
        &self,
        _card: &CardLabel,
        status: PinStatus,
        new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        assert!(!new_on_keypad, "a reader without a keypad");
        self.note(format!("unblock {}/{}", status.tries_left, status.max_tries));
        Ok(Zeroizing::new(self.unblock.to_owned()))
    }
    fn new_pin_twice(&self, _card: &CardLabel) -> Result<[Zeroizing<String>; 2], PromptError> {
        self.note("new twice".into());
        Ok(self.new.map(|s| Zeroizing::new(s.to_owned())))
    }
    fn show_keypad(&self, _card: &CardLabel, step: KeypadStep) -> Result<KeypadNotice, PromptError> {
        panic!("a reader without a keypad: no {step:?} notice");
    }
}

fn service() -> std::sync::Arc<CardService> {
    CardService::new(CertCache::memory(), Duration::from_secs(5), Duration::from_secs(5))
}

#[test]
fn the_agent_flow_changes_with_the_new_code_typed_twice() {
    for persona in ["cps3", "cps4"] {
        let reader = stack().reader();
        let log = out_dir(&format!("pin-life-change-{persona}")).join("apdu.log");
        let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
        let cards = service();
        let run = |dialog: &Scripted| {
            cards.blocking(|c| change_pin(c, Some(&reader.name), dialog, PinPadPolicy::Auto)).unwrap()
        };

        // Mismatched new codes: nothing reaches the card.
        let mismatch = Scripted::new("1234", "", ["5678", "5679"]);
        assert!(matches!(run(&mismatch), Err(PinLifeError::NewPinMismatch)), "{persona}");
        assert!(
            secret_commands(&log, "24").is_empty() && secret_commands(&log, "20").is_empty(),
            "{persona}"
        );
        let holder =
            if persona == "cps3" { "JEAN DUPONT — CPS (CPS3)" } else { "CLAIRE MARTIN — CPS (CPS4)" };
        assert_eq!(mismatch.asked(), [format!("current {holder} 3/3"), "new twice".into()], "{persona}");

        let wrong = Scripted::new("0000", "", ["5678", "5678"]);
        assert!(
            matches!(
                run(&wrong),
                Err(PinLifeError::Refused(PinChangeError::Card(CardError::WrongPin { tries_left: 2 })))
            ),
            "{persona}"
        );
        let right = Scripted::new("1234", "", ["5678", "5678"]);
        run(&right).unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_eq!(right.asked()[0], format!("current {holder} 2/3"), "{persona}: the tries shown");
        let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
        login(&mut card, "5678").unwrap_or_else(|e| panic!("{persona}: login with the new code: {e}"));
    }
}

#[test]
fn the_agent_flow_unblocks_with_the_tries_shown_and_the_last_one_confirmed() {
    for persona in ["cps3-blocked", "cps4-blocked"] {
        let reader = stack().reader();
        let log = out_dir(&format!("pin-life-unblock-{persona}")).join("apdu.log");
        let options = Options { unblock_tries: Some(2), ..Options::default() };
        let _card = insert_with(persona, &reader, &options, Some(&log));
        let cards = service();
        let run = |dialog: &Scripted| {
            cards.blocking(|c| unblock_pin(c, Some(&reader.name), dialog, PinPadPolicy::Auto)).unwrap()
        };
        // A blocked code porteur cannot be changed: the flow says so before asking anything.
        let change = Scripted::new("1234", "", ["5678", "5678"]);
        let refused =
            cards.blocking(|c| change_pin(c, Some(&reader.name), &change, PinPadPolicy::Auto)).unwrap();
        assert!(matches!(refused, Err(PinLifeError::Refused(PinChangeError::Card(CardError::PinBlocked)))));
        assert!(change.asked().is_empty(), "{persona}: {:?}", change.asked());

        let wrong = Scripted::new("", "87654321", ["4321", "4321"]);
        assert!(
            matches!(
                run(&wrong),
                Err(PinLifeError::Refused(PinChangeError::WrongUnblockingCode { tries_left: 1 }))
            ),
            "{persona}"
        );
        assert_eq!(
            wrong.asked(),
            ["unblock 2/3", "new twice"],
            "{persona}: tries shown before the code is typed"
        );

        // The last try: confirmation first; declined, nothing is typed nor sent.
        let sent = secret_commands(&log, "20").len();
        let declined = Scripted { confirm: false, ..Scripted::new("", "12345678", ["4321", "4321"]) };
        assert!(matches!(run(&declined), Err(PinLifeError::NotConfirmed)), "{persona}");
        assert_eq!(declined.asked(), ["confirm last try"], "{persona}");
        assert_eq!(secret_commands(&log, "20").len(), sent, "{persona}");

        let right = Scripted::new("", "12345678", ["4321", "4321"]);
        run(&right).unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_eq!(right.asked(), ["confirm last try", "unblock 1/3", "new twice"], "{persona}");
        let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
        login(&mut card, "4321").unwrap_or_else(|e| panic!("{persona}: login after the unblock: {e}"));
    }
    // A blocked code de déblocage: named before anything is asked.
    let reader = stack().reader();
    let _card = insert_with("cps3-dead", &reader, &Options::default(), None);
    let dialog = Scripted::new("", "12345678", ["4321", "4321"]);
    let r = service().blocking(|c| unblock_pin(c, Some(&reader.name), &dialog, PinPadPolicy::Auto)).unwrap();
    assert!(matches!(r, Err(PinLifeError::Refused(PinChangeError::UnblockingCodeBlocked))), "{r:?}");
    assert!(dialog.asked().is_empty(), "{:?}", dialog.asked());
}
