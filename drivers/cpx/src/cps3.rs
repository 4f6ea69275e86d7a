//! CPS3 driver (IAS-ECC, T=0): tries left by GET DATA on the CHV security data object, VERIFY, and
//! authentication signatures by MSE SET AT + INTERNAL AUTHENTICATE on a PKCS#1 DigestInfo
//! (docs/card-facts.md#code-porteur-and-signatures). The card pads; it cannot do RSA-PSS, hence TLS 1.2 only.
//! The code porteur is changed by CHANGE REFERENCE DATA with the current and the new code, and unblocked
//! by a VERIFY of the code de déblocage then RESET RETRY COUNTER with the new code (the code porteur's
//! reset ACL asks for the code de déblocage first).

use cpx_pcsc::Command;
use zeroize::Zeroizing;

use crate::card::{signature_outcome, verify_outcome, CpxCard, Opened};
use crate::error::CardError;
use crate::iso;
use crate::path::{ObjectPath, Pkcs15Path};
use crate::pin::{Pin, PinStatus};
use crate::pin_change::{new_code_outcome, unblock_verify_outcome, PinChangeError, UnblockingCode};
use crate::pkcs15::PinInfo;
use crate::scheme::SignScheme;
use crate::tlv;

/// Reference of the code de déblocage: the global CHV after the code porteur's (not seen in a public
/// trace; docs/card-facts.md).
const UNBLOCK_REFERENCE: u8 = 0x02;

/// The CPS3 driver (IAS ECC): the PKCS#15 objects on the basic channel, signature by INTERNAL AUTHENTICATE.
pub struct Cps3 {
    card: Opened,
    /// The PIN's DF is the current one (true after a reset: the MF is selected).
    pin_df_selected: bool,
}

impl Cps3 {
    /// The driver of a card [`crate::open::open`] recognised as a CPS3.
    pub fn new(card: Opened) -> Self {
        Self { card, pin_df_selected: false }
    }

    /// Tries of a CHV (the code porteur, the code de déblocage) by GET DATA on its security data object,
    /// header list 4D { 70 { BF 81 <ref> { A0 (all) } } }: the DOCP with 9A (max) and 9B (left).
    fn chv_status(&mut self, reference: u8) -> Result<PinStatus, CardError> {
        // Selection and GET DATA in one transaction: no other program selects elsewhere in between.
        let _reading = self.card.transport.transaction()?;
        self.select_pin_df()?;
        let header = [0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, reference, 0x02, 0xA0, 0x80];
        let r =
            iso::send(self.card.transport.as_mut(), &Command::new(0x00, 0xCB, 0x3F, 0xFF).with_data(header))?;
        if !r.sw.is_ok() {
            return Err(CardError::status("GET DATA (CHV)", r.sw));
        }
        let bad = |d: &str| CardError::malformed("CHV data object", d);
        let (top, _) = tlv::parse_one(&r.data)?;
        let sdo = top.child(0xBF8100 | reference as u32)?.ok_or_else(|| bad("no SDO"))?;
        let docp = sdo.child(0xA0)?.ok_or_else(|| bad("no DOCP"))?;
        let byte = |tag| -> Result<u8, CardError> {
            docp.child(tag)?.and_then(|t| t.value.first().copied()).ok_or_else(|| bad("no counter"))
        };
        let (max_tries, tries_left) = (byte(0x9A)?, byte(0x9B)?);
        if tries_left > max_tries || max_tries == 0 {
            return Err(bad("counters out of range"));
        }
        Ok(PinStatus { tries_left, max_tries })
    }

    fn pin(&self) -> Result<&PinInfo, CardError> {
        self.card.layout.pin.as_ref().ok_or(CardError::NoPinOnInterface)
    }

    /// Selects the DF the AODF gives for the PIN (the MF for the global CHV), unless already there: a path
    /// from the MF as it is, a path relative to the application (or naming it by AID) from the application
    /// DF, selected by AID first.
    /// VERIFY of the code de déblocage, in the code porteur's DF.
    fn present_unblocking_code(&mut self, code: &UnblockingCode) -> Result<(), PinChangeError> {
        self.select_pin_df()?;
        let t = self.card.transport.as_mut();
        let r = iso::send(t, &Command::new(0x00, 0x20, 0x00, UNBLOCK_REFERENCE).with_data(code.bytes()))?;
        unblock_verify_outcome(r.sw)
    }

    fn select_pin_df(&mut self) -> Result<(), CardError> {
        if self.pin_df_selected {
            return Ok(());
        }
        let local = self.pin()?.local;
        let path = self.pin()?.path.clone().unwrap_or_else(Pkcs15Path::none);
        let t = self.card.transport.as_mut();
        let r = match &path.file {
            _ if pin_df_is_mf(&path, local) => {
                iso::send(t, &Command::new(0x00, 0xA4, 0x09, 0x0C).with_data([0x3F, 0x00]))?
            }
            ObjectPath::Absolute(fids) => iso::send(
                t,
                &Command::new(0x00, 0xA4, 0x09, 0x0C)
                    .with_data([&[0x3F, 0x00][..], &ObjectPath::fid_bytes(fids)].concat()),
            )?,
            ObjectPath::None | ObjectPath::Relative(_) => {
                let aid = path.aid.clone().unwrap_or_else(|| self.card.layout.app_aid.clone());
                let r = iso::send(t, &Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(aid))?;
                match &path.file {
                    ObjectPath::Relative(fids) if !fids.is_empty() && r.sw.is_ok() => iso::send(
                        t,
                        &Command::new(0x00, 0xA4, 0x09, 0x0C).with_data(ObjectPath::fid_bytes(fids)),
                    )?,
                    _ => r,
                }
            }
        };
        if !r.sw.is_ok() {
            return Err(CardError::status("SELECT PIN DF", r.sw));
        }
        self.pin_df_selected = true;
        Ok(())
    }
}

