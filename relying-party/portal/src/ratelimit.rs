//! Password login attempts are rate-limited, per account and per client address: after too many attempts
//! in a window the next ones are refused before any password is checked (no argon2 work for an
//! attacker's guesses), with a French message saying when to try again. An attempt is counted when it is
//! let through, before its password is hashed, in the same lock as the check: N guesses sent in parallel
//! cannot all pass the check while the first ones are still hashing. A successful login takes its own
//! attempt back and clears the account's count; the address keeps its failures until the window passes.

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

    /// An attempt for `account` from `address`: refused when the account or the address has used up its
    /// window, else let through and counted at once (as a failure until [`Self::succeeded`] says otherwise).
    pub fn begin(&self, account: &str, address: Option<IpAddr>) -> Result<Attempt, Refusal> {
        self.begin_at(account, address, Instant::now())
    }

    fn begin_at(&self, account: &str, address: Option<IpAddr>, now: Instant) -> Result<Attempt, Refusal> {
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
        if f.accounts.len() + f.addresses.len() > MAX_KEYS {
            f.accounts.retain(|_, t| recent(t, window, now) > 0);
            f.addresses.retain(|_, t| recent(t, window, now) > 0);
        }
        f.accounts.entry(account.to_owned()).or_default().push(now);
        if let Some(a) = address {
            f.addresses.entry(a).or_default().push(now);
        }
        Ok(Attempt { address, at: now })
    }

    /// The attempt's password was right: the account's count is forgotten, and the address's count loses
    /// this attempt.
    pub fn succeeded(&self, account: &str, attempt: Attempt) {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.accounts.remove(account);
        if let Some(times) = attempt.address.and_then(|a| f.addresses.get_mut(&a)) {
            if let Some(i) = times.iter().position(|t| *t == attempt.at) {
                times.remove(i);
            }
        }
    }
}

/// An attempt let through and already counted.
#[derive(Debug)]
#[must_use = "a right password must give its attempt back with Limiter::succeeded"]
pub struct Attempt {
    address: Option<IpAddr>,
    at: Instant,
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
            let _ = l.begin("amelie", a).unwrap();
        }
        let refused = l.begin("amelie", b).unwrap_err();
        assert!(matches!(refused, Refusal::Account { .. }), "the account is locked from any address");
        assert!(
            refused.message().starts_with(
                "Trop de tentatives de connexion pour cet identifiant : réessayez dans 10 minutes"
            ),
            "{}",
            refused.message()
        );
        let _ = l.begin("bruno", a).expect("other accounts are not locked");
        let _ = l.begin("carla", a).unwrap();
        assert!(matches!(l.begin("denis", a), Err(Refusal::Address { .. })), "5 attempts from one address");
        // A refused attempt is not counted: b has one attempt (amelie's refusal did not count).
        let denis = l.begin("denis", b).unwrap();
        // A success clears the account, and gives its attempt back to the address.
        l.succeeded("denis", denis);
        for name in ["emile", "fanny", "gilles", "hugo"] {
            let _ = l.begin(name, b).unwrap();
        }
        assert!(l.begin("felix", b).is_ok(), "the successful attempt no longer counts for b");
        assert!(l.begin("felix", b).is_err(), "b has used its 5");
        // The window passes.
        let later = Instant::now() + Duration::from_secs(601);
        assert!(l.begin_at("denis", a, later).is_ok());
    }

    #[test]
    fn parallel_attempts_are_counted_before_any_password_is_checked() {
        let l = Limiter::new(Limits { per_account: 5, per_address: 100, window: Duration::from_secs(600) });
        let start = std::sync::Barrier::new(16);
        let passed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..16u8 {
                let (l, start, passed) = (&l, &start, &passed);
                s.spawn(move || {
                    start.wait();
                    if let Ok(attempt) = l.begin("amelie", Some([192, 0, 2, i].into())) {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        // The password check runs now, long after every other thread's begin.
                        drop(attempt);
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), 5);
    }
}
