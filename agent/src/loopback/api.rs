//! Typed errors of the loopback API: a stable code, the French and English messages and the fix from the
//! catalogue, whether retrying can help, and the tries left when the code porteur was wrong. [`Problem`]
//! is the one JSON form of a code, for the API, the CLI's `--json` and the tray.

use cpx_card::CardError;
use serde::Serialize;

use crate::card::mtls::MtlsError;
use crate::card::pin_prompt::PromptError;
use crate::messages::{Code, Lang};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    /// The HTTP status: the code's own ([`Code::http_status`]) unless a constructor says otherwise.
    http: u16,
    pub tries_left: Option<u8>,
    /// Technical detail for the helpdesk (never a secret).
    pub detail: Option<String>,
}

/// What was wrong with a request's form: one code, BAD_REQUEST, whose HTTP status says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not `Content-Type: application/json` (415).
    NotJson,
    /// A body over the agent's limit (413).
    TooLarge,
    /// A body announced and not sent in time (408).
    TooSlow,
    /// JSON without a `challenge` string (400).
    NoChallenge,
}

impl ApiError {
    /// `code`, answered with its own HTTP status.
    pub fn new(code: Code) -> Self {
        Self { code, http: code.http_status(), tries_left: None, detail: None }
    }

    /// BAD_REQUEST, with the status and the detail of what was wrong.
    pub fn malformed(what: Malformed) -> Self {
        let (http, detail) = match what {
            Malformed::NotJson => (415, "Content-Type must be application/json"),
            Malformed::TooLarge => (413, "body too large"),
            Malformed::TooSlow => (408, "request body not received in time"),
            Malformed::NoChallenge => (400, "expected {\"challenge\": \"…\"}"),
        };
        Self { http, ..Self::new(Code::BadRequest) }.detail(detail)
    }

    /// SITE_NOT_CONFIGURED when the agent's own configuration of a policy site cannot serve (no endpoint,
    /// roots unreadable): a fault on the agent's side (500), not a refusal of the site's request (403).
    pub fn site_misconfigured(detail: impl Into<String>) -> Self {
        Self { http: 500, ..Self::new(Code::SiteNotConfigured) }.detail(detail)
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub fn tries_left(mut self, n: u8) -> Self {
        self.tries_left = Some(n);
        self
    }

    /// The HTTP status of the answer.
    pub fn http_status(&self) -> u16 {
        self.http
    }

    /// The error's JSON form (the `error` member of an answer).
    pub fn problem(&self, lang: Lang) -> Problem {
        Problem { tries_left: self.tries_left, detail: self.detail.clone(), ..Problem::new(self.code, lang) }
    }

    /// The answer's body: `{"error": …}`.
    pub fn to_json(&self, lang: Lang) -> serde_json::Value {
        self.problem(lang).answer()
    }
}

/// A code in JSON, the same everywhere (docs/openapi.yaml `ErrorBody`): the code, its message in the
/// chosen language and in both, the fix, whether retrying can help, and what the case adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: Code,
    pub message: &'static str,
    pub message_fr: &'static str,
    pub message_en: &'static str,
    pub fix: &'static str,
    pub retriable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// USE_USER_AGENT (the broker): the port of the caller's agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_port: Option<u16>,
}

impl Problem {
    pub fn new(code: Code, lang: Lang) -> Self {
        let e = code.entry();
        Self {
            code,
            message: e.message.get(lang),
            message_fr: e.message.fr,
            message_en: e.message.en,
            fix: e.fix.get(lang),
            retriable: e.retriable,
            tries_left: None,
            detail: None,
            agent_port: None,
        }
    }

    /// As JSON.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// An API answer's body: `{"error": …}`.
    pub fn answer(&self) -> serde_json::Value {
        serde_json::json!({ "error": self })
    }
}

impl ApiError {
    /// A failure of a card already opened (so named: `generation`): an unexpected status or unreadable
    /// data is « Carte CPS3 reconnue, mais … », not a generic card error.
    pub fn from_card(e: &CardError, generation: cpx_card::Generation) -> Self {
        Self::with_code(e, Code::about_card(e, Some(generation)))
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

impl From<&CardError> for ApiError {
    fn from(e: &CardError) -> Self {
        Self::with_code(e, Code::from(e))
    }
}

impl From<PromptError> for ApiError {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::Cancelled => ApiError::new(Code::UserCancelled),
            PromptError::Unavailable(d) => ApiError::new(Code::PromptUnavailable).detail(d),
        }
    }
}

impl From<MtlsError> for ApiError {
    fn from(e: MtlsError) -> Self {
        match &e {
            MtlsError::Card(c) => ApiError::from(c),
            MtlsError::Proxy(p) => ApiError::new(p.code()).detail(e.to_string()),
            MtlsError::Unreachable(..) => ApiError::new(Code::PortalUnreachable).detail(e.to_string()),
            MtlsError::Tls(..) | MtlsError::BadAnswer(_) => {
                ApiError::new(Code::PortalTls).detail(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_serialise_as_documented() {
        let e = ApiError { tries_left: Some(2), ..ApiError::new(Code::PinWrong) }.detail("63 C2");
        assert_eq!(e.http_status(), 403);
        let v = e.to_json(Lang::En);
        let body = &v["error"];
        assert_eq!(body["code"], "PIN_WRONG");
        assert_eq!(body["message"], Code::PinWrong.entry().message.en);
        assert_eq!(body["message_fr"], Code::PinWrong.entry().message.fr);
        assert_eq!(body["tries_left"], 2);
        assert_eq!(body["detail"], "63 C2");
        assert!(body.get("agent_port").is_none(), "absent, not null: {v}");
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        for key in ["code", "message", "message_fr", "message_en", "fix", "retriable"] {
            assert!(keys.contains(&key), "{key} in {v}");
        }
        let fr = Problem::new(Code::Busy, Lang::Fr).to_value();
        assert_eq!(fr["message"], Code::Busy.entry().message.fr);
        assert!(fr.get("tries_left").is_none() && fr.get("detail").is_none(), "{fr}");
    }

    #[test]
    fn statuses_come_from_the_code_or_say_why_not() {
        assert_eq!(ApiError::new(Code::Busy).http_status(), 409);
        assert_eq!(ApiError::new(Code::SiteNotConfigured).http_status(), 403);
        assert_eq!(ApiError::site_misconfigured("no server_roots").http_status(), 500);
        for (what, status) in [
            (Malformed::NotJson, 415),
            (Malformed::TooLarge, 413),
            (Malformed::TooSlow, 408),
            (Malformed::NoChallenge, 400),
        ] {
            let e = ApiError::malformed(what);
            assert_eq!((e.code, e.http_status()), (Code::BadRequest, status), "{what:?}");
            assert!(e.detail.is_some());
        }
        let wrong = ApiError::from(&CardError::WrongPin { tries_left: 1 });
        assert_eq!((wrong.code, wrong.http_status(), wrong.tries_left), (Code::PinWrong, 403, Some(1)));
    }
}
