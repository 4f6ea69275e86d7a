//! The code porteur typed on a PIN-pad reader's keypad, through the real pcscd and the virtual PIN-pad
//! reader (`tests/stack/pinpad.c`): the driver reads the reader's features, sends the
//! `PIN_VERIFY_STRUCTURE` for the card's VERIFY, and the reader builds the VERIFY from what is typed on
//! its keypad. CPS3 and CPS4; right, wrong then right, cancel, timeout, a blocked card never prompted, a
//! structure the reader refuses. In each, the code porteur is nowhere on the computer's side: not in the
//! structure it sent (the reader reports it), and the card's answer proves the reader wrote it right.

use std::time::Duration;

use cpx_card::pinpad::verify_structure;
use cpx_card::{CardError, CertCache, CpxCard, PinPad, PinPadError, SignScheme};
use cpx_pcsc::pinpad::{self, ReaderAnswer};
use cpx_tests::pinpad::{borrow, Keypad, PinPadReader};
use cpx_tests::{
    assert_no_pin, insert_with, logged_commands, open_card, out_dir, stack, verify_signature, Options,
};
use sha2::{Digest, Sha256};

const CODE: &str = "1234";
const WAIT: Duration = Duration::from_secs(20);

fn digest() -> Vec<u8> {
    Sha256::digest(b"pinpad challenge").to_vec()
}

fn detect(card: &mut Box<dyn CpxCard>) -> PinPad {
    PinPad::detect(card.transport(), 30).expect("feature request").expect("the virtual reader has a PIN pad")
}

/// [`cpx_tests::pinpad::typist`] with this file's wait.
fn typist(pad: &PinPadReader, keys: &'static str) -> std::thread::JoinHandle<(String, String)> {
    cpx_tests::pinpad::typist(pad, keys, WAIT)
}

/// The structure holds the VERIFY template with its padding, and nothing of the code porteur.
fn assert_structure_without_code(structure: &str, header: &str) {
    assert!(structure.ends_with(&format!("{header}FFFFFFFFFFFFFFFF")), "template: {structure}");
    assert_no_pin(structure, &[CODE]);
    assert!(!structure.contains("31323334"), "{structure}");
}

fn login_on_keypad(persona: &str, header: &str, scheme: SignScheme) {
    let pad = borrow(false);
    let dir = out_dir(&format!("pinpad_{persona}"));
    let log = dir.join("apdu.log");
    let _card = insert_with(persona, &pad.reader, &Options::default(), Some(&log));
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).expect("the card opens");
    let reader_pad = detect(&mut card);
    let features = pinpad::features(card.transport()).unwrap();
    assert!(features.verify_direct.is_some() && features.modify_direct.is_some(), "{features:?}");
    let props = pinpad::properties(card.transport(), &features).unwrap().expect("PIN properties");
    assert!(!props.has_display());
    assert_eq!(props.validation, 0x02, "validation by the OK key");

    // Wrong, then right.
    let d = digest();
    let typing = typist(&pad, "0000E");
    let wrong = card.authenticate_on_reader(&reader_pad, scheme, &d);
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(wrong, Err(PinPadError::Card(CardError::WrongPin { tries_left: 2 })));
    assert_eq!(sw, "63C2");
    assert_structure_without_code(&structure, header);

    let typing = typist(&pad, "1234E");
    let sig = card.authenticate_on_reader(&reader_pad, scheme, &d).expect("logged in on the keypad");
    let (structure, sw) = typing.join().unwrap();
    assert_eq!(sw, "9000");
    assert_structure_without_code(&structure, header);
    verify_signature(card.certificate(), scheme, &d, &sig).expect("the signature verifies");
    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "the right code resets the counter");

    // The card saw VERIFYs with data it did not get from the computer: the reader built them.
    let cmds = logged_commands(&log);
    let verifies: Vec<_> = cmds.iter().filter(|c| c.starts_with(header) && c.contains("secret")).collect();
    assert_eq!(verifies.len(), 2, "{cmds:?}");
    assert!(verifies.iter().all(|c| c.ends_with("<8 secret bytes>")), "{verifies:?}");
}

