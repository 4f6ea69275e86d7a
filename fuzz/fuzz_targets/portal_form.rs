//! The demo portal's reading of browser input (`cpx_demo_portal::forms`): form bodies, the session
//! cookie, the first-time linking form. The input is split at the first `\n`: the `Cookie` header's
//! value, then the form body.
#![no_main]

use cpx_demo_portal::forms::{field, form, session_cookie, NewAccount};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (cookie, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    if let Ok(cookie) = std::str::from_utf8(cookie) {
        if let Some(s) = session_cookie(cookie) {
            assert!(cookie.contains(s) && !s.contains(';'));
        }
    }
    let f = form(body);
    for name in ["username", "password", "mail", "telephone", "code_postal", "ville"] {
        let v = field(&f, name);
        assert_eq!(v, v.trim());
    }
    if let Ok(new) = NewAccount::from_form(&f) {
        assert!(new.mail.contains('@') && new.code_postal.len() == 5 && !new.ville.is_empty());
    }
});
