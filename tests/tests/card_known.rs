//! A card known without reading it (docs/card-sessions.md, « A card that never left its reader »): the
//! certificate cache vouches for the card in a reader while the reader's event count and the ATR are
//! the same, and every signature is verified with the certificate before it leaves the driver. Here,
//! through the real pcscd + vpcd: the card that never left opens without an APDU and still signs; a
//! card swapped in the same reader, or taken out and renewed under the same serial, is read again; a
//! card whose signature does not verify with its certificate is refused, and read again next time.

use cpx_card::{CardError, CertCache, SignScheme};
use cpx_tests::{
    insert, insert_built, insert_with, logged_commands, open_card, out_dir, stack, verify_signature, Options,
};
use sha2::{Digest, Sha256};

fn digest() -> Vec<u8> {
    Sha256::digest(b"card known").to_vec()
}

/// A SELECT of the authentication certificate's file (by file id under the application, or by path).
fn selects_certificate(commands: &[String]) -> bool {
    commands.iter().any(|c| c.starts_with("00A4") && c.ends_with("C002"))
}

#[test]
fn a_card_that_never_left_its_reader_is_known_without_an_apdu_and_still_signs() {
    let reader = stack().reader();
    let log = out_dir("card_known_stays").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    let cache = CertCache::memory();
    let first = open_card(&reader.name, &cache).expect("first opening reads the card");
    let (serial, nom) = (first.info().serial.clone(), first.identity().nom.clone());
    drop(first);
    let read = logged_commands(&log).len();
    assert!(selects_certificate(&logged_commands(&log)), "the first opening reads the certificate");

    let mut again = open_card(&reader.name, &cache).expect("known card opens");
    assert_eq!(again.apdu_count(), 0, "a card that never left needs no APDU to be known");
    assert_eq!(logged_commands(&log).len(), read, "nothing reached the card");
    assert_eq!(
        (again.info().serial.as_str(), again.identity().nom.as_str()),
        (serial.as_str(), nom.as_str())
    );

    // The login: tries (SELECT MF, GET DATA and its GET RESPONSE), then VERIFY, MSE SET AT, INTERNAL
    // AUTHENTICATE and its GET RESPONSE; the tries are not read twice.
    let status = again.pin_status().unwrap().expect("code porteur");
    assert_eq!(status.tries_left, 3);
    let d = digest();
    let pin = cpx_card::Pin::new("1234").unwrap();
    let signature = again.authenticate(&pin, SignScheme::RsaPkcs1Sha256, &d).expect("signs");
    verify_signature(again.certificate(), SignScheme::RsaPkcs1Sha256, &d, &signature).expect("verifies");
    let login: Vec<String> = logged_commands(&log)[read..].to_vec();
    assert_eq!(login.len(), 7, "{login:?}");
    assert_eq!(login.iter().filter(|c| c.starts_with("00CB")).count(), 1, "tries read once: {login:?}");

    // A second login on the same opened card reads the tries again (no dialog showed them).
    let before = again.apdu_count();
    again.authenticate(&pin, SignScheme::RsaPkcs1Sha256, &d).expect("signs again");
    let second: Vec<String> = logged_commands(&log)[read + 7..].to_vec();
    assert!(second.iter().any(|c| c.starts_with("00CB")), "tries read before this VERIFY: {second:?}");
    assert_eq!(again.apdu_count() - before, second.len() as u64);
}

#[test]
fn a_blocked_card_known_without_reading_still_gets_no_verify() {
    let reader = stack().reader();
    let log = out_dir("card_known_blocked").join("apdu.log");
    let _card = insert_with("cps3-blocked", &reader, &Options::default(), Some(&log));
    let cache = CertCache::memory();
    drop(open_card(&reader.name, &cache).unwrap());
    let mut card = open_card(&reader.name, &cache).unwrap();
    assert_eq!(card.apdu_count(), 0);
    assert!(card.pin_status().unwrap().unwrap().blocked());
    let r = card.authenticate(&cpx_card::Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &digest());
    assert_eq!(r, Err(CardError::PinBlocked));
    let verifies: Vec<String> =
        logged_commands(&log).into_iter().filter(|c| c.starts_with("0020") && c.contains("secret")).collect();
    assert!(verifies.is_empty(), "a VERIFY with a code porteur reached a blocked card: {verifies:?}");
}

