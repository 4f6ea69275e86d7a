//! Password login attempts are rate-limited, per account and per client address: after too many failures
//! in a window the next attempts are refused before any password is checked (no argon2 work for an
//! attacker's guesses), with a French message saying when to try again. A successful login clears the
//! account's failures; the address keeps its count until the window passes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures are allowed in a window, per account and per client address.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    /// 5 failures per account and 20 per address in 15 minutes.
    fn default() -> Self {
        Self { per_account: 5, per_address: 20, window: Duration::from_secs(15 * 60) }
    }
}

/// Why an attempt is refused, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Account { retry_after: Duration },
    Address { retry_after: Duration },
}

impl Refusal {
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::Account { retry_after } | Refusal::Address { retry_after } => retry_after,
        }
    }

    /// The stable code shown with the message.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Account { .. } => "LOGIN_RATE_LIMITED_ACCOUNT",
            Refusal::Address { .. } => "LOGIN_RATE_LIMITED_ADDRESS",
        }
    }

    /// What the login page says.
    pub fn message(self) -> String {
        let minutes = self.retry_after().as_secs().div_ceil(60).max(1);
        let when = if minutes == 1 { "dans 1 minute".to_owned() } else { format!("dans {minutes} minutes") };
        match self {
            Refusal::Account { .. } => format!("Trop de tentatives de connexion pour cet identifiant : réessayez {when}, ou connectez-vous par carte CPx."),
            Refusal::Address { .. } => format!("Trop de tentatives de connexion depuis cet ordinateur : réessayez {when}."),
        }
    }
}

#[derive(Default)]
struct Failures {
    accounts: HashMap<String, Vec<Instant>>,
    addresses: HashMap<IpAddr, Vec<Instant>>,
}

/// Keys kept at most: beyond, the oldest windows are dropped first (an attacker cycling usernames cannot
/// grow the table without bound).
const MAX_KEYS: usize = 100_000;

pub struct Limiter {
    limits: Limits,
    failures: Mutex<Failures>,
}

fn recent(times: &mut Vec<Instant>, window: Duration, now: Instant) -> usize {
    times.retain(|t| now.duration_since(*t) < window);
    times.len()
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, failures: Mutex::default() }
    }

    /// Whether an attempt for `account` from `address` may go ahead now.
    pub fn check(&self, account: &str, address: Option<IpAddr>) -> Result<(), Refusal> {
        self.check_at(account, address, Instant::now())
    }

    fn check_at(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Refusal> {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.limits.window;
        let retry = |times: &[Instant]| {
            times.first().map_or(window, |first| window.saturating_sub(now.duration_since(*first)))
        };
        if let Some(times) = address.and_then(|a| f.addresses.get_mut(&a)) {
            if recent(times, window, now) >= self.limits.per_address {
                return Err(Refusal::Address { retry_after: retry(times) });
            }
        }
        if let Some(times) = f.accounts.get_mut(account) {
            if recent(times, window, now) >= self.limits.per_account {
                return Err(Refusal::Account { retry_after: retry(times) });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt.
    pub fn failed(&self, account: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.limits.window;
        if f.accounts.len() + f.addresses.len() > MAX_KEYS {
            f.accounts.retain(|_, t| recent(t, window, now) > 0);
            f.addresses.retain(|_, t| recent(t, window, now) > 0);
        }
        f.accounts.entry(account.to_owned()).or_default().push(now);
        if let Some(a) = address {
            f.addresses.entry(a).or_default().push(now);
        }
    }

    /// A successful login: the account's failures are forgotten.
    pub fn succeeded(&self, account: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).accounts.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_account_then_per_address() {
        let l = Limiter::new(Limits { per_account: 3, per_address: 5, window: Duration::from_secs(600) });
        let a: Option<IpAddr> = Some([192, 0, 2, 1].into());
        let b: Option<IpAddr> = Some([192, 0, 2, 2].into());
        for _ in 0..3 {
            assert!(l.check("amelie", a).is_ok());
            l.failed("amelie", a);
        }
        let refused = l.check("amelie", b).unwrap_err();
        assert!(matches!(refused, Refusal::Account { .. }), "the account is locked from any address");
        assert!(
            refused.message().starts_with(
                "Trop de tentatives de connexion pour cet identifiant : réessayez dans 10 minutes"
            ),
            "{}",
            refused.message()
        );
        assert!(l.check("bruno", a).is_ok(), "other accounts are not");
        l.failed("bruno", a);
        l.failed("carla", a);
        assert!(matches!(l.check("denis", a), Err(Refusal::Address { .. })), "5 failures from one address");
        assert!(l.check("denis", b).is_ok());
        // A success clears the account, not the address.
        l.succeeded("amelie");
        assert!(l.check("amelie", b).is_ok());
        assert!(l.check("amelie", a).is_err());
        // The window passes.
        let later = Instant::now() + Duration::from_secs(601);
        assert!(l.check_at("denis", a, later).is_ok());
    }
}
