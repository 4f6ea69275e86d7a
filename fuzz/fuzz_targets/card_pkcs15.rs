//! The PKCS#15 files read from the card: EF.DIR, ODF, AODF, PrKDF, CDF, and the Path forms they hold
//! (`path`: efidOrPath, index/length, AID, OpenSC's pathExtended). Every parser gets every input: the
//! corpus mixes the simulator's files of each kind.
#![no_main]

use cpx_card::path::{ObjectPath, Pkcs15Path, MAX_AID_BYTES, MAX_OFFSET, MAX_PATH_BYTES};
use cpx_card::{pkcs15, tlv};
use libfuzzer_sys::fuzz_target;

fn check_path(p: &Pkcs15Path) {
    if let Some(aid) = &p.aid {
        assert!(!aid.is_empty() && aid.len() <= MAX_AID_BYTES);
    }
    if let Some(s) = p.slice {
        assert!(s.index as u64 + s.length as u64 <= MAX_OFFSET as u64 + 1);
    }
    match &p.file {
        ObjectPath::None => {}
        ObjectPath::Absolute(f) | ObjectPath::Relative(f) => {
            assert!(f.len() * 2 <= MAX_PATH_BYTES);
            assert!(!f.iter().any(|x| *x == 0x3F00 || *x == 0x3FFF), "3F00/3FFF only in first place: {p:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(apps) = pkcs15::parse_dir(data) {
        for app in &apps {
            assert!(pkcs15::find_app(&apps, &app.aid).is_some());
            if let Some(p) = &app.path {
                let _ = ObjectPath::from_bytes(p);
            }
        }
    }
    if let Ok(odf) = pkcs15::parse_odf(data) {
        for p in odf.aodf.iter().chain(&odf.prkdf).chain(&odf.cdf) {
            check_path(p);
        }
    }
    if let Ok(pins) = pkcs15::parse_aodf(data) {
        for pin in pins {
            if let Some(p) = &pin.path {
                check_path(p);
            }
        }
    }
    if let Ok(keys) = pkcs15::parse_prkdf(data) {
        for key in keys {
            if let Some(p) = &key.path {
                check_path(p);
            }
            let _ = key.is_authentication();
        }
    }
    if let Ok(certs) = pkcs15::parse_cdf(data) {
        for cert in certs {
            check_path(&cert.path);
        }
    }
    if let Ok(file) = ObjectPath::from_bytes(data) {
        check_path(&Pkcs15Path { aid: None, file, slice: None });
    }
    if let Ok(all) = tlv::parse_all(data) {
        for t in all {
            if let Ok(p) = Pkcs15Path::parse(&t) {
                check_path(&p);
            }
            if let Ok(p) = Pkcs15Path::find_in(&t) {
                check_path(&p);
            }
        }
    }
});