#[test]
fn cps3_logs_in_with_the_code_typed_on_the_keypad_wrong_then_right() {
    login_on_keypad("cps3", "0020000108", SignScheme::RsaPkcs1Sha256);
}

#[test]
fn cps4_logs_in_with_the_code_typed_on_the_keypad_wrong_then_right() {
    login_on_keypad("cps4", "0120008108", SignScheme::RsaPssSha256);
}

#[test]
fn cancel_and_timeout_on_the_keypad_are_the_readers_answers_and_spend_no_try() {
    let pad = borrow(false);
    let log = out_dir("pinpad_cancel").join("apdu.log");
    let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let reader_pad = detect(&mut card);
    let d = digest();

    let typing = typist(&pad, "12C");
    let cancelled = card.authenticate_on_reader(&reader_pad, SignScheme::RsaPkcs1Sha256, &d);
    assert_eq!(typing.join().unwrap().1, "6401");
    assert_eq!(cancelled, Err(PinPadError::Reader(ReaderAnswer::Cancelled)));

    // No key at all: the reader gives up after its own timeout.
    let typing = typist(&pad, "");
    let timed_out = card.authenticate_on_reader(&reader_pad, SignScheme::RsaPkcs1Sha256, &d);
    assert_eq!(typing.join().unwrap().1, "6400");
    assert_eq!(timed_out, Err(PinPadError::Reader(ReaderAnswer::Timeout)));

    // OK after too few digits: the reader's length check.
    let typing = typist(&pad, "12E");
    let short = card.authenticate_on_reader(&reader_pad, SignScheme::RsaPkcs1Sha256, &d);
    assert_eq!(typing.join().unwrap().1, "6403");
    assert_eq!(short, Err(PinPadError::Reader(ReaderAnswer::Length)));

    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "no try spent");
    assert!(
        !logged_commands(&log).iter().any(|c| c.contains("secret")),
        "no VERIFY with data reached the card"
    );
    // And the card was reset at the end of each attempt, inside the transaction: it still works.
    let typing = typist(&pad, "1234E");
    card.authenticate_on_reader(&reader_pad, SignScheme::RsaPkcs1Sha256, &d).expect("logs in after all");
    assert_eq!(typing.join().unwrap().1, "9000");
}

#[test]
fn a_blocked_card_is_never_asked_for_its_code_on_the_keypad() {
    let pad = borrow(false);
    let _card = insert_with("cps3-blocked", &pad.reader, &Options::default(), None);
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let reader_pad = detect(&mut card);
    let mut keypad = Keypad::connect(&pad);
    let r = card.authenticate_on_reader(&reader_pad, SignScheme::RsaPkcs1Sha256, &digest());
    assert_eq!(r, Err(PinPadError::Card(CardError::PinBlocked)));
    assert!(keypad.said_nothing(), "the reader was asked for a code on a blocked card");
}

#[test]
fn a_structure_the_reader_cannot_use_is_refused_with_6b80() {
    let pad = borrow(false);
    let _card = insert_with("cps3", &pad.reader, &Options::default(), None);
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let reader_pad = detect(&mut card);
    let info = card.layout().pin.clone().expect("code porteur");
    let mut structure = verify_structure(&info, 0x00, 30).unwrap();
    // Maximum digits below the minimum.
    structure.digits = (4, 2);
    let mut keypad = Keypad::connect(&pad);
    let r = pinpad::verify_on_keypad(card.transport(), reader_pad.verify, &structure).unwrap();
    assert_eq!(ReaderAnswer::from_sw(r.sw.0), Some(ReaderAnswer::InvalidStructure));
    assert_eq!(keypad.wait_done(WAIT), "6B80");
}

#[test]
fn a_reader_without_pin_pad_has_no_verify_feature() {
    let reader = stack().reader();
    let _card = insert_with("cps3", &reader, &Options::default(), None);
    let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
    assert_eq!(PinPad::detect(card.transport(), 30).unwrap(), None, "vpcd has no PIN pad");
}

