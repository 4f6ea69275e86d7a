//! PKCS#15 paths as ISO/IEC 7816-15 writes them, typed: where an object's file is, relative to what.
//!
//! ```text
//! Path ::= SEQUENCE {
//!     efidOrPath OCTET STRING,                 -- 3F00…: from the MF; 3FFF… or a bare file id: from the current DF
//!     index      INTEGER OPTIONAL,             -- with length: only this slice of the file
//!     length     [0] INTEGER OPTIONAL,
//!     aid        [APPLICATION 15] OCTET STRING OPTIONAL }  -- the application the path belongs to
//! ```
//! OpenSC also writes the AID as `[1] { [APPLICATION 15] aid, OCTET STRING path }` (its "pathExtended");
//! both are read. A real CPS3 gives its private keys a path holding only the application's AID (the keys
//! are used by key reference, docs/card-facts.md#pkcs15-paths-isoiec-7816-15), so an empty path is a
//! valid [`ObjectPath::None`], not an error. Every path is resolved against the application DF the
//! driver selected (see `open.rs`): a file id is never prefixed with `3F00`.

use serde::{Deserialize, Serialize};

use crate::error::CardError;
use crate::tlv::{self, Tlv};

/// Longest efidOrPath accepted (8 file ids, as OpenSC's `SC_MAX_PATH_SIZE` of 16 bytes).
pub const MAX_PATH_BYTES: usize = 16;
/// Longest AID (ISO/IEC 7816-4: 5 to 16 bytes).
pub const MAX_AID_BYTES: usize = 16;
/// Largest index or length of a slice: READ BINARY offsets are 15 bits.
pub const MAX_OFFSET: u32 = 0x7FFF;

const MF: u16 = 0x3F00;
const CURRENT_DF: u16 = 0x3FFF;

/// Where the file is, as the efidOrPath says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectPath {
    /// No file: the path is empty (or holds only an AID). Valid for objects used by reference (keys).
    None,
    /// From the MF: the file ids after `3F00` (empty for the MF itself).
    Absolute(Vec<u16>),
    /// From the current DF, which for PKCS#15 objects is the application DF: a bare file id, or the file
    /// ids after `3FFF` (empty for the DF itself).
    Relative(Vec<u16>),
}

/// A slice of a file: `length` bytes from `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slice {
    /// Offset of the first byte.
    pub index: u32,
    /// Number of bytes.
    pub length: u32,
}

/// A PKCS#15 Path, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pkcs15Path {
    /// The application the path belongs to, when it names one; otherwise the application being read.
    pub aid: Option<Vec<u8>>,
    /// The file, from the MF or relative to the application.
    pub file: ObjectPath,
    /// Only part of the file holds the object.
    pub slice: Option<Slice>,
}

fn bad(detail: impl Into<String>) -> CardError {
    CardError::malformed("PKCS#15 path", detail)
}

impl ObjectPath {
    /// Decodes an efidOrPath: even length, at most [`MAX_PATH_BYTES`], `3F00`/`3FFF` only in first place.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CardError> {
        if bytes.is_empty() {
            return Ok(Self::None);
        }
        if !bytes.len().is_multiple_of(2) {
            return Err(bad(format!("odd length ({} bytes)", bytes.len())));
        }
        if bytes.len() > MAX_PATH_BYTES {
            return Err(bad(format!("{} bytes, more than {MAX_PATH_BYTES}", bytes.len())));
        }
        let fids: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        let (first, rest) = match fids.split_first() {
            Some(split) => split,
            None => return Ok(Self::None),
        };
        if rest.iter().any(|f| *f == MF || *f == CURRENT_DF) {
            return Err(bad("3F00 or 3FFF after the first file id"));
        }
        Ok(match *first {
            MF => Self::Absolute(rest.to_vec()),
            CURRENT_DF => Self::Relative(rest.to_vec()),
            _ => Self::Relative(fids),
        })
    }

    /// The file ids as SELECT data (`Absolute` without its `3F00`).
    pub fn fid_bytes(fids: &[u16]) -> Vec<u8> {
        fids.iter().flat_map(|f| f.to_be_bytes()).collect()
    }
}

impl Pkcs15Path {
    /// A path with no file and no AID.
    pub fn none() -> Self {
        Self { aid: None, file: ObjectPath::None, slice: None }
    }

    /// True when the path names no file (keys used by reference).
    pub fn is_none(&self) -> bool {
        self.file == ObjectPath::None
    }

