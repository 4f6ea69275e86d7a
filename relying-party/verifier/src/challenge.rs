//! Login challenges: 256 random bits, single use, five minutes, bound to the browser session that asked
//! for it and to the page's origin. The portal keeps the binding; the agent carries only the challenge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

/// How long an issued challenge may be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Why a challenge answered is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Never issued here.
    #[error("unknown challenge")]
    Unknown,
    /// Answered once already.
    #[error("challenge already used")]
    Replayed,
    /// Older than its lifetime.
    #[error("challenge expired")]
    Expired,
    /// Answered from another origin than the one it was issued for.
    #[error("challenge issued for {issued_for}, used from {used_from}")]
    OriginMismatch {
        /// The origin it was issued for.
        issued_for: String,
        /// The origin it came back from.
        used_from: String,
    },
}

struct Issued {
    session: String,
    origin: String,
    at: Instant,
}

/// The challenges a portal issued and those already used: each is answered once, in time, from its origin.
#[derive(Default)]
pub struct ChallengeStore {
    issued: Mutex<HashMap<String, Issued>>,
    used: Mutex<HashMap<String, Instant>>,
    lifetime: Option<Duration>,
}

impl ChallengeStore {
    /// An empty store, with the default lifetime.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose challenges live `lifetime` (tests).
    pub fn with_lifetime(lifetime: Duration) -> Self {
        Self { lifetime: Some(lifetime), ..Self::default() }
    }

    fn lifetime(&self) -> Duration {
        self.lifetime.unwrap_or(CHALLENGE_LIFETIME)
    }

    /// A new challenge for the browser session `session` on the page of `origin`.
    pub fn issue(&self, session: &str, origin: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let lifetime = self.lifetime();
        issued.retain(|_, i| i.at.elapsed() < lifetime);
        issued.insert(
            challenge.clone(),
            Issued { session: session.to_owned(), origin: origin.to_owned(), at: Instant::now() },
        );
        challenge
    }

    /// Spends `challenge` presented from `origin`: the browser session it was issued to, or why not.
    /// A challenge is spent even when the origin does not match (no second chance for a relayed one).
    pub fn redeem(&self, challenge: &str, origin: &str) -> Result<String, ChallengeError> {
        let taken = self.issued.lock().unwrap_or_else(|e| e.into_inner()).remove(challenge);
        let Some(issued) = taken else {
            let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            return Err(if used.contains_key(challenge) {
                ChallengeError::Replayed
            } else {
                ChallengeError::Unknown
            });
        };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let lifetime = self.lifetime();
        used.retain(|_, at| at.elapsed() < lifetime * 2);
        used.insert(challenge.to_owned(), Instant::now());
        if issued.at.elapsed() >= lifetime {
            return Err(ChallengeError::Expired);
        }
        if issued.origin != origin {
            return Err(ChallengeError::OriginMismatch {
                issued_for: issued.origin,
                used_from: origin.to_owned(),
            });
        }
        Ok(issued.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_session_and_origin_bound() {
        let store = ChallengeStore::new();
        let c = store.issue("session-1", "https://a.fr");
        assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&c).unwrap().len() == 32);
        assert_eq!(store.redeem(&c, "https://a.fr"), Ok("session-1".into()));
        assert_eq!(store.redeem(&c, "https://a.fr"), Err(ChallengeError::Replayed));
        let c2 = store.issue("session-1", "https://a.fr");
        assert!(matches!(store.redeem(&c2, "https://b.fr"), Err(ChallengeError::OriginMismatch { .. })));
        assert_eq!(store.redeem(&c2, "https://a.fr"), Err(ChallengeError::Replayed), "spent by the mismatch");
        assert_eq!(store.redeem("nope", "https://a.fr"), Err(ChallengeError::Unknown));
        let short = ChallengeStore::with_lifetime(Duration::from_millis(1));
        let c3 = short.issue("s", "https://a.fr");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.redeem(&c3, "https://a.fr"), Err(ChallengeError::Expired));
    }
}
