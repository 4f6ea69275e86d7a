//! EF.SN.ICC (3F00/D003): the card number and the ANS issuer check (`efsn::parse`).
#![no_main]

use cpx_card::efsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sn) = efsn::parse(data) {
        assert_eq!(sn.issuer.len(), 5);
        assert!(!sn.serial.is_empty() && sn.serial.bytes().all(|b| b.is_ascii_digit()));
        let _ = sn.issued_by_ans();
    }
});