#[test]
fn a_quirk_listed_reader_or_pinpad_off_falls_back_to_the_code_typed_on_screen() {
    use cpx_agent::card::{PinPadPolicy, PinPadUse};
    // The reader named like an OMNIKEY 3x21 claims a PIN pad: it is not used.
    let omnikey = borrow(true);
    let _card = insert_with("cps3", &omnikey.reader, &Options::default(), None);
    let mut card = open_card(&omnikey.reader.name, &CertCache::memory()).unwrap();
    let features = pinpad::features(card.transport()).unwrap();
    assert!(features.verify_direct.is_some(), "it claims a PIN pad");
    let choice = PinPadUse::decide(PinPadPolicy::Auto, &omnikey.reader.name, &features);
    assert_eq!(choice, PinPadUse::QuirkListed { entry: "OMNIKEY 3x21" });
    assert_eq!(choice.control(), None);
    // The code typed on screen goes through it as through any reader, and its keypad is never asked.
    let mut keypad = Keypad::connect(&omnikey);
    let d = digest();
    let sig = card.authenticate(&cpx_card::Pin::new(CODE).unwrap(), SignScheme::RsaPkcs1Sha256, &d).unwrap();
    verify_signature(card.certificate(), SignScheme::RsaPkcs1Sha256, &d, &sig).unwrap();
    assert!(keypad.said_nothing());

    // A real PIN pad, with the policy `pinpad = "off"`: not used either.
    let pad = borrow(false);
    let _card = insert_with("cps4", &pad.reader, &Options::default(), None);
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let features = pinpad::features(card.transport()).unwrap();
    assert_eq!(PinPadUse::decide(PinPadPolicy::Off, &pad.reader.name, &features), PinPadUse::OffByPolicy);
    assert!(PinPadUse::decide(PinPadPolicy::Auto, &pad.reader.name, &features).control().is_some());
}

#[test]
fn a_reader_tells_its_pin_pad_without_a_card() {
    let pad = borrow(false);
    let r = pinpad::reader_pin_pad(&pad.reader.name, WAIT).expect("direct connection to the reader");
    assert!(r.features.can_verify() && r.features.modify_direct.is_some(), "{r:?}");
    let props = r.properties.expect("PIN properties");
    assert!(!props.has_display());
    let reader = stack().reader();
    let vpcd = pinpad::reader_pin_pad(&reader.name, WAIT).expect("direct connection to vpcd");
    assert!(!vpcd.features.can_verify(), "vpcd has no PIN pad: {vpcd:?}");
}

/// The reader writes the digits where and as the structure says, like a CCID reader's `PC_to_RDR_Secure`:
/// checked on an APDU the card logs in full (a proprietary INS it refuses), with the keypad typing 1234.
#[test]
fn the_reader_writes_the_digits_as_the_structure_says() {
    let pad = borrow(false);
    let log = out_dir("pinpad_formats").join("apdu.log");
    let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let verify = detect(&mut card).verify;
    // (bmFormatString, bmPINBlockString, bmPINLengthFormat, template data, what the card receives)
    let cases: [(u8, u8, u8, &str, &str); 5] = [
        (0x82, 0x08, 0x00, "FFFFFFFFFFFFFFFF", "31323334FFFFFFFF"), // ASCII, left, 8-byte block
        (0x81, 0x08, 0x00, "FFFFFFFFFFFFFFFF", "1234FFFFFFFFFFFF"), // BCD, left
        (0x85, 0x04, 0x00, "FFFFFFFFFFFFFFFF", "FFFF1234FFFFFFFF"), // BCD, right-justified in 4 bytes
        (0x89, 0x47, 0x04, "2FFFFFFFFFFFFFFF", "241234FFFFFFFFFF"), // ISO 9564 format 2: length nibble
        (0x20, 0x08, 0x00, "FFFFFFFFFFFFFFFF", "F01020304FFFFFFF"), // binary, at bit 4 (bit units)
    ];
    for (format, block, length, template, want) in cases {
        let apdu = [&[0x80u8, 0xE2, 0x00, 0x00, 0x08][..], &hex::decode(template).unwrap()].concat();
        let mut structure = vec![10, 0, format, block, length, 4, 4, 0x02, 1, 0x0C, 0x04, 0, 0, 0, 0];
        structure.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
        structure.extend_from_slice(&apdu);
        let typing = typist(&pad, "1234E");
        let answer = card.transport().control(verify, &structure, WAIT).expect("the reader answers");
        typing.join().unwrap();
        assert_eq!(answer.len(), 2, "the card's status word");
        let sent = logged_commands(&log).last().cloned().unwrap_or_default();
        assert_eq!(
            sent,
            format!("80E2000008{want}"),
            "format {format:02X} block {block:02X} length {length:02X}"
        );
    }
}

