//! CPS4 driver (NXP ChipDoc, applet on a logical channel): tries left by VERIFY with no data, VERIFY,
//! and signatures by MSE SET DST (`91 02 <alg> <key|80>`) + PSO COMPUTE DIGITAL SIGNATURE on a hash
//! computed by the host, PKCS#1 v1.5 or RSA-PSS (cpx-card.md §2, §4 D).

use cpx_pcsc::{Command, Transport};

use crate::card::{signature_outcome, verify_outcome, CpxCard, Opened};
use crate::error::CardError;
use crate::iso;
use crate::pin::{Pin, PinStatus};
use crate::scheme::SignScheme;

/// ChipDoc does not report the maximum; ANS's driver hard-codes 3 (card-cps4.c).
const MAX_TRIES: u8 = 3;

/// MANAGE CHANNEL open; returns the CLA of the new channel.
pub(crate) fn open_channel(t: &mut dyn Transport) -> Result<u8, CardError> {
    let data = iso::expect_ok(t, "MANAGE CHANNEL", &Command::new(0x00, 0x70, 0x00, 0x00).with_le(1))?;
    match data.as_slice() {
        [ch @ 1..=3] => Ok(*ch),
        _ => Err(CardError::malformed("MANAGE CHANNEL", "no channel number")),
    }
}

pub(crate) fn close_channel(t: &mut dyn Transport, cla: u8) -> Result<(), CardError> {
    iso::expect_ok(t, "MANAGE CHANNEL close", &Command::new(0x00, 0x70, 0x80, cla)).map(drop)
}

pub struct Cps4 {
    card: Opened,
    /// CLA of the channel where ChipDoc is selected, once opened in this session.
    channel: Option<u8>,
}

impl Cps4 {
    pub fn new(card: Opened) -> Self {
        Self { card, channel: None }
    }

    fn chipdoc(&mut self) -> Result<u8, CardError> {
        if let Some(cla) = self.channel {
            return Ok(cla);
        }
        let cla = open_channel(self.card.transport.as_mut())?;
        iso::select_aid(self.card.transport.as_mut(), cla, &self.card.layout.app_aid.clone())?;
        self.channel = Some(cla);
        Ok(cla)
    }

    fn pin_reference(&self) -> Result<u8, CardError> {
        self.card.layout.pin.as_ref().map(|p| p.reference).ok_or(CardError::Unsupported { what: "no code porteur".into() })
    }
}

impl CpxCard for Cps4 {
    fn opened(&self) -> &Opened {
        &self.card
    }
    fn opened_mut(&mut self) -> &mut Opened {
        &mut self.card
    }
    fn schemes(&self) -> &'static [SignScheme] {
        &[SignScheme::RsaPssSha256, SignScheme::RsaPkcs1Sha256]
    }

    fn pin_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        if self.card.layout.pin.is_none() {
            return Ok(None);
        }
        let reference = self.pin_reference()?;
        // Channel, selection and the query in one transaction.
        let _reading = self.card.transport.transaction()?;
        let cla = self.chipdoc()?;
        let r = iso::send(self.card.transport.as_mut(), &Command::new(cla, 0x20, 0x00, reference))?;
        let tries_left = match r.sw.0 {
            0x9000 => MAX_TRIES,
            0x6983 => 0,
            s if s & 0xFFF0 == 0x63C0 => (s & 0x0F) as u8,
            _ => return Err(CardError::status("VERIFY (tries left)", r.sw)),
        };
        Ok(Some(PinStatus { tries_left, max_tries: MAX_TRIES.max(tries_left) }))
    }

    fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        let info = self.card.layout.pin.clone().ok_or(CardError::Unsupported { what: "no code porteur".into() })?;
        let cla = self.chipdoc()?;
        let data = pin.encode(&info)?;
        let r = iso::send(self.card.transport.as_mut(), &Command::new(cla, 0x20, 0x00, info.reference).with_data(data.as_slice()))?;
        verify_outcome(r.sw)
    }

    fn sign(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError> {
        let alg = match scheme {
            SignScheme::RsaPkcs1Sha256 => 0x28,
            SignScheme::RsaPssSha256 => 0x2C,
            other => return Err(CardError::Unsupported { what: format!("{other:?} on a CPS4") }),
        };
        let cla = self.chipdoc()?;
        let key = self.card.layout.key.reference | 0x80;
        iso::expect_ok(self.card.transport.as_mut(), "MSE SET DST", &Command::new(cla, 0x22, 0x81, 0xB6).with_data([0x91, 0x02, alg, key]))?;
        let r = iso::send(self.card.transport.as_mut(), &Command::new(cla, 0x2A, 0x9E, 0x9A).with_data(digest).with_le(0))?;
        let modulus = self.card.identity.rsa_bits.unwrap_or(2048) / 8;
        signature_outcome("PSO COMPUTE DIGITAL SIGNATURE", r, modulus)
    }

    fn end_session(&mut self) {
        // A reset closes every logical channel.
        self.channel = None;
    }
}
