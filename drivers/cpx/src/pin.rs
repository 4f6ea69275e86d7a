//! The code porteur: a 4-digit secret that lives in zeroized memory, is encoded for VERIFY the way the
//! card's AODF says, and is never logged (it has no Debug output of its content).

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::CardError;
use crate::pkcs15::PinInfo;

/// A code porteur typed by the user.
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// Accepts exactly 4 ASCII digits (CPx cards); anything else is refused before reaching the card.
    pub fn new(digits: &str) -> Result<Self, CardError> {
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::PinFormat);
        }
        Ok(Self(Zeroizing::new(digits.as_bytes().to_vec())))
    }

    /// The VERIFY data: ASCII digits (or BCD), padded to the stored length when the AODF asks for it.
    pub fn encode(&self, info: &PinInfo) -> Result<Zeroizing<Vec<u8>>, CardError> {
        if self.0.len() < info.min_length || self.0.len() > info.stored_length {
            return Err(CardError::PinFormat);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(info.stored_length));
        match info.pin_type {
            0 => out
                .extend(self.0.chunks(2).map(|c| ((c[0] - b'0') << 4) | c.get(1).map_or(0x0F, |d| d - b'0'))),
            _ => out.extend_from_slice(&self.0),
        }
        if info.needs_padding {
            out.resize(info.stored_length, info.pad_char.unwrap_or(0xFF));
        }
        Ok(out)
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// Tries left on the code porteur, read without spending one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PinStatus {
    /// Tries left before the code porteur is blocked.
    pub tries_left: u8,
    /// Tries a new counter has.
    pub max_tries: u8,
}

impl PinStatus {
    /// True when no try is left.
    pub fn blocked(&self) -> bool {
        self.tries_left == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The code porteur's AODF entry of a CPS3 (4 digits in 8 bytes padded with `FF`).
    pub(crate) fn info() -> PinInfo {
        PinInfo {
            label: "Code porteur".into(),
            auth_id: vec![1],
            pin_type: 1,
            min_length: 4,
            stored_length: 8,
            reference: 1,
            pad_char: Some(0xFF),
            needs_padding: true,
            local: false,
            path: None,
        }
    }

    #[test]
    fn encodes_as_the_aodf_says_and_hides_itself() {
        let pin = Pin::new("1234").unwrap();
        assert_eq!(pin.encode(&info()).unwrap().as_slice(), b"1234\xFF\xFF\xFF\xFF");
        assert_eq!(format!("{pin:?}"), "Pin(****)");
        for bad in ["123", "12345", "12a4", "", "١٢٣٤"] {
            assert!(matches!(Pin::new(bad), Err(CardError::PinFormat)), "{bad}");
        }
        let bcd = PinInfo { pin_type: 0, needs_padding: false, ..info() };
        assert_eq!(pin.encode(&bcd).unwrap().as_slice(), [0x12, 0x34]);
    }
}
