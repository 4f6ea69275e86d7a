//! The code porteur typed on a PIN-pad reader's keypad: the reader's verify command ([`PinPad`]), the
//! `PIN_VERIFY_STRUCTURE` built for the card's VERIFY format (the encoding [`crate::Pin::encode`] uses
//! for a code typed on screen: ASCII or BCD, padded as the AODF says), and the reader's answers as
//! [`PinPadError`]. The code porteur never crosses the computer: the reader writes it into the VERIFY.

use cpx_pcsc::pinpad::{self, PinFormat, ReaderAnswer, VerifyStructure};
use cpx_pcsc::{PcscError, Transport};

use crate::card::verify_outcome;
use crate::error::CardError;
use crate::pkcs15::PinInfo;

/// Digits of a CPx code porteur.
const DIGITS: u8 = 4;

/// A reader able to verify the code porteur on its keypad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPad {
    /// The reader's `FEATURE_VERIFY_PIN_DIRECT` control code.
    pub verify: u32,
    /// Seconds the reader waits for the code (`bTimerOut`).
    pub timeout_secs: u8,
}

impl PinPad {
    /// Asks the reader whether it verifies a code typed on its keypad; `None` when it does not
    /// (`FEATURE_VERIFY_PIN_START`/`_FINISH` alone are not used).
    pub fn detect(transport: &mut dyn Transport, timeout_secs: u8) -> Result<Option<Self>, PcscError> {
        let features = pinpad::features(transport)?;
        Ok(features.verify_direct.map(|verify| Self { verify, timeout_secs }))
    }
}

/// A verification on the reader's keypad that failed: the reader's own answer, or the card's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum PinPadError {
    /// The reader answered (timeout, cancel, a structure it refused…); the card was not asked.
    #[error(transparent)]
    Reader(ReaderAnswer),
    /// The card answered (a wrong code porteur with its tries left, blocked…), or PC/SC failed.
    #[error(transparent)]
    Card(#[from] CardError),
}

impl From<PcscError> for PinPadError {
    fn from(e: PcscError) -> Self {
        Self::Card(e.into())
    }
}

/// The `PIN_VERIFY_STRUCTURE` for a VERIFY `cla 20 00 ref` of the code porteur the AODF describes.
pub fn verify_structure(info: &PinInfo, cla: u8, timeout_secs: u8) -> Result<VerifyStructure, CardError> {
    let (format, digits_bytes) = match info.pin_type {
        0 => (PinFormat::Bcd, DIGITS.div_ceil(2)),
        _ => (PinFormat::Ascii, DIGITS),
    };
    let block = if info.needs_padding { info.stored_length } else { digits_bytes as usize };
    if info.min_length > DIGITS as usize || block < digits_bytes as usize || block > 15 {
        return Err(CardError::PinFormat);
    }
    let pad = if info.needs_padding { info.pad_char.unwrap_or(0xFF) } else { 0xFF };
    let mut apdu = vec![cla, 0x20, 0x00, info.reference, block as u8];
    apdu.resize(5 + block, pad);
    Ok(VerifyStructure {
        timeout_secs,
        format,
        position: 0,
        block: block as u8,
        digits: (DIGITS, DIGITS),
        apdu,
    })
}

/// Sends the structure to the reader and reads its answer: the reader's own, then the card's.
pub(crate) fn verify_on_reader(
    transport: &mut dyn Transport,
    pad: &PinPad,
    structure: &VerifyStructure,
) -> Result<(), PinPadError> {
    let r = pinpad::verify_on_keypad(transport, pad.verify, structure)?;
    if let Some(answer) = ReaderAnswer::from_sw(r.sw.0) {
        return Err(PinPadError::Reader(answer));
    }
    Ok(verify_outcome(r.sw)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::tests::info;

    #[test]
    fn the_template_is_the_verify_the_driver_sends_with_room_for_the_digits() {
        let s = verify_structure(&info(), 0x00, 30).unwrap();
        assert_eq!(s.apdu, [0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!((s.format, s.position, s.block, s.digits), (PinFormat::Ascii, 0, 8, (4, 4)));
        // A CPS4 on its logical channel: the VERIFY carries the channel's class byte.
        let cps4 = verify_structure(&PinInfo { reference: 0x81, ..info() }, 0x01, 30).unwrap();
        assert_eq!(&cps4.apdu[..5], &[0x01, 0x20, 0x00, 0x81, 0x08]);
        let bcd = verify_structure(&PinInfo { pin_type: 0, needs_padding: false, ..info() }, 0, 30).unwrap();
        assert_eq!((bcd.format, bcd.block), (PinFormat::Bcd, 2));
        assert_eq!(bcd.apdu.len(), 5 + 2);
        let too_long = PinInfo { stored_length: 16, ..info() };
        assert_eq!(verify_structure(&too_long, 0, 30), Err(CardError::PinFormat));
    }
}
