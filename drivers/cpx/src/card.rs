//! The card trait every generation's driver implements ([`CpxCard`]), what is known of a card once opened
//! ([`CardInfo`]), and the status words of VERIFY and of the signing commands, which both generations
//! share. Recognising a card and picking its driver is [`crate::open`]'s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cpx_pcsc::Transport;
use serde::Serialize;

use crate::atr::{Generation, Interface};
use crate::cache::Layout;
use crate::card_type::{CardType, TypeSource};
use crate::error::CardError;
use crate::identity::Identity;
use crate::pin::{Pin, PinStatus};
use crate::pin_change::{secret_session, PinChangeError, UnblockingCode};
use crate::pinpad::{PinPad, PinPadChangeError, PinPadError, PinPadModify};
use crate::pkcs15::PinInfo;
use crate::scheme::SignScheme;

/// How the card was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Recognition {
    /// Its ATR is in the table.
    AtrTable {
        /// The table's name for it (« CPS3 »).
        label: &'static str,
    },
    /// Its ATR is in no table, but EF.SN.ICC names the ANS as issuer: a CPx variant.
    IssuerOnly,
}

/// What is known of a card once opened.
#[derive(Debug, Clone, Serialize)]
pub struct CardInfo {
    /// The card generation.
    pub generation: Generation,
    /// Contact or contactless.
    pub interface: Interface,
    /// The ATR as the card gave it.
    #[serde(serialize_with = "hex_ser")]
    pub atr: Vec<u8>,
    /// How the card was recognised.
    pub recognition: Recognition,
    /// Card number from EF.SN.ICC.
    pub serial: String,
    /// The PKCS#15 application used.
    pub application: String,
    /// The card type (CPS, CPE, CPA, CPF…), apart from the generation.
    pub card_type: CardType,
    /// Where the card type was learnt.
    pub card_type_source: TypeSource,
}

impl CardInfo {
    /// « CPE » with the generation: « CPE (CPS3) »… for people; « CPx » when the type is not known.
    pub fn type_name(&self) -> String {
        format!("{} ({})", self.card_type.code(), crate::error::generation_name(Some(self.generation)))
    }
}

fn hex_ser<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(b))
}

/// What every driver holds: the connection, and what was learnt when the card was opened.
pub struct Opened {
    pub(crate) transport: Box<dyn Transport>,
    pub(crate) info: CardInfo,
    pub(crate) layout: Layout,
    pub(crate) identity: Identity,
    /// The flag of the reader's entry in the certificate cache this card was opened with or remembered
    /// in (`crate::cache`): cleared when a signature does not verify with the certificate.
    pub(crate) vouched: Option<Arc<AtomicBool>>,
    /// The tries left the last [`CpxCard::pin_status`] read, not yet followed by a VERIFY.
    pub(crate) tries_read: Option<PinStatus>,
}

impl Opened {
    /// What the driver of a card just opened holds.
    pub(crate) fn new(
        transport: Box<dyn Transport>,
        info: CardInfo,
        layout: Layout,
        identity: Identity,
    ) -> Self {
        Self { transport, info, layout, identity, vouched: None, tries_read: None }
    }
}

/// One CPx card, whatever its generation.
pub trait CpxCard: Send {
    /// What the driver learnt when the card was opened.
    fn opened(&self) -> &Opened;
    /// The same, to change (the transport, after a session).
    fn opened_mut(&mut self) -> &mut Opened;

    /// The card's type, interface, number and application.
    fn info(&self) -> &CardInfo {
        &self.opened().info
    }
    /// Its PKCS#15 layout: key, certificate, code porteur.
    fn layout(&self) -> &Layout {
        &self.opened().layout
    }
    /// The holder, from the authentication certificate.
    fn identity(&self) -> &Identity {
        &self.opened().identity
    }
    /// The connection, for transactions and APDU counts.
    fn transport(&mut self) -> &mut dyn Transport {
        self.opened_mut().transport.as_mut()
    }

    /// Tries left on the code porteur, without spending one; `None` when the card has no code porteur
    /// on this interface (contactless). The generation's own query, see [`CpxCard::pin_status`].
    fn read_pin_status(&mut self) -> Result<Option<PinStatus>, CardError>;