/// Whether the PIN's DF is the MF: no DF named (or only an AID) for a global code porteur — the MF holds
/// its CHV object — or the MF's own path.
fn pin_df_is_mf(path: &Pkcs15Path, local: bool) -> bool {
    match &path.file {
        ObjectPath::None => path.aid.is_none() || !local,
        ObjectPath::Absolute(fids) => fids.is_empty(),
        ObjectPath::Relative(_) => false,
    }
}

impl CpxCard for Cps3 {
    fn opened(&self) -> &Opened {
        &self.card
    }
    fn opened_mut(&mut self) -> &mut Opened {
        &mut self.card
    }
    fn schemes(&self) -> &'static [SignScheme] {
        &[SignScheme::RsaPkcs1Sha256, SignScheme::RsaPkcs1Sha384, SignScheme::RsaPkcs1Sha512]
    }

    fn read_pin_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        let Some(reference) = self.card.layout.pin.as_ref().map(|p| p.reference) else { return Ok(None) };
        self.chv_status(reference).map(Some)
    }

    fn unblock_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        if self.card.layout.pin.is_none() {
            return Ok(None);
        }
        self.chv_status(UNBLOCK_REFERENCE).map(Some)
    }

    fn change_reference_data(&mut self, current: &Pin, new: &Pin) -> Result<(), PinChangeError> {
        let info = self.pin()?.clone();
        self.select_pin_df()?;
        let data =
            Zeroizing::new([current.encode(&info)?.as_slice(), new.encode(&info)?.as_slice()].concat());
        let r = iso::send(
            self.card.transport.as_mut(),
            &Command::new(0x00, 0x24, 0x00, info.reference).with_data(data.as_slice()),
        )?;
        new_code_outcome("CHANGE REFERENCE DATA", r.sw)
    }

    /// One CHANGE REFERENCE DATA (P1 `00`) with both codes, as for codes typed on screen: the reader
    /// asks for the current code, then the new one twice, and writes them into the command.
    fn change_reference_data_on_reader(
        &mut self,
        _pad: &crate::pinpad::PinPad,
        modify: &crate::pinpad::PinPadModify,
    ) -> Result<(), crate::pinpad::PinPadChangeError> {
        let (cla, info) = self.prepare_verify()?;
        let header = [cla, 0x24, 0x00, info.reference];
        let structure = crate::pinpad::modify_structure(&info, header, true, modify.timeout_secs)?;
        let t = self.card.transport.as_mut();
        crate::pinpad::modify_on_reader(t, modify, &structure, "CHANGE REFERENCE DATA")
    }

    fn reset_retry_counter(&mut self, code: &UnblockingCode, new: &Pin) -> Result<(), PinChangeError> {
        let info = self.pin()?.clone();
        let new = new.encode(&info)?;
        self.present_unblocking_code(code)?;
        let t = self.card.transport.as_mut();
        let r = iso::send(t, &Command::new(0x00, 0x2C, 0x02, info.reference).with_data(new.as_slice()))?;
        new_code_outcome("RESET RETRY COUNTER", r.sw)
    }

    /// The code de déblocage verified, then RESET RETRY COUNTER `00 2C 02` whose new code the reader
    /// writes in, typed twice on its keypad.
    fn reset_retry_counter_on_reader(
        &mut self,
        code: &UnblockingCode,
        modify: &crate::pinpad::PinPadModify,
    ) -> Result<(), crate::pinpad::PinPadChangeError> {
        let info = self.pin()?.clone();
        self.present_unblocking_code(code)?;
        let header = [0x00, 0x2C, 0x02, info.reference];
        let structure = crate::pinpad::modify_structure(&info, header, false, modify.timeout_secs)?;
        let t = self.card.transport.as_mut();
        crate::pinpad::modify_on_reader(t, modify, &structure, "RESET RETRY COUNTER")
    }

    fn prepare_verify(&mut self) -> Result<(u8, PinInfo), CardError> {
        let info = self.pin()?.clone();
        self.select_pin_df()?;
        Ok((0x00, info))
    }

    fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        let (_, info) = self.prepare_verify()?;
        let data = pin.encode(&info)?;
        let r = iso::send(
            self.card.transport.as_mut(),
            &Command::new(0x00, 0x20, 0x00, info.reference).with_data(data.as_slice()),
        )?;
        verify_outcome(r.sw)
    }

    fn sign(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError> {
        if self.card.info.interface == crate::atr::Interface::Contactless {
            return Err(CardError::ContactlessSignature);
        }
        let prefix = scheme.digest_info_prefix().ok_or(CardError::SchemeUnsupported { scheme })?;
        let key = self.card.layout.key.reference;
        iso::expect_ok(
            self.card.transport.as_mut(),
            "MSE SET AT",
            &Command::new(0x00, 0x22, 0x41, 0xA4).with_data([0x80, 0x01, 0x02, 0x84, 0x01, key]),
        )?;
        let digest_info = [prefix, digest].concat();
        let r = iso::send(
            self.card.transport.as_mut(),
            &Command::new(0x00, 0x88, 0x00, 0x00).with_data(digest_info).with_le(0),
        )?;
        let modulus = self.card.identity.rsa_bits.unwrap_or(2048) / 8;
        signature_outcome("INTERNAL AUTHENTICATE", r, modulus)
    }

    fn end_session(&mut self) {
        // A reset selects the MF: the PIN's DF when the PIN is global.
        self.pin_df_selected =
            self.pin().is_ok_and(|p| pin_df_is_mf(p.path.as_ref().unwrap_or(&Pkcs15Path::none()), p.local));
    }
}
