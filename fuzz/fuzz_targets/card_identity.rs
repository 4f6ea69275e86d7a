//! The holder's identity read from a card certificate (`identity::from_certificate`: X.509 DER, subject
//! attributes, key usage, RSA key size), and the dates shown from it (`identity::date`).
#![no_main]

use cpx_card::identity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = identity::from_certificate(data) {
        let _ = id.display_name();
        let _ = id.validity_at(id.not_before);
        let _ = identity::date(id.not_before);
        let _ = identity::date(id.not_after);
        assert!(id.national_id.ends_with(&id.id_number));
    }
    // Any instant, as a certificate field could give it.
    if let Some(bytes) = data.get(..8) {
        let _ = identity::date(i64::from_be_bytes(bytes.try_into().unwrap_or_default()));
    }
});