    /// Tries left on the code porteur, without spending one; `None` when the card has no code porteur
    /// on this interface (contactless). The answer also serves the next [`CpxCard::authenticate`], which
    /// then does not ask the card again (the caller read them to show them before asking the code).
    fn pin_status(&mut self) -> Result<Option<PinStatus>, CardError> {
        let status = self.read_pin_status();
        self.opened_mut().tries_read = status.as_ref().ok().copied().flatten();
        status
    }
    /// Presents the code porteur.
    fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError>;
    /// Signs a digest computed by the host with the authentication key.
    fn sign(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError>;
    /// The schemes this card's authentication key can produce, preferred first.
    fn schemes(&self) -> &'static [SignScheme];
    /// Tries left on the code de déblocage, without spending one; `None` when the card has no code
    /// porteur on this interface.
    fn unblock_status(&mut self) -> Result<Option<PinStatus>, CardError>;
    /// This generation's commands to replace the code porteur, the current one checked by the card. Sent
    /// by [`CpxCard::change_pin`], inside its session.
    fn change_reference_data(&mut self, current: &Pin, new: &Pin) -> Result<(), PinChangeError>;
    /// This generation's commands to present the code de déblocage and set a new code porteur with a
    /// fresh counter. Sent by [`CpxCard::unblock_pin`], inside its session.
    fn reset_retry_counter(&mut self, code: &UnblockingCode, new: &Pin) -> Result<(), PinChangeError>;
    /// This generation's commands to replace the code porteur with codes typed on the reader's keypad.
    /// Sent by [`CodePorteur::change_pin_on_reader`], inside its session. By default the card's own
    /// sequence for a change with the current code verified first: VERIFY on the keypad, then CHANGE
    /// REFERENCE DATA with the new code alone (P1 `01`), typed twice on the keypad.
    fn change_reference_data_on_reader(
        &mut self,
        pad: &PinPad,
        modify: &PinPadModify,
    ) -> Result<(), PinPadChangeError> {
        self.verify_pin_on_reader(pad)?;
        let (cla, info) = self.prepare_verify()?;
        let header = [cla, 0x24, 0x01, info.reference];
        let structure = crate::pinpad::modify_structure(&info, header, false, modify.timeout_secs)?;
        crate::pinpad::modify_on_reader(self.transport(), modify, &structure, "CHANGE REFERENCE DATA")
    }
    /// This generation's commands to present the code de déblocage and set a new code porteur typed twice
    /// on the reader's keypad. Sent by [`CodePorteur::unblock_pin_on_reader`], inside its session.
    fn reset_retry_counter_on_reader(
        &mut self,
        code: &UnblockingCode,
        modify: &PinPadModify,
    ) -> Result<(), PinPadChangeError>;
    /// Forgets what the driver assumed about the card's state (selected DF, open logical channel): called
    /// once the card was reset at the end of a session.
    fn end_session(&mut self);

    /// The authentication certificate (DER).
    fn certificate(&self) -> &[u8] {
        &self.layout().cert_der
    }

    /// APDUs sent since the card was connected.
    fn apdu_count(&mut self) -> u64 {
        self.transport().apdu_count()
    }

    /// Makes the card ready for a VERIFY of the code porteur (its DF selected, its logical channel open)
    /// and returns the VERIFY's class byte and the code porteur's AODF entry.
    fn prepare_verify(&mut self) -> Result<(u8, PinInfo), CardError>;

    /// Presents the code porteur the holder types on the reader's keypad: the reader builds the VERIFY
    /// from the structure ([`crate::pinpad`]); the code porteur never crosses the computer.
    fn verify_pin_on_reader(&mut self, pad: &PinPad) -> Result<(), PinPadError> {
        let (cla, info) = self.prepare_verify()?;
        let structure = crate::pinpad::verify_structure(&info, cla, pad.timeout_secs)?;
        crate::pinpad::verify_on_reader(self.transport(), pad, &structure)
    }

    /// The whole card login step, in one PC/SC transaction: tries left (a blocked card gets no VERIFY),
    /// VERIFY, signature. The tries are not read again when the last [`CpxCard::pin_status`] found the
    /// card not blocked and no VERIFY followed it: the caller has just read them to show them with the
    /// code porteur's dialog (a card blocked by another program in between answers the VERIFY `69 83`
    /// and spends nothing). From the VERIFY on, the transaction ends with a reset of the card: no other
    /// program waiting for the card can get it while the code porteur is verified. A reset that fails is
    /// an error ([`cpx_pcsc::PcscError::ResetFailed`]), even after a signature, and the connection must be
    /// made again.
    ///
    /// The signature is verified with the certificate's public key before it is returned: a signature
    /// that does not verify (the card's certificate renewed in place since it was read) is an error,
    /// and the certificate cache's entry for this reader is no longer trusted: the next opening checks
    /// the card's certificate again.
    fn authenticate(&mut self, pin: &Pin, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError> {
        let not_verified = |e: &CardError| matches!(e, CardError::WrongPin { .. } | CardError::PinBlocked);
        login(self, |card| card.verify_pin(pin), not_verified, scheme, digest)
    }

    /// The same login step with the code porteur typed on the reader's keypad ([`PinPad`]): the same
    /// rules (tries read first, a blocked card never asked, the card reset inside the transaction).
    fn authenticate_on_reader(
        &mut self,
        pad: &PinPad,
        scheme: SignScheme,
        digest: &[u8],
    ) -> Result<Vec<u8>, PinPadError> {
        let not_verified = |e: &PinPadError| {
            matches!(
                e,
                PinPadError::Reader(_)
                    | PinPadError::Card(CardError::WrongPin { .. } | CardError::PinBlocked)
            )
        };
        login(self, |card| card.verify_pin_on_reader(pad), not_verified, scheme, digest)
    }
}

/// The login step of [`CpxCard::authenticate`], whatever presents the code porteur; `not_verified` names
/// the errors that leave the code porteur unverified (they outweigh a failed reset: the user needs them).
fn login<C: CpxCard + ?Sized, E: From<CardError>>(
    card: &mut C,
    present: impl FnOnce(&mut C) -> Result<(), E>,
    not_verified: impl Fn(&E) -> bool,
    scheme: SignScheme,
    digest: &[u8],
) -> Result<Vec<u8>, E> {
    if digest.len() != scheme.digest_len() {
        return Err(CardError::DigestLength { scheme, len: digest.len() }.into());
    }
    if !card.schemes().contains(&scheme) {
        return Err(CardError::SchemeUnsupported { scheme }.into());
    }
    let tries_read = card.opened_mut().tries_read.take();
    let mut session = card.transport().transaction().map_err(CardError::from)?;
    let result = (|| {
        let status = match tries_read {
            Some(status) if !status.blocked() => Some(status),
            _ => card.read_pin_status()?,
        };
        match status {
            None => return Err(CardError::NoPinOnInterface.into()),
            Some(s) if s.blocked() => return Err(CardError::PinBlocked.into()),
            Some(_) => {}
        }
        session.reset_on_end();
        present(card)?;
        let signature = card.sign(scheme, digest)?;
        if let Err(detail) = crate::identity::verify_signature(card.certificate(), scheme, digest, &signature)
        {
            if let Some(vouched) = &card.opened().vouched {
                vouched.store(false, Ordering::SeqCst);
            }
            return Err(CardError::malformed(
                "signature",
                format!("does not verify with the card's certificate as read before (renewed on the card?): {detail}"),
            )
            .into());
        }
        Ok(signature)
    })();
    let reset = session.disposition() == cpx_pcsc::Disposition::Reset;
    let ended = session.end();
    if reset {
        card.end_session();
    }
    match (result, ended) {
        // A failed reset outweighs anything else (the card may be left verified), except a code porteur
        // not verified (wrong, blocked, not typed): the tries left are what the user needs.
        (Err(e), _) if not_verified(&e) => Err(e),
        (_, Err(e)) if reset => Err(CardError::from(e).into()),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(CardError::from(e).into()),
        (Ok(signature), Ok(())) => Ok(signature),
    }
}

/// Changing and unblocking the code porteur, for every generation: one PC/SC transaction each, ending
/// with a reset of the card (the card may hold a verified code: [`crate::pin_change`]).
pub trait CodePorteur: CpxCard {
    /// Replaces the code porteur: its tries read first (a blocked one gets nothing sent), then the
    /// generation's commands with the current code (a wrong one spends a try:
    /// [`CardError::WrongPin`]) and the new one.
    fn change_pin(&mut self, current: &Pin, new: &Pin) -> Result<(), PinChangeError> {
        // Tries read before (for the dialog) say nothing once the code porteur is changed.
        self.opened_mut().tries_read = None;
        secret_session(self, PinChangeError::code_refused, |card, session| {
            match card.read_pin_status()? {
                None => return Err(CardError::NoPinOnInterface.into()),
                Some(s) if s.blocked() => return Err(CardError::PinBlocked.into()),
                Some(_) => {}
            }
            session.reset_on_end();
            card.change_reference_data(current, new)
        })
    }

    /// Unblocks the code porteur (blocked or forgotten) with the code de déblocage and sets a new one:
    /// the tries of the code de déblocage read first (a blocked one gets nothing sent:
    /// [`PinChangeError::UnblockingCodeBlocked`]), then the generation's commands.
    fn unblock_pin(&mut self, code: &UnblockingCode, new: &Pin) -> Result<(), PinChangeError> {
        self.opened_mut().tries_read = None;
        secret_session(self, PinChangeError::code_refused, |card, session| {
            match card.unblock_status()? {
                None => return Err(CardError::NoPinOnInterface.into()),
                Some(s) if s.blocked() => return Err(PinChangeError::UnblockingCodeBlocked),
                Some(_) => {}
            }
            session.reset_on_end();
            card.reset_retry_counter(code, new)
        })
    }

    /// Replaces the code porteur with codes typed on the reader's keypad (PC/SC part 10 modify): the
    /// same rules as [`CodePorteur::change_pin`] (tries read first, a blocked one gets nothing sent, the
    /// card reset inside the transaction); the codes never cross the computer.
    fn change_pin_on_reader(&mut self, pad: &PinPad, modify: &PinPadModify) -> Result<(), PinPadChangeError> {
        self.opened_mut().tries_read = None;
        secret_session(self, PinPadChangeError::code_refused, |card, session| {
            match card.read_pin_status()? {
                None => return Err(CardError::NoPinOnInterface.into()),
                Some(s) if s.blocked() => return Err(CardError::PinBlocked.into()),
                Some(_) => {}
            }
            session.reset_on_end();
            card.change_reference_data_on_reader(pad, modify)
        })
    }

    /// Unblocks the code porteur with the code de déblocage and a new code typed twice on the reader's
    /// keypad: the same rules as [`CodePorteur::unblock_pin`] (its tries read first, a blocked one never
    /// presented, the card reset inside the transaction).
    fn unblock_pin_on_reader(
        &mut self,
        code: &UnblockingCode,
        modify: &PinPadModify,
    ) -> Result<(), PinPadChangeError> {
        self.opened_mut().tries_read = None;
        secret_session(self, PinPadChangeError::code_refused, |card, session| {
            match card.unblock_status()? {
                None => return Err(CardError::NoPinOnInterface.into()),
                Some(s) if s.blocked() => return Err(PinChangeError::UnblockingCodeBlocked.into()),
                Some(_) => {}
            }
            session.reset_on_end();
            card.reset_retry_counter_on_reader(code, modify)
        })
    }
}

impl<C: CpxCard + ?Sized> CodePorteur for C {}

/// Maps the status word of a VERIFY (with data) to its meaning.
pub(crate) fn verify_outcome(sw: cpx_pcsc::StatusWord) -> Result<(), CardError> {
    match sw.0 {
        0x9000 => Ok(()),
        0x6983 | 0x63C0 => Err(CardError::PinBlocked),
        s if s & 0xFFF0 == 0x63C0 => Err(CardError::WrongPin { tries_left: (s & 0x0F) as u8 }),
        0x6700 => Err(CardError::PinFormat),
        // Conditions of use not satisfied (a CPS4 after a reader hiccup): the code porteur is not presented
        // again on the user's behalf; the user tries again.
        0x6985 => Err(CardError::PinConditions),
        _ => Err(CardError::status("VERIFY", sw)),
    }
}

/// Maps the status word of a signing command.
pub(crate) fn signature_outcome(
    name: &'static str,
    r: cpx_pcsc::Response,
    modulus_bytes: usize,
) -> Result<Vec<u8>, CardError> {
    match r.sw.0 {
        0x9000 if r.data.len() == modulus_bytes => Ok(r.data),
        0x9000 => Err(CardError::malformed(
            "signature",
            format!("{} bytes for a {}-byte modulus", r.data.len(), modulus_bytes),
        )),
        0x6982 => Err(CardError::PinRequired),
        _ => Err(CardError::status(name, r.sw)),
    }
}
