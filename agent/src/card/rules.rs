//! The card rules written once: whether a card can log in before its code porteur is asked (its
//! certificate's dates, its interface), and the clock they are judged by. The scan reports them, the login
//! refuses on them.

use cpx_card::{CpxCard, Interface, Validity};

use crate::messages::Code;

/// Now, in seconds since 1970 (UTC): what certificates' dates and approvals are judged by.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The code of a certificate outside its dates (expired, not yet valid); `None` when valid.
pub fn certificate_code(validity: Validity) -> Option<Code> {
    match validity {
        Validity::Expired => Some(Code::CertificateExpired),
        Validity::NotYetValid => Some(Code::CertificateNotYetValid),
        Validity::Valid => None,
    }
}

/// « Can this card log in », before its code porteur: what stops it — its certificate outside its dates
/// (at `now`), then a contactless interface (no code porteur over the air). Empty: it can.
pub fn login_blockers(card: &dyn CpxCard, now: i64) -> Vec<Code> {
    let mut codes: Vec<Code> = certificate_code(card.identity().validity_at(now)).into_iter().collect();
    if card.info().interface == Interface::Contactless {
        codes.push(Code::Contactless);
    }
    codes
}
