//! A card that misbehaves gives typed errors, never a hang: mute card, card pulled mid-signature,
//! answers that are nonsense, truncated, too long or carry unexpected status words.

use std::sync::mpsc;
use std::time::Duration;

use cpx_card::{CardError, CertCache, Pin, SignScheme};
use cpx_pcsc::{Monitor, MonitorEvent, PcscError};
use cpx_sim::Garble;
use cpx_tests::{insert, insert_with, open_card, open_card_with_timeout, stack, Options};

#[test]
fn mute_card_gives_a_timeout_not_a_hang() {
    let reader = stack().reader();
    let card = insert("mute", &reader);
    let r = open_card_with_timeout(&reader.name, &CertCache::memory(), Duration::from_millis(400));
    assert!(matches!(r, Err(CardError::Pcsc(PcscError::Timeout { millis: 400 }))), "{:?}", r.err());
    // Pulling it frees the reader, and a good card works there again.
    card.remove();
    let _good = insert("cps3", &reader);
    assert_eq!(open_card(&reader.name, &CertCache::memory()).unwrap().identity().nom, "DUPONT");
}

#[test]
fn card_pulled_mid_signature() {
    let reader = stack().reader();
    let (tx, rx) = mpsc::channel();
    let name = reader.name.clone();
    let monitor = Monitor::start(move |e, _| {
        if matches!(&e, MonitorEvent::CardInserted { reader, .. } | MonitorEvent::CardRemoved { reader } if *reader == name)
        {
            let _ = tx.send(e);
        }
    });
    let sim = insert("pull-mid-sign", &reader);
    let seen = |want: &str| loop {
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("monitor did not report {want}"));
        if format!("{e:?}").starts_with(want) {
            break;
        }
    };
    seen("CardInserted");
    let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
    let r = card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &[7u8; 32]);
    let err = r.expect_err("no signature from a card that left");
    // Removed, not a "communication error": the professional is told what happened.
    assert!(matches!(err.root(), CardError::Pcsc(PcscError::CardRemoved)), "card removed, got {err:?}");
    seen("CardRemoved");
    assert!(!sim.is_inserted(), "the virtual card left by itself");
    drop(card);
    drop(sim);

    // The next card in that reader works.
    let _again = insert("cps3", &reader);
    seen("CardInserted");
    let mut card = open_card(&reader.name, &CertCache::memory()).unwrap();
    card.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &[7u8; 32])
        .expect("signs after re-insertion");
    monitor.stop();
}

#[test]
fn card_pulled_mid_reading() {
    let reader = stack().reader();
    // Pulled at the first READ BINARY (EF.SN.ICC) or the first SELECT (EF_ACTUA): the open fails with
    // a card-lost error, and the reader takes the next card.
    for ins in [0xB0u8, 0xA4] {
        let options = Options { pull_on: Some(ins), ..Options::default() };
        let sim = insert_with("cps3", &reader, &options, None);
        let r = open_card(&reader.name, &CertCache::memory());
        let err = r.err().expect("no identity from a card that left");
        assert!(
            matches!(err.root(), CardError::Pcsc(PcscError::CardRemoved)),
            "INS {ins:02X}: card removed, got {err:?}"
        );
        drop(sim);
    }
    let _again = insert("cps3", &reader);
    assert_eq!(open_card(&reader.name, &CertCache::memory()).unwrap().identity().nom, "DUPONT");
}

/// Seeds × kinds of spoilt answers: every run ends with a signature or a typed error, and never with a
/// timeout (the card always answers, so a timeout would mean the driver waits for nothing).
#[test]
fn garbled_answers_give_typed_errors() {
    let kinds = [Garble::Nonsense, Garble::Truncate, Garble::WrongLength, Garble::BadStatus];
    let mut errors = 0;
    let mut runs = 0;
    for kind in kinds {
        let reader = stack().reader();
        for seed in 0..4u64 {
            let options = Options { garble: Some((kind, 0.25, seed)), ..Options::default() };
            let _card = insert_with("cps3", &reader, &options, None);
            runs += 1;
            let outcome = open_card_with_timeout(&reader.name, &CertCache::memory(), Duration::from_secs(2))
                .and_then(|mut c| {
                    c.authenticate(&Pin::new("1234").unwrap(), SignScheme::RsaPkcs1Sha256, &[1u8; 32])
                });
            match outcome {
                Ok(sig) => assert_eq!(sig.len(), 256, "{kind:?}/{seed}: a signature of the modulus size"),
                Err(CardError::Pcsc(PcscError::Timeout { .. })) => panic!("{kind:?}/{seed}: timed out"),
                Err(e) => {
                    errors += 1;
                    let shown = e.to_string();
                    assert!(!shown.is_empty());
                }
            }
        }
    }
    assert!(errors > runs / 2, "spoilt answers must be noticed: {errors} errors in {runs} runs");
}