/// MODIFY PIN DIRECT: current code, new code, confirmation; two entries that differ are the reader's
/// `64 02`, and the card gets nothing.
#[test]
fn the_reader_asks_the_current_and_new_codes_and_refuses_a_confirmation_that_differs() {
    let pad = borrow(false);
    let log = out_dir("pinpad_modify").join("apdu.log");
    let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
    let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
    let modify = pinpad::features(card.transport()).unwrap().modify_direct.expect("MODIFY PIN DIRECT");
    let apdu = [&[0x80u8, 0xE4, 0x00, 0x00, 0x10][..], &[0xFF; 16]].concat();
    // bTimerOut, bTimerOut2, ASCII, 8-byte block, no length, offsets 0 and 8, 4 digits, confirm + current.
    let mut structure =
        vec![10, 0, 0x82, 0x08, 0x00, 0, 8, 4, 4, 0x03, 0x02, 3, 0x0C, 0x04, 0, 1, 2, 0, 0, 0];
    structure.extend_from_slice(&(apdu.len() as u32).to_le_bytes());
    structure.extend_from_slice(&apdu);
    for (confirmation, differs) in [("5679", true), ("5678", false)] {
        let before = logged_commands(&log).len();
        let mut keypad = Keypad::connect(&pad);
        let typing = std::thread::spawn(move || {
            for (entry, code) in [("current", "1234"), ("new", "5678"), ("confirm", confirmation)] {
                assert_eq!(keypad.wait_entry(WAIT), entry);
                keypad.type_code(code);
            }
            keypad.wait_done(WAIT)
        });
        let answer = card.transport().control(modify, &structure, WAIT).unwrap();
        let done = typing.join().unwrap();
        let cmds = logged_commands(&log);
        assert_eq!(hex::encode_upper(&answer), done);
        if differs {
            assert_eq!(done, "6402");
            assert_eq!(cmds.len(), before, "nothing reached the card");
        } else {
            // The current code in the first block, the new one at offset 8, the template's padding kept.
            assert_eq!(cmds.last().unwrap(), "80E400001031323334FFFFFFFF35363738FFFFFFFF");
        }
    }
}

/// `cpx-agent diagnose` names a reader's PIN pad, and says that the quirk-listed one's is not real; a
/// reader without one (vpcd) gets no such check.
#[test]
fn diagnose_names_the_pin_pad_of_each_reader() {
    let pad = borrow(false);
    let omnikey = borrow(true);
    let vpcd = stack().reader();
    let dir = out_dir("pinpad_diagnose");
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("port = {}\n", cpx_tests::agent::free_port())).unwrap();
    let check = |reader: &str, lang: &str| -> Option<serde_json::Value> {
        let out = cpx_tests::binary("cpx-agent")
            .args([
                "diagnose",
                "--json",
                "--card-timeout",
                "500",
                "--lang",
                lang,
                "--reader",
                reader,
                "--config",
            ])
            .arg(&config)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("diagnose --json");
        v["checks"].as_array().unwrap().iter().find(|c| c["check"] == format!("pinpad:{reader}")).cloned()
    };
    let with_pad = check(&pad.reader.name, "fr").expect("a check for the PIN-pad reader");
    assert_eq!(with_pad["verdict"], "ok", "{with_pad}");
    assert!(with_pad["detail"].as_str().unwrap().contains("annonce un clavier"), "{with_pad}");
    let quirk = check(&omnikey.reader.name, "en").expect("a check for the OMNIKEY-named reader");
    assert!(quirk["detail"].as_str().unwrap().contains("this model has none (OMNIKEY 3x21)"), "{quirk}");
    assert_eq!(check(&vpcd.name, "en"), None, "no PIN pad on vpcd");
}

