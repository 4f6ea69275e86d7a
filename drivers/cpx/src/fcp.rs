//! The FCP template (tag 62) a SELECT returns: file size, type and identifier.

use crate::error::CardError;
use crate::tlv;

/// What a SELECT's FCP says of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fcp {
    /// Size of a transparent EF (tag 80, or 81).
    pub size: Option<usize>,
    /// File identifier (tag 83).
    pub fid: Option<u16>,
    /// DF name (tag 84).
    pub aid: Option<Vec<u8>>,
    /// True for a DF (file descriptor byte 0x38).
    pub is_df: bool,
}

/// Parses an FCP (tag 62) or FCI (tag 6F) template.
pub fn parse(bytes: &[u8]) -> Result<Fcp, CardError> {
    let (top, _) = tlv::parse_one(bytes)?;
    if top.tag != 0x62 && top.tag != 0x6F {
        return Err(CardError::malformed("FCP", format!("tag {:X}", top.tag)));
    }
    let mut fcp = Fcp::default();
    for t in top.children()? {
        match t.tag {
            0x80 | 0x81 if fcp.size.is_none() && !t.value.is_empty() => {
                fcp.size = Some(tlv::unsigned(t.value)? as usize)
            }
            0x82 => fcp.is_df = t.value.first() == Some(&0x38),
            0x83 if t.value.len() == 2 => fcp.fid = Some(u16::from_be_bytes([t.value[0], t.value[1]])),
            0x84 => fcp.aid = Some(t.value.to_vec()),
            _ => {}
        }
    }
    Ok(fcp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ef_atr_fcp() {
        let fcp = parse(&hex::decode("62178002003982010183022F018A01058C077BFFFFFFFFFF00").unwrap()).unwrap();
        assert_eq!((fcp.size, fcp.fid, fcp.is_df), (Some(0x39), Some(0x2F01), false));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse(&bytes);
            let mut fcp = vec![0x62, bytes.len() as u8];
            fcp.extend(&bytes);
            let _ = parse(&fcp);
        }
    }
}
