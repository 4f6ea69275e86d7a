//! Command and response APDUs (ISO/IEC 7816-4, short length only: CPx cards do not announce extended length).

use std::fmt;

use zeroize::Zeroizing;

use crate::error::PcscError;

/// A command APDU. `le` is the expected response length (`Some(0)` means "up to 256 bytes"). The data
/// is wiped when the command is dropped: a VERIFY carries the code porteur.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte (CLA): the logical channel and secure messaging bits.
    pub cla: u8,
    /// Instruction byte (INS): SELECT, READ BINARY, VERIFY…
    pub ins: u8,
    /// First parameter byte (P1).
    pub p1: u8,
    /// Second parameter byte (P2).
    pub p2: u8,
    /// Command data (Lc is its length); wiped when dropped, since it may carry the code porteur.
    pub data: Zeroizing<Vec<u8>>,
    /// Expected response length (Le), when the command asks for data back.
    pub le: Option<u8>,
}

impl Command {
    /// A command with no data and no Le (case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self { cla, ins, p1, p2, data: Zeroizing::new(Vec::new()), le: None }
    }
    /// Adds the command data.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }
    /// Adds the expected response length.
    pub fn with_le(mut self, le: u8) -> Self {
        self.le = Some(le);
        self
    }

    /// The encoded APDU. Data longer than 255 bytes cannot be sent in one short APDU (callers chain):
    /// such a command is an error, never a panic, since its data may come from the card (a path, an AID).
    pub fn to_bytes(&self) -> Result<Vec<u8>, PcscError> {
        if self.data.len() > 255 {
            return Err(PcscError::BadCommand {
                detail: format!("{} data bytes in a short APDU (at most 255)", self.data.len()),
            });
        }
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            out.push(le);
        }
        Ok(out)
    }

    /// True for commands whose data is a secret (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER):
    /// traces show their header only.
    pub fn carries_secret(&self) -> bool {
        matches!(self.ins, 0x20 | 0x24 | 0x2C) && !self.data.is_empty()
    }

    /// The logical channel bits of the class byte (0–3), so that GET RESPONSE goes to the same channel.
    pub fn channel(&self) -> u8 {
        self.cla & 0x03
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.carries_secret() {
            write!(
                f,
                "{:02X} {:02X} {:02X} {:02X} <{} secret bytes>",
                self.cla,
                self.ins,
                self.p1,
                self.p2,
                self.data.len()
            )
        } else {
            match self.to_bytes() {
                Ok(bytes) => write!(f, "{}", hex::encode_upper(bytes)),
                Err(_) => write!(
                    f,
                    "{:02X} {:02X} {:02X} {:02X} <{} data bytes: too long>",
                    self.cla,
                    self.ins,
                    self.p1,
                    self.p2,
                    self.data.len()
                ),
            }
        }
    }
}

/// A status word (SW1 SW2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// `90 00`: the command succeeded.
    pub const OK: Self = Self(0x9000);
    /// The first status byte (SW1).
    pub fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// The second status byte (SW2).
    pub fn sw2(self) -> u8 {
        self.0 as u8
    }
    /// True for `90 00`.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}
impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// A response APDU: data and status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The response data, without the status word.
    pub data: Vec<u8>,
    /// The status word that ended the response.
    pub sw: StatusWord,
}

impl Response {
    /// Splits raw response bytes; `None` when there are fewer than the two status bytes.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let n = raw.len().checked_sub(2)?;
        Some(Self { data: raw[..n].to_vec(), sw: StatusWord(u16::from_be_bytes([raw[n], raw[n + 1]])) })
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", hex::encode_upper(&self.data), self.sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_four_cases() {
        assert_eq!(Command::new(0, 0xA4, 0, 0x0C).to_bytes().unwrap(), [0, 0xA4, 0, 0x0C]);
        assert_eq!(Command::new(0, 0xB0, 0, 0).with_le(0xE7).to_bytes().unwrap(), [0, 0xB0, 0, 0, 0xE7]);
        assert_eq!(
            Command::new(0, 0xA4, 9, 4).with_data([0x3F, 0]).to_bytes().unwrap(),
            [0, 0xA4, 9, 4, 2, 0x3F, 0]
        );
        assert_eq!(
            Command::new(0, 0x88, 0, 0).with_data([1]).with_le(0).to_bytes().unwrap(),
            [0, 0x88, 0, 0, 1, 1, 0]
        );
    }

    #[test]
    fn data_longer_than_a_short_apdu_is_an_error_not_a_panic() {
        // A PIN path of 300 bytes from a card's AODF, say.
        let long = Command::new(0, 0xA4, 9, 0x0C).with_data(vec![0x3F; 300]);
        assert!(matches!(long.to_bytes(), Err(PcscError::BadCommand { .. })));
        assert!(format!("{long:?}").contains("too long"));
        assert_eq!(Command::new(0, 0xA4, 9, 0x0C).with_data(vec![1; 255]).to_bytes().unwrap().len(), 260);
    }

    #[test]
    fn hides_pin_bytes_in_traces() {
        let verify = Command::new(0, 0x20, 0, 1).with_data(*b"1234");
        let shown = format!("{verify:?}");
        assert!(!shown.contains("31323334"), "{shown}");
        assert!(shown.contains("4 secret bytes"));
    }

    #[test]
    fn response_needs_two_status_bytes() {
        assert_eq!(Response::parse(&[0x90]), None);
        let r = Response::parse(&[1, 2, 0x61, 0x10]).unwrap();
        assert_eq!((r.data.as_slice(), r.sw.sw1(), r.sw.sw2()), (&[1u8, 2][..], 0x61, 0x10));
    }
}
