//! CPS4 driver (NXP ChipDoc, applet on a logical channel): tries left by VERIFY with no data, VERIFY,
//! and signatures by MSE SET DST (`91 02 <alg> <key|80>`) + PSO COMPUTE DIGITAL SIGNATURE on a hash
//! computed by the host, PKCS#1 v1.5 or RSA-PSS (docs/card-facts.md#code-porteur-and-signatures).
//! After a `69 85` the ChipDoc recovery sequence brings the card back and the command is sent once more
//! — except a VERIFY with the code porteur, which becomes [`CardError::PinConditions`] for the user to
//! try again. The code porteur is changed as ANS's CPS4 driver does: VERIFY of the current code, then
//! CHANGE REFERENCE DATA P1 `01` with the new one; unblocked by a VERIFY of the code de déblocage, RESET
//! RETRY COUNTER P1 `03` (the counter only), then CHANGE REFERENCE DATA P1 `01`. None of these is sent
//! again after a `69 85`.

use cpx_pcsc::{Command, StatusWord, Transport};

use crate::card::{signature_outcome, verify_outcome, CpxCard, Opened};
use crate::error::CardError;
use crate::iso;
use crate::pin::{Pin, PinStatus};
use crate::pin_change::{new_code_outcome, unblock_verify_outcome, PinChangeError, UnblockingCode};
use crate::pkcs15::PinInfo;
use crate::scheme::SignScheme;

/// ChipDoc does not report the maximum; ANS's driver hard-codes 3 (card-cps4.c).
const MAX_TRIES: u8 = 3;

/// Reference of the code de déblocage: local, the CHV after the code porteur's (not seen in a public
/// trace; docs/card-facts.md).
const UNBLOCK_REFERENCE: u8 = 0x82;

/// The IDS applet and the CPS2ter application, selected by the recovery sequence after `69 85`.
const AID_IDS: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00];
const AID_CPS2TER: &[u8] = &[0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x02];
/// « Conditions of use not satisfied »: what a CPS4 answers when ChipDoc lost its state (Cryptolib 5.2
/// release notes, #1722).
pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);

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

/// The CPS4 driver: ChipDoc on a logical channel, signature by MSE SET and PSO.
pub struct Cps4 {
    card: Opened,
    /// CLA of the channel where ChipDoc is selected, once opened in this session.
    channel: Option<u8>,
}

impl Cps4 {
    /// The driver of a card [`crate::open::open`] recognised as a CPS4.
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

    /// The ChipDoc recovery sequence of ANS's CPS4 driver: SELECT the IDS applet on ChipDoc's channel, the
    /// CPS2ter application on the basic channel, then ChipDoc again on its channel.
    fn recover(&mut self) -> Result<(), CardError> {
        let cla = self.chipdoc()?;
        let aid = self.card.layout.app_aid.clone();
        let t = self.card.transport.as_mut();
        // The first two only bring the card back to a known state: their status does not matter.
        iso::send(t, &Command::new(cla, 0xA4, 0x04, 0x0C).with_data(AID_IDS))?;
        iso::send(t, &Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(AID_CPS2TER))?;
        iso::select_aid(t, cla, &aid)
    }

    /// Runs `op`; after a `69 85`, the recovery sequence and `op` once more. Never used for a VERIFY with
    /// the code porteur: a code porteur is not presented again on the user's behalf.
    fn recovering<T>(
        &mut self,
        mut op: impl FnMut(&mut Self) -> Result<T, CardError>,
    ) -> Result<T, CardError> {
        match op(self) {
            Err(CardError::UnexpectedStatus { sw: CONDITIONS_NOT_SATISFIED, .. }) => {
                self.recover()?;
                op(self)
            }
            other => other,
        }
    }

