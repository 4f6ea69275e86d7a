//! Errors of the card driver: what went wrong with the card, typed so that the agent can tell the user
//! what to do (the wording lives in the agent's message catalogue).

use cpx_pcsc::{PcscError, StatusWord};
use serde::Serialize;

use crate::atr::Generation;
use crate::scheme::SignScheme;

/// A failure of the card driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CardError {
    /// The PC/SC layer failed (service, reader, card removed, timeout…).
    #[error(transparent)]
    Pcsc(#[from] PcscError),
    /// Neither the ATR table nor the EF.SN.ICC issuer says this is a CPx card.
    #[error("not a CPx card (ATR {atr}): {reason}")]
    NotCpx {
        /// The card's ATR, hexadecimal.
        atr: String,
        /// Why it is not one.
        reason: String,
    },
    /// The card answered a command with a status word the driver did not expect.
    #[error("{command}: unexpected status {sw}")]
    UnexpectedStatus {
        /// The command, by name (« SELECT EF.DIR »).
        command: &'static str,
        /// The status word the card answered.
        #[serde(serialize_with = "sw_hex")]
        sw: StatusWord,
    },
    /// A structure read from the card (TLV, FCP, PKCS#15, EF.SN.ICC, certificate…) does not parse.
    #[error("malformed {what} on the card: {detail}")]
    Malformed {
        /// What was read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The card's PKCS#15 structure lacks an object the operation needs (EF.SN.ICC, the CPx
    /// application, the code porteur object).
    #[error("the card has no {what}")]
    Missing {
        /// The object missing.
        what: &'static str,
    },
    /// The card's PKCS#15 structure has no authentication key, or no certificate for it: it cannot log in.
    #[error("the card has no {}", .what.name())]
    MissingCredential {
        /// The key or the certificate.
        what: Credential,
    },
    /// The code porteur is blocked: no VERIFY was (or will be) sent.
    #[error("code porteur blocked")]
    PinBlocked,
    /// The code porteur was wrong.
    #[error("wrong code porteur, {tries_left} tries left")]
    WrongPin {
        /// Tries left before the code porteur is blocked.
        tries_left: u8,
    },
    /// The code porteur given is not 4 digits (nothing was sent to the card).
    #[error("the code porteur is 4 digits")]
    PinFormat,
    /// The operation needs a verified code porteur.
    #[error("code porteur not verified")]
    PinRequired,
    /// The card has no code porteur on this interface (a CPS3 read contactless, a CPS4 whose PKCS#15 names
    /// none): it cannot log in through this reader.
    #[error("no code porteur on this interface")]
    NoPinOnInterface,
    /// A signature was asked over the contactless interface, which does not sign.
    #[error("no signature over the contactless interface")]
    ContactlessSignature,
    /// The card's authentication key cannot produce this signature scheme (RSA-PSS on a CPS3…).
    #[error("{scheme:?} not supported by this card")]
    SchemeUnsupported {
        /// The scheme asked for.
        scheme: SignScheme,
    },
    /// The digest given is not as long as the scheme's hash (nothing was sent to the card).
    #[error("digest of {len} bytes for {scheme:?}")]
    DigestLength {
        /// The scheme asked for.
        scheme: SignScheme,
        /// The digest's length, in bytes.
        len: usize,
    },
    /// The card answered `69 85` (conditions of use not satisfied) to the code porteur: it was not
    /// presented again (a code porteur is never retried on the user's behalf); the user may try again.
    #[error("the card refused the code porteur for now (69 85); try again")]
    PinConditions,
    /// The ATR table or EF.SN.ICC already said this is a CPx card (of this generation when known) when
    /// a later step failed: the failure is about the card's content, never about how it is inserted.
    #[error("{} card recognised, but: {source}", generation_name(*.generation))]
    Recognised {
        /// The generation, when already known.
        generation: Option<Generation>,
        /// What failed.
        source: Box<CardError>,
    },
}

/// The login credential a card may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// The private key whose usage is authentication.
    AuthenticationKey,
    /// The certificate of that key.
    AuthenticationCertificate,
}

impl Credential {
    /// Its name in the error texts.
    pub fn name(self) -> &'static str {
        match self {
            Self::AuthenticationKey => "authentication key",
            Self::AuthenticationCertificate => "authentication certificate",
        }
    }
}

/// "CPS3", "CPS4", or "CPx" when the generation is not known yet (a variant recognised by its issuer).
pub fn generation_name(generation: Option<Generation>) -> &'static str {
    generation.map_or("CPx", Generation::name)
}

fn sw_hex<S: serde::Serializer>(sw: &StatusWord, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sw.to_string())
}

impl CardError {
    /// A status word the driver did not expect in answer to `command`.
    pub fn status(command: &'static str, sw: StatusWord) -> Self {
        Self::UnexpectedStatus { command, sw }
    }
    /// A structure read from the card that does not parse.
    pub fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed { what, detail: detail.into() }
    }
    /// True when the card went away or changed: the session must be opened again.
    pub fn card_lost(&self) -> bool {
        matches!(self.root(), Self::Pcsc(e) if e.card_lost())
    }

    /// The failure itself, without the recognition that wraps it.
    pub fn root(&self) -> &CardError {
        match self {
            Self::Recognised { source, .. } => source.root(),
            other => other,
        }
    }

    /// The generation named before the failure, if the card was recognised as a CPx.
    pub fn recognised(&self) -> Option<Option<Generation>> {
        match self {
            Self::Recognised { generation, .. } => Some(*generation),
            _ => None,
        }
    }

    /// Marks a failure that happened after the card was recognised. Kept as it is: one already marked,
    /// one that says the card is not a CPx after all, and a PC/SC failure (removed, mute, timeout), which
    /// is about the card's presence rather than its content.
    pub fn after_recognition(self, generation: Option<Generation>) -> Self {
        match self {
            Self::Recognised { .. } | Self::NotCpx { .. } | Self::Pcsc(_) => self,
            other => Self::Recognised { generation, source: Box::new(other) },
        }
    }
}
