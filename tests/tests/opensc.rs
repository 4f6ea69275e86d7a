//! Faithfulness cross-check: Debian's OpenSC (iasecc driver, which knows CPS3 cards) reads the virtual
//! `cps3` as it reads a real one, logs in and signs with the authentication key through PKCS#11, and the
//! signature verifies against the card's certificate. `cps3` has the real cards' layout (EF.DIR with the
//! contactless application first, paths relative to the application DF, private keys without a path);
//! OpenSC reads real cards, so it is the independent check of that layout. It reads the absolute layout
//! (`cps3-abs`) too.
//!
//! Pinned OpenSC limits (in OpenSC itself, not in the card): `pkcs15-tool -D` of OpenSC 0.23 prints no
//! "Tries left" (its list_pins never asks the card); the tries are read through PKCS#11 instead, where
//! OpenSC's iasecc driver does ask (VERIFY without data, then GET DATA on the CHV) and reports a blocked
//! code porteur. OpenSC has no CPS4 (ChipDoc) support.

use std::process::{Command, Output};

use cpx_card::SignScheme;
use cpx_tests::pinpad::{borrow, Keypad};
use cpx_tests::{
    assert_no_pin, insert_with, logged_commands, out_dir, root, stack, verify_signature, Options,
};
use sha2::{Digest, Sha256};

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const AID_CPX_IAS: &str = "E828BD080F8025000001FF0010";
const AUTH_KEY_ID: &str = "e828bd080f8025000001ff001002";

/// One OpenSC test at a time: `pkcs11-tool` lists the slots in two calls (count, then list), and a card
/// another test inserts in between makes the second call fail with `CKR_BUFFER_TOO_SMALL`.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn opensc(tool: &str, args: &[&str]) -> Output {
    opensc_with("opensc.conf", tool, args)
}

