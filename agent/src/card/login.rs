//! The two ways a page logs in with the card: mTLS (the agent opens the card-authenticated channel to the
//! portal's endpoint and posts the challenge and origin through it) and the signed token (the card signs
//! `SHA-256(origin) ‖ SHA-256(challenge)` for portals that cannot terminate mTLS). Both refuse before any
//! PIN prompt when the card cannot succeed (blocked code porteur, expired certificate, contactless).

use std::time::Duration;

use base64::Engine;
use cpx_card::{CpxCard, SignScheme};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::card::card_service::CardService;
use crate::card::mtls::{self, PinEntry};
use crate::card::pin_prompt::{CardChoice, PinPrompt, PinRequest};
use crate::card::pinpad::{PinPadPolicy, PinPadUse};
use crate::card::rules::{login_blockers, now_unix};
use crate::failure::Failure;
use crate::messages::{Code, Lang};
use crate::platform::config::Site;
use crate::platform::proxy::ProxySetting;

/// The answer to an mTLS login (docs/openapi.yaml `LoginResult`): the portal's answer as it came.
#[derive(Debug, Clone, Serialize)]
pub struct LoginDone {
    /// Always `done`: the portal answered (whatever its status).
    pub status: &'static str,
    /// The card type: `CPS`, `CPE`, `CPA`, `CPF`, `CSA`, or `CPX` when not known.
    pub card_type: &'static str,
    /// The card generation: `CPS3` or `CPS4`.
    pub generation: &'static str,
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls: String,
    pub portal_status: u16,
    /// The portal's JSON answer, or `{"text": …}` when it is not JSON.
    pub portal: Value,
    pub timings_ms: Timings,
}

/// Where the time of a login went, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    pub total: f64,
    /// Finding and reading the card, then signing.
    pub card: f64,
    /// The PIN prompt.
    pub prompt: f64,
}

/// The signed token (docs/openapi.yaml `Token`).
#[derive(Debug, Clone, Serialize)]
pub struct SignedToken {
    /// `cpx-token:1`.
    pub format: &'static str,
    /// `RS256` or `PS256`.
    pub algorithm: &'static str,
    /// The card's authentication certificate, base64 DER.
    pub certificate: String,
    /// base64.
    pub signature: String,
    /// The card type (`CPS`, `CPE`…, `CPX` when not known).
    pub card_type: &'static str,
    /// The card generation: `CPS3` or `CPS4`.
    pub generation: &'static str,
    pub agent_version: &'static str,
}

/// What a login answers the page.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum LoginAnswer {
    Mtls(LoginDone),
    Token(SignedToken),
}

/// A challenge is at least 256 bits, base64 or base64url, as the portal's server generated it.
pub fn check_challenge(challenge: &str) -> Result<(), Failure> {
    let bad = || Failure::new(Code::ChallengeInvalid);
    if challenge.len() > 512 {
        return Err(bad());
    }
    let trimmed = challenge.trim_end_matches('=');
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| bad())?;
    if decoded.len() < 32 {
        return Err(bad());
    }
    Ok(())
}

/// What the page and the portal are told about the card's type: `CPS`, `CPE`, `CPA`, `CPF`, `CSA`, `CPX`.
pub fn card_type(card: &dyn CpxCard) -> &'static str {
    match card.info().card_type {
        cpx_card::CardType::Cps => "CPS",
        cpx_card::CardType::Cpf => "CPF",
        cpx_card::CardType::Cpe => "CPE",
        cpx_card::CardType::Cpa => "CPA",
        cpx_card::CardType::Csa => "CSA",
        cpx_card::CardType::Cpx => "CPX",
    }
}

/// The card's generation, for the page and the portal: `CPS3` or `CPS4`.
pub fn generation(card: &dyn CpxCard) -> &'static str {
    card.info().generation.name()
}

/// The CPx card to log in with (the user picks when there are several), checked before anything else is
/// asked of the user, and its tries left.
fn usable_card(
    cards: &CardService,
    prompt: &dyn PinPrompt,
    origin: &str,
    lang: Lang,
) -> Result<(Box<dyn CpxCard>, cpx_card::PinStatus), Failure> {
    let mut present = cards.cpx_cards()?;
    let index = if present.len() > 1 {
        let labels = present
            .iter()
            .map(|c| format!("{} — {}", c.identity().display_name(), c.info().type_name()))
            .collect();
        prompt.choose_card(&CardChoice { origin: origin.to_owned(), cards: labels, lang })?
    } else {
        0
    };
    if index >= present.len() {
        return Err(Failure::new(Code::NoCpxCard));
    }
    let mut card = present.swap_remove(index);
    tracing::debug!(serial = %card.info().serial, holder = %card.identity().display_name(), national_id = %card.identity().national_id, "card chosen");
    if let Some(&code) = login_blockers(card.as_ref(), now_unix()).first() {
        return Err(Failure::new(code));
    }
    let generation = card.info().generation;
    let status = card
        .pin_status()
        .map_err(|e| Failure::from_card(&e, generation))?
        .ok_or_else(|| Failure::new(Code::Contactless))?;
    if status.blocked() {
        prompt.show_blocked(&pin_request(card.as_ref(), status, origin, lang));
        return Err(Failure::new(Code::PinBlocked).tries_left(0));
    }
    Ok((card, status))
}

