//! BER-TLV as IAS-ECC and PKCS#15 use it (tags of up to 4 bytes, definite lengths of up to 3 bytes).
//! Every function takes bytes from the card and never panics on them.

use crate::error::CardError;

/// One TLV: its tag (all tag bytes, big-endian in a u32) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// All tag bytes, big-endian.
    pub tag: u32,
    /// The value bytes.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The TLVs inside a constructed value.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, CardError> {
        parse_all(self.value)
    }
    /// The first child with `tag`.
    pub fn child(&self, tag: u32) -> Result<Option<Tlv<'a>>, CardError> {
        Ok(self.children()?.into_iter().find(|t| t.tag == tag))
    }
}

fn malformed(detail: &str) -> CardError {
    CardError::Malformed { what: "TLV", detail: detail.to_owned() }
}

/// Parses one TLV at the start of `input`; returns it and what follows.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), CardError> {
    let first = *input.first().ok_or_else(|| malformed("empty"))?;
    let mut tag = first as u32;
    let mut i = 1;
    if first & 0x1F == 0x1F {
        loop {
            let b = *input.get(i).ok_or_else(|| malformed("tag cut short"))?;
            tag = (tag << 8) | b as u32;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            if i >= 4 {
                return Err(malformed("tag longer than 4 bytes"));
            }
        }
    }
    let l0 = *input.get(i).ok_or_else(|| malformed("length missing"))?;
    i += 1;
    let len = match l0 {
        0..=0x7F => l0 as usize,
        0x81..=0x83 => {
            let n = (l0 & 0x7F) as usize;
            let bytes = input.get(i..i + n).ok_or_else(|| malformed("length cut short"))?;
            i += n;
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize)
        }
        _ => return Err(malformed("unsupported length form")),
    };
    let end = i.checked_add(len).ok_or_else(|| malformed("length overflow"))?;
    let value = input.get(i..end).ok_or_else(|| malformed("value shorter than its length"))?;
    Ok((Tlv { tag, value }, &input[end..]))
}

/// Parses consecutive TLVs; trailing `00` or `FF` padding (unused file space) ends the list.
pub fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, CardError> {
    let mut out = Vec::new();
    while let Some(&b) = input.first() {
        if b == 0x00 || b == 0xFF {
            break;
        }
        let (tlv, rest) = parse_one(input)?;
        out.push(tlv);
        input = rest;
    }
    Ok(out)
}

/// The first TLV with `tag` among consecutive TLVs.
pub fn find(input: &[u8], tag: u32) -> Result<Option<Tlv<'_>>, CardError> {
    Ok(parse_all(input)?.into_iter().find(|t| t.tag == tag))
}

/// An unsigned big-endian number of at most 8 bytes (DER INTEGER content; a leading 00 is allowed, and so
/// is the "negative" one-byte encoding real CPx PrKDFs use for key references such as 0x82).
pub fn unsigned(value: &[u8]) -> Result<u64, CardError> {
    if value.is_empty() || value.len() > 9 || (value.len() == 9 && value[0] != 0) {
        return Err(malformed("integer size"));
    }
    Ok(value.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
}

/// The bit numbers set in a DER BIT STRING (bit 0 = most significant bit of the first content byte).
pub fn bit_string(value: &[u8]) -> Result<Vec<u32>, CardError> {
    let (&unused, bytes) = value.split_first().ok_or_else(|| malformed("empty bit string"))?;
    if unused > 7 {
        return Err(malformed("bit string unused bits"));
    }
    let total = (bytes.len() * 8).saturating_sub(unused as usize);
    Ok((0..total).filter(|&i| bytes[i / 8] & (0x80 >> (i % 8)) != 0).map(|i| i as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_chv_sdo_answer_of_a_real_cps3() {
        // docs/card-facts.md#code-porteur-and-signatures, OSC#2275 trace.
        let raw = hex::decode("7016BF810112A0109A01039B0103A1088C06F3000013FF00").unwrap();
        let (top, rest) = parse_one(&raw).unwrap();
        assert!(rest.is_empty());
        assert_eq!(top.tag, 0x70);
        let sdo = top.child(0xBF8101).unwrap().unwrap();
        let docp = sdo.child(0xA0).unwrap().unwrap();
        assert_eq!(docp.child(0x9A).unwrap().unwrap().value, [3]);
        assert_eq!(docp.child(0x9B).unwrap().unwrap().value, [3]);
    }

    #[test]
    fn long_lengths_and_padding() {
        let mut raw = vec![0x04, 0x82, 0x01, 0x00];
        raw.extend([7u8; 256]);
        raw.extend([0xFF, 0xFF]);
        let all = parse_all(&raw).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].value.len(), 256);
        assert!(parse_one(&[0x04, 0x05, 1, 2]).is_err());
        assert!(parse_one(&[0x1F]).is_err());
        assert_eq!(bit_string(&[0x06, 0x40]).unwrap(), vec![1]);
        assert_eq!(unsigned(&[0x82]).unwrap(), 0x82);
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&bytes);
            let _ = find(&bytes, 0x61);
            let _ = bit_string(&bytes);
            let _ = unsigned(&bytes);
            if let Ok((t, _)) = parse_one(&bytes) { let _ = t.children(); }
        }
    }
}