    /// Decodes a Path SEQUENCE (`t` is the `30` TLV).
    pub fn parse(t: &Tlv) -> Result<Self, CardError> {
        if t.tag != 0x30 {
            return Err(bad(format!("tag {:X} where a Path SEQUENCE was expected", t.tag)));
        }
        let mut file = None;
        let mut aid = None;
        let mut index = None;
        let mut length = None;
        for field in t.children()? {
            match field.tag {
                0x04 => file = Some(ObjectPath::from_bytes(field.value)?),
                0x02 => index = Some(offset(field.value, "index")?),
                0x80 => length = Some(offset(field.value, "length")?),
                0x4F => aid = Some(aid_of(field.value)?),
                // OpenSC's pathExtended: [1] { [APPLICATION 15] aid, OCTET STRING path }.
                0xA1 => {
                    for inner in field.children()? {
                        match inner.tag {
                            0x4F => aid = Some(aid_of(inner.value)?),
                            0x04 => file = Some(ObjectPath::from_bytes(inner.value)?),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        let slice = match (index, length) {
            (Some(index), Some(length)) => {
                if index.checked_add(length).is_none_or(|end| end > MAX_OFFSET + 1) {
                    return Err(bad("slice beyond the largest file offset"));
                }
                Some(Slice { index, length })
            }
            (None, None) => None,
            _ => return Err(bad("index without length, or length without index")),
        };
        Ok(Self { aid, file: file.unwrap_or(ObjectPath::None), slice })
    }

    /// The Path inside `t`: `t` itself when it is one, or nested in it (ODF entries, the indirect
    /// ObjectValue of a CDF entry, a key's attributes), at most three levels down.
    pub fn find_in(t: &Tlv) -> Result<Self, CardError> {
        let mut at = *t;
        for _ in 0..4 {
            if at.tag == 0x30 && looks_like_path(&at)? {
                return Self::parse(&at);
            }
            at = at.child(0x30)?.ok_or_else(|| bad("no Path"))?;
        }
        Err(bad("nested too deep"))
    }
}

/// A SEQUENCE is a Path when it is empty or holds only Path fields.
fn looks_like_path(t: &Tlv) -> Result<bool, CardError> {
    let children = t.children()?;
    Ok(children.is_empty() || children.iter().all(|c| matches!(c.tag, 0x04 | 0x02 | 0x80 | 0x4F | 0xA1)))
}

fn offset(value: &[u8], what: &str) -> Result<u32, CardError> {
    let n = tlv::unsigned(value)?;
    u32::try_from(n).ok().filter(|n| *n <= MAX_OFFSET).ok_or_else(|| bad(format!("{what} out of range")))
}

fn aid_of(value: &[u8]) -> Result<Vec<u8>, CardError> {
    if value.is_empty() || value.len() > MAX_AID_BYTES {
        return Err(bad(format!("AID of {} bytes", value.len())));
    }
    Ok(value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_hex(h: &str) -> Result<Pkcs15Path, CardError> {
        let bytes = hex::decode(h).unwrap();
        let (t, _) = tlv::parse_one(&bytes)?;
        Pkcs15Path::parse(&t)
    }

    const AID: &str = "E828BD080F8025000001FF0010";

    #[test]
    fn absolute_from_the_mf() {
        let p = parse_hex("300604043F000001").unwrap();
        assert_eq!(p.file, ObjectPath::Absolute(vec![0x0001]));
        let p = parse_hex("300804063F000001C002").unwrap();
        assert_eq!(p.file, ObjectPath::Absolute(vec![0x0001, 0xC002]));
        assert_eq!((p.aid, p.slice), (None, None));
        assert_eq!(parse_hex("300404023F00").unwrap().file, ObjectPath::Absolute(vec![]));
    }

    #[test]
    fn relative_as_a_bare_file_id_or_from_3fff() {
        assert_eq!(parse_hex("30040402A001").unwrap().file, ObjectPath::Relative(vec![0xA001]));
        assert_eq!(parse_hex("300604043FFFA001").unwrap().file, ObjectPath::Relative(vec![0xA001]));
        assert_eq!(parse_hex("300604045000A001").unwrap().file, ObjectPath::Relative(vec![0x5000, 0xA001]));
    }

    #[test]
    fn qualified_by_an_aid_directly_or_as_openscs_path_extended() {
        let direct = parse_hex(&format!("30134F0D{AID}0402A001")).unwrap();
        assert_eq!(direct.aid.as_deref(), Some(&hex::decode(AID).unwrap()[..]));
        assert_eq!(direct.file, ObjectPath::Relative(vec![0xA001]));
        let extended = parse_hex(&format!("3015A1134F0D{AID}0402A001")).unwrap();
        assert_eq!(extended, direct);
    }

    #[test]
    fn index_and_length_give_a_slice() {
        let p = parse_hex("300C0402C00202020100800201F4").unwrap();
        assert_eq!(p.slice, Some(Slice { index: 0x100, length: 0x1F4 }));
        assert!(parse_hex("30070402C002020100").is_err(), "index without length");
        assert!(parse_hex("30070402C002800100").is_err(), "length without index");
        assert!(parse_hex("300E0402C00202030070008003002000").is_err(), "slice past the largest offset");
    }

    #[test]
    fn private_key_paths_may_be_empty_or_hold_only_the_aid() {
        assert!(parse_hex("3000").unwrap().is_none());
        assert!(parse_hex("30020400").unwrap().is_none());
        let aid_only = parse_hex(&format!("3011A10F4F0D{AID}")).unwrap();
        assert!(aid_only.is_none());
        assert!(aid_only.aid.is_some());
        let aid_and_empty = parse_hex(&format!("30114F0D{AID}0400")).unwrap();
        assert!(aid_and_empty.is_none());
    }

    #[test]
    fn odd_oversized_or_misplaced_paths_are_typed_errors() {
        let odd = parse_hex("30050403A00102").unwrap_err();
        assert!(matches!(&odd, CardError::Malformed { detail, .. } if detail.contains("odd")), "{odd}");
        let long = format!("3014 0412 {}", "A001".repeat(9)).replace(' ', "");
        assert!(matches!(parse_hex(&long), Err(CardError::Malformed { .. })));
        assert!(parse_hex("30060404A0013F00").is_err(), "3F00 in the middle");
        assert!(parse_hex("3002 4F00".replace(' ', "").as_str()).is_err(), "empty AID");
    }

    #[test]
    fn finds_the_path_nested_in_odf_and_cdf_entries() {
        let odf_entry = hex::decode("A00A300804063F0000027002").unwrap();
        let (t, _) = tlv::parse_one(&odf_entry).unwrap();
        assert_eq!(Pkcs15Path::find_in(&t).unwrap().file, ObjectPath::Absolute(vec![0x0002, 0x7002]));
        let cdf_value = hex::decode("A1083006300404024331").unwrap();
        let (t, _) = tlv::parse_one(&cdf_value).unwrap();
        assert_eq!(Pkcs15Path::find_in(&t).unwrap().file, ObjectPath::Relative(vec![0x4331]));
    }

    /// Encodes a path the way a card may: one of the ISO 7816-15 forms.
    fn encode(
        prefix: Option<u16>,
        fids: &[u16],
        aid: Option<&[u8]>,
        extended: bool,
        slice: Option<(u16, u16)>,
    ) -> Vec<u8> {
        let tlv = |tag: u8, v: &[u8]| [&[tag, v.len() as u8][..], v].concat();
        let mut efid: Vec<u8> = prefix.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default();
        efid.extend(fids.iter().flat_map(|f| f.to_be_bytes()));
        let mut body = Vec::new();
        match (aid, extended) {
            (Some(a), true) => body.extend(tlv(0xA1, &[tlv(0x4F, a), tlv(0x04, &efid)].concat())),
            (Some(a), false) => {
                body.extend(tlv(0x4F, a));
                body.extend(tlv(0x04, &efid));
            }
            (None, _) => body.extend(tlv(0x04, &efid)),
        }
        if let Some((i, l)) = slice {
            body.extend(tlv(0x02, &[0, (i >> 8) as u8, i as u8]));
            body.extend(tlv(0x80, &[0, (l >> 8) as u8, l as u8]));
        }
        tlv(0x30, &body)
    }

    fn fid() -> impl Strategy<Value = u16> {
        any::<u16>().prop_filter("not a reserved id", |f| *f != MF && *f != CURRENT_DF)
    }

    proptest! {
        #[test]
        fn every_form_decodes_to_what_was_encoded(
            prefix in prop_oneof![Just(None), Just(Some(MF)), Just(Some(CURRENT_DF))],
            fids in proptest::collection::vec(fid(), 0..7),
            aid in proptest::option::of(proptest::collection::vec(any::<u8>(), 5..=16)),
            extended in any::<bool>(),
            slice in proptest::option::of((0u16..0x4000, 0u16..0x3FFF)),
        ) {
            let bytes = encode(prefix, &fids, aid.as_deref(), extended, slice);
            let (t, _) = tlv::parse_one(&bytes).unwrap();
            let p = Pkcs15Path::parse(&t).unwrap();
            let expected = match prefix {
                Some(MF) => ObjectPath::Absolute(fids.clone()),
                Some(_) => ObjectPath::Relative(fids.clone()),
                None if fids.is_empty() => ObjectPath::None,
                None => ObjectPath::Relative(fids.clone()),
            };
            prop_assert_eq!(p.file, expected);
            prop_assert_eq!(p.aid, aid);
            prop_assert_eq!(p.slice, slice.map(|(i, l)| Slice { index: i as u32, length: l as u32 }));
        }

        #[test]
        fn never_panics_and_odd_lengths_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let r = ObjectPath::from_bytes(&bytes);
            if bytes.len() % 2 == 1 || bytes.len() > MAX_PATH_BYTES {
                prop_assert!(r.is_err());
            }
            let mut seq = vec![0x30, bytes.len() as u8];
            seq.extend(&bytes);
            if let Ok((t, _)) = tlv::parse_one(&seq) {
                let _ = Pkcs15Path::parse(&t);
                let _ = Pkcs15Path::find_in(&t);
            }
        }
    }
}