fn pin_request(card: &dyn CpxCard, status: cpx_card::PinStatus, origin: &str, lang: Lang) -> PinRequest {
    PinRequest {
        origin: origin.to_owned(),
        holder: card.identity().display_name(),
        card: card.info().type_name(),
        tries_left: status.tries_left,
        max_tries: status.max_tries,
        wrong_pin: false,
        lang,
    }
}

/// Seconds a PIN-pad reader is asked to wait for the code porteur (`bTimerOut`; a reader may wait less).
pub(crate) const KEYPAD_SECONDS: u8 = 30;

/// The reader's keypad, when it is to take the code porteur: the reader lists
/// `FEATURE_VERIFY_PIN_DIRECT`, it is not in the quirk list, and the policy allows it
/// ([`PinPadUse::decide`]). A reader that cannot say (a failed feature request) is used as a plain reader;
/// with `pinpad = "off"` the reader is not even asked (IT's way out for a driver that mishandles
/// `SCardControl`).
pub(crate) fn keypad(card: &mut dyn CpxCard, policy: PinPadPolicy) -> Option<cpx_card::PinPad> {
    if policy == PinPadPolicy::Off {
        return None;
    }
    let features = match cpx_pcsc::pinpad::features(card.transport()) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(error = %e, "the reader's features could not be read: the agent's prompt asks");
            return None;
        }
    };
    let reader = card.transport().reader().unwrap_or_default().to_owned();
    let decided = PinPadUse::decide(policy, &reader, &features);
    tracing::debug!(reader = %reader, pinpad = ?decided, "how the code porteur is entered");
    decided.control().map(|verify| cpx_card::PinPad { verify, timeout_secs: KEYPAD_SECONDS })
}

/// Has the code porteur entered — in the prompt, or on the reader's keypad (`keypad`) while the prompt
/// shows a notice — and hands the entry to `attempt` (which presents it to the card). After a wrong code
/// the prompt may ask again, saying so and with the tries left; a card that ends blocked is shown as
/// blocked. Returns the attempt's result and the time spent in the prompt (on the keypad, the typing is
/// the card's time: the reader holds the card while it waits).
fn with_pin<T>(
    prompt: &dyn PinPrompt,
    mut request: PinRequest,
    keypad: Option<cpx_card::PinPad>,
    mut attempt: impl FnMut(PinEntry) -> Result<T, Failure>,
) -> Result<(T, Duration), Failure> {
    let mut in_prompt = Duration::ZERO;
    loop {
        let result = match keypad {
            Some(pad) => {
                let _notice = prompt.show_keypad(&request)?;
                attempt(PinEntry::Keypad(pad))
            }
            None => {
                let asked = std::time::Instant::now();
                let pin = prompt.ask(&request)?;
                in_prompt += asked.elapsed();
                attempt(PinEntry::Typed(pin))
            }
        };
        match result {
            Err(e) if e.code == Code::PinBlocked || (e.code == Code::PinWrong && e.tries_left == Some(0)) => {
                request.tries_left = 0;
                prompt.show_blocked(&request);
                return Err(e);
            }
            Err(e) if e.code == Code::PinWrong && prompt.asks_again_after_wrong_pin() => {
                request.tries_left = e.tries_left.unwrap_or(request.tries_left.saturating_sub(1));
                request.wrong_pin = true;
            }
            result => return result.map(|v| (v, in_prompt)),
        }
    }
}

