//! EF.SN.ICC (3F00/D003): the card number, and the issuer check that tells a CPx card from any other
//! IAS-ECC card (`80 25 00 00 01` is the ANS issuer; docs/card-facts.md#recognition).

use crate::error::CardError;
use crate::tlv;

/// The issuer identifier of the ANS (Agence du Numérique en Santé), which issues every CPx card.
pub const ANS_ISSUER: [u8; 5] = [0x80, 0x25, 0x00, 0x00, 0x01];

/// What EF.SN.ICC says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialNumber {
    /// The issuer identification bytes (the first five of the PAN).
    pub issuer: Vec<u8>,
    /// The card number: the BCD digits after the issuer, without the F padding.
    pub serial: String,
}

impl SerialNumber {
    /// True when the ANS issued the card: a CPx card, whatever its ATR.
    pub fn issued_by_ans(&self) -> bool {
        self.issuer == ANS_ISSUER
    }
}

/// Parses the content of EF.SN.ICC (`5A 0A <issuer 5 bytes> <BCD digits, F-padded>`).
pub fn parse(content: &[u8]) -> Result<SerialNumber, CardError> {
    let bad = |d: &str| CardError::malformed("EF.SN.ICC", d);
    let (pan, _) = tlv::parse_one(content)?;
    if pan.tag != 0x5A {
        return Err(bad("tag 5A expected"));
    }
    if pan.value.len() < 6 {
        return Err(bad("card number too short"));
    }
    let (issuer, rest) = pan.value.split_at(5);
    let mut serial = String::new();
    for nibble in rest.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match nibble {
            0..=9 => serial.push((b'0' + nibble) as char),
            0xF => break,
            _ => return Err(bad("card number is not BCD")),
        }
    }
    if serial.is_empty() {
        return Err(bad("empty card number"));
    }
    Ok(SerialNumber { issuer: issuer.to_vec(), serial })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_example() {
        // docs/card-facts.md#recognition.
        let sn = parse(&hex::decode("5A0A8025000001992138450F").unwrap()).unwrap();
        assert!(sn.issued_by_ans());
        assert_eq!(sn.serial, "992138450");
        let other = parse(&hex::decode("5A0A8033000001992138450F").unwrap()).unwrap();
        assert!(!other.issued_by_ans());
        assert!(parse(&hex::decode("5A02AB").unwrap()).is_err());
        assert!(parse(&hex::decode("4F0A8025000001992138450F").unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = parse(&bytes);
        }
        #[test]
        fn mutated_real_content_never_panics(i in 0usize..12, b in any::<u8>()) {
            let mut c = hex::decode("5A0A8025000001992138450F").unwrap();
            c[i] = b;
            let _ = parse(&c);
        }
    }
}