fn opensc_with(conf: &str, tool: &str, args: &[&str]) -> Output {
    Command::new(tool)
        .args(args)
        .env("OPENSC_CONF", root().join("tests/stack").join(conf))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (apt-get install opensc)"))
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The PKCS#11 slot id of the contact application's token in `reader`.
fn slot_of(reader: &str) -> String {
    slot_with("opensc.conf", reader)
}

fn slot_with(conf: &str, reader: &str) -> String {
    let listing = out(&opensc_with(conf, "pkcs11-tool", &["--module", MODULE, "-L"]));
    let mut current: Option<String> = None;
    for line in listing.lines() {
        if let Some(rest) = line.strip_prefix("Slot ") {
            // "Slot 7 (0x19): CPx Test Reader A 00 00"
            current = rest
                .split_once("): ")
                .filter(|(_, name)| *name == reader)
                .map(|(id, _)| id.split("(").nth(1).unwrap_or_default().to_owned());
        } else if let Some(id) = &current {
            if line.contains("token label") && line.contains("Code porteur") {
                return id.clone();
            }
        }
    }
    panic!("no PKCS#11 token with the code porteur for {reader}:\n{listing}");
}

#[test]
fn opensc_reads_logs_in_and_signs_on_the_virtual_cps3() {
    let _one = one_at_a_time();
    let reader = stack().reader();
    let dir = out_dir("opensc");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&dir.join("apdu.log")));

    let name = opensc("opensc-tool", &["--reader", &reader.name, "--name"]);
    assert!(out(&name).contains("IAS-ECC"), "OpenSC binds its iasecc driver: {}", out(&name));

    let dump = out(&opensc("pkcs15-tool", &["--reader", &reader.name, "--aid", AID_CPX_IAS, "--dump"]));
    for want in [
        "PIN [Code porteur]",
        "Type           : ascii-numeric",
        "Private RSA Key [CPS_PRIV_AUT]",
        "Key ref        : 130 (0x82)",
        "X.509 Certificate [Certificat d'Authentification CPS]",
        "X.509 Certificate [Certificat de Signature CPS]",
    ] {
        assert!(dump.contains(want), "pkcs15-tool -D lacks {want:?}:\n{dump}");
    }
    assert!(
        !dump.contains("Tries left"),
        "OpenSC 0.23's pkcs15-tool does not read tries; if it now does, update this test and the note"
    );

    // PKCS#11: log in with the code porteur and sign a SHA-256 DigestInfo with the authentication key.
    let slot = slot_of(&reader.name);
    let data = b"Agent CPx cross-check";
    let digest = Sha256::digest(data).to_vec();
    let digest_info = [SignScheme::RsaPkcs1Sha256.digest_info_prefix().unwrap(), &digest].concat();
    std::fs::write(dir.join("di"), &digest_info).unwrap();
    let before = logged_commands(&dir.join("apdu.log")).len();
    let sign = opensc(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--slot",
            &slot,
            "--login",
            "--pin",
            "1234",
            "--sign",
            "--mechanism",
            "RSA-PKCS",
            "--id",
            AUTH_KEY_ID,
            "--input-file",
            dir.join("di").to_str().unwrap(),
            "--output-file",
            dir.join("sig").to_str().unwrap(),
        ],
    );
    assert!(sign.status.success(), "pkcs11-tool login + sign: {}", out(&sign));
    let opensc_apdus = logged_commands(&dir.join("apdu.log")).len() - before;
    std::fs::write(dir.join("opensc-apdus.txt"), opensc_apdus.to_string()).unwrap();

    let read = opensc(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--slot",
            &slot,
            "--read-object",
            "--type",
            "cert",
            "--id",
            AUTH_KEY_ID,
            "--output-file",
            dir.join("cert.der").to_str().unwrap(),
        ],
    );
    assert!(read.status.success(), "{}", out(&read));
    let cert = std::fs::read(dir.join("cert.der")).unwrap();
    let sig = std::fs::read(dir.join("sig")).unwrap();
    verify_signature(&cert, SignScheme::RsaPkcs1Sha256, &digest, &sig)
        .expect("OpenSC's signature verifies against the card certificate");
    let cmds = logged_commands(&dir.join("apdu.log"));
    // The real layout, read the way OpenSC reads a real card: the application by AID, then its files by
    // file id under it, never a path made by putting 3F00 in front of a file id.
    assert!(
        cmds.iter().any(|c| c.starts_with("00A404") && c.ends_with(AID_CPX_IAS)),
        "OpenSC selected the application by AID"
    );
    assert!(
        !cmds.iter().any(|c| c.starts_with("00A408") || c.contains("3F00C00") || c.contains("3F007002")),
        "no absolute path to a PKCS#15 file: {cmds:?}"
    );
    assert!(cmds.iter().any(|c| c.starts_with("0020000108")), "OpenSC presented the code porteur");
    assert!(cmds.iter().any(|c| c.starts_with("00880000")), "OpenSC used INTERNAL AUTHENTICATE");
    assert!(
        cmds.iter().any(|c| c.starts_with("00CB3FFF") && c.contains("BF8101")),
        "OpenSC read the CHV counters (GET DATA)"
    );
}

#[test]
fn opensc_reads_the_key_paths_and_the_absolute_layout() {
    let _one = one_at_a_time();
    let reader = stack().reader();
    // Real layout: each private key's path is the application's AID with an empty file path, printed as
    // pkcs15-tool prints it for a real CPS3.
    let card = insert_with("cps3", &reader, &Options::default(), None);
    let keys = out(&opensc("pkcs15-tool", &["--reader", &reader.name, "--aid", AID_CPX_IAS, "--list-keys"]));
    assert_eq!(
        keys.to_uppercase().matches("E828BD080F8025000001FF0010::").count(),
        2,
        "two keys with an AID-only path:\n{keys}"
    );
    card.remove();
    // Absolute layout: the same objects.
    let _card = insert_with("cps3-abs", &reader, &Options::default(), None);
    let dump = out(&opensc("pkcs15-tool", &["--reader", &reader.name, "--aid", AID_CPX_IAS, "--dump"]));
    for want in [
        "PIN [Code porteur]",
        "Key ref        : 130 (0x82)",
        "X.509 Certificate [Certificat d'Authentification CPS]",
    ] {
        assert!(dump.contains(want), "pkcs15-tool -D on cps3-abs lacks {want:?}:\n{dump}");
    }
}