/// The roots that sign a site's mTLS endpoint certificate (its `server_roots` file).
pub fn load_roots(site: &Site) -> Result<rustls::RootCertStore, Failure> {
    use rustls::pki_types::pem::PemObject;
    let not_configured = |d: String| Failure::site_misconfigured(d);
    let path =
        site.server_roots.as_ref().ok_or_else(|| not_configured("no server_roots for this site".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| not_configured(format!("{}: {e}", path.display())))?
    {
        let cert = cert.map_err(|e| not_configured(format!("{}: {e}", path.display())))?;
        roots.add(cert).map_err(|e| not_configured(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(not_configured(format!("{}: no certificate", path.display())));
    }
    Ok(roots)
}

/// mTLS login: PIN (on the reader's keypad when it has one and `pinpad` allows), then the
/// card-authenticated POST of `{challenge, origin, agent_version, card_type, generation}`.
#[allow(clippy::too_many_arguments)]
pub fn authenticate(
    cards: &CardService,
    prompt: &dyn PinPrompt,
    site: &Site,
    proxy: &ProxySetting,
    pinpad: PinPadPolicy,
    origin: &str,
    challenge: &str,
    lang: Lang,
) -> Result<LoginDone, Failure> {
    let started = std::time::Instant::now();
    let endpoint = site
        .mtls_endpoint
        .as_ref()
        .ok_or_else(|| Failure::site_misconfigured("no mtls_endpoint for this site"))?;
    let roots = load_roots(site)?;
    let (mut card, status) = usable_card(cards, prompt, origin, lang)?;
    let keypad = keypad(card.as_mut(), pinpad);
    let card_ready = started.elapsed();
    let (kind, platform) = (card_type(card.as_ref()), self::generation(card.as_ref()));
    let generation = card.info().generation;
    let request = pin_request(card.as_ref(), status, origin, lang);
    let body = json!({"challenge": challenge, "origin": origin, "agent_version": env!("CARGO_PKG_VERSION"), "card_type": kind, "generation": platform}).to_string();
    // The card goes into the TLS client and comes back after each attempt.
    let mut card = Some(card);
    // The reader waits for the keypad inside the handshake: the exchange may take that long more.
    let wait = Duration::from_secs(15)
        + keypad.map_or(Duration::ZERO, |p| Duration::from_secs(p.timeout_secs.into()));
    let (answer, prompt_time) = with_pin(prompt, request, keypad, |pin| {
        let taken = card.take().ok_or_else(|| Failure::new(Code::AgentError))?;
        let (back, answer) =
            mtls::post_with_card(endpoint, proxy, roots.clone(), taken, pin, body.as_bytes(), wait);
        card = Some(back);
        answer.map_err(|e| match e {
            mtls::MtlsError::Card(c) => Failure::from_card(&c, generation),
            mtls::MtlsError::Keypad(a) => {
                Failure::from_keypad(&cpx_card::PinPadError::Reader(a), Some(generation))
            }
            other => Failure::from(other),
        })
    })?;
    let portal: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| json!({"text": String::from_utf8_lossy(&answer.body)}));
    let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    // Where the time went: the card (finding and reading it, then signing), the PIN prompt, the rest
    // (TLS, the portal, the agent itself).
    let timings_ms = Timings {
        total: ms(started.elapsed()),
        card: ms(card_ready + answer.card_time),
        prompt: ms(prompt_time),
    };
    Ok(LoginDone {
        status: "done",
        card_type: kind,
        generation: platform,
        tls: answer.tls_version,
        portal_status: answer.status,
        portal,
        timings_ms,
    })
}

/// Signed-token login: the card signs `SHA-256(origin) ‖ SHA-256(challenge)`.
pub fn signed_token(
    cards: &CardService,
    prompt: &dyn PinPrompt,
    pinpad: PinPadPolicy,
    origin: &str,
    challenge: &str,
    lang: Lang,
) -> Result<SignedToken, Failure> {
    let (mut card, status) = usable_card(cards, prompt, origin, lang)?;
    let keypad = keypad(card.as_mut(), pinpad);
    let scheme = card.schemes()[0];
    let signed = [Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat();
    let digest = Sha256::digest(&signed);
    let request = pin_request(card.as_ref(), status, origin, lang);
    let generation = card.info().generation;
    let (signature, _) = with_pin(prompt, request, keypad, |entry| match entry {
        PinEntry::Typed(pin) => {
            card.authenticate(&pin, scheme, &digest).map_err(|e| Failure::from_card(&e, generation))
        }
        PinEntry::Keypad(pad) => card
            .authenticate_on_reader(&pad, scheme, &digest)
            .map_err(|e| Failure::from_keypad(&e, Some(generation))),
    })?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(SignedToken {
        format: "cpx-token:1",
        algorithm: if scheme == SignScheme::RsaPssSha256 { "PS256" } else { "RS256" },
        certificate: b64.encode(card.certificate()),
        signature: b64.encode(signature),
        card_type: card_type(card.as_ref()),
        generation: self::generation(card.as_ref()),
        agent_version: env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_need_256_bits() {
        let b64 = base64::engine::general_purpose::STANDARD;
        assert!(check_challenge(&b64.encode([7u8; 32])).is_ok());
        assert!(
            check_challenge(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xFBu8; 40])).is_ok()
        );
        assert!(check_challenge(&b64.encode([7u8; 31])).is_err());
        assert!(check_challenge("not base64!").is_err());
        assert!(check_challenge(&"A".repeat(600)).is_err());
    }
}
