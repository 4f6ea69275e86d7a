//! PIN-pad readers (PC/SC part 10): the reader's features (`SCardControl(CM_IOCTL_GET_FEATURE_REQUEST)`,
//! a list of TLVs: tag = feature, value = its control code, 4 bytes big-endian), its PIN properties, and
//! the verification of the code porteur on its keypad (`FEATURE_VERIFY_PIN_DIRECT` with a
//! `PIN_VERIFY_STRUCTURE`: the reader reads the code on its keypad, writes it into the VERIFY it is
//! given, and returns the card's answer, or its own: `64 00` timeout, `64 01` cancelled…), and its
//! change (`FEATURE_MODIFY_PIN_DIRECT` with a `PIN_MODIFY_STRUCTURE`: the current code and the new one
//! twice, typed on the keypad and written into the command by the reader).
//!
//! The structure's layout and the reader's answers are pcsc-lite's `reader.h` and the CCID
//! specification's (`PC_to_RDR_Secure`); docs/card-sessions.md describes the path.

use std::time::Duration;

use crate::connection::Transport;
use crate::error::PcscError;

/// `SCARD_E_UNSUPPORTED_FEATURE`: what a reader with no such command answers.
pub const UNSUPPORTED_FEATURE: u32 = 0x8010_0022;

/// `CM_IOCTL_GET_FEATURE_REQUEST`: `SCARD_CTL_CODE(3400)`, whose value differs between pcsc-lite
/// (`0x42000000 + 3400`) and WinSCard (`0x00313520`).
pub fn feature_request_code() -> u32 {
    pcsc::ctl_code(3400) as u32
}

/// `FEATURE_VERIFY_PIN_START`.
const VERIFY_PIN_START: u8 = 0x01;
/// `FEATURE_VERIFY_PIN_FINISH`.
const VERIFY_PIN_FINISH: u8 = 0x02;
/// `FEATURE_VERIFY_PIN_DIRECT`.
const VERIFY_PIN_DIRECT: u8 = 0x06;
/// `FEATURE_MODIFY_PIN_DIRECT`.
const MODIFY_PIN_DIRECT: u8 = 0x07;
/// `FEATURE_IFD_PIN_PROPERTIES`.
const IFD_PIN_PROPERTIES: u8 = 0x0A;
/// `FEATURE_GET_TLV_PROPERTIES`.
const GET_TLV_PROPERTIES: u8 = 0x12;

/// The PIN features a reader lists, each with its control code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PinPadFeatures {
    /// `FEATURE_VERIFY_PIN_DIRECT`.
    pub verify_direct: Option<u32>,
    /// `FEATURE_VERIFY_PIN_START` (with `_FINISH`).
    pub verify_start: Option<u32>,
    /// `FEATURE_VERIFY_PIN_FINISH`.
    pub verify_finish: Option<u32>,
    /// `FEATURE_MODIFY_PIN_DIRECT`.
    pub modify_direct: Option<u32>,
    /// `FEATURE_IFD_PIN_PROPERTIES`.
    pub pin_properties: Option<u32>,
    /// `FEATURE_GET_TLV_PROPERTIES`.
    pub tlv_properties: Option<u32>,
}

impl PinPadFeatures {
    /// Parses the answer to the feature request; a truncated TLV ends the list (what came before holds).
    pub fn parse(tlvs: &[u8]) -> Self {
        let mut features = Self::default();
        let mut rest = tlvs;
        while let [tag, len, tail @ ..] = rest {
            let len = *len as usize;
            let Some(value) = tail.get(..len) else { break };
            rest = &tail[len..];
            let Ok(code) = <[u8; 4]>::try_from(value).map(u32::from_be_bytes) else { continue };
            let slot = match *tag {
                VERIFY_PIN_START => &mut features.verify_start,
                VERIFY_PIN_FINISH => &mut features.verify_finish,
                VERIFY_PIN_DIRECT => &mut features.verify_direct,
                MODIFY_PIN_DIRECT => &mut features.modify_direct,
                IFD_PIN_PROPERTIES => &mut features.pin_properties,
                GET_TLV_PROPERTIES => &mut features.tlv_properties,
                _ => continue,
            };
            *slot = Some(code);
        }
        features
    }

