//! The virtual card's answers, APDU by APDU, against cpx-card.md §10 (no PC/SC needed).

use cpx_sim::card::{CardOs, Reaction};
use cpx_sim::{find, Options};
use rsa::traits::PublicKeyParts;

fn card(persona: &str) -> CardOs {
    find(persona).unwrap().card(&Options::default())
}

/// Sends one APDU (hex) and returns the answer (hex).
fn send(card: &mut CardOs, apdu: &str) -> String {
    match card.process(&hex::decode(apdu.replace(' ', "")).unwrap()) {
        Reaction::Answer(r) => hex::encode_upper(r),
        other => panic!("{other:?}"),
    }
}

fn sw(answer: &str) -> &str {
    &answer[answer.len() - 4..]
}

#[test]
fn select_variants_and_t0_get_response() {
    let mut c = card("cps3");
    // By path from the MF (OpenSC's form), FCP wanted: T=0 says 61xx, GET RESPONSE fetches it.
    let r = send(&mut c, "00 A4 09 04 04 3F00 2F01");
    assert!(r.starts_with("61"), "{r}");
    let fcp = send(&mut c, &format!("00C00000{}", &r[2..4]));
    assert!(fcp.starts_with("62") && fcp.contains("8C077B") && fcp.ends_with("9000"), "{fcp}");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 2F01"), "9000");
    // By AID: P2 0C / 04 fine, 00 refused.
    assert_eq!(send(&mut c, "00 A4 04 0C 0D E828BD080F8025000001FF0010"), "9000");
    assert_eq!(send(&mut c, "00 A4 04 00 0D E828BD080F8025000001FF0010"), "6A86");
    // By FID under the current DF; the MF by P1 02, as OpenSC does.
    assert_eq!(send(&mut c, "00 A4 02 0C 02 5031"), "9000");
    assert_eq!(send(&mut c, "00 A4 02 0C 02 3F00"), "9000");
    assert_eq!(send(&mut c, "00 A4 02 0C 02 1234"), "6A82");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 D010"), "6A82", "EF_ACTUA absent on a card never updated");
    assert_eq!(send(&mut c, "00 C0 00 00 10"), "6985", "GET RESPONSE with nothing pending");
}

#[test]
fn read_binary_limits() {
    let mut c = card("cps3");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 2F00"), "9000");
    let r = send(&mut c, "00 B0 00 00 00");
    assert!(r.starts_with("6C"), "Le=00 on a short file gets the right length: {r}");
    let n = &r[2..4];
    assert!(send(&mut c, &format!("00B00000{n}")).ends_with("9000"));
    assert_eq!(send(&mut c, "00 B0 00 10 04").len(), 12, "4 bytes + SW");
    assert_eq!(send(&mut c, "00 B0 7F 00 01"), "6B00", "offset past the end");
    // A certificate is longer than one READ BINARY: at most E7 per call.
    assert_eq!(send(&mut c, "00 A4 09 0C 06 3F00 0001 C002"), "9000");
    assert_eq!(send(&mut c, "00 B0 00 00 00"), "6CE7");
    // EF.SN.ICC by short file identifier.
    assert_eq!(send(&mut c, "00 B0 9C 00 0C"), "5A0A8025000001992138450F9000");
}

#[test]
fn pin_counters_and_wrong_input() {
    let mut c = card("cps3");
    assert_eq!(send(&mut c, "00 20 00 01"), "63C3");
    assert_eq!(send(&mut c, "00 20 00 01 04 31323334"), "6700", "PIN not padded to the stored length");
    assert_eq!(send(&mut c, "00 20 00 02 08 31323334FFFFFFFF"), "6A88", "no such PIN reference");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C2");
    assert_eq!(send(&mut c, "00 20 00 01 08 31323334FFFFFFFF"), "9000");
    assert_eq!(send(&mut c, "00 20 00 01"), "9000", "verified");
    // GET DATA on the CHV needs the MF selected.
    send(&mut c, "00 A4 09 0C 04 3F00 0001");
    assert_eq!(send(&mut c, "00 CB 3F FF 0A 4D08 7006 BF8101 02 A080"), "6A88");
    send(&mut c, "00 A4 00 0C 02 3F00");
    let r = send(&mut c, "00 CB 3F FF 0A 4D08 7006 BF8101 02 A080");
    assert_eq!(send(&mut c, &format!("00C00000{}", &r[2..4])), "7016BF810112A0109A01039B0103A1088C06F3000013FF009000");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C2");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C1");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "6983");
    assert_eq!(send(&mut c, "00 20 00 01 08 31323334FFFFFFFF"), "6983", "blocked stays blocked");
    assert_eq!(send(&mut c, "00 FF 00 00"), "6D00");
    assert_eq!(send(&mut c, "00 A4"), "6700");
    assert_eq!(send(&mut c, "00 20 00 01 09 31"), "6700", "Lc larger than the data");
}

