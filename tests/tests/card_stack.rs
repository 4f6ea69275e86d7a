//! The card driver against virtual CPS3/CPS4 cards through the real pcscd and vpcd, and the code porteur
//! kept out of everything the agent writes.

use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use cpx_card::{CardError, CertCache, Generation, Interface, Pin, Recognition, SignScheme, Validity};
use cpx_tests::agent::AgentProcess;
use cpx_tests::{
    assert_no_pin, insert, insert_with, logged_commands, open_card, out_dir, poll, stack, verify_signature,
    Options,
};
use serde_json::json;
use sha2::{Digest, Sha256, Sha384};

/// The agent logs in with the CPx card it finds in any reader: its test has the readers to itself (write),
/// the driver's tests share them (read).
static READERS: RwLock<()> = RwLock::new(());

fn shared_readers() -> RwLockReadGuard<'static, ()> {
    READERS.read().unwrap_or_else(|e| e.into_inner())
}

fn digest(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

#[test]
fn cps3_identity_code_porteur_and_signature() {
    let _shared = shared_readers();
    let reader = stack().reader();
    let log = out_dir("cps3_identity").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    let mut card = open_card(&reader.name, &CertCache::memory()).expect("CPS3 opens");

    let info = card.info().clone();
    assert_eq!((info.generation, info.interface), (Generation::Cps3, Interface::Contact));
    assert_eq!(info.recognition, Recognition::AtrTable { label: "CPS3 (contact)" });
    assert_eq!(info.serial, "992138450");
    let id = card.identity().clone();
    assert_eq!(
        (id.national_id.as_str(), id.nom.as_str(), id.prenom.as_str()),
        ("899700123456", "DUPONT", "JEAN")
    );
    assert_eq!(id.profession.as_deref(), Some("Médecin"));
    assert_eq!(id.id_kind, cpx_card::IdKind::Rpps);
    assert!(id.test_pki, "test IGC-Santé issuer: {}", id.issuer);
    assert_eq!(id.validity_at(cpx_tests_now()), Validity::Valid);

    let status = card.pin_status().unwrap().expect("contact CPS3 has a code porteur");
    assert_eq!((status.tries_left, status.max_tries), (3, 3));

    // Wrong code: one try spent, reported; right code: signature that verifies against the card certificate.
    let d = digest("challenge");
    let wrong = card.authenticate(&Pin::new("0000").unwrap(), SignScheme::RsaPkcs1Sha256, &d);
    assert_eq!(wrong, Err(CardError::WrongPin { tries_left: 2 }));
    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 2);
    let sig = card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &d).expect("signs");
    verify_signature(card.certificate(), SignScheme::RsaPkcs1Sha256, &d, &sig).expect("signature verifies");
    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3, "a right code resets the counter");

    // SHA-384 DigestInfo also fits INTERNAL AUTHENTICATE; PSS is refused by the CPS3 driver.
    let d384 = Sha384::digest(b"x").to_vec();
    let sig = card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha384, &d384).unwrap();
    verify_signature(card.certificate(), SignScheme::RsaPkcs1Sha384, &d384, &sig).unwrap();
    assert!(matches!(
        card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPssSha256, &d),
        Err(CardError::SchemeUnsupported { scheme: SignScheme::RsaPssSha256 })
    ));

    // Each code porteur was presented with VERIFY (whether the agent logs it is checked below, on the
    // agent's own logs: the card's APDU log masks it by itself).
    let commands = logged_commands(&log);
    let verifies = commands.iter().filter(|c| c.starts_with("00200001") && c.len() > 10).count();
    assert!(verifies >= 3, "{commands:?}");
    assert!(commands.iter().any(|c| c.starts_with("00880000")), "INTERNAL AUTHENTICATE was used");
}

fn cpx_tests_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn cps4_signs_pss_and_pkcs1_on_channel_1() {
    let _shared = shared_readers();
    let reader = stack().reader();
    let log = out_dir("cps4").join("apdu.log");
    let _card = insert_with("cps4", &reader, &Options::default(), Some(&log));
    let mut card = open_card(&reader.name, &CertCache::memory()).expect("CPS4 opens");
    assert_eq!(card.info().generation, Generation::Cps4);
    assert_eq!(card.identity().nom, "MARTIN");
    assert_eq!(card.schemes()[0], SignScheme::RsaPssSha256);
    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 3);
    let d = digest("tls13 transcript");
    for scheme in [SignScheme::RsaPssSha256, SignScheme::RsaPkcs1Sha256] {
        let sig = card.authenticate(&Pin::new("1234").unwrap(), scheme, &d).expect("signs");
        verify_signature(card.certificate(), scheme, &d, &sig).unwrap_or_else(|e| panic!("{scheme:?}: {e}"));
    }
    let cmds = logged_commands(&log);
    assert!(cmds.iter().any(|c| c.starts_with("012A9E9A")), "PSO CDS on logical channel 1: {cmds:?}");
    assert!(cmds.iter().any(|c| c.starts_with("0070000001")), "MANAGE CHANNEL open");
    assert_eq!(
        card.authenticate(&Pin::new("9999").unwrap(), SignScheme::RsaPssSha256, &d),
        Err(CardError::WrongPin { tries_left: 2 })
    );
}