#[test]
fn a_card_swapped_in_the_same_reader_is_read_again() {
    let reader = stack().reader();
    let cache = CertCache::memory();
    let first = insert("cps3", &reader);
    let card = open_card(&reader.name, &cache).unwrap();
    assert_eq!(card.identity().nom, "DUPONT");
    drop(card);
    first.remove();
    // Another card of the same type (same ATR), another holder and number.
    let other = Options { serial: Some("991234567".into()), ..Options::default() };
    let _second = insert_with("cps3-expired", &reader, &other, None);
    let mut card = open_card(&reader.name, &cache).unwrap();
    assert!(card.apdu_count() > 0, "the new card was read");
    assert_eq!((card.info().serial.as_str(), card.identity().nom.as_str()), ("991234567", "LEROY"));
}

#[test]
fn a_card_renewed_under_the_same_serial_and_put_back_is_read_again() {
    let reader = stack().reader();
    let cache = CertCache::memory();
    let log = out_dir("card_known_renewed").join("apdu.log");
    let first = insert("cps3", &reader);
    let old = open_card(&reader.name, &cache).unwrap().certificate().to_vec();
    first.remove();
    let renewed = Options { holder: Some(cpx_sim::pki::DUPONT_RENEWED), ..Options::default() };
    let _card = insert_with("cps3", &reader, &renewed, Some(&log));
    let mut card = open_card(&reader.name, &cache).unwrap();
    assert!(card.apdu_count() > 0);
    assert_ne!(card.certificate(), old.as_slice(), "the renewed certificate, not the cached one");
    let d = digest();
    let sig =
        card.authenticate(&cpx_card::Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &d).unwrap();
    verify_signature(card.certificate(), SignScheme::RsaPkcs1Sha256, &d, &sig).expect("verifies");
}

#[test]
fn a_signature_that_does_not_verify_with_the_certificate_is_refused_and_the_card_read_again() {
    // A card whose certificate files hold another certificate than its key's (what a certificate renewed
    // on the card in place, behind a cache entry, looks like to the driver).
    let reader = stack().reader();
    let persona = cpx_sim::find("cps3").unwrap();
    let build = || {
        let mut card = persona.card(&Options::default());
        let other =
            persona.card(&Options { holder: Some(cpx_sim::pki::DUPONT_RENEWED), ..Options::default() });
        for (mine, theirs) in card.spec.fs.nodes.iter_mut().zip(&other.spec.fs.nodes) {
            if let (cpx_sim::fs::Body::Ef { content: a, .. }, cpx_sim::fs::Body::Ef { content: b, .. }) =
                (&mut mine.body, &theirs.body)
            {
                if a.first() == Some(&0x30) && a != b {
                    *a = b.clone();
                }
            }
        }
        card
    };
    let _card = insert_built("cps3 with another certificate", &reader, build);
    let cache = CertCache::memory();
    drop(open_card(&reader.name, &cache).unwrap());
    let mut card = open_card(&reader.name, &cache).unwrap();
    assert_eq!(card.apdu_count(), 0, "known without reading");
    let r = card.authenticate(&cpx_card::Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &digest());
    match r {
        Err(CardError::Malformed { what: "signature", .. }) => {}
        other => panic!("a signature that does not verify must be refused: {other:?}"),
    }
    drop(card);
    // No longer vouched for: the next opening reads the card again.
    let mut card = open_card(&reader.name, &cache).unwrap();
    assert!(card.apdu_count() > 0, "the card is read again after the mismatch");
}