    /// True when the reader can verify a code porteur typed on its keypad (direct, or start and finish).
    pub fn can_verify(&self) -> bool {
        self.verify_direct.is_some() || (self.verify_start.is_some() && self.verify_finish.is_some())
    }
}

/// `PIN_PROPERTIES_STRUCTURE`: what the reader says of its keypad and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PinProperties {
    /// `wLcdLayout`: `0xXXYY`, XX lines and YY characters per line; 0 for no display.
    pub lcd_layout: u16,
    /// `bEntryValidationCondition`: 1 maximum length reached, 2 OK key, 4 timeout.
    pub validation: u8,
    /// `bTimeOut2`: seconds after the first key (0: the reader's default).
    pub timeout2: u8,
}

impl PinProperties {
    /// Parses the 4-byte answer (little-endian `wLcdLayout`).
    pub fn parse(b: &[u8]) -> Option<Self> {
        match b {
            [l0, l1, validation, timeout2, ..] => Some(Self {
                lcd_layout: u16::from_le_bytes([*l0, *l1]),
                validation: *validation,
                timeout2: *timeout2,
            }),
            _ => None,
        }
    }

    /// True when the reader has a display.
    pub fn has_display(&self) -> bool {
        self.lcd_layout != 0
    }
}

/// Asks the reader for its PIN features. A reader that knows no feature request (vpcd, most readers
/// without keypad) has none: that is not an error.
pub fn features(transport: &mut dyn Transport) -> Result<PinPadFeatures, PcscError> {
    match transport.control(feature_request_code(), &[], Duration::ZERO) {
        Ok(tlvs) => Ok(PinPadFeatures::parse(&tlvs)),
        Err(PcscError::Other { .. } | PcscError::Communication { .. }) => Ok(PinPadFeatures::default()),
        Err(e) => Err(e),
    }
}

/// Reads the reader's PIN properties, if it gives them.
pub fn properties(
    transport: &mut dyn Transport,
    features: &PinPadFeatures,
) -> Result<Option<PinProperties>, PcscError> {
    let Some(code) = features.pin_properties else { return Ok(None) };
    match transport.control(code, &[], Duration::ZERO) {
        Ok(b) => Ok(PinProperties::parse(&b)),
        Err(PcscError::Other { .. } | PcscError::Communication { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a reader says of its PIN pad.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReaderPinPad {
    /// Its PIN features.
    pub features: PinPadFeatures,
    /// Its PIN properties, if it gives them.
    pub properties: Option<PinProperties>,
}

/// Asks a reader about its PIN pad without needing a card: a direct connection (`SCARD_SHARE_DIRECT`)
/// to the reader itself, on a thread of its own, given up after `timeout` (for `diagnose`).
pub fn reader_pin_pad(reader: &str, timeout: Duration) -> Result<ReaderPinPad, PcscError> {
    let name = std::ffi::CString::new(reader)
        .map_err(|_| PcscError::ReaderUnavailable { reader: reader.to_owned() })?;
    let owned = reader.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("pinpad {reader}"))
        .spawn(move || {
            let err = |e| PcscError::from_pcsc(e, Some(&owned));
            let asked = (|| {
                let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(err)?;
                let card =
                    ctx.connect(&name, pcsc::ShareMode::Direct, pcsc::Protocols::UNDEFINED).map_err(err)?;
                let mut buf = [0u8; 1024];
                let control =
                    |code: u32, buf: &mut [u8]| card.control(code as _, &[], buf).map(<[u8]>::to_vec);
                let features = match control(feature_request_code(), &mut buf) {
                    Ok(tlvs) => PinPadFeatures::parse(&tlvs),
                    Err(_) => PinPadFeatures::default(),
                };
                let properties = features
                    .pin_properties
                    .and_then(|code| control(code, &mut buf).ok())
                    .and_then(|b| PinProperties::parse(&b));
                Ok(ReaderPinPad { features, properties })
            })();
            let _ = tx.send(asked);
        })
        .map_err(|_| PcscError::Other { code: 0 })?;
    match rx.recv_timeout(timeout) {
        Ok(r) => r,
        Err(_) => Err(PcscError::Timeout { millis: timeout.as_millis() as u64 }),
    }
}

/// How the reader is to write the code porteur into the VERIFY (`bmFormatString` and its neighbours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFormat {
    /// Each digit as a byte, `0x00`–`0x09`.
    Binary,
    /// Two digits a byte.
    Bcd,
    /// Each digit as its ASCII character.
    Ascii,
}

/// A `PIN_VERIFY_STRUCTURE`: the VERIFY the card expects, with the reader told where the digits go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyStructure {
    /// Seconds the reader waits for the code (`bTimerOut`; 0 is the reader's default).
    pub timeout_secs: u8,
    /// How digits are written.
    pub format: PinFormat,
    /// Byte offset of the code in the VERIFY's data.
    pub position: u8,
    /// Size in bytes of the block the code goes into (left-justified; the template's bytes around the
    /// digits are the padding).
    pub block: u8,
    /// Fewest and most digits the reader accepts.
    pub digits: (u8, u8),
    /// The VERIFY: header, Lc, and the data template holding the padding.
    pub apdu: Vec<u8>,
}

impl VerifyStructure {
    /// The bytes `FEATURE_VERIFY_PIN_DIRECT` takes (little-endian words, as CCID has them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let format = match self.format {
            PinFormat::Binary => 0x00,
            PinFormat::Bcd => 0x01,
            PinFormat::Ascii => 0x02,
        };
        // Units are bytes (bit 7), the position in bits 6-3, left justification (bit 2 clear).
        let bm_format = 0x80 | ((self.position & 0x0F) << 3) | format;
        let mut b = vec![
            self.timeout_secs,
            0,                 // bTimerOut2
            bm_format,         // bmFormatString
            self.block & 0x0F, // bmPINBlockString: no length field
            0,                 // bmPINLengthFormat
            self.digits.1,     // wPINMaxExtraDigit, low byte: maximum
            self.digits.0,     // high byte: minimum
            0x02,              // bEntryValidationCondition: the OK key
            0x01,              // bNumberMessage
            0x0C,              // wLangId 0x040C (French)
            0x04,
            0x00, // bMsgIndex
            0,
            0,
            0, // bTeoPrologue
        ];
        b.extend_from_slice(&(self.apdu.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.apdu);
        b
    }
}