#[test]
fn opensc_reports_a_blocked_code_porteur() {
    let _one = one_at_a_time();
    let reader = stack().reader();
    let _card = insert_with("cps3-blocked", &reader, &Options::default(), None);
    let slot = slot_of(&reader.name);
    let listing = out(&opensc("pkcs11-tool", &["--module", MODULE, "-L"]));
    assert!(listing.contains("user PIN locked"), "{listing}");
    let login = opensc(
        "pkcs11-tool",
        &["--module", MODULE, "--slot", &slot, "--login", "--pin", "1234", "--list-objects"],
    );
    assert!(!login.status.success());
    assert!(out(&login).contains("CKR_PIN_LOCKED"), "{}", out(&login));
}

#[test]
fn opensc_has_no_cps4_support() {
    let _one = one_at_a_time();
    let reader = stack().reader();
    let _card = insert_with("cps4", &reader, &Options::default(), None);
    let name = out(&opensc("opensc-tool", &["--reader", &reader.name, "--name"]));
    assert!(!name.contains("IAS-ECC"), "if OpenSC now binds the CPS4, extend the cross-check: {name}");
}

/// OpenSC, with `enable_pinpad = true`, logs in through the virtual PIN-pad reader: PKCS#11 offers the
/// protected authentication path, `pkcs11-tool --login` asks for no code, the code is typed on the
/// virtual keypad, and the reader builds the VERIFY from OpenSC's own PIN_VERIFY_STRUCTURE. An
/// independent client: the virtual reader behaves like a real one.
#[test]
fn opensc_logs_in_through_the_virtual_pin_pad_reader() {
    let _one = one_at_a_time();
    const CONF: &str = "opensc-pinpad.conf";
    let pad = borrow(false);
    let dir = out_dir("opensc_pinpad");
    let log = dir.join("apdu.log");
    let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
    let slot = slot_with(CONF, &pad.reader.name);
    let listing = out(&opensc_with(CONF, "pkcs11-tool", &["--module", MODULE, "--slot", &slot, "-T"]));
    assert!(listing.contains("PIN pad"), "the token offers the protected authentication path:\n{listing}");

    let digest = Sha256::digest(b"Agent CPx PIN-pad cross-check").to_vec();
    let digest_info = [SignScheme::RsaPkcs1Sha256.digest_info_prefix().unwrap(), &digest].concat();
    std::fs::write(dir.join("di"), &digest_info).unwrap();
    let mut keypad = Keypad::connect(&pad);
    let typing = std::thread::spawn(move || {
        let wait = std::time::Duration::from_secs(60);
        let structure = keypad.wait_structure(wait);
        keypad.wait_entry(wait);
        keypad.type_code("1234");
        (structure, keypad.wait_done(wait))
    });
    let sign = opensc_with(
        CONF,
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--slot",
            &slot,
            "--login",
            "--sign",
            "--mechanism",
            "RSA-PKCS",
            "--id",
            AUTH_KEY_ID,
            "--input-file",
            dir.join("di").to_str().unwrap(),
            "--output-file",
            dir.join("sig").to_str().unwrap(),
        ],
    );
    let (structure, sw) = typing.join().expect("the keypad was asked for the code");
    assert!(sign.status.success(), "pkcs11-tool login on the PIN pad + sign: {}", out(&sign));
    assert_eq!(sw, "9000");
    assert_no_pin(&structure, &["1234"]);
    let cmds = logged_commands(&log);
    assert!(
        cmds.iter().any(|c| c.starts_with("0020000108") && c.ends_with("<8 secret bytes>")),
        "the reader presented the code porteur: {cmds:?}"
    );
    let read = opensc_with(
        CONF,
        "pkcs11-tool",
        &["--module", MODULE, "--slot", &slot, "--read-object", "--type", "cert", "--id", AUTH_KEY_ID],
    );
    assert!(read.status.success(), "{}", out(&read));
    let sig = std::fs::read(dir.join("sig")).unwrap();
    verify_signature(&read.stdout, SignScheme::RsaPkcs1Sha256, &digest, &sig)
        .expect("OpenSC's signature verifies against the card certificate");
}
