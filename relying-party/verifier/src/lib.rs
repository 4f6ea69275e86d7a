//! What a portal needs to accept CPx card logins, whether the agent reached it over mTLS or the page
//! posts a signed token:
//!
//! - [`Verifier`]: the card certificate chains to the configured IGC-Santé trust anchors (production
//!   and/or test), is valid now, is meant for client authentication and digital signature, and its
//!   issuer's current CRL does not list it (no CRL, or an out-of-date one, refuses unless the portal
//!   opts in with [`Verifier::allow_unknown_revocation`]); out comes the [`Identity`] (national id and its kind, card type, structure, nom, prénom, profession).
//! - [`ChallengeStore`]: challenges of 256 bits, single use, five minutes, bound to the browser session
//!   that asked and to the origin of the page.
//! - [`Verifier::verify_token`]: the signed-token mode, same checks plus the signature over
//!   `SHA-256(origin) ‖ SHA-256(challenge)`.
//!
//! It shares no code with the agent: it is the other side of the protocol.

mod challenge;
mod identity;
mod verify;

pub use challenge::{ChallengeError, ChallengeStore, CHALLENGE_LIFETIME};
pub use identity::{CardType, IdKind, IdNatKind, Identity, Structure};
pub use verify::{Revocation, Token, Verifier, VerifyError};
