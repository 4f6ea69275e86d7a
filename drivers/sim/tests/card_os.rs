//! The virtual card's answers, APDU by APDU, against docs/simulator.md (no PC/SC needed).

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
    assert_eq!(send(&mut c, "00 20 00 05 08 31323334FFFFFFFF"), "6A88", "no such PIN reference");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C2");
    assert_eq!(send(&mut c, "00 20 00 01 08 31323334FFFFFFFF"), "9000");
    assert_eq!(send(&mut c, "00 20 00 01"), "9000", "verified");
    // GET DATA on the CHV needs the MF selected.
    send(&mut c, "00 A4 09 0C 04 3F00 0001");
    assert_eq!(send(&mut c, "00 CB 3F FF 0A 4D08 7006 BF8101 02 A080"), "6A88");
    send(&mut c, "00 A4 00 0C 02 3F00");
    let r = send(&mut c, "00 CB 3F FF 0A 4D08 7006 BF8101 02 A080");
    assert_eq!(
        send(&mut c, &format!("00C00000{}", &r[2..4])),
        "7016BF810112A0109A01039B0103A1088C06F3000013FF009000"
    );
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C2");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "63C1");
    assert_eq!(send(&mut c, "00 20 00 01 08 30303030FFFFFFFF"), "6983");
    assert_eq!(send(&mut c, "00 20 00 01 08 31323334FFFFFFFF"), "6983", "blocked stays blocked");
    assert_eq!(send(&mut c, "00 FF 00 00"), "6D00");
    assert_eq!(send(&mut c, "00 A4"), "6700");
    assert_eq!(send(&mut c, "00 20 00 01 09 31"), "6700", "Lc larger than the data");
}

/// The code porteur 1234 / 5678 / 0000 as VERIFY carries it (ASCII, `FF` to 8 bytes).
const PIN_1234: &str = "31323334FFFFFFFF";
const PIN_5678: &str = "35363738FFFFFFFF";
const PIN_0000: &str = "30303030FFFFFFFF";
/// The personas' code de déblocage 12345678, and a wrong one.
const UNBLOCK: &str = "3132333435363738";
const UNBLOCK_WRONG: &str = "3837363534333231";

#[test]
fn cps3_change_reference_data_checks_the_current_code() {
    let mut c = card("cps3");
    assert_eq!(send(&mut c, &format!("00 24 00 01 10 {PIN_0000}{PIN_5678}")), "63C2", "wrong current code");
    assert_eq!(
        send(&mut c, &format!("00 24 00 01 0C 31323334{PIN_5678}")),
        "6700",
        "current code not padded"
    );
    assert_eq!(send(&mut c, "00 20 00 01"), "63C2", "a wrong length spends no try");
    assert_eq!(send(&mut c, &format!("00 24 01 01 08 {PIN_5678}")), "6982", "P1 01 needs a verified code");
    assert_eq!(send(&mut c, &format!("00 24 00 01 10 {PIN_1234}{PIN_5678}")), "9000");
    assert_eq!(send(&mut c, "00 20 00 01"), "9000", "verified by the change, the counter back to 3");
    send(&mut c, "00 20 FF 01");
    assert_eq!(send(&mut c, &format!("00 20 00 01 08 {PIN_1234}")), "63C2", "the old code is gone");
    assert_eq!(send(&mut c, &format!("00 20 00 01 08 {PIN_5678}")), "9000");
    assert_eq!(send(&mut c, &format!("00 24 00 05 10 {PIN_5678}{PIN_1234}")), "6A88", "no such reference");
    assert_eq!(
        send(&mut c, &format!("00 24 00 02 10 {UNBLOCK}{UNBLOCK}")),
        "6A88",
        "the code de déblocage stays"
    );
    // Three wrong current codes block the code porteur, which then cannot be changed.
    for expected in ["63C2", "63C1", "6983", "6983"] {
        assert_eq!(send(&mut c, &format!("00 24 00 01 10 {PIN_0000}{PIN_1234}")), expected);
    }
    assert_eq!(send(&mut c, &format!("00 24 00 01 10 {PIN_5678}{PIN_1234}")), "6983");
}