#[test]
fn warm_authentication_takes_at_most_six_apdus() {
    let _shared = shared_readers();
    for persona in ["cps3", "cps4"] {
        let reader = stack().reader();
        let _card = insert(persona, &reader);
        let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
        let scheme = card.schemes()[0];
        let d = digest("warm");
        card.authenticate(&Pin::new("1234").unwrap(), scheme, &d).unwrap();
        let before = card.apdu_count();
        card.authenticate(&Pin::new("1234").unwrap(), scheme, &d).unwrap();
        let used = card.apdu_count() - before;
        assert!(used <= 6, "{persona}: warm authentication took {used} APDUs");
    }
}

#[test]
fn blocked_card_is_refused_before_any_verify() {
    let _shared = shared_readers();
    let reader = stack().reader();
    let log = out_dir("blocked").join("apdu.log");
    let _card = insert_with("cps3-blocked", &reader, &Options::default(), Some(&log));
    let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
    assert!(card.pin_status().unwrap().unwrap().blocked());
    let r = card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &digest("x"));
    assert_eq!(r, Err(CardError::PinBlocked));
    let verifies: Vec<String> =
        logged_commands(&log).into_iter().filter(|c| c.starts_with("0020") && c.contains("secret")).collect();
    assert!(verifies.is_empty(), "a VERIFY with a PIN reached a blocked card: {verifies:?}");
}

#[test]
fn one_try_left_then_blocked() {
    let _shared = shared_readers();
    let reader = stack().reader();
    let _card = insert("cps3-one-try", &reader);
    let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
    assert_eq!(card.pin_status().unwrap().unwrap().tries_left, 1);
    let r = card.authenticate(&Pin::new("4321").unwrap(), SignScheme::RsaPkcs1Sha256, &digest("x"));
    assert_eq!(r, Err(CardError::PinBlocked));
    assert!(card.pin_status().unwrap().unwrap().blocked());
}

#[test]
fn expired_variant_contactless_and_foreign_cards() {
    let _shared = shared_readers();
    let reader = stack().reader();
    {
        let _c = insert("cps3-expired", &reader);
        let card = open_card(&reader.name, &CertCache::memory()).unwrap();
        assert_eq!(card.identity().nom, "LEROY");
        assert_eq!(card.identity().validity_at(cpx_tests_now()), Validity::Expired);
    }
    {
        let _c = insert("cps3-variant", &reader);
        let card = open_card(&reader.name, &CertCache::memory()).unwrap();
        assert_eq!(card.info().recognition, Recognition::IssuerOnly);
        assert_eq!(card.info().generation, Generation::Cps3);
        assert_eq!(
            (card.identity().id_kind, card.identity().id_number.as_str()),
            (cpx_card::IdKind::Adeli, "751012345")
        );
    }
    {
        let _c = insert("cps3-cl", &reader);
        let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
        assert_eq!(card.info().interface, Interface::Contactless);
        assert_eq!(card.layout().cert_label, "Certificat Technique CPS");
        assert_eq!(card.pin_status().unwrap(), None);
        let r = card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &digest("x"));
        assert!(matches!(r, Err(CardError::NoPinOnInterface)), "{r:?}");
    }
    {
        let _c = insert("not-cpx", &reader);
        let r = open_card(&reader.name, &CertCache::memory());
        assert!(matches!(r, Err(CardError::NotCpx { .. })), "{:?}", r.err());
    }
}