    /// Tries left on a CHV by VERIFY without data, which presents no secret: it may be sent again after a
    /// recovery. Channel, selection and the query in one transaction.
    fn counter(&mut self, reference: u8) -> Result<PinStatus, CardError> {
        let _reading = self.card.transport.transaction()?;
        let tries_left = self.recovering(|me| {
            let cla = me.chipdoc()?;
            let r = iso::send(me.card.transport.as_mut(), &Command::new(cla, 0x20, 0x00, reference))?;
            match r.sw.0 {
                0x9000 => Ok(MAX_TRIES),
                0x6983 => Ok(0),
                s if s & 0xFFF0 == 0x63C0 => Ok((s & 0x0F) as u8),
                _ => Err(CardError::status("VERIFY (tries left)", r.sw)),
            }
        })?;
        Ok(PinStatus { tries_left, max_tries: MAX_TRIES.max(tries_left) })
    }

    /// VERIFY of the code de déblocage, then RESET RETRY COUNTER `2C 03` (the counter only): the new code
    /// porteur follows (CHANGE REFERENCE DATA P1 `01`).
    fn reset_counter(&mut self, code: &UnblockingCode) -> Result<(), PinChangeError> {
        let reference = self.pin_reference()?;
        let cla = self.chipdoc()?;
        let t = self.card.transport.as_mut();
        let r = iso::send(t, &Command::new(cla, 0x20, 0x00, UNBLOCK_REFERENCE).with_data(code.bytes()))?;
        unblock_verify_outcome(r.sw)?;
        let r = iso::send(t, &Command::new(cla, 0x2C, 0x03, reference | 0x80))?;
        new_code_outcome("RESET RETRY COUNTER", r.sw)
    }

    /// CHANGE REFERENCE DATA P1 `01`: the new code porteur alone, once a code was verified.
    fn set_new_code(&mut self, new: &Pin) -> Result<(), PinChangeError> {
        let info = self.card.layout.pin.clone().ok_or(CardError::NoPinOnInterface)?;
        let cla = self.chipdoc()?;
        let data = new.encode(&info)?;
        let r = iso::send(
            self.card.transport.as_mut(),
            &Command::new(cla, 0x24, 0x01, info.reference).with_data(data.as_slice()),
        )?;
        new_code_outcome("CHANGE REFERENCE DATA", r.sw)
    }

    fn pin_reference(&self) -> Result<u8, CardError> {
        self.card.layout.pin.as_ref().map(|p| p.reference).ok_or(CardError::NoPinOnInterface)
    }
}

/// A logical channel stays open on the card across PC/SC connections until the card is reset: the one
/// opened to ask for the tries left (no reset follows) is closed when the driver goes, or a few scans
/// would use up the card's channels (`MANAGE CHANNEL` then answers `6A 81`).
impl Drop for Cps4 {
    fn drop(&mut self) {
        if let Some(cla) = self.channel.take() {
            let _ = close_channel(self.card.transport.as_mut(), cla);
        }
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

    fn read_pin_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        if self.card.layout.pin.is_none() {
            return Ok(None);
        }
        let reference = self.pin_reference()?;
        self.counter(reference).map(Some)
    }