#[test]
fn cps3_reset_retry_counter_asks_for_the_code_de_deblocage_first() {
    let mut c = card("cps3-blocked");
    assert_eq!(send(&mut c, &format!("00 2C 02 01 08 {PIN_5678}")), "6982", "no code de déblocage presented");
    assert_eq!(send(&mut c, &format!("00 2C 00 01 10 {UNBLOCK}{PIN_5678}")), "6A86", "the code in the data");
    // Its tries, without spending one, by VERIFY without data and by GET DATA on its CHV object.
    assert_eq!(send(&mut c, "00 20 00 02"), "63C3");
    let r = send(&mut c, "00 CB 3F FF 0A 4D08 7006 BF8102 02 A080");
    let docp = send(&mut c, &format!("00C00000{}", &r[2..4]));
    assert!(docp.starts_with("7016BF810212A0109A01039B0103"), "{docp}");
    assert_eq!(send(&mut c, &format!("00 20 00 02 08 {UNBLOCK_WRONG}")), "63C2");
    assert_eq!(send(&mut c, "00 20 00 02 04 31323334"), "6700", "a code de déblocage of 4 digits");
    assert_eq!(send(&mut c, &format!("00 2C 02 01 08 {PIN_5678}")), "6982", "a wrong code verifies nothing");
    assert_eq!(send(&mut c, &format!("00 20 00 02 08 {UNBLOCK}")), "9000");
    assert_eq!(send(&mut c, "00 20 00 02"), "9000", "its counter back to 3, verified");
    assert_eq!(send(&mut c, "00 2C 02 01 04 35363738"), "6700", "the new code not padded");
    assert_eq!(send(&mut c, &format!("00 2C 02 01 08 {PIN_5678}")), "9000");
    assert_eq!(send(&mut c, "00 20 00 01"), "63C3", "unblocked, not verified");
    assert_eq!(send(&mut c, &format!("00 20 00 01 08 {PIN_5678}")), "9000");
    // A reset forgets the code de déblocage.
    c.reset();
    assert_eq!(send(&mut c, &format!("00 2C 02 01 08 {PIN_1234}")), "6982");
}

#[test]
fn a_blocked_code_de_deblocage_unblocks_nothing() {
    let mut c = card("cps3-blocked");
    for expected in ["63C2", "63C1", "6983"] {
        assert_eq!(send(&mut c, &format!("00 20 00 02 08 {UNBLOCK_WRONG}")), expected);
    }
    assert_eq!(send(&mut c, &format!("00 20 00 02 08 {UNBLOCK}")), "6983", "blocked stays blocked");
    assert_eq!(send(&mut c, "00 20 00 02"), "6983");
    assert_eq!(send(&mut c, &format!("00 2C 02 01 08 {PIN_5678}")), "6982");
    let mut dead = card("cps3-dead");
    assert_eq!(send(&mut dead, "00 20 00 01"), "6983");
    assert_eq!(send(&mut dead, "00 20 00 02"), "6983");
}

#[test]
fn cps4_change_and_unblock_the_chipdoc_way() {
    let mut c = card("cps4");
    send(&mut c, "00 70 00 00 01");
    send(&mut c, "01 A4 04 0C 08 8025000001FF0100");
    // Change: VERIFY the current code, then CHANGE REFERENCE DATA P1 01 with the new one.
    assert_eq!(send(&mut c, &format!("01 24 01 81 08 {PIN_5678}")), "6982");
    assert_eq!(send(&mut c, &format!("01 20 00 81 08 {PIN_1234}")), "9000");
    assert_eq!(send(&mut c, "01 24 01 81 04 35363738"), "6700");
    assert_eq!(send(&mut c, &format!("01 24 01 81 08 {PIN_5678}")), "9000");
    assert_eq!(send(&mut c, &format!("01 20 00 81 08 {PIN_1234}")), "63C2");
    let mut c = card("cps4-blocked");
    send(&mut c, "00 70 00 00 01");
    assert_eq!(send(&mut c, "01 20 00 81"), "6983");
    assert_eq!(send(&mut c, "01 20 00 82"), "63C3", "tries of the code de déblocage");
    assert_eq!(send(&mut c, "01 2C 03 81"), "6982");
    assert_eq!(send(&mut c, &format!("01 20 00 82 08 {UNBLOCK}")), "9000");
    assert_eq!(send(&mut c, "01 2C 03 81 08 35363738"), "6700", "P1 03 carries no data");
    assert_eq!(send(&mut c, "01 2C 03 81"), "9000");
    assert_eq!(send(&mut c, &format!("01 24 01 81 08 {PIN_5678}")), "9000");
    assert_eq!(send(&mut c, &format!("01 20 00 81 08 {PIN_5678}")), "9000");
}