/// Has the reader read the code porteur on its keypad and verify it with the card (`control` is the
/// reader's `FEATURE_VERIFY_PIN_DIRECT` code). The answer is the card's (`90 00`, `63 Cx`, `69 83`…) or
/// the reader's own ([`ReaderAnswer::from_sw`]). The call waits as long as the reader may.
pub fn verify_on_keypad(
    transport: &mut dyn Transport,
    control: u32,
    structure: &VerifyStructure,
) -> Result<crate::Response, PcscError> {
    secure(transport, control, &structure.to_bytes(), structure.timeout_secs)
}

/// A `PIN_MODIFY_STRUCTURE`: the command that sets a new code porteur (CHANGE REFERENCE DATA, RESET
/// RETRY COUNTER…), with the reader told where the codes typed on its keypad go: the current code (when
/// it is asked: [`ModifyStructure::current_at`]) and the new one, asked twice when
/// [`ModifyStructure::confirm`] (the reader answers `64 02` when the two differ, and sends nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyStructure {
    /// Seconds the reader waits for each code (`bTimerOut`; 0 is the reader's default).
    pub timeout_secs: u8,
    /// How digits are written.
    pub format: PinFormat,
    /// Size in bytes of each code's block (left-justified; the template's bytes are the padding).
    pub block: u8,
    /// Fewest and most digits the reader accepts.
    pub digits: (u8, u8),
    /// Byte offset in the data of the current code (`bInsertionOffsetOld`); `None` when it is not asked
    /// (verified before, or a code de déblocage was).
    pub current_at: Option<u8>,
    /// Byte offset in the data of the new code (`bInsertionOffsetNew`).
    pub new_at: u8,
    /// The new code typed a second time to confirm it.
    pub confirm: bool,
    /// The command: header, Lc, and the data template holding the padding.
    pub apdu: Vec<u8>,
}

