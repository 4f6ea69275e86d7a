//! What the portal's two listeners share: the database, the challenges, the one-time codes that carry a
//! verified card identity from the mTLS endpoint to the browser session, the verifier, the session
//! lifetimes and the password attempts' rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cpx_verifier::{ChallengeStore, Identity, Revocation, Verifier, VerifyError};
use rand::RngCore;

use crate::db::{Db, SessionLimits};
use crate::ratelimit::Limiter;

/// How long the one-time code of a verified card login is valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(120);
/// How long a first-time link may wait.
pub const PENDING_LINK_SECONDS: i64 = 600;

pub struct CodeEntry {
    pub session: String,
    pub identity: Identity,
    pub at: Instant,
}

pub struct Portal {
    /// Locks itself per query (never across a password hash).
    pub db: Db,
    pub challenges: ChallengeStore,
    pub codes: Mutex<HashMap<String, CodeEntry>>,
    pub verifier: Verifier,
    /// The site's own origin (`https://host:port`): challenges are issued for it only.
    pub origin: String,
    /// Where the login page finds Agent CPx.
    pub agent_url: String,
    pub sessions: SessionLimits,
    pub limiter: Limiter,
}

pub fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Portal {
    /// Checks a card certificate; a login accepted with an unknown revocation status (the portal's
    /// explicit opt-in) is logged.
    pub fn verify_card(&self, cert: &[u8]) -> Result<Identity, VerifyError> {
        self.verifier.verify_certificate(cert).inspect(log_unknown_revocation)
    }

    pub fn issue_code(&self, session: String, identity: Identity) -> String {
        let code = random_token();
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, c| c.at.elapsed() < CODE_LIFETIME);
        codes.insert(code.clone(), CodeEntry { session, identity, at: Instant::now() });
        code
    }

    /// Spends a code in the browser session that asked for the challenge; any other session gets nothing.
    pub fn redeem_code(&self, code: &str, session: &str) -> Option<Identity> {
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        let entry = codes.remove(code)?;
        (entry.session == session && entry.at.elapsed() < CODE_LIFETIME).then_some(entry.identity)
    }
}

/// One line on standard error for each login whose revocation status was not known.
pub fn log_unknown_revocation(identity: &Identity) {
    if let Revocation::Unknown { reason } = &identity.revocation {
        eprintln!("cpx-demo-portal: WARNING card of {} accepted without revocation check (--allow-unknown-revocation): {reason}", identity.national_id);
    }
}