#[test]
fn internal_authenticate_and_pso() {
    let mut c = card("cps3");
    let digest_info = "3031300D060960864801650304020105000420".to_owned() + &"AB".repeat(32);
    assert_eq!(send(&mut c, "00 22 41 A4 06 800102 840182"), "9000");
    assert_eq!(send(&mut c, &format!("0088000033{digest_info}00")), "6982", "code porteur not verified");
    send(&mut c, "00 20 00 01 08 31323334FFFFFFFF");
    assert_eq!(
        send(&mut c, &format!("00880000{:02X}{}00", 103, "00".repeat(103))),
        "6700",
        "over 40 % of the modulus"
    );
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

/// Reads a whole transparent EF by short file identifier, in READ BINARY chunks.
fn read_by_sfi(c: &mut CardOs, sfi: u8) -> Vec<u8> {
    let first = send(c, &format!("00B0{:02X}0000", 0x80 | sfi));
    assert!(first.starts_with("6C"), "Le=00 on a short file tells its length: {first}");
    let answer = send(c, &format!("00B0{:02X}00{}", 0x80 | sfi, &first[2..4]));
    assert_eq!(sw(&answer), "9000");
    hex::decode(&answer[..answer.len() - 4]).unwrap()
}

/// Reads the current EF in chunks of at most E7 bytes (the card's limit).
fn read_current(c: &mut CardOs) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let r = send(c, &format!("00B0{:04X}E7", out.len()));
        let r = if r.starts_with("6C") { send(c, &format!("00B0{:04X}{}", out.len(), &r[2..4])) } else { r };
        if sw(&r) != "9000" {
            return out;
        }
        out.extend(hex::decode(&r[..r.len() - 4]).unwrap());
    }
}

/// The FCP a SELECT with P2=04 returns (T=0: through GET RESPONSE).
fn fcp(c: &mut CardOs, select: &str) -> String {
    let r = send(c, select);
    assert!(r.starts_with("61"), "{select}: {r}");
    send(c, &format!("00C00000{}", &r[2..4]))
}

#[test]
fn real_layout_ef_dir_lists_the_contactless_application_first_in_101_bytes() {
    let mut c = card("cps3");
    let f = fcp(&mut c, "00 A4 09 04 04 3F00 2F00");
    assert!(f.contains("80020065"), "EF.DIR is 101 bytes as on the real card: {f}");
    assert!(f.contains("8801F0"), "EF.DIR's short file identifier is 1E: {f}");
    let dir = read_by_sfi(&mut c, 0x1E);
    assert_eq!(dir.len(), 101);
    let dir_hex = hex::encode_upper(&dir);
    let cl = dir_hex.find("E828BD080F8025000001FF0020").expect("contactless AID");
    let contact = dir_hex.find("E828BD080F8025000001FF0010").expect("contact AID");
    assert!(cl < contact, "the contactless record comes first: {dir_hex}");
    assert!(
        !dir_hex.contains("51043F00"),
        "the records carry no path (applications are selected by AID): {dir_hex}"
    );
    let records_end = 2 + dir[1] as usize + 2 + dir[2 + dir[1] as usize + 1] as usize;
    assert!(dir[records_end..].iter().all(|b| *b == 0), "after the two records, 00 padding: {dir_hex}");
}

#[test]
fn real_short_file_identifiers() {
    let mut c = card("cps3");
    let atr = read_by_sfi(&mut c, 0x1D);
    assert_eq!((atr.len(), &atr[..4]), (57, &[0x80, 0x43, 0x01, 0xB8][..]), "EF.ATR by SFI 1D");
    assert_eq!(
        hex::encode_upper(read_by_sfi(&mut c, 0x1C)),
        "5A0A8025000001992138450F",
        "EF.SN.ICC by SFI 1C"
    );
    assert!(fcp(&mut c, "00 A4 09 04 04 3F00 D003").contains("8801E0"), "EF.SN.ICC's FCP carries SFI 1C");
    assert!(fcp(&mut c, "00 A4 09 04 04 3F00 2F01").contains("8801E8"), "EF.ATR's FCP carries SFI 1D");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 D010"), "6A82", "EF_ACTUA absent by default");
}