impl ModifyStructure {
    /// The bytes `FEATURE_MODIFY_PIN_DIRECT` takes (little-endian words, as CCID has them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let format = match self.format {
            PinFormat::Binary => 0x00,
            PinFormat::Bcd => 0x01,
            PinFormat::Ascii => 0x02,
        };
        // bConfirmPIN: bit 0 the new code confirmed, bit 1 the current code asked.
        let confirm = u8::from(self.confirm) | if self.current_at.is_some() { 0x02 } else { 0 };
        let entries = 1 + u8::from(self.confirm) + u8::from(self.current_at.is_some());
        let mut b = vec![
            self.timeout_secs,
            0,                            // bTimerOut2
            0x80 | format,                // bmFormatString: units are bytes, the offsets place the codes
            self.block & 0x0F,            // bmPINBlockString: no length field
            0,                            // bmPINLengthFormat
            self.current_at.unwrap_or(0), // bInsertionOffsetOld
            self.new_at,                  // bInsertionOffsetNew
            self.digits.1,                // wPINMaxExtraDigit, low byte: maximum
            self.digits.0,                // high byte: minimum
            confirm,                      // bConfirmPIN
            0x02,                         // bEntryValidationCondition: the OK key
            entries,                      // bNumberMessage
            0x0C,                         // wLangId 0x040C (French)
            0x04,
            0, // bMsgIndex1
            1, // bMsgIndex2
            2, // bMsgIndex3
            0,
            0,
            0, // bTeoPrologue
        ];
        b.extend_from_slice(&(self.apdu.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.apdu);
        b
    }
}

/// Has the reader read the codes on its keypad, build the command and send it to the card (`control` is
/// the reader's `FEATURE_MODIFY_PIN_DIRECT` code). The answer is the card's or the reader's own
/// ([`ReaderAnswer::from_sw`]: `64 02` when the new code and its confirmation differ).
pub fn modify_on_keypad(
    transport: &mut dyn Transport,
    control: u32,
    structure: &ModifyStructure,
) -> Result<crate::Response, PcscError> {
    // Two or three entries, each with the reader's timeout.
    let entries = 1 + u8::from(structure.confirm) + u8::from(structure.current_at.is_some());
    let timeout = structure.timeout_secs.saturating_mul(entries);
    secure(transport, control, &structure.to_bytes(), timeout)
}

/// One secure PIN entry command, waiting as long as the reader may (`timeout_secs`, 0 for its default).
fn secure(
    transport: &mut dyn Transport,
    control: u32,
    structure: &[u8],
    timeout_secs: u8,
) -> Result<crate::Response, PcscError> {
    let wait = Duration::from_secs(match timeout_secs {
        0 => READER_DEFAULT_WAIT_SECS,
        s => u64::from(s),
    });
    let answer = transport.control(control, structure, wait)?;
    crate::Response::parse(&answer)
        .ok_or_else(|| PcscError::BadResponse { detail: format!("{} byte from the PIN pad", answer.len()) })
}

/// How long a reader asked for its default timeout (`bTimerOut` 0) may take, at most.
const READER_DEFAULT_WAIT_SECS: u64 = 120;

/// What a PIN-pad reader answered of its own, before or instead of the card (PC/SC part 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ReaderAnswer {
    /// `64 00`: no code typed before the reader's timeout.
    #[error("no code typed on the reader's keypad before its timeout (64 00)")]
    Timeout,
    /// `64 01`: cancel pressed on the keypad.
    #[error("code entry cancelled on the reader's keypad (64 01)")]
    Cancelled,
    /// `64 02`: the new code and its confirmation differ.
    #[error("the two codes typed on the reader differ (64 02)")]
    CodesDiffer,
    /// `64 03`: a code shorter or longer than the structure allows.
    #[error("the code typed on the reader has the wrong length (64 03)")]
    Length,
    /// `6B 80`: the reader refused the structure.
    #[error("the reader refused the PIN verification structure (6B 80)")]
    InvalidStructure,
}

