//! Typed errors of the loopback API: a stable code, the French and English messages and the fix from the
//! catalogue, whether retrying can help, and the tries left when the code porteur was wrong.

use cpx_card::CardError;
use serde_json::json;

use crate::messages::{Code, Lang};
use crate::mtls::MtlsError;
use crate::pin_prompt::PromptError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    pub http: u16,
    pub tries_left: Option<u8>,
    /// Technical detail for the helpdesk (never a secret).
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(code: Code, http: u16) -> Self {
        Self { code, http, tries_left: None, detail: None }
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub fn to_json(&self, lang: Lang) -> serde_json::Value {
        let e = self.code.entry();
        let mut v = json!({"error": {
            "code": self.code,
            "message": e.message.get(lang),
            "message_fr": e.message.fr,
            "message_en": e.message.en,
            "fix": e.fix.get(lang),
            "retriable": e.retriable,
        }});
        if let Some(n) = self.tries_left {
            v["error"]["tries_left"] = n.into();
        }
        if let Some(d) = &self.detail {
            v["error"]["detail"] = d.as_str().into();
        }
        v
    }
}

impl ApiError {
    /// A failure of a card already opened (so named: `generation`): an unexpected status or unreadable
    /// data is « Carte CPS3 reconnue, mais … », not a generic card error.
    pub fn from_card(e: &CardError, generation: cpx_card::Generation) -> Self {
        Self::with_code(e, Code::about_card(e, Some(generation)))
    }

    fn with_code(e: &CardError, code: Code) -> Self {
        let http = match code {
            Code::PinWrong
            | Code::PinBlocked
            | Code::CertificateExpired
            | Code::CertificateNotYetValid
            | Code::Contactless => 403,
            Code::PcscServiceStopped
            | Code::NoReader
            | Code::NoCard
            | Code::CardRemoved
            | Code::CardMute
            | Code::CardTimeout => 503,
            _ => 502,
        };
        let tries_left = match e.root() {
            CardError::WrongPin { tries_left } => Some(*tries_left),
            CardError::PinBlocked => Some(0),
            _ => None,
        };
        Self { code, http, tries_left, detail: Some(e.to_string()) }
    }
}

impl From<&CardError> for ApiError {
    fn from(e: &CardError) -> Self {
        Self::with_code(e, Code::from(e))
    }
}

impl From<PromptError> for ApiError {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::Cancelled => ApiError::new(Code::UserCancelled, 409),
            PromptError::Unavailable(d) => ApiError::new(Code::PromptUnavailable, 503).detail(d),
        }
    }
}

impl From<MtlsError> for ApiError {
    fn from(e: MtlsError) -> Self {
        match &e {
            MtlsError::Card(c) => ApiError::from(c),
            MtlsError::Unreachable(..) => ApiError::new(Code::PortalUnreachable, 502).detail(e.to_string()),
            MtlsError::Tls(..) | MtlsError::BadAnswer(_) => {
                ApiError::new(Code::PortalTls, 502).detail(e.to_string())
            }
        }
    }
}