#[test]
fn real_layout_paths_are_relative_to_the_application() {
    let mut c = card("cps3");
    assert_eq!(send(&mut c, "00 A4 04 0C 0D E828BD080F8025000001FF0010"), "9000");
    assert_eq!(send(&mut c, "00 A4 02 0C 02 5031"), "9000");
    let odf = hex::encode_upper(read_current(&mut c));
    assert!(odf.contains("A0063004040270"), "ODF entries are bare file ids: {odf}");
    assert!(!odf.contains("3F00"), "no absolute path in the ODF: {odf}");
    // PrKDF: each key's path is empty and carries only the application's AID ([APPLICATION 15]).
    send(&mut c, "00 A4 04 0C 0D E828BD080F8025000001FF0010");
    assert_eq!(send(&mut c, "00 A4 02 0C 02 7002"), "9000");
    let prkdf = hex::encode_upper(read_current(&mut c));
    assert_eq!(
        prkdf.matches("301104004F0DE828BD080F8025000001FF0010").count(),
        2,
        "two keys with an AID-only path: {prkdf}"
    );
    // CDF: the certificates by bare file id.
    send(&mut c, "00 A4 04 0C 0D E828BD080F8025000001FF0010");
    assert_eq!(send(&mut c, "00 A4 02 0C 02 7003"), "9000");
    let cdf = hex::encode_upper(read_current(&mut c));
    assert!(cdf.contains("30040402C002") && cdf.contains("30040402C001"), "{cdf}");
    // Resolving: from the application DF, by file id or 3FFF + file id; 3F00 + file id is not a file.
    send(&mut c, "00 A4 04 0C 0D E828BD080F8025000001FF0010");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3FFF C002"), "9000", "3FFF = the current DF");
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 C002"), "6A82", "prefixing 3F00 to a file id finds nothing");
    assert_eq!(send(&mut c, "00 A4 09 0C 06 3F00 0001 C002"), "9000", "the full path still works");
}

#[test]
fn absolute_layout_is_kept_as_a_persona_and_an_option() {
    for c in [
        &mut card("cps3-abs"),
        &mut find("cps3")
            .unwrap()
            .card(&Options { layout: Some(cpx_sim::Layout::Absolute), ..Options::default() }),
    ] {
        let dir = hex::encode_upper(read_by_sfi(c, 0x1E));
        assert!(dir.find("FF0010").unwrap() < dir.find("FF0020").unwrap(), "contact record first: {dir}");
        assert!(dir.contains("51043F000001"), "records with their path: {dir}");
        assert!(dir.len() < 2 * 101, "no padding: {dir}");
        send(c, "00 A4 09 0C 06 3F00 0001 5031");
        let odf = hex::encode_upper(read_current(c));
        assert!(odf.contains("3F0000017002"), "absolute ODF paths: {odf}");
        send(c, "00 A4 09 0C 06 3F00 0001 7002");
        let prkdf = hex::encode_upper(read_current(c));
        assert!(prkdf.contains("300604043F000001") && !prkdf.contains("4F0DE828"), "{prkdf}");
    }
}

#[test]
fn chosen_serial_and_holder() {
    let options = Options {
        serial: Some("991234567".into()),
        holder: Some(cpx_sim::pki::DUPONT_RENEWED),
        ..Options::default()
    };
    let mut c = find("cps3").unwrap().card(&options);
    assert_eq!(hex::encode_upper(read_by_sfi(&mut c, 0x1C)), "5A0A8025000001991234567F");
    assert_eq!(send(&mut c, "00 A4 09 0C 06 3F00 0001 C002"), "9000");
    assert_eq!(read_current(&mut c), cpx_sim::pki::DUPONT_RENEWED.auth.cert_der(), "the renewed certificate");
    // Same serial, new certificate: only the holder changes.
    let mut renewed = find("cps3")
        .unwrap()
        .card(&Options { holder: Some(cpx_sim::pki::DUPONT_RENEWED), ..Options::default() });
    let mut old = card("cps3");
    assert_eq!(read_by_sfi(&mut renewed, 0x1C), read_by_sfi(&mut old, 0x1C));
    for c in [&mut renewed, &mut old] {
        send(c, "00 A4 09 0C 06 3F00 0001 C002");
    }
    assert_ne!(read_current(&mut renewed), read_current(&mut old));
    assert!(Options { serial: Some("12345".into()), ..Options::default() }.check().is_err());
    assert!(Options { pin: "12a4".into(), ..Options::default() }.check().is_err());
}

