//! How often pages may put a dialog in front of the professional, for the PIN dialog as for the consent
//! dialog: per registrable domain and overall within a sliding window, with no domain taking more than its
//! share of the overall quota (so that one domain, however many sub-domains it rotates, cannot keep every
//! other site from asking), and with waits that grow each time a domain is turned down again (a site
//! refused, or a PIN dialog cancelled): 1×, 2×, 4×… the base quiet time, up to a ceiling, forgotten after
//! a quiet period without refusal.
//!
//! The gate only counts and answers; the caller maps a [`Pressure`] to its catalogue code.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The gate's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// The sliding window the counts are taken over.
    pub window: Duration,
    /// Dialogs one registrable domain may show in a window.
    pub per_domain: usize,
    /// Dialogs all domains together may show in a window.
    pub overall: usize,
    /// The wait after a domain's first refusal; each further refusal doubles it.
    pub quiet: Duration,
    /// The longest wait.
    pub max_quiet: Duration,
}

impl Quotas {
    /// The PIN dialog: 3 per domain and 6 overall per minute; 30 s after a cancelled dialog, up to 30 min.
    pub const PIN: Quotas = Quotas {
        window: Duration::from_secs(60),
        per_domain: 3,
        overall: 6,
        quiet: Duration::from_secs(30),
        max_quiet: Duration::from_secs(30 * 60),
    };
}

/// Why no dialog is shown now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// This domain showed its share lately.
    Domain { shown: usize, retry_after: Duration },
    /// All domains together showed the overall quota lately.
    Overall { shown: usize, retry_after: Duration },
    /// This domain was turned down `refusals` times in a row: it waits.
    Refused { refusals: u32, retry_after: Duration },
}

impl Pressure {
    pub fn retry_after(self) -> Duration {
        match self {
            Pressure::Domain { retry_after, .. }
            | Pressure::Overall { retry_after, .. }
            | Pressure::Refused { retry_after, .. } => retry_after,
        }
    }
}

#[derive(Default)]
struct State {
    shown: VecDeque<(Instant, String)>,
    /// Per domain: refusals in a row, and when the last one was.
    refused: HashMap<String, (u32, Instant)>,
}

pub struct DialogGate {
    quotas: Quotas,
    state: Mutex<State>,
}

impl DialogGate {
    pub fn new(quotas: Quotas) -> Self {
        Self { quotas, state: Mutex::default() }
    }

    /// A dialog for `domain` may be shown now (and is counted), or the pressure that stops it.
    pub fn take(&self, domain: &str) -> Result<(), Pressure> {
        self.take_at(domain, Instant::now())
    }

    /// The wait after `refusals` refusals in a row: quiet × 2^(refusals − 1), at most `max_quiet`.
    pub fn wait_after(&self, refusals: u32) -> Duration {
        let factor = 1u32.checked_shl(refusals.saturating_sub(1)).unwrap_or(u32::MAX);
        self.quotas.quiet.saturating_mul(factor).min(self.quotas.max_quiet)
    }

    fn take_at(&self, domain: &str, now: Instant) -> Result<(), Pressure> {
        let q = self.quotas;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // Refusals are forgotten once their wait, and as long again, passed without another.
        let wait_after = |n| self.wait_after(n);
        s.refused.retain(|_, (n, at)| now.duration_since(*at) < wait_after(*n).saturating_mul(2));
        if let Some(&(refusals, at)) = s.refused.get(domain) {
            let wait = self.wait_after(refusals);
            let since = now.duration_since(at);
            if since < wait {
                return Err(Pressure::Refused { refusals, retry_after: wait - since });
            }
        }
        while s.shown.front().is_some_and(|(at, _)| now.duration_since(*at) >= q.window) {
            s.shown.pop_front();
        }
        let retry =
            |at: Option<&Instant>| at.map_or(q.window, |at| q.window.saturating_sub(now.duration_since(*at)));
        let mine: Vec<&Instant> = s.shown.iter().filter(|(_, d)| d == domain).map(|(at, _)| at).collect();
        // A domain's share: its own quota, and never more than half the overall one.
        let share = q.per_domain.min(q.overall.div_ceil(2)).max(1);
        if mine.len() >= share {
            return Err(Pressure::Domain { shown: mine.len(), retry_after: retry(mine.first().copied()) });
        }
        if s.shown.len() >= q.overall {
            return Err(Pressure::Overall {
                shown: s.shown.len(),
                retry_after: retry(s.shown.front().map(|(at, _)| at)),
            });
        }
        s.shown.push_back((now, domain.to_owned()));
        Ok(())
    }

