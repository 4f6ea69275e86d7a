//! The domain's failure: what went wrong as a code of the catalogue, the tries left when the code porteur
//! was wrong, and a technical detail for the helpdesk. The card and the login fail with it; no HTTP here:
//! the loopback server maps a failure to its answer's status (`crate::loopback`).
#![forbid(unsafe_code)]

use cpx_card::{CardError, PinPadError};
use cpx_pcsc::pinpad::ReaderAnswer;

use crate::messages::Code;

/// A failure of the card, the login or the consent, as the catalogue names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong (the catalogue gives its texts and fix).
    pub code: Code,
    /// The tries left of the code porteur, when it was wrong (0: blocked).
    pub tries_left: Option<u8>,
    /// Technical detail for the helpdesk (never a secret).
    pub detail: Option<String>,
    /// The agent's own configuration is at fault (a policy site it cannot serve), not the request.
    pub agent_fault: bool,
}

impl Failure {
    /// `code`, with nothing more to say.
    pub fn new(code: Code) -> Self {
        Self { code, tries_left: None, detail: None, agent_fault: false }
    }

    /// SITE_NOT_CONFIGURED when the agent's own configuration of a policy site cannot serve (no endpoint,
    /// roots unreadable): a fault on the agent's side, not a refusal of the site's request.
    pub fn site_misconfigured(detail: impl Into<String>) -> Self {
        Self { agent_fault: true, ..Self::new(Code::SiteNotConfigured) }.detail(detail)
    }

    /// The same failure, with its technical detail.
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    /// The same failure, with the code porteur's tries left.
    pub fn tries_left(mut self, n: u8) -> Self {
        self.tries_left = Some(n);
        self
    }

    /// A failure of a card already opened (so named: `generation`): an unexpected status or unreadable
    /// data is « Carte CPS3 reconnue, mais … », not a generic card error.
    pub fn from_card(e: &CardError, generation: cpx_card::Generation) -> Self {
        Self::with_code(e, Code::about_card(e, Some(generation)))
    }

    /// A login whose code porteur was typed on the reader's keypad: the reader's own answers (timeout,
    /// cancel, a code of the wrong length, a structure it refused) and the card's, as the catalogue names
    /// them.
    pub fn from_keypad(e: &PinPadError, generation: Option<cpx_card::Generation>) -> Self {
        let reader = |a: &ReaderAnswer| {
            let code = match a {
                ReaderAnswer::Timeout => Code::PinpadTimeout,
                ReaderAnswer::Cancelled => Code::UserCancelled,
                ReaderAnswer::CodesDiffer | ReaderAnswer::Length => Code::PinFormat,
                ReaderAnswer::InvalidStructure => Code::CardRecognisedRefused(generation),
            };
            Self::new(code).detail(a.to_string())
        };
        match e {
            PinPadError::Reader(a) => reader(a),
            PinPadError::Card(c) => match generation {
                Some(generation) => Self::from_card(c, generation),
                None => Self::from(c),
            },
        }
    }

    fn with_code(e: &CardError, code: Code) -> Self {
        let tries_left = match e.root() {
            CardError::WrongPin { tries_left } => Some(*tries_left),
            CardError::PinBlocked => Some(0),
            _ => None,
        };
        Self { tries_left, ..Self::new(code) }.detail(e.to_string())
    }
}

impl From<&CardError> for Failure {
    fn from(e: &CardError) -> Self {
        Self::with_code(e, Code::from(e))
    }
}