impl ReaderAnswer {
    /// The reader's own meaning of a status word, `None` for the card's answers (`90 00`, `63 Cx`…).
    pub fn from_sw(sw: u16) -> Option<Self> {
        Some(match sw {
            0x6400 => Self::Timeout,
            0x6401 => Self::Cancelled,
            0x6402 => Self::CodesDiffer,
            0x6403 => Self::Length,
            0x6B80 => Self::InvalidStructure,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feature_list_is_read_whatever_its_order_and_unknown_tags() {
        let tlvs = [
            0x12, 4, 0x42, 0x33, 0x00, 0x12, // GET_TLV_PROPERTIES
            0x13, 2, 0xAA, 0xBB, // unknown, odd length: skipped
            0x06, 4, 0x42, 0x33, 0x00, 0x06, // VERIFY_PIN_DIRECT
            0x0A, 4, 0x42, 0x33, 0x00, 0x0A, // IFD_PIN_PROPERTIES
            0x07, 9, // truncated: the list ends
        ];
        let f = PinPadFeatures::parse(&tlvs);
        assert_eq!(f.verify_direct, Some(0x4233_0006));
        assert_eq!(f.pin_properties, Some(0x4233_000A));
        assert_eq!(f.tlv_properties, Some(0x4233_0012));
        assert_eq!(f.modify_direct, None);
        assert!(f.can_verify());
        assert!(!PinPadFeatures::parse(&[]).can_verify());
        let start_only = PinPadFeatures::parse(&[0x01, 4, 0, 0, 0, 1]);
        assert!(!start_only.can_verify(), "START without FINISH cannot verify");
    }

    #[test]
    fn the_feature_request_code_is_the_platforms() {
        // pcsc-lite: 0x42000000 + 3400; WinSCard: FILE_DEVICE_SMARTCARD (0x31) << 16 | 3400 << 2.
        let want = if cfg!(windows) { 0x0031_3520 } else { 0x4200_0D48 };
        assert_eq!(feature_request_code(), want);
    }

    #[test]
    fn pin_properties_are_little_endian() {
        let p = PinProperties::parse(&[0x10, 0x02, 0x02, 0x05]).unwrap();
        assert_eq!(p, PinProperties { lcd_layout: 0x0210, validation: 2, timeout2: 5 });
        assert!(p.has_display());
        assert!(PinProperties::parse(&[0, 0, 2]).is_none());
    }

    #[test]
    fn the_structure_is_the_ccid_layout() {
        let s = VerifyStructure {
            timeout_secs: 30,
            format: PinFormat::Ascii,
            position: 0,
            block: 8,
            digits: (4, 4),
            apdu: vec![0x00, 0x20, 0x00, 0x01, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 19 + 13);
        assert_eq!(&b[..9], &[30, 0, 0x82, 0x08, 0x00, 4, 4, 0x02, 0x01]);
        assert_eq!(&b[15..19], &[13, 0, 0, 0], "ulDataLength little-endian");
        assert_eq!(&b[19..], s.apdu.as_slice());
        let bcd = VerifyStructure { format: PinFormat::Bcd, position: 2, digits: (4, 8), ..s };
        assert_eq!(bcd.to_bytes()[2..7], [0x91, 0x08, 0x00, 8, 4]);
    }

    #[test]
    fn the_modify_structure_is_the_ccid_layout() {
        let mut apdu = vec![0x00, 0x24, 0x00, 0x01, 0x10];
        apdu.resize(5 + 16, 0xFF);
        let s = ModifyStructure {
            timeout_secs: 30,
            format: PinFormat::Ascii,
            block: 8,
            digits: (4, 4),
            current_at: Some(0),
            new_at: 8,
            confirm: true,
            apdu,
        };
        let b = s.to_bytes();
        assert_eq!(b.len(), 24 + 21);
        assert_eq!(&b[..12], &[30, 0, 0x82, 0x08, 0x00, 0, 8, 4, 4, 0x03, 0x02, 3]);
        assert_eq!(&b[20..24], &[21, 0, 0, 0], "ulDataLength little-endian");
        assert_eq!(&b[24..], s.apdu.as_slice());
        let new_only = ModifyStructure { current_at: None, new_at: 0, ..s };
        assert_eq!(new_only.to_bytes()[5..12], [0, 0, 4, 4, 0x01, 0x02, 2], "the new code only, confirmed");
    }

    #[test]
    fn the_readers_own_answers_are_told_from_the_cards() {
        assert_eq!(ReaderAnswer::from_sw(0x6400), Some(ReaderAnswer::Timeout));
        assert_eq!(ReaderAnswer::from_sw(0x6401), Some(ReaderAnswer::Cancelled));
        assert_eq!(ReaderAnswer::from_sw(0x6402), Some(ReaderAnswer::CodesDiffer));
        assert_eq!(ReaderAnswer::from_sw(0x6B80), Some(ReaderAnswer::InvalidStructure));
        for card in [0x9000, 0x63C2, 0x6983, 0x6700] {
            assert_eq!(ReaderAnswer::from_sw(card), None);
        }
    }
}