    /// The professional turned `domain` down (refused the site, cancelled the PIN dialog): it waits
    /// longer each time.
    pub fn refused(&self, domain: &str) {
        self.refused_at(domain, Instant::now());
    }

    fn refused_at(&self, domain: &str, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = s.refused.entry(domain.to_owned()).or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
    }

    /// The professional went ahead with `domain` (a PIN typed, a site allowed): its refusals are forgotten.
    pub fn accepted(&self, domain: &str) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).refused.remove(domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quotas = Quotas {
        window: Duration::from_secs(60),
        per_domain: 3,
        overall: 6,
        quiet: Duration::from_secs(10),
        max_quiet: Duration::from_secs(100),
    };

    #[test]
    fn per_domain_then_overall_within_the_window() {
        let g = DialogGate::new(Q);
        let t = Instant::now();
        for _ in 0..3 {
            g.take_at("example.fr", t).unwrap();
        }
        assert!(matches!(g.take_at("example.fr", t), Err(Pressure::Domain { shown: 3, .. })));
        for d in ["a.fr", "b.fr", "c.fr"] {
            g.take_at(d, t).unwrap();
        }
        let full = g.take_at("d.fr", t + Duration::from_secs(20)).unwrap_err();
        assert_eq!(full, Pressure::Overall { shown: 6, retry_after: Duration::from_secs(40) });
        // The window slides.
        g.take_at("d.fr", t + Duration::from_secs(61)).unwrap();
    }

    #[test]
    fn one_domain_cannot_use_up_the_overall_quota() {
        // A domain's own quota as large as the overall one: it still gets half.
        let g = DialogGate::new(Quotas { per_domain: 6, ..Q });
        let t = Instant::now();
        let taken = (0..10).filter(|_| g.take_at("spam.example", t).is_ok()).count();
        assert_eq!(taken, 3);
        for d in ["a.fr", "b.fr", "c.fr"] {
            g.take_at(d, t).unwrap_or_else(|e| panic!("{d}: {e:?}"));
        }
    }

    #[test]
    fn a_domain_refused_again_and_again_waits_longer_each_time() {
        let g = DialogGate::new(Q);
        let mut t = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..6 {
            g.refused_at("pushy.fr", t);
            let Err(Pressure::Refused { retry_after, .. }) = g.take_at("pushy.fr", t) else { panic!() };
            waits.push(retry_after.as_secs());
            t += retry_after;
            // Once the wait has passed, one dialog again.
            g.take_at("pushy.fr", t).unwrap();
            t += Duration::from_secs(61); // out of the window
        }
        assert_eq!(waits, [10, 20, 40, 80, 100, 100]);
        // Other domains are not held.
        g.take_at("calm.fr", t).unwrap();
        // Accepting clears the refusals.
        g.refused_at("pushy.fr", t);
        g.accepted("pushy.fr");
        g.take_at("pushy.fr", t).unwrap();
    }

    #[test]
    fn refusals_are_forgotten_after_a_long_calm() {
        let g = DialogGate::new(Q);
        let t = Instant::now();
        g.refused_at("x.fr", t);
        g.refused_at("x.fr", t);
        // 20 s wait; after 40 s of calm the count starts again from one.
        let later = t + Duration::from_secs(41);
        g.take_at("x.fr", later).unwrap();
        g.refused_at("x.fr", later);
        assert_eq!(
            g.take_at("x.fr", later),
            Err(Pressure::Refused { refusals: 1, retry_after: Duration::from_secs(10) })
        );
    }
}