#[test]
fn cps4_t0_chains_its_answers_through_get_response() {
    let mut c = card("cps4-t0");
    assert_eq!(
        c.spec.atr,
        hex::decode("3B9B188001001225006480040100009044").unwrap(),
        "the real CPS4 ATR (T=0 and T=1)"
    );
    assert_eq!(send(&mut c, "00 70 00 00 01"), "019000");
    assert_eq!(send(&mut c, "01 A4 04 0C 08 8025000001FF0100"), "9000");
    assert_eq!(send(&mut c, "01 20 00 81 08 31323334FFFFFFFF"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "9000");
    assert_eq!(
        send(&mut c, &format!("012A9E9A20{}00", "11".repeat(32))),
        "6100",
        "T=0: the signature waits for GET RESPONSE"
    );
    let sig = send(&mut c, "01 C0 00 00 00");
    assert_eq!((sig.len(), sw(&sig)), (2 * 256 + 4, "9000"));
    assert_eq!(send(&mut c, "01 C0 00 00 00"), "6985", "nothing more pending");
}

#[test]
fn cps4_6985_until_the_chipdoc_recovery_sequence() {
    let mut c = card("cps4-6985");
    assert_eq!(send(&mut c, "00 70 00 00 01"), "019000");
    assert_eq!(send(&mut c, "01 A4 04 0C 08 8025000001FF0100"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "9000", "before VERIFY the card is fine");
    assert_eq!(send(&mut c, "01 20 00 81 08 31323334FFFFFFFF"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "6985", "the first MSE after VERIFY");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "6985", "stuck");
    assert_eq!(send(&mut c, &format!("012A9E9A20{}00", "11".repeat(32))), "6985");
    assert_eq!(
        send(&mut c, "01 A4 04 0C 08 8025000001FF0100"),
        "6985",
        "reselecting ChipDoc alone does not help"
    );
    assert_eq!(send(&mut c, "00 A4 09 0C 04 3F00 D003"), "9000", "the basic channel still answers");
    // The recovery sequence: IDS on channel 1, CPS2ter with CLA 00, ChipDoc with CLA 01.
    assert_eq!(send(&mut c, "01 A4 04 0C 07 A0000001510000"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "6985", "not yet");
    assert_eq!(send(&mut c, "00 A4 04 0C 08 8025000001FF0002"), "9000");
    assert_eq!(send(&mut c, "01 A4 04 0C 08 8025000001FF0100"), "9000");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "9000", "recovered");
    let sig = send(&mut c, &format!("012A9E9A20{}00", "11".repeat(32)));
    assert_eq!((sig.len(), sw(&sig)), (2 * 256 + 4, "9000"), "the code porteur stayed verified");
    assert_eq!(send(&mut c, "01 22 81 B6 04 91022CA0"), "9000", "once only");
}

/// Plays vpcd: accepts the card's connection and exchanges one APDU, returning the answer and how long
/// it took.
fn exchange(latency: cpx_sim::Latency, apdus: &[&str]) -> Vec<(String, std::time::Duration)> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let card = find("cps3").unwrap().card(&Options { latency, ..Options::default() });
    let _inserted =
        cpx_sim::insert(card, "127.0.0.1", port, std::time::Duration::from_secs(5), None).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    apdus
        .iter()
        .map(|apdu| {
            let bytes = hex::decode(apdu.replace(' ', "")).unwrap();
            let t = std::time::Instant::now();
            s.write_all(&[&(bytes.len() as u16).to_be_bytes()[..], &bytes].concat()).unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut answer).unwrap();
            (hex::encode_upper(answer), t.elapsed())
        })
        .collect()
}

#[test]
fn latency_model_delays_each_answer_by_apdu_bytes_and_rsa() {
    use std::time::Duration;
    let digest_info = "3031300D060960864801650304020105000420".to_owned() + &"AB".repeat(32);
    let model: cpx_sim::Latency = "apdu=30,baud=9600,rsa=200".parse().unwrap();
    let apdus = [
        "00 A4 00 0C 02 3F00",
        "00 20 00 01 08 31323334FFFFFFFF",
        "00 22 41 A4 06 800102 840182",
        &format!("0088000033{digest_info}00"),
    ];
    let got = exchange(model, &apdus);
    assert_eq!(got[0].0, "9000");
    assert_eq!(got[3].0, "6100", "INTERNAL AUTHENTICATE done");
    // 7 + 2 bytes at 9600 bit/s (12 etu each) = 11.25 ms, plus 30 ms: never less.
    assert!(got[0].1 >= Duration::from_micros(41_250), "{:?}", got[0].1);
    // The signature is charged the RSA time on top.
    assert!(got[3].1 >= Duration::from_millis(230), "{:?}", got[3].1);
    // Off unless asked for.
    assert!(Options::default().latency.is_off());
    assert_eq!(exchange(cpx_sim::Latency::OFF, &apdus)[3].0, "6100");
}