/// Types each `(entry, code)` when the reader asks for that entry, in a thread; returns the status word
/// of the reader's last command.
fn entries_typist(
    pad: &PinPadReader,
    entries: Vec<(&'static str, &'static str)>,
) -> std::thread::JoinHandle<String> {
    let mut keypad = Keypad::connect(pad);
    std::thread::spawn(move || {
        for (entry, code) in entries {
            assert_eq!(keypad.wait_entry(WAIT), entry);
            keypad.type_code(code);
        }
        keypad.wait_done(WAIT)
    })
}

/// The code porteur changed on the keypad (PC/SC part 10 modify) by the driver: CPS3 in one CHANGE
/// REFERENCE DATA the reader fills with the current and the new code; CPS4 with the current code
/// verified on the keypad first, then the new one alone. A confirmation that differs, a wrong current
/// code, then the change, and a login with the new code; the codes never on the computer's side.
#[test]
fn the_code_porteur_is_changed_on_the_keypad() {
    use cpx_card::{CodePorteur, PinChangeError, PinPadChangeError, PinPadModify};
    for (persona, change_header, current_first) in
        [("cps3", "0024000110", false), ("cps4", "0124018108", true)]
    {
        let pad = borrow(false);
        let log = out_dir(&format!("pinpad_change_{persona}")).join("apdu.log");
        let _card = insert_with(persona, &pad.reader, &Options::default(), Some(&log));
        let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
        let verify = detect(&mut card);
        let modify = PinPadModify::detect(card.transport(), 30).unwrap().expect("MODIFY PIN DIRECT");

        // The confirmation differs: the reader's 64 02, nothing changed.
        let typing = entries_typist(&pad, vec![("current", "1234"), ("new", "5678"), ("confirm", "5679")]);
        let differs = card.change_pin_on_reader(&verify, &modify);
        assert_eq!(typing.join().unwrap(), "6402", "{persona}");
        assert_eq!(differs, Err(PinPadChangeError::Reader(ReaderAnswer::CodesDiffer)), "{persona}");

        // A wrong current code: the card's answer with its tries (a CPS4 is not asked for the new code).
        let entries = if current_first {
            vec![("current", "0000")]
        } else {
            vec![("current", "0000"), ("new", "5678"), ("confirm", "5678")]
        };
        let typing = entries_typist(&pad, entries);
        let wrong = card.change_pin_on_reader(&verify, &modify);
        assert_eq!(typing.join().unwrap(), "63C2", "{persona}");
        let wrong_pin = PinChangeError::Card(CardError::WrongPin { tries_left: 2 });
        assert_eq!(wrong, Err(PinPadChangeError::Refused(wrong_pin)), "{persona}");

        let typing = entries_typist(&pad, vec![("current", "1234"), ("new", "5678"), ("confirm", "5678")]);
        card.change_pin_on_reader(&verify, &modify).unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_eq!(typing.join().unwrap(), "9000", "{persona}");

        // A login with the new code, typed on screen this time.
        let d = digest();
        let scheme = card.schemes()[0];
        let sig = card.authenticate(&cpx_card::Pin::new("5678").unwrap(), scheme, &d).expect("the new code");
        verify_signature(card.certificate(), scheme, &d, &sig).expect("the signature verifies");

        // The card got the new code in commands the reader built: the computer never had it.
        let cmds = logged_commands(&log);
        let changes: Vec<_> = cmds.iter().filter(|c| c.starts_with(change_header)).collect();
        assert!(!changes.is_empty() && changes.iter().all(|c| c.contains("secret")), "{persona}: {cmds:?}");
        assert_no_pin(&cmds.join("\n"), &["5678", "0000"]);
        assert!(!cmds.iter().any(|c| c.contains("35363738")), "{persona}: {cmds:?}");
    }
}

