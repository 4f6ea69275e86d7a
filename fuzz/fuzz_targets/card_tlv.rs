//! BER-TLV as the card sends it (`tlv`: every TLV, nested ones too, integers and bit strings) and the FCP
//! template a SELECT returns (`fcp::parse`).
#![no_main]

use cpx_card::{fcp, tlv};
use libfuzzer_sys::fuzz_target;

/// Walks the TLVs down to `depth` levels, reading every value as the driver may.
fn walk(bytes: &[u8], depth: u8) {
    let Ok(all) = tlv::parse_all(bytes) else { return };
    for t in all {
        assert!(t.value.len() <= bytes.len());
        let _ = tlv::unsigned(t.value);
        if let Ok(bits) = tlv::bit_string(t.value) {
            assert!(bits.iter().all(|b| (*b as usize) < t.value.len().saturating_sub(1) * 8));
        }
        let _ = t.child(0x30);
        if depth > 0 {
            walk(t.value, depth - 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data, 6);
    let _ = tlv::find(data, 0x62);
    if let Ok((one, rest)) = tlv::parse_one(data) {
        assert!(one.value.len() + rest.len() < data.len());
    }
    if let Ok(f) = fcp::parse(data) {
        if let Some(aid) = f.aid {
            assert!(aid.len() < data.len());
        }
    }
});
