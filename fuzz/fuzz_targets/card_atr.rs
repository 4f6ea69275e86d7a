//! The ATR a reader reports: the ISO 7816-3 fields (`atr::parse`), the CPx table (`atr::recognise`) and
//! the protocol chosen from both (`atr::protocol_for`).
#![no_main]

use cpx_card::atr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = atr::parse(data);
    assert!(!parsed.protocols.is_empty(), "T=0 is implied when no protocol is named");
    assert!(parsed.historical.len() / 2 <= data.len());
    if let Some(entry) = atr::recognise(data) {
        assert!(entry.matches(data));
    }
    let _ = atr::protocol_for(data);
});