#[test]
fn internal_authenticate_and_pso() {
    let mut c = card("cps3");
    let digest_info = "3031300D060960864801650304020105000420".to_owned() + &"AB".repeat(32);
    assert_eq!(send(&mut c, "00 22 41 A4 06 800102 840182"), "9000");
    assert_eq!(send(&mut c, &format!("0088000033{digest_info}00")), "6982", "code porteur not verified");
    send(&mut c, "00 20 00 01 08 31323334FFFFFFFF");
    assert_eq!(send(&mut c, &format!("00880000{:02X}{}00", 103, "00".repeat(103))), "6700", "over 40 % of the modulus");
    assert_eq!(send(&mut c, &format!("0088000033{digest_info}00")), "6100");
    let sig = send(&mut c, "00C0000000");
    assert_eq!(sig.len(), 2 * 256 + 4);
    assert_eq!(send(&mut c, "00 22 41 A4 06 800199 840182"), "6A80", "unknown algorithm");
    assert_eq!(send(&mut c, "00 22 41 A4 06 800102 840199"), "6A88", "unknown key");
    // PSO CDS with the signature key on a hash given by PSO HASH, as OpenSC does for CKM_SHA256_RSA_PKCS.
    send(&mut c, "00 A4 09 0C 04 3F00 0001");
    assert_eq!(send(&mut c, "00 22 41 AA 03 800140"), "9000");
    assert_eq!(send(&mut c, "00 22 41 B6 06 800142 840181"), "9000");
    assert_eq!(send(&mut c, &format!("002A90A022 9020{}", "CD".repeat(32))), "9000");
    let sig = send(&mut c, "00 2A 9E 9A 00");
    assert_eq!((sig.len(), sw(&sig)), (2 * 256 + 4, "9000"), "case 2: the signature comes back at once");
}

#[test]
fn pso_decipher_with_command_chaining() {
    use rsa::Pkcs1v15Encrypt;
    let mut c = card("cps3");
    let key = cpx_sim::pki::DUPONT.auth.private_key().to_public_key();
    let cryptogram = key.encrypt(&mut rand::thread_rng(), Pkcs1v15Encrypt, b"secret de session").unwrap();
    assert_eq!(cryptogram.len(), key.size());
    send(&mut c, "00 20 00 01 08 31323334FFFFFFFF");
    assert_eq!(send(&mut c, "00 22 41 B8 06 80011A 840182"), "9000");
    let data = [&[0x81u8][..], &cryptogram].concat();
    let (first, last) = data.split_at(200);
    assert_eq!(send(&mut c, &format!("102A8086{:02X}{}", first.len(), hex::encode(first))), "9000");
    let r = send(&mut c, &format!("002A8086{:02X}{}00", last.len(), hex::encode(last)));
    let answer = send(&mut c, &format!("00C00000{}", &r[2..4]));
    assert_eq!(&answer[..answer.len() - 4], hex::encode_upper(b"secret de session"));
}

#[test]
fn cps4_lives_on_a_logical_channel() {
    let mut c = card("cps4");
    assert_eq!(send(&mut c, "01 A4 04 0C 08 8025000001FF0100"), "6881", "channel 1 is not open yet");
    assert_eq!(send(&mut c, "00 70 00 00 01"), "019000");
    assert_eq!(send(&mut c, "01 A4 04 0C 08 8025000001FF0100"), "9000");
    assert_eq!(send(&mut c, "01 20 00 81"), "63C3");
    assert_eq!(send(&mut c, "01 88 00 00 01 00"), "6D00", "ChipDoc has no INTERNAL AUTHENTICATE");
    assert_eq!(send(&mut c, "01 20 00 81 08 31323334FFFFFFFF"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "9000");
    let r = send(&mut c, &format!("012A9E9A20{}00", "11".repeat(32)));
    assert_eq!(r.len(), 2 * 256 + 4, "PSS signature returned directly (T=1)");
    assert_eq!(send(&mut c, "00 70 80 01"), "9000");
    assert_eq!(send(&mut c, "01 20 00 81"), "6881", "channel closed");
    let cps3 = &mut card("cps3");
    assert_eq!(send(cps3, "00 70 00 00 01"), "6D00", "a CPS3 has no logical channels");
}

#[test]
fn contactless_and_fault_personas() {
    let mut cl = card("cps3-cl");
    assert_eq!(send(&mut cl, "00 20 00 01"), "6A88", "no code porteur over contactless");
    assert_eq!(send(&mut cl, "00 A4 09 0C 06 3F00 0001 7001"), "9000");
    assert_eq!(send(&mut cl, "00 B0 00 00 10"), "6982", "7001 is readable over contact only");
    let mut mute = card("mute");
    assert_eq!(mute.process(&[0, 0xA4, 0, 0x0C]), Reaction::Silence);
    let mut pull = card("pull-mid-sign");
    assert_eq!(pull.process(&[0, 0x88, 0, 0, 1, 0]), Reaction::Pull);
    let key_bits = cpx_sim::pki::DUPONT.auth.private_key().n().bits();
    assert_eq!(key_bits, 2048);
}