/// A blocked card unblocked with its code de déblocage and a new code porteur typed twice on the keypad
/// (CPS3: RESET RETRY COUNTER `2C 02` filled by the reader; CPS4: `2C 03`, then `24 01` filled by the
/// reader); a wrong code de déblocage never lights the keypad; then a login with the new code.
#[test]
fn a_blocked_card_is_unblocked_with_the_new_code_typed_on_the_keypad() {
    use cpx_card::{CodePorteur, PinChangeError, PinPadChangeError, PinPadModify, UnblockingCode};
    for (persona, new_code_header) in [("cps3-blocked", "00 2C 02 01"), ("cps4-blocked", "01 24 01 81")] {
        let pad = borrow(false);
        let log = out_dir(&format!("pinpad_unblock_{persona}")).join("apdu.log");
        let _card = insert_with(persona, &pad.reader, &Options::default(), Some(&log));
        let mut card = open_card(&pad.reader.name, &CertCache::memory()).unwrap();
        let modify = PinPadModify::detect(card.transport(), 30).unwrap().expect("MODIFY PIN DIRECT");

        let mut keypad = Keypad::connect(&pad);
        let wrong = card.unblock_pin_on_reader(&UnblockingCode::new("87654321").unwrap(), &modify);
        let wrong_code = PinChangeError::WrongUnblockingCode { tries_left: 2 };
        assert_eq!(wrong, Err(PinPadChangeError::Refused(wrong_code)), "{persona}");
        assert!(keypad.said_nothing(), "{persona}: the keypad was not asked after a wrong code de déblocage");
        drop(keypad);

        let typing = entries_typist(&pad, vec![("new", "4321"), ("confirm", "4321")]);
        card.unblock_pin_on_reader(&UnblockingCode::new("12345678").unwrap(), &modify)
            .unwrap_or_else(|e| panic!("{persona}: {e}"));
        assert_eq!(typing.join().unwrap(), "9000", "{persona}");
        assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "{persona}: unblocked");

        let d = digest();
        let scheme = card.schemes()[0];
        let sig = card.authenticate(&cpx_card::Pin::new("4321").unwrap(), scheme, &d).expect("the new code");
        verify_signature(card.certificate(), scheme, &d, &sig).expect("the signature verifies");
        let header = new_code_header.replace(' ', "");
        let cmds = logged_commands(&log);
        assert!(
            cmds.iter().any(|c| c.starts_with(&header) && c.contains("secret")),
            "{persona}: the reader's command setting the new code: {cmds:?}"
        );
        assert_no_pin(&cmds.join("\n"), &["4321"]);
    }
}