#[test]
fn certificate_cache_checks_the_certificate_and_follows_ef_actua() {
    let _shared = shared_readers();
    let reader = stack().reader();
    let dir = out_dir("cache");
    let cache = CertCache::in_dir(dir.join("cache"));
    let cold_log = dir.join("cold.log");
    let cold = {
        let _c = insert_with("cps3", &reader, &Options::default(), Some(&cold_log));
        let mut card = open_card(&reader.name, &cache).unwrap();
        card.apdu_count()
    };
    // A SELECT of the certificate file, by path from 3F00 or by file id under the application (real layout).
    let cert_select = |log: &std::path::Path| {
        logged_commands(log).iter().any(|c| c.starts_with("00A4") && c.ends_with("C002"))
    };
    assert!(cert_select(&cold_log), "the first open reads the certificate");

    // Same card again, a new process's view (cache from the folder): no certificate read.
    let warm_log = dir.join("warm.log");
    let from_disk = CertCache::in_dir(dir.join("cache"));
    let warm = {
        let _c = insert_with("cps3", &reader, &Options::default(), Some(&warm_log));
        let mut card = open_card(&reader.name, &from_disk).unwrap();
        assert_eq!(card.identity().nom, "DUPONT");
        card.apdu_count()
    };
    // Cached: the certificate is only checked against the card (its FCP and first READ BINARY), not read
    // again, and the PKCS#15 files are not read at all (docs/card-facts.md#certificate-cache).
    assert!(cert_select(&warm_log), "the cached certificate is checked against the card");
    let reads: Vec<String> = logged_commands(&warm_log)
        .into_iter()
        .filter(|c| c.starts_with("00B0") && !c.starts_with("00B09C"))
        .collect();
    assert_eq!(reads, ["00B00000E7"], "one READ BINARY of the certificate's first bytes");
    assert!(warm < cold, "cached open {warm} APDUs, cold {cold}");

    // The card was updated online (EF_ACTUA now present): everything is read again.
    let updated_log = dir.join("updated.log");
    let updated =
        Options { actua: Some(vec![0xEC, 0x06, 0x81, 0x01, 0x20, 0x82, 0x01, 0x26]), ..Options::default() };
    let _c = insert_with("cps3", &reader, &updated, Some(&updated_log));
    open_card(&reader.name, &from_disk).unwrap();
    assert!(cert_select(&updated_log), "EF_ACTUA changed: the certificate is read again");
}

#[test]
fn parallel_readers_hold_different_cards() {
    let _shared = shared_readers();
    let (r1, r2) = (stack().reader(), stack().reader());
    let _a = insert("cps3", &r1);
    let _b = insert("cps4", &r2);
    let a = open_card(&r1.name, &CertCache::memory()).unwrap();
    let b = open_card(&r2.name, &CertCache::memory()).unwrap();
    assert_eq!((a.identity().nom.as_str(), b.identity().nom.as_str()), ("DUPONT", "MARTIN"));
}

/// The code porteur typed (a wrong one, then the right one, on a CPS3 and a CPS4) is in none of the
/// agent's log files at trace level nor on its standard error, in any form: its digits, the hex of its
/// VERIFY data, the padded block (see `cpx_tests::pin_forms`). What the agent logs of each APDU comes from
/// the driver, so this fails if the driver logs a VERIFY in clear.
#[test]
fn the_code_porteur_is_in_no_agent_log_nor_its_stderr() {
    const ORIGIN: &str = "https://portal.test";
    const RIGHT: &str = "5791";
    const WRONG: &str = "2468";
    let _alone = READERS.write().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("pin-not-logged");
    let agent = AgentProcess::start(
        &dir.join("agent"),
        &format!("[[site]]\norigin = \"{ORIGIN}\"\nsigned_token = true\n"),
    );
    let reader = stack().reader();
    let token = || {
        agent.request(
            "POST",
            "/v1/token",
            &[("Origin", ORIGIN), ("Content-Type", "application/json")],
            Some(&json!({"challenge": "A".repeat(43) + "="}).to_string()),
        )
    };
    for persona in ["cps3", "cps4"] {
        let apdus = dir.join(format!("{persona}-apdu.log"));
        let card =
            insert_with(persona, &reader, &Options { pin: RIGHT.into(), ..Options::default() }, Some(&apdus));
        agent.answer_pins(&[WRONG, RIGHT]);
        let wrong = token();
        assert_eq!(
            (wrong.status, wrong.json()["error"]["code"].as_str()),
            (403, Some("PIN_WRONG")),
            "{persona}: {}",
            wrong.body
        );
        let right = token();
        assert_eq!(right.status, 200, "{persona}: {}", right.body);
        let verifies =
            logged_commands(&apdus).into_iter().filter(|c| c.get(2..4) == Some("20") && c.len() > 10);
        assert_eq!(verifies.count(), 2, "{persona}: both codes reached the card (VERIFY with data)");
        card.remove();
    }
    // Every login written (the log writer is asynchronous), each APDU logged at trace level.
    let logs = poll("the four logins in the agent's log", Duration::from_secs(10), || {
        let logs = agent.logs();
        (logs.matches("card login").count() >= 4).then_some(logs)
    });
    assert!(logs.contains("\"apdu\""), "trace level is on: {}", &logs[..logs.len().min(2000)]);
    assert_no_pin(&logs, &[RIGHT, WRONG]);
    assert_no_pin(&agent.stderr(), &[RIGHT, WRONG]);
}
