//! The code porteur typed on a PIN-pad reader's keypad: the reader's verify command ([`PinPad`]), the
//! `PIN_VERIFY_STRUCTURE` built for the card's VERIFY format (the encoding [`crate::Pin::encode`] uses
//! for a code typed on screen: ASCII or BCD, padded as the AODF says), and the reader's answers as
//! [`PinPadError`]. The code porteur never crosses the computer: the reader writes it into the VERIFY.
//! Changing it on the keypad: the reader's modify command ([`PinPadModify`]), the `PIN_MODIFY_STRUCTURE`
//! for the card's CHANGE REFERENCE DATA ([`modify_structure`]), its failures as [`PinPadChangeError`].

use cpx_pcsc::pinpad::{self, ModifyStructure, PinFormat, ReaderAnswer, VerifyStructure};
use cpx_pcsc::{PcscError, Transport};

use crate::card::verify_outcome;
use crate::error::CardError;
use crate::pin_change::{new_code_outcome, PinChangeError};
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

/// How the code porteur the AODF describes is written into a command: its digits' format, the size of
/// its block and the padding byte.
fn code_block(info: &PinInfo) -> Result<(PinFormat, usize, u8), CardError> {
    let (format, digits_bytes) = match info.pin_type {
        0 => (PinFormat::Bcd, DIGITS.div_ceil(2)),
        _ => (PinFormat::Ascii, DIGITS),
    };
    let block = if info.needs_padding { info.stored_length } else { digits_bytes as usize };
    if info.min_length > DIGITS as usize || block < digits_bytes as usize || block > 15 {
        return Err(CardError::PinFormat);
    }
    let pad = if info.needs_padding { info.pad_char.unwrap_or(0xFF) } else { 0xFF };
    Ok((format, block, pad))
}

/// The `PIN_VERIFY_STRUCTURE` for a VERIFY `cla 20 00 ref` of the code porteur the AODF describes.
pub fn verify_structure(info: &PinInfo, cla: u8, timeout_secs: u8) -> Result<VerifyStructure, CardError> {
    let (format, block, pad) = code_block(info)?;
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

/// A reader able to set a new code porteur typed on its keypad (`FEATURE_MODIFY_PIN_DIRECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPadModify {
    /// The reader's `FEATURE_MODIFY_PIN_DIRECT` control code.
    pub modify: u32,
    /// Seconds the reader waits for each code (`bTimerOut`).
    pub timeout_secs: u8,
}

impl PinPadModify {
    /// Asks the reader whether it changes a code typed on its keypad; `None` when it does not.
    pub fn detect(transport: &mut dyn Transport, timeout_secs: u8) -> Result<Option<Self>, PcscError> {
        let features = pinpad::features(transport)?;
        Ok(features.modify_direct.map(|modify| Self { modify, timeout_secs }))
    }
}

/// The `PIN_MODIFY_STRUCTURE` for the command `header` (`cla ins p1 p2`) setting the code porteur the
/// AODF describes: with `with_current`, the current code's block first, then the new code's (CHANGE
/// REFERENCE DATA P1 `00`); otherwise the new code's block alone (P1 `01`, after a VERIFY). The new code
/// is typed twice on the keypad.
pub fn modify_structure(
    info: &PinInfo,
    header: [u8; 4],
    with_current: bool,
    timeout_secs: u8,
) -> Result<ModifyStructure, CardError> {
    let (format, block, pad) = code_block(info)?;
    let data = if with_current { 2 * block } else { block };
    let mut apdu = header.to_vec();
    apdu.push(data as u8);
    apdu.resize(5 + data, pad);
    Ok(ModifyStructure {
        timeout_secs,
        format,
        block: block as u8,
        digits: (DIGITS, DIGITS),
        current_at: with_current.then_some(0),
        new_at: if with_current { block as u8 } else { 0 },
        confirm: true,
        apdu,
    })
}

/// A change of the code porteur on the reader's keypad that failed: the reader's own answer (cancel,
/// timeout, the new code and its confirmation differ…), or the card's refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinPadChangeError {
    /// The reader answered; the card got no command from this entry.
    #[error(transparent)]
    Reader(ReaderAnswer),
    /// The card refused (a wrong current code with its tries left, blocked…), or PC/SC failed.
    #[error(transparent)]
    Refused(#[from] PinChangeError),
}

impl PinPadChangeError {
    /// A code the card refused: nothing verified is left on the card (see [`crate::pin_change`]).
    pub(crate) fn code_refused(&self) -> bool {
        matches!(self, Self::Refused(e) if e.code_refused())
    }
}

impl From<CardError> for PinPadChangeError {
    fn from(e: CardError) -> Self {
        Self::Refused(e.into())
    }
}

impl From<PcscError> for PinPadChangeError {
    fn from(e: PcscError) -> Self {
        Self::Refused(e.into())
    }
}

impl From<PinPadError> for PinPadChangeError {
    fn from(e: PinPadError) -> Self {
        match e {
            PinPadError::Reader(answer) => Self::Reader(answer),
            PinPadError::Card(e) => e.into(),
        }
    }
}

/// Sends the modify structure to the reader and reads its answer: the reader's own, then the card's to
/// `command`.
pub(crate) fn modify_on_reader(
    transport: &mut dyn Transport,
    pad: &PinPadModify,
    structure: &ModifyStructure,
    command: &'static str,
) -> Result<(), PinPadChangeError> {
    let r = pinpad::modify_on_keypad(transport, pad.modify, structure)?;
    if let Some(answer) = ReaderAnswer::from_sw(r.sw.0) {
        return Err(PinPadChangeError::Reader(answer));
    }
    Ok(new_code_outcome(command, r.sw)?)
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

    #[test]
    fn the_modify_template_has_room_for_the_current_and_the_new_code() {
        let both = modify_structure(&info(), [0x00, 0x24, 0x00, 0x01], true, 30).unwrap();
        assert_eq!(&both.apdu[..5], &[0x00, 0x24, 0x00, 0x01, 0x10]);
        assert_eq!(both.apdu[5..], [0xFF; 16]);
        assert_eq!((both.current_at, both.new_at, both.block, both.confirm), (Some(0), 8, 8, true));
        let new_only = modify_structure(&info(), [0x01, 0x24, 0x01, 0x81], false, 30).unwrap();
        assert_eq!(
            new_only.apdu,
            [0x01, 0x24, 0x01, 0x81, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!((new_only.current_at, new_only.new_at), (None, 0));
    }
}