/// The agent's own flow (`cpx-agent pin` and the tray run it) on a PIN-pad reader: the codes porteur are
/// typed on the keypad while the dialog shows a notice — never asked on screen — and only the code de
/// déblocage is typed on screen; with `pinpad = "off"` the dialog asks for everything.
#[test]
fn the_agent_changes_and_unblocks_on_the_keypad_and_asks_on_screen_when_pinpad_is_off() {
    use cpx_agent::card::{
        change_pin, unblock_pin, CardLabel, CardService, CodeDialog, KeypadNotice, KeypadStep, PinPadPolicy,
        PromptError,
    };
    use cpx_card::PinStatus;
    use std::sync::Mutex;
    use zeroize::Zeroizing;

    /// Answers what is asked on screen, and notes every question.
    struct Dialog {
        asked: Mutex<Vec<String>>,
        current: &'static str,
        new: &'static str,
    }
    impl Dialog {
        fn new(current: &'static str, new: &'static str) -> Self {
            Self { asked: Mutex::new(Vec::new()), current, new }
        }
        fn note(&self, what: String) {
            self.asked.lock().unwrap().push(what);
        }
        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }
    impl CodeDialog for Dialog {
        fn choose_card(&self, _cards: &[CardLabel]) -> Result<usize, PromptError> {
            panic!("one card per reader");
        }
        fn current_pin(
            &self,
            _card: &CardLabel,
            _status: PinStatus,
        ) -> Result<Zeroizing<String>, PromptError> {
            self.note("current on screen".into());
            Ok(Zeroizing::new(self.current.into()))
        }
        fn confirm_last_unblock_try(&self, _card: &CardLabel) -> Result<bool, PromptError> {
            Ok(true)
        }
        fn unblocking_code(
            &self,
            _card: &CardLabel,
            _status: PinStatus,
            new_on_keypad: bool,
        ) -> Result<Zeroizing<String>, PromptError> {
            self.note(format!("unblocking code on screen, new on keypad: {new_on_keypad}"));
            Ok(Zeroizing::new("12345678".into()))
        }
        fn new_pin_twice(&self, _card: &CardLabel) -> Result<[Zeroizing<String>; 2], PromptError> {
            self.note("new on screen".into());
            Ok([Zeroizing::new(self.new.into()), Zeroizing::new(self.new.into())])
        }
        fn show_keypad(&self, card: &CardLabel, step: KeypadStep) -> Result<KeypadNotice, PromptError> {
            self.note(format!("keypad notice {step:?} for {}", card.text));
            Ok(KeypadNotice::none())
        }
    }

    let cards = CardService::new(CertCache::memory(), Duration::from_secs(5), Duration::from_secs(5));
    for persona in ["cps3", "cps4"] {
        let pad = borrow(false);
        let name = pad.reader.name.clone();
        let log = out_dir(&format!("pinpad_agent_change_{persona}")).join("apdu.log");
        let card = insert_with(persona, &pad.reader, &Options::default(), Some(&log));

        // On the keypad: the dialog only shows the notice.
        let dialog = Dialog::new("", "");
        let typing = entries_typist(&pad, vec![("current", "1234"), ("new", "5678"), ("confirm", "5678")]);
        let changed = cards.blocking(|c| change_pin(c, Some(&name), &dialog, PinPadPolicy::Auto)).unwrap();
        assert!(changed.is_ok(), "{persona}: {changed:?}");
        assert_eq!(typing.join().unwrap(), "9000", "{persona}");
        let asked = dialog.asked();
        let notice = format!("— CPS ({})", persona.to_uppercase());
        assert!(
            asked.len() == 1
                && asked[0].starts_with("keypad notice Change for ")
                && asked[0].ends_with(&notice),
            "{persona}: only the keypad notice, naming the card: {asked:?}"
        );

        // pinpad = "off": the same reader, the codes asked on screen (back to 1234).
        let dialog = Dialog::new("5678", "1234");
        let mut keypad = Keypad::connect(&pad);
        let changed = cards.blocking(|c| change_pin(c, Some(&name), &dialog, PinPadPolicy::Off)).unwrap();
        assert!(changed.is_ok(), "{persona}: {changed:?}");
        assert!(keypad.said_nothing(), "{persona}: the keypad was not lit with pinpad = off");
        assert_eq!(dialog.asked(), ["current on screen", "new on screen"], "{persona}");
        drop(keypad);
        drop(card);
        assert_no_pin(&logged_commands(&log).join("\n"), &["5678"]);
    }

    for persona in ["cps3-blocked", "cps4-blocked"] {
        let pad = borrow(false);
        let name = pad.reader.name.clone();
        let log = out_dir(&format!("pinpad_agent_unblock_{persona}")).join("apdu.log");
        let _card = insert_with(persona, &pad.reader, &Options::default(), Some(&log));
        let dialog = Dialog::new("", "");
        let typing = entries_typist(&pad, vec![("new", "4321"), ("confirm", "4321")]);
        let unblocked = cards.blocking(|c| unblock_pin(c, Some(&name), &dialog, PinPadPolicy::Auto)).unwrap();
        assert!(unblocked.is_ok(), "{persona}: {unblocked:?}");
        assert_eq!(typing.join().unwrap(), "9000", "{persona}");
        let asked = dialog.asked();
        assert_eq!(asked[0], "unblocking code on screen, new on keypad: true", "{persona}");
        assert!(asked[1].starts_with("keypad notice NewPin"), "{persona}: {asked:?}");
        assert_eq!(asked.len(), 2, "{persona}: {asked:?}");
        assert_no_pin(&logged_commands(&log).join("\n"), &["4321"]);
    }
}
