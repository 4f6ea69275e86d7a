//! Errors of the card driver: what went wrong with the card, typed so that the agent can tell the user
//! what to do (the wording lives in the agent's message catalogue).

use cpx_pcsc::{PcscError, StatusWord};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CardError {
    /// The PC/SC layer failed (service, reader, card removed, timeout…).
    #[error(transparent)]
    Pcsc(#[from] PcscError),
    /// Neither the ATR table nor the EF.SN.ICC issuer says this is a CPx card.
    #[error("not a CPx card (ATR {atr}): {reason}")]
    NotCpx { atr: String, reason: String },
    /// The card answered a command with a status word the driver did not expect.
    #[error("{command}: unexpected status {sw}")]
    UnexpectedStatus {
        command: &'static str,
        #[serde(serialize_with = "sw_hex")]
        sw: StatusWord,
    },
    /// A structure read from the card (TLV, FCP, PKCS#15, EF.SN.ICC, certificate…) does not parse.
    #[error("malformed {what} on the card: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// The card's PKCS#15 structure lacks an object the operation needs.
    #[error("the card has no {what}")]
    Missing { what: &'static str },
    /// The code porteur is blocked: no VERIFY was (or will be) sent.
    #[error("code porteur blocked")]
    PinBlocked,
    /// The code porteur was wrong.
    #[error("wrong code porteur, {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    /// The code porteur given is not 4 digits (nothing was sent to the card).
    #[error("the code porteur is 4 digits")]
    PinFormat,
    /// The operation needs a verified code porteur.
    #[error("code porteur not verified")]
    PinRequired,
    /// The card (or its interface) cannot do this.
    #[error("not supported by this card: {what}")]
    Unsupported { what: String },
}

fn sw_hex<S: serde::Serializer>(sw: &StatusWord, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sw.to_string())
}

impl CardError {
    pub fn status(command: &'static str, sw: StatusWord) -> Self {
        Self::UnexpectedStatus { command, sw }
    }
    pub fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed { what, detail: detail.into() }
    }
    /// True when the card went away or changed: the session must be opened again.
    pub fn card_lost(&self) -> bool {
        matches!(self, Self::Pcsc(e) if e.card_lost())
    }
}