    fn unblock_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        if self.card.layout.pin.is_none() {
            return Ok(None);
        }
        self.counter(UNBLOCK_REFERENCE).map(Some)
    }

    fn change_reference_data(&mut self, current: &Pin, new: &Pin) -> Result<(), PinChangeError> {
        self.verify_pin(current)?;
        self.set_new_code(new)
    }

    fn reset_retry_counter(&mut self, code: &UnblockingCode, new: &Pin) -> Result<(), PinChangeError> {
        self.reset_counter(code)?;
        self.set_new_code(new)
    }

    /// The counter reset with the code de déblocage, then CHANGE REFERENCE DATA `01 24 01` whose new code
    /// the reader writes in, typed twice on its keypad.
    fn reset_retry_counter_on_reader(
        &mut self,
        code: &UnblockingCode,
        modify: &crate::pinpad::PinPadModify,
    ) -> Result<(), crate::pinpad::PinPadChangeError> {
        self.reset_counter(code)?;
        let (cla, info) = self.prepare_verify()?;
        let header = [cla, 0x24, 0x01, info.reference];
        let structure = crate::pinpad::modify_structure(&info, header, false, modify.timeout_secs)?;
        let t = self.card.transport.as_mut();
        crate::pinpad::modify_on_reader(t, modify, &structure, "CHANGE REFERENCE DATA")
    }

    fn prepare_verify(&mut self) -> Result<(u8, PinInfo), CardError> {
        let info = self.card.layout.pin.clone().ok_or(CardError::NoPinOnInterface)?;
        Ok((self.chipdoc()?, info))
    }

    fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError> {
        let (cla, info) = self.prepare_verify()?;
        let data = pin.encode(&info)?;
        let r = iso::send(
            self.card.transport.as_mut(),
            &Command::new(cla, 0x20, 0x00, info.reference).with_data(data.as_slice()),
        )?;
        verify_outcome(r.sw)
    }

    fn sign(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError> {
        let alg = match scheme {
            SignScheme::RsaPkcs1Sha256 => 0x28,
            SignScheme::RsaPssSha256 => 0x2C,
            scheme => return Err(CardError::SchemeUnsupported { scheme }),
        };
        let key = self.card.layout.key.reference | 0x80;
        let modulus = self.card.identity.rsa_bits.unwrap_or(2048) / 8;
        // MSE and PSO together: a recovery reselects ChipDoc, which forgets the MSE.
        self.recovering(|me| {
            let cla = me.chipdoc()?;
            iso::expect_ok(
                me.card.transport.as_mut(),
                "MSE SET DST",
                &Command::new(cla, 0x22, 0x81, 0xB6).with_data([0x91, 0x02, alg, key]),
            )?;
            let r = iso::send(
                me.card.transport.as_mut(),
                &Command::new(cla, 0x2A, 0x9E, 0x9A).with_data(digest).with_le(0),
            )?;
            signature_outcome("PSO COMPUTE DIGITAL SIGNATURE", r, modulus)
        })
    }

    fn end_session(&mut self) {
        // A reset closes every logical channel.
        self.channel = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atr::{Generation, Interface};
    use crate::cache::Layout;
    use crate::card::{CardInfo, Recognition};
    use crate::identity::{IdKind, Identity};
    use crate::path::Pkcs15Path;
    use crate::pkcs15::{KeyInfo, PinInfo, AID_CHIPDOC};
    use cpx_pcsc::{PcscError, Response, Transaction};
    use std::sync::{Arc, Mutex};

    /// A ChipDoc that answers `69 85` to the commands listed in `fail_once` the first time each is sent,
    /// until the recovery sequence has been run; records every command.
    struct Chipdoc {
        fail_once: Vec<u8>,
        failed: Vec<u8>,
        /// Every command as traces show it (a code porteur hidden).
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Transport for Chipdoc {
        fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError> {
            self.log.lock().unwrap().push(format!("{cmd:?}"));
            let ok = |data: Vec<u8>| Ok(Response { data, sw: StatusWord::OK });
            if self.fail_once.contains(&cmd.ins) && !self.failed.contains(&cmd.ins) {
                self.failed.push(cmd.ins);
                return Ok(Response { data: Vec::new(), sw: CONDITIONS_NOT_SATISFIED });
            }
            match cmd.ins {
                0x70 if cmd.p1 == 0 => ok(vec![1]),
                0x2A => ok(vec![0x5A; 256]),
                0x20 if cmd.data.is_empty() => Ok(Response { data: Vec::new(), sw: StatusWord(0x63C3) }),
                _ => ok(Vec::new()),
            }
        }
        fn transaction(&mut self) -> Result<Transaction, PcscError> {
            Ok(Transaction::new(|_| Ok(())))
        }
        fn apdu_count(&self) -> u64 {
            self.log.lock().unwrap().len() as u64
        }
    }

    fn cps4(fail_once: &[u8]) -> (Cps4, Arc<Mutex<Vec<String>>>) {
        let pin = PinInfo {
            label: "PIN".into(),
            auth_id: vec![1],
            pin_type: 1,
            min_length: 4,
            stored_length: 8,
            reference: 0x01,
            pad_char: Some(0xFF),
            needs_padding: true,
            local: false,
            path: None,
        };
        let key = KeyInfo {
            label: "auth".into(),
            id: vec![2],
            usage: vec![2],
            reference: 0x20,
            auth_id: Some(vec![1]),
            path: Some(Pkcs15Path::none()),
            modulus_bits: Some(2048),
        };
        let layout = Layout {
            generation: Generation::Cps4,
            app_aid: AID_CHIPDOC.to_vec(),
            app_label: "ChipDoc".into(),
            pin: Some(pin),
            key,
            cert_label: String::new(),
            cert_path: Pkcs15Path::none(),
            cert_file_size: None,
            cert_der: Vec::new(),
            card_type_code: None,
        };
        let info = CardInfo {
            generation: Generation::Cps4,
            interface: Interface::Contact,
            atr: Vec::new(),
            recognition: Recognition::IssuerOnly,
            serial: "1".into(),
            application: "ChipDoc".into(),
            card_type: crate::CardType::Cpx,
            card_type_source: crate::TypeSource::Unknown,
        };
        let identity = Identity {
            national_id: String::new(),
            id_kind: IdKind::Other,
            id_nat_kind: crate::IdNatKind::Unknown,
            nominative: false,
            structure: None,
            id_number: String::new(),
            nom: String::new(),
            prenom: String::new(),
            profession: None,
            not_before: 0,
            not_after: 0,
            issuer: String::new(),
            test_pki: true,
            serial: String::new(),
            signature_allowed: true,
            rsa_bits: Some(2048),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let transport =
            Box::new(Chipdoc { fail_once: fail_once.to_vec(), failed: Vec::new(), log: log.clone() });
        (Cps4::new(Opened::new(transport, info, layout, identity)), log)
    }

    #[test]
    fn after_69_85_the_recovery_sequence_runs_and_the_signature_is_sent_once_more() {
        let (mut card, log) = cps4(&[0x2A]);
        let sig = card.sign(SignScheme::RsaPkcs1Sha256, &[7; 32]).unwrap();
        assert_eq!(sig.len(), 256);
        let sent = log.lock().unwrap().clone();
        let recovery =
            ["01A4040C07A0000001510000", "00A4040C088025000001FF0002", "01A4040C088025000001FF0100"];
        let at = sent
            .iter()
            .position(|c| c == recovery[0])
            .unwrap_or_else(|| panic!("no SELECT IDS on channel 1: {sent:?}"));
        assert_eq!(&sent[at..at + 3], recovery, "{sent:?}");
        // MSE and PSO again after the recovery.
        assert!(sent[at + 3].starts_with("012281B6") && sent[at + 4].starts_with("012A9E9A"), "{sent:?}");
        assert_eq!(
            sent.iter().filter(|c| c.starts_with("012A9E9A")).count(),
            2,
            "the signature is sent once more, no more"
        );
        // Tries left (a VERIFY without data, no code porteur in it) recovers too.
        let (mut card, _) = cps4(&[0x20]);
        assert_eq!(card.pin_status().unwrap().map(|s| s.tries_left), Some(3));
    }

    #[test]
    fn a_69_85_on_the_verify_of_the_code_porteur_is_never_retried() {
        let (mut card, log) = cps4(&[0x20]);
        let r = card.verify_pin(&Pin::new("1234").unwrap());
        assert_eq!(r, Err(CardError::PinConditions));
        let sent = log.lock().unwrap().clone();
        assert_eq!(
            sent.iter().filter(|c| c.starts_with("01 20 00 01")).count(),
            1,
            "one VERIFY only: {sent:?}"
        );
        assert!(
            !sent.iter().any(|c| c.contains("A0000001510000")),
            "no recovery around a code porteur: {sent:?}"
        );
    }
}
