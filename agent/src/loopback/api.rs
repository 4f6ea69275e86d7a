//! Typed errors of the loopback API: a stable code, the French and English messages and the fix from the
//! catalogue, whether retrying can help, and the tries left when the code porteur was wrong. [`Problem`]
//! is the one JSON form of a code, for the API, the CLI's `--json` and the tray.

use serde::Serialize;

use crate::failure::Failure;
use crate::messages::{Code, Lang};

/// A failure as the loopback API answers it: the domain's [`Failure`] and its HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: Code,
    /// The HTTP status: the code's own ([`http_status`]) unless the failure or a constructor says otherwise.
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
        Self::from(Failure::new(code))
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

    /// The same error, with its technical detail.
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
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
    /// The code.
    pub code: Code,
    /// Its message in the chosen language.
    pub message: &'static str,
    /// Its message in French.
    pub message_fr: &'static str,
    /// Its message in English.
    pub message_en: &'static str,
    /// What to do, in the chosen language.
    pub fix: &'static str,
    /// Whether trying again can help.
    pub retriable: bool,
    /// The code porteur's tries left, when it was wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
    /// Technical detail for the helpdesk (never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// USE_USER_AGENT (the broker): the port of the caller's agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_port: Option<u16>,
}

impl Problem {
    /// `code` in `lang`, with nothing more to say.
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

impl From<Failure> for ApiError {
    /// The server's mapping: the code's status, 500 when the agent's own configuration is at fault.
    fn from(f: Failure) -> Self {
        let http = if f.agent_fault { 500 } else { http_status(f.code) };
        Self { code: f.code, http, tries_left: f.tries_left, detail: f.detail }
    }
}

/// The HTTP status the loopback API answers a code with: the server's mapping (the domain's [`Failure`]
/// speaks no HTTP). Two codes may also answer another status, each from one constructor that says why: BAD_REQUEST (what was wrong
/// with the request: 408, 413, 415) and SITE_NOT_CONFIGURED (500 when the agent's own configuration of
/// a policy site is unusable, rather than the site asking a login its configuration does not allow).
pub fn http_status(code: Code) -> u16 {
    use Code::*;
    match code {
        BadRequest | ChallengeInvalid => 400,
        PinBlocked
        | PinWrong
        | Contactless
        | CertificateExpired
        | CertificateNotYetValid
        | OtherUser
        | HostNotAllowed
        | OriginNotAllowed
        | SiteRefused
        | SiteNotConfigured => 403,
        NotFound => 404,
        Busy | UserCancelled | PinpadTimeout => 409,
        UseUserAgent => 421,
        LoopbackNotTrusted => 426,
        ConsentTooOften => 429,
        AgentError => 500,
        // Card failures: what the agent found on the card side (the page's request was fine).
        ReaderUnavailable
        | CardNotCpx
        | CardInUse
        | CardCommunication
        | CardMalformed
        | CardUnexpectedStatus
        | CardIncomplete
        | PinFormat
        | PinRequired
        | Unsupported
        | CardRecognisedUnreadable(_)
        | CardRecognisedNoCertificate(_)
        | CardRecognisedRefused(_)
        | PinNotAccepted
        | PortalUnreachable
        | PortalTls
        | ProxyUnreachable
        | ProxyRefused
        | ProxyAuthRequired
        | ProxyAuthFailed => 502,
        // Nothing to use yet, or not now: a reader, a card, the service, a prompt, the user's agent.
        PcscServiceStopped | PcscServiceFault | NoReader | NoCard | CardRemoved | CardMute | CardTimeout
        | NoCpxCard | PromptUnavailable | UserAgentNotRunning => 503,
        // Said by `diagnose`, the CLI or the page client, never answered by the API.
        CardUnlistedVariant | PinLastTry | CardTestOnProduction | AgentPortTaken | ClockSkew
        | PolicyMalformed | AgentUnreachable | LocalNetworkBlocked | KeyringUnavailable => 500,
        UnblockCodeWrong | UnblockCodeBlocked | UnblockCodeFormat | NewPinMismatch => 500,
    }
}

#[cfg(test)]
mod tests {
    use cpx_card::CardError;

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
        assert_eq!(ApiError::from(Failure::site_misconfigured("no server_roots")).http_status(), 500);
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
        let wrong = ApiError::from(Failure::from(&CardError::WrongPin { tries_left: 1 }));
        assert_eq!((wrong.code, wrong.http_status(), wrong.tries_left), (Code::PinWrong, 403, Some(1)));
    }

    /// Every code answers an HTTP error status; the ones a page reacts to keep their documented status.
    #[test]
    fn http_statuses() {
        for code in Code::ALL {
            assert!((400..600).contains(&http_status(code)), "{code:?}");
        }
        assert_eq!(http_status(Code::Busy), 409);
        assert_eq!(http_status(Code::LoopbackNotTrusted), 426);
        assert_eq!(http_status(Code::UseUserAgent), 421);
        assert_eq!(http_status(Code::ConsentTooOften), 429);
        assert_eq!(http_status(Code::PinWrong), 403);
        assert_eq!(http_status(Code::NoCard), 503);
        assert_eq!(http_status(Code::CardRecognisedRefused(None)), 502);
    }
}
