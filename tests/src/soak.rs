//! The soak: many card logins, driven as the portal's page drives them (`GET /v1/status`, the portal's
//! challenge, `POST /v1/authenticate`, the portal's finish), through the real stack (pcscd + vpcd, a
//! virtual CPS3, `cpx-agent serve` with the scripted pinentry, the demo portal's mTLS endpoint), with
//! seeded faults in between: the card pulled mid-login, pcscd restarted, garbled card answers, two pages
//! logging in at once, a wrong code porteur now and then (never two in a row: the card is never blocked),
//! another PC/SC client competing for the card (`cpx-rival`).
//!
//! It counts the logins that succeeded, failed with a typed error (the API's `code`, per code) or hung
//! (no answer within the deadline), and samples the agent's resident memory and open descriptors. Used
//! by `cpx-soak` (scripts/soak.sh) and by the short e2e run in tests/tests/soak.rs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::agent::{free_port, server_pki, AgentProcess, HttpAnswer, NoAnswer, PortalProcess, ServerPki};
use crate::openapi::Spec;
use crate::rival::Rival;
use crate::{insert_with, stack, Card, Options, ReaderGuard};

const PIN: &str = "1234";
/// The wrong code porteur the soak types now and then (never twice in a row).
pub const WRONG_PIN: &str = "9876";

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub logins: usize,
    pub seed: u64,
    /// Memory and descriptors are read every `every` logins; the reading after the first `every`
    /// logins (the warm-up) is the one later readings are held to.
    pub every: usize,
    /// A login with no answer within this is hung (the page's own fetch gives up after 120 s).
    pub deadline: Duration,
    /// Where the agent, the portal and the card logs go.
    pub dir: PathBuf,
}

impl Plan {
    pub fn new(logins: usize, seed: u64, dir: PathBuf) -> Self {
        Self { logins, seed, every: 100, deadline: Duration::from_secs(120), dir }
    }
}

/// The kinds of fault injected; each block of twelve slots holds each of them once, at places the seed
/// decides, and six clean logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    CardPulled,
    PcscdRestarted,
    Garbled,
    TwoPages,
    WrongPin,
    Rival,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] =
        [Self::CardPulled, Self::PcscdRestarted, Self::Garbled, Self::TwoPages, Self::WrongPin, Self::Rival];

    pub fn name(self) -> &'static str {
        match self {
            Self::CardPulled => "card-pulled",
            Self::PcscdRestarted => "pcscd-restarted",
            Self::Garbled => "garbled-answers",
            Self::TwoPages => "two-pages-at-once",
            Self::WrongPin => "wrong-code-porteur",
            Self::Rival => "competing-pcsc-client",
        }
    }
}

/// One fault as injected, with its drawn parameters.
#[derive(Debug, Clone)]
enum Fault {
    None,
    /// The virtual card leaves by itself at the first APDU with this INS.
    PullOn(u8),
    /// The card is pulled after this long, wherever the login is.
    PullAfter(When),
    PcscdRestart(When),
    Garbled(cpx_sim::Garble, f64, u64),
    TwoPages,
    WrongPin,
    Rival {
        mode: &'static str,
        pause_micros: u64,
        hold_millis: u64,
    },
}

impl Fault {
    fn kind(&self) -> Option<FaultKind> {
        Some(match self {
            Fault::None => return None,
            Fault::PullOn(_) | Fault::PullAfter(_) => FaultKind::CardPulled,
            Fault::PcscdRestart(_) => FaultKind::PcscdRestarted,
            Fault::Garbled(..) => FaultKind::Garbled,
            Fault::TwoPages => FaultKind::TwoPages,
            Fault::WrongPin => FaultKind::WrongPin,
            Fault::Rival { .. } => FaultKind::Rival,
        })
    }

    fn label(&self) -> String {
        match self {
            Fault::None => "none".into(),
            Fault::PullOn(ins) => format!("card pulled at INS {ins:02X}"),
            Fault::PullAfter(w) => format!("card pulled {w}"),
            Fault::PcscdRestart(w) => format!("pcscd restarted {w}"),
            Fault::Garbled(kind, rate, seed) => {
                format!("garbled answers ({kind:?}, {:.0} %, seed {seed})", rate * 100.0)
            }
            Fault::TwoPages => "two pages at once".into(),
            Fault::WrongPin => "wrong code porteur".into(),
            Fault::Rival { mode, .. } => format!("{mode} PC/SC rival"),
        }
    }

    /// Draws the parameters of a fault of `kind`.
    fn draw(kind: FaultKind, rng: &mut StdRng) -> Self {
        use cpx_sim::Garble;
        match kind {
            FaultKind::CardPulled => {
                if rng.gen_bool(0.5) {
                    // INTERNAL AUTHENTICATE (mid-signature, in the TLS handshake), VERIFY, GET DATA (tries
                    // left), READ BINARY and SELECT (opening the card).
                    Fault::PullOn(*[0x88u8, 0x20, 0xCB, 0xB0, 0xA4].choose(rng).expect("INS"))
                } else {
                    Fault::PullAfter(When::draw(rng))
                }
            }
            FaultKind::PcscdRestarted => Fault::PcscdRestart(When::draw(rng)),
            FaultKind::Garbled => {
                let garble = *[Garble::Nonsense, Garble::Truncate, Garble::WrongLength, Garble::BadStatus]
                    .choose(rng)
                    .expect("kind");
                Fault::Garbled(garble, [0.05, 0.1, 0.25][rng.gen_range(0..3)], rng.gen())
            }
            FaultKind::TwoPages => Fault::TwoPages,
            FaultKind::WrongPin => Fault::WrongPin,
            FaultKind::Rival => match rng.gen_range(0..3) {
                0 => Fault::Rival { mode: "poll", pause_micros: rng.gen_range(200..1000), hold_millis: 0 },
                1 => Fault::Rival {
                    mode: "transaction",
                    pause_micros: rng.gen_range(1_000..50_000),
                    hold_millis: rng.gen_range(0..30),
                },
                _ => Fault::Rival { mode: "exclusive", pause_micros: 0, hold_millis: 0 },
            },
        }
    }

    /// The outcomes this fault may lead to. `None`: any typed one.
    fn expected(&self) -> Option<&'static [&'static str]> {
        match self {
            Fault::None | Fault::TwoPages => Some(&["ok"]),
            Fault::Rival { mode: "exclusive", .. } => Some(&["ok", "CARD_IN_USE"]),
            Fault::Rival { .. } => Some(&["ok"]),
            Fault::WrongPin => Some(&["PIN_WRONG"]),
            // Pulled before the page's status request read it, the card is simply not there.
            Fault::PullOn(_) | Fault::PullAfter(_) => Some(&["ok", "CARD_REMOVED", "NO_CPX_CARD"]),
            // The service down, then back without its readers, then without the card (its virtual card
            // went with the old vpcd and comes back after the login).
            Fault::PcscdRestart(_) => Some(&[
                "ok",
                "PCSC_SERVICE_STOPPED",
                "NO_READER",
                "READER_UNAVAILABLE",
                "NO_CPX_CARD",
                "CARD_REMOVED",
            ]),
            // Spoilt answers: any typed error.
            Fault::Garbled(..) => None,
        }
    }
}

/// When, during a login, a timed fault strikes.
#[derive(Debug, Clone, Copy)]
enum When {
    /// This long after the page starts (its status request, the challenge, the card opened…).
    After(Duration),
    /// While the PIN dialog is open: the card is open and the code porteur about to be verified.
    AtPinDialog,
}

impl When {
    fn draw(rng: &mut StdRng) -> Self {
        if rng.gen_bool(0.5) {
            When::AtPinDialog
        } else {
            When::After(Duration::from_millis(rng.gen_range(0..150)))
        }
    }

    /// Waits for the moment (or until the login is over, `done`).
    fn wait(self, agent: &AgentProcess, done: &std::sync::atomic::AtomicBool) {
        use std::sync::atomic::Ordering;
        match self {
            When::After(d) => std::thread::sleep(d),
            When::AtPinDialog => {
                let before = agent.dialogs().len();
                while agent.dialogs().len() == before && !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            When::After(d) => write!(f, "after {} ms", d.as_millis()),
            When::AtPinDialog => f.write_str("at the PIN dialog"),
        }
    }
}

/// How one page login ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// A typed error: the agent's or the portal's `code` (the portal's prefixed `portal:`).
    Failed(String),
    /// An answer that is not a typed error (no code, a code outside the API's list, an internal error,
    /// a broken connection), with what came.
    Untyped(String),
    /// No answer within the deadline, at this step.
    Hung(String),
}

impl Outcome {
    fn short(&self) -> &str {
        match self {
            Outcome::Succeeded => "ok",
            Outcome::Failed(code) => code,
            Outcome::Untyped(_) => "untyped",
            Outcome::Hung(_) => "hung",
        }
    }
}

/// One reading of the agent's resources.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub after_logins: usize,
    pub rss_kib: u64,
    pub fds: usize,
}

/// What a soak found.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub every: usize,
    pub attempted: usize,
    pub succeeded: usize,
    /// Typed failures per code.
    pub failed: BTreeMap<String, usize>,
    /// Untyped failures and hung logins: login number, fault, what came.
    pub untyped: Vec<String>,
    pub hung: Vec<String>,
    /// Faults injected, per kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Logins whose outcome the fault does not explain (a clean login that failed, a wrong code
    /// porteur accepted…).
    pub unexpected: Vec<String>,
    pub samples: Vec<Sample>,
    /// Index in `samples` of the reading after the warm-up.
    pub baseline: Option<usize>,
    /// What the rivals got: times they had the card, and any time they found the code porteur verified
    /// or had the card sign (must be none).
    pub rival_turns: usize,
    pub rival_gains: Vec<String>,
    /// PIN dialogs shown, VERIFY commands with a code porteur the cards received, and the fewest tries
    /// left any dialog showed.
    pub pin_dialogs: usize,
    pub verifies: usize,
    pub fewest_tries_shown: Option<u32>,
    pub elapsed: Duration,
}

impl Report {
    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    fn growth(&self, of: impl Fn(&Sample) -> f64) -> Option<f64> {
        let b = self.baseline?;
        let (base, later) = (self.samples.get(b)?, self.samples.get(b + 1..)?);
        if later.is_empty() || of(base) == 0.0 {
            return None;
        }
        Some(later.iter().map(|s| (of(s) - of(base)) / of(base)).fold(f64::MIN, f64::max))
    }

    /// The largest rise of resident memory above the warm-up reading, as a share (0.1 = 10 %).
    pub fn rss_growth(&self) -> Option<f64> {
        self.growth(|s| s.rss_kib as f64)
    }

    pub fn fd_growth(&self) -> Option<f64> {
        self.growth(|s| s.fds as f64)
    }

    /// Flat: no later reading more than 10 % above the warm-up one (true when there is none to compare).
    pub fn rss_flat(&self) -> bool {
        self.rss_growth().is_none_or(|g| g <= 0.10)
    }

    pub fn fds_flat(&self) -> bool {
        self.fd_growth().is_none_or(|g| g <= 0.10)
    }

    /// Why the run fails, if it does: a hung login, an untyped failure, an outcome the fault does not
    /// explain, memory or descriptors not flat, a rival that got anything, a code porteur presented more
    /// often than typed, a card brought near blocking.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.hung.is_empty() {
            p.push(format!("{} login(s) hung", self.hung.len()));
        }
        if !self.untyped.is_empty() {
            p.push(format!("{} untyped failure(s)", self.untyped.len()));
        }
        if !self.unexpected.is_empty() {
            p.push(format!("{} outcome(s) the fault does not explain", self.unexpected.len()));
        }
        if !self.rss_flat() {
            p.push(format!("resident memory not flat (+{:.1} %)", self.rss_growth().unwrap_or(0.0) * 100.0));
        }
        if !self.fds_flat() {
            p.push(format!("open descriptors not flat (+{:.1} %)", self.fd_growth().unwrap_or(0.0) * 100.0));
        }
        if !self.rival_gains.is_empty() {
            p.push(format!(
                "a competing PC/SC client found the code porteur verified or had the card sign {} time(s)",
                self.rival_gains.len()
            ));
        }
        if self.verifies > self.pin_dialogs {
            p.push(format!(
                "{} VERIFY with a code porteur for {} PIN dialog(s): a code porteur was presented again",
                self.verifies, self.pin_dialogs
            ));
        }
        if self.fewest_tries_shown.is_some_and(|t| t < 2) {
            p.push("a PIN dialog showed fewer than 2 tries left: two wrong codes in a row".into());
        }
        p
    }

    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "logins": {"attempted": self.attempted, "succeeded": self.succeeded, "failed": self.failed_total(), "failed_by_code": self.failed, "untyped": self.untyped, "hung": self.hung},
            "faults": self.faults,
            "unexpected": self.unexpected,
            "agent": {
                "every": self.every,
                "baseline_after_logins": self.baseline.and_then(|i| self.samples.get(i)).map(|s| s.after_logins),
                "samples": self.samples.iter().map(|s| json!({"after_logins": s.after_logins, "rss_kib": s.rss_kib, "fds": s.fds})).collect::<Vec<_>>(),
                "rss_growth": self.rss_growth(), "fd_growth": self.fd_growth(), "rss_flat": self.rss_flat(), "fds_flat": self.fds_flat(),
            },
            "rivals": {"turns": self.rival_turns, "gains": self.rival_gains},
            "code_porteur": {"dialogs": self.pin_dialogs, "verifies": self.verifies, "fewest_tries_shown": self.fewest_tries_shown},
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "problems": self.problems(),
        })
    }

    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let secs = self.elapsed.as_secs();
        let _ = writeln!(
            o,
            "Soak, seed {}: {} card logins in {} min {:02} s",
            self.seed,
            self.attempted,
            secs / 60,
            secs % 60
        );
        let _ = writeln!(
            o,
            "  succeeded {}, failed with a typed error {}, untyped {}, hung {}",
            self.succeeded,
            self.failed_total(),
            self.untyped.len(),
            self.hung.len()
        );
        if !self.failed.is_empty() {
            let _ = writeln!(o, "\nFailures by code:");
            for (code, n) in &self.failed {
                let _ = writeln!(o, "  {code:<28} {n:>5}");
            }
        }
        let _ = writeln!(o, "\nFaults injected:");
        for (kind, n) in &self.faults {
            let _ = writeln!(o, "  {kind:<28} {n:>5}");
        }
        let _ = writeln!(o, "\nOutcomes the fault does not explain: {}", self.unexpected.len());
        for u in self.unexpected.iter().take(20) {
            let _ = writeln!(o, "  {u}");
        }
        for (what, list) in [("Untyped", &self.untyped), ("Hung", &self.hung)] {
            for u in list.iter().take(20) {
                let _ = writeln!(o, "  {what}: {u}");
            }
        }
        let _ = writeln!(o, "\nCompeting PC/SC clients had the card {} time(s); found the code porteur verified or had the card sign: {}", self.rival_turns, self.rival_gains.len());
        let _ = writeln!(
            o,
            "Code porteur: {} PIN dialog(s), {} VERIFY with a code porteur received by the cards, fewest tries shown {}",
            self.pin_dialogs,
            self.verifies,
            self.fewest_tries_shown.map_or("-".into(), |t| format!("{t} of 3"))
        );
        let base = self.baseline.and_then(|i| self.samples.get(i)).map(|s| s.after_logins);
        let _ = writeln!(
            o,
            "\ncpx-agent serve, every {} logins (flat = no reading more than 10 % above the one after the first {} logins, the warm-up):",
            self.every,
            base.map_or("-".into(), |b| b.to_string())
        );
        let _ = writeln!(o, "  {:>7} {:>10} {:>6}", "logins", "RSS MiB", "fds");
        for (i, s) in self.samples.iter().enumerate() {
            let mark = if Some(i) == self.baseline { "  ← warm-up reading" } else { "" };
            let _ =
                writeln!(o, "  {:>7} {:>10.1} {:>6}{mark}", s.after_logins, s.rss_kib as f64 / 1024.0, s.fds);
        }
        let pct = |g: Option<f64>| g.map_or("n/a".into(), |g| format!("{:+.1} %", g * 100.0));
        let _ = writeln!(
            o,
            "  RSS {} (largest rise {}), fds {} (largest rise {})",
            if self.rss_flat() { "flat" } else { "NOT flat" },
            pct(self.rss_growth()),
            if self.fds_flat() { "flat" } else { "NOT flat" },
            pct(self.fd_growth())
        );
        let problems = self.problems();
        if problems.is_empty() {
            let _ = writeln!(o, "\nResult: pass");
        } else {
            let _ = writeln!(o, "\nResult: FAIL: {}", problems.join("; "));
        }
        o
    }
}

/// The agent's resident memory (KiB) and open descriptors, read while it is idle: the fewest
/// descriptors of three readings 100 ms apart (a connection being closed is not a leak).
pub fn sample(pid: u32, after_logins: usize) -> Sample {
    let mut fds = usize::MAX;
    let mut rss_kib = 0;
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
        fds = fds.min(n);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    Sample { after_logins, rss_kib, fds }
}

/// The agent, the portal, the reader and the card of a soak.
struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    _pki: ServerPki,
    reader: ReaderGuard,
    card: Option<Card>,
    /// The card in the reader is not the plain CPS3 (a fault's card): replace it before the next login.
    special: bool,
    insertions: usize,
    /// The card's code porteur has all its tries (fresh card, or a right code verified since the
    /// last wrong one): only then may a wrong code be typed.
    tries_full: bool,
    spec: Spec,
    codes: Vec<String>,
    deadline: Duration,
    dir: PathBuf,
    linked: bool,
}

impl World {
    fn start(plan: &Plan) -> Self {
        let dir = &plan.dir;
        let pki = server_pki(&dir.join("pki"));
        let agent_port = free_port();
        let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
        portal.add_account("amelie", "mot-de-passe-amelie", "DUPONT", "JEAN");
        let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
        let reader = stack().reader();
        std::fs::create_dir_all(dir.join("cards")).expect("card log folder");
        let spec = Spec::load();
        let codes = spec.error_codes();
        let mut w = World {
            portal,
            agent,
            _pki: pki,
            reader,
            card: None,
            special: false,
            insertions: 0,
            tries_full: true,
            spec,
            codes,
            deadline: plan.deadline,
            dir: dir.clone(),
            linked: false,
        };
        w.ensure_card();
        w
    }

    /// Puts a card made with `options` in the reader (the one there is pulled first).
    fn put_card(&mut self, options: &Options) {
        self.card = None;
        self.insertions += 1;
        let log = self.dir.join(format!("cards/{:05}.log", self.insertions));
        self.card = Some(insert_with("cps3", &self.reader, options, Some(&log)));
        self.tries_full = true;
    }

    /// A plain CPS3 in the reader.
    fn ensure_card(&mut self) {
        if self.special || !self.card.as_ref().is_some_and(Card::is_inserted) {
            self.put_card(&Options::default());
            self.special = false;
        }
    }

    /// A failure answer of the agent: its code when the answer follows docs/openapi.yaml and the code is
    /// one of its list (AGENT_ERROR, the internal error, is not typed: it says nothing of the cause).
    fn agent_failure(&self, path: &str, a: &HttpAnswer) -> Outcome {
        let Ok(v) = serde_json::from_str::<Value>(&a.body) else {
            return Outcome::Untyped(format!("{path} → {} not JSON: {}", a.status, a.body));
        };
        let code = v["error"]["code"].as_str().unwrap_or_default().to_owned();
        if let Err(e) = self.spec.check("POST", path, a.status, &v) {
            return Outcome::Untyped(format!(
                "{path} → {} does not follow docs/openapi.yaml ({e}): {}",
                a.status, a.body
            ));
        }
        if code.is_empty() || code == "AGENT_ERROR" || !self.codes.contains(&code) {
            return Outcome::Untyped(format!("{path} → {}: {}", a.status, a.body));
        }
        Outcome::Failed(code)
    }

    /// One card login as the portal's page does it (relying-party/js/cpx-agent.js `cardLogin`).
    fn page_login(&self) -> Outcome {
        let origin = self.portal.origin.as_str();
        let no_answer = |step: &str, e: NoAnswer| match e {
            NoAnswer::TimedOut => Outcome::Hung(step.to_owned()),
            NoAnswer::Failed(why) => Outcome::Untyped(format!("{step}: {why}")),
        };
        // The page first asks the agent's status (which agent serves this user).
        if let Err(e) = self.agent.try_request(
            "GET",
            "/v1/status",
            &[("Origin", origin), ("Accept-Language", "fr")],
            None,
            self.deadline,
        ) {
            return no_answer("GET /v1/status", e);
        }
        let c = match self.portal.try_page(
            "POST",
            "/cpx/challenge",
            None,
            "application/json",
            Some("{}"),
            self.deadline,
        ) {
            Ok(c) => c,
            Err(e) => return no_answer("POST /cpx/challenge", e),
        };
        let (Some(cookie), Some(challenge)) = (
            c.session_cookie(),
            serde_json::from_str::<Value>(&c.body)
                .ok()
                .and_then(|v| v["challenge"].as_str().map(str::to_owned)),
        ) else {
            return Outcome::Untyped(format!("POST /cpx/challenge → {}: {}", c.status, c.body));
        };
        let body = json!({"challenge": challenge}).to_string();
        let headers = [("Origin", origin), ("Content-Type", "application/json"), ("Accept-Language", "fr")];
        let a = match self.agent.try_request("POST", "/v1/authenticate", &headers, Some(&body), self.deadline)
        {
            Ok(a) => a,
            Err(e) => return no_answer("POST /v1/authenticate", e),
        };
        if a.status != 200 {
            return self.agent_failure("/v1/authenticate", &a);
        }
        let v: Value = match serde_json::from_str(&a.body) {
            Ok(v) => v,
            Err(_) => return Outcome::Untyped(format!("POST /v1/authenticate → 200 not JSON: {}", a.body)),
        };
        if let Err(e) = self.spec.check("POST", "/v1/authenticate", 200, &v) {
            return Outcome::Untyped(format!(
                "POST /v1/authenticate → 200 does not follow docs/openapi.yaml ({e}): {}",
                a.body
            ));
        }
        let Some(code) = v["portal"]["code"].as_str().filter(|_| v["portal_status"] == 200) else {
            return match v["portal"]["error"]["code"].as_str() {
                Some(c) => Outcome::Failed(format!("portal:{c}")),
                None => Outcome::Untyped(format!("the portal refused without a code: {}", a.body)),
            };
        };
        let f = match self.portal.try_page(
            "POST",
            "/cpx/finish",
            Some(&cookie),
            "application/json",
            Some(&json!({"code": code}).to_string()),
            self.deadline,
        ) {
            Ok(f) => f,
            Err(e) => return no_answer("POST /cpx/finish", e),
        };
        if f.status == 200 {
            if !self.linked && f.body.contains("/premiere-connexion") {
                // The card's first login: link it to its account, as the professional does once.
                if let Some(session) = f.session_cookie() {
                    // Linking confirms the card shown on the page (cps3: Jean DUPONT).
                    let _ = self.portal.try_page(
                        "POST",
                        "/premiere-connexion/lier",
                        Some(&session),
                        "application/x-www-form-urlencoded",
                        Some("username=amelie&password=mot-de-passe-amelie&carte=899700123456"),
                        self.deadline,
                    );
                }
            }
            return Outcome::Succeeded;
        }
        match serde_json::from_str::<Value>(&f.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        {
            Some(c) => Outcome::Failed(format!("portal:{c}")),
            None => Outcome::Untyped(format!("POST /cpx/finish → {}: {}", f.status, f.body)),
        }
    }

    /// Runs one slot with its fault; the outcomes of its logins (two for two pages at once), and what the
    /// rival got.
    fn run(&mut self, fault: &Fault, rival: &mut Vec<(String, String)>) -> Vec<Outcome> {
        self.ensure_card();
        match fault {
            Fault::None => {
                self.agent.answer_pins(&[PIN]);
                vec![self.page_login()]
            }
            Fault::WrongPin => {
                self.agent.answer_pins(&[WRONG_PIN]);
                vec![self.page_login()]
            }
            Fault::PullOn(ins) => {
                self.put_card(&Options { pull_on: Some(*ins), ..Options::default() });
                self.special = true;
                self.agent.answer_pins(&[PIN]);
                vec![self.page_login()]
            }
            Fault::Garbled(kind, rate, seed) => {
                self.put_card(&Options { garble: Some((*kind, *rate, *seed)), ..Options::default() });
                self.special = true;
                self.agent.answer_pins(&[PIN]);
                vec![self.page_login()]
            }
            Fault::PullAfter(when) => {
                self.agent.answer_pins(&[PIN]);
                let card = self.card.take();
                self.timed(*when, move || {
                    if let Some(c) = card {
                        c.remove();
                    }
                })
            }
            Fault::PcscdRestart(when) => {
                self.agent.answer_pins(&[PIN]);
                let outcome = self.timed(*when, || {
                    stack().stop();
                    stack().start().expect("pcscd starts again");
                });
                // The virtual card went with the old pcscd's vpcd.
                self.special = true;
                outcome
            }
            Fault::TwoPages => {
                self.agent.answer_pins(&[PIN, PIN]);
                let this = &*self;
                std::thread::scope(|s| {
                    let first = s.spawn(|| this.page_login());
                    let second = this.page_login();
                    vec![
                        first.join().unwrap_or_else(|_| Outcome::Untyped("page thread panicked".into())),
                        second,
                    ]
                })
            }
            Fault::Rival { mode, pause_micros, hold_millis } => {
                let r = Rival::start(&self.reader.name, mode, *pause_micros, *hold_millis);
                if *mode == "exclusive" {
                    // Give it the moment it needs to take the card, as a program started earlier would.
                    std::thread::sleep(Duration::from_millis(50));
                }
                self.agent.answer_pins(&[PIN]);
                let outcome = self.page_login();
                match r.finish() {
                    Ok(seen) => rival.extend(seen.into_iter().map(|s| (s.asked, s.signed))),
                    // Its turns are lost, not its gains: a rival that had the card signing would have said so first.
                    Err(e) => eprintln!("cpx-soak: {e}"),
                }
                vec![outcome]
            }
        }
    }
}

impl World {
    /// One page login with `strike` done at `when` from another thread.
    fn timed(&self, when: When, strike: impl FnOnce() + Send) -> Vec<Outcome> {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                when.wait(&self.agent, &done);
                strike();
            });
            let outcome = self.page_login();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            vec![outcome]
        })
    }
}

/// The schedule: blocks of twelve slots, each fault kind once and six clean logins, shuffled.
struct Schedule {
    rng: StdRng,
    block: Vec<Option<FaultKind>>,
}

impl Schedule {
    fn next(&mut self) -> Option<FaultKind> {
        if self.block.is_empty() {
            let mut b: Vec<Option<FaultKind>> =
                FaultKind::ALL.iter().copied().map(Some).chain(std::iter::repeat_n(None, 6)).collect();
            b.shuffle(&mut self.rng);
            self.block = b;
        }
        self.block.pop().flatten()
    }
}

/// Runs the soak.
pub fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Report {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&plan.dir);
    std::fs::create_dir_all(&plan.dir).expect("soak folder");
    let mut world = World::start(plan);
    let mut schedule = Schedule { rng: StdRng::seed_from_u64(plan.seed), block: Vec::new() };
    let mut report = Report { seed: plan.seed, every: plan.every.max(1), ..Report::default() };
    let every = report.every;
    report.samples.push(sample(world.agent.pid(), 0));
    let mut deferred_wrong_pin = false;
    let mut rival = Vec::new();
    // One line per login, to find what a figure stands for.
    let mut journal = std::fs::File::create(plan.dir.join("logins.log")).expect("soak journal");
    while report.attempted < plan.logins {
        let mut kind = if deferred_wrong_pin { Some(FaultKind::WrongPin) } else { schedule.next() };
        deferred_wrong_pin = false;
        // Never a second wrong code before a right one was verified; two pages need two logins left.
        if kind == Some(FaultKind::WrongPin) && !world.tries_full {
            deferred_wrong_pin = true;
            kind = None;
        }
        if kind == Some(FaultKind::TwoPages) && plan.logins - report.attempted < 2 {
            kind = None;
        }
        let fault = kind.map_or(Fault::None, |k| Fault::draw(k, &mut schedule.rng));
        if let Some(k) = fault.kind() {
            *report.faults.entry(k.name()).or_default() += 1;
        }
        let outcomes = world.run(&fault, &mut rival);
        for outcome in outcomes {
            report.attempted += 1;
            let n = report.attempted;
            let what = format!("login {n} ({})", fault.label());
            let _ = writeln!(journal, "{what}: {outcome:?}");
            match &outcome {
                Outcome::Succeeded => {
                    report.succeeded += 1;
                    world.tries_full = true;
                    world.linked = true;
                }
                Outcome::Failed(code) => *report.failed.entry(code.clone()).or_default() += 1,
                Outcome::Untyped(why) => report.untyped.push(format!("{what}: {why}")),
                Outcome::Hung(step) => report
                    .hung
                    .push(format!("{what}: no answer to {step} within {} s", plan.deadline.as_secs())),
            }
            if outcome == Outcome::Failed("PIN_WRONG".into()) {
                world.tries_full = false;
            }
            if let Some(expected) = fault.expected() {
                if !expected.contains(&outcome.short()) {
                    report.unexpected.push(format!(
                        "{what}: {}",
                        match &outcome {
                            Outcome::Untyped(w) => format!("untyped: {w}"),
                            Outcome::Hung(s) => format!("hung at {s}"),
                            o => o.short().to_owned(),
                        }
                    ));
                }
            }
            if n.is_multiple_of(every) {
                report.samples.push(sample(world.agent.pid(), n));
                if report.baseline.is_none() && n >= every {
                    report.baseline = Some(report.samples.len() - 1);
                }
                let s = report.samples.last().expect("a sample");
                progress(&format!(
                    "{n}/{}: {} ok, {} typed failures, {} untyped, {} hung; agent {:.1} MiB, {} fds",
                    plan.logins,
                    report.succeeded,
                    report.failed_total(),
                    report.untyped.len(),
                    report.hung.len(),
                    s.rss_kib as f64 / 1024.0,
                    s.fds
                ));
            }
        }
    }
    report.rival_turns = rival.len();
    report.rival_gains = rival
        .iter()
        .filter(|(asked, signed)| asked == "9000" || signed == "9000" || signed.starts_with("61"))
        .map(|(a, s)| format!("VERIFY {a}, INTERNAL AUTHENTICATE {s}"))
        .collect();
    // The code porteur: dialogs the pinentry showed (and the tries each named), VERIFYs the cards got.
    let dialogs = world.agent.dialogs();
    report.pin_dialogs = dialogs.len();
    report.fewest_tries_shown = dialogs
        .iter()
        .filter_map(|d| d.split("Essais restants : ").nth(1)?.split(' ').next()?.parse().ok())
        .min();
    report.verifies = card_verifies(&plan.dir.join("cards"));
    drop(world);
    report.elapsed = started.elapsed();
    report
}

/// VERIFY commands carrying a code porteur in the cards' APDU logs.
fn card_verifies(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|f| {
            crate::logged_commands(&f.path())
                .iter()
                .filter(|c| c.starts_with("0020") && c.contains("secret"))
                .count()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(fds: &[usize]) -> Report {
        let samples = fds
            .iter()
            .enumerate()
            .map(|(i, f)| Sample { after_logins: i * 10, rss_kib: 20_000, fds: *f })
            .collect();
        Report { samples, baseline: Some(1), every: 10, ..Report::default() }
    }

    #[test]
    fn flat_is_within_ten_percent_of_the_warm_up_reading() {
        assert!(
            report(&[5, 20, 22, 21]).problems().is_empty(),
            "+10 % is flat; the reading before warm-up does not count"
        );
        let grown = report(&[20, 20, 21, 23]);
        assert!(
            !grown.fds_flat()
                && grown.problems().iter().any(|p| p.contains("descriptors not flat (+15.0 %)")),
            "{:?}",
            grown.problems()
        );
        assert!(report(&[20]).fds_flat(), "nothing to compare: flat");
    }

    #[test]
    fn hangs_untyped_failures_and_repeated_codes_fail_the_run() {
        let mut r = report(&[20, 20]);
        r.hung.push("login 3".into());
        r.untyped.push("login 4".into());
        r.verifies = 3;
        r.pin_dialogs = 2;
        r.fewest_tries_shown = Some(1);
        r.rival_gains.push("VERIFY 9000".into());
        r.unexpected.push("login 5 (none): CARD_COMMUNICATION".into());
        assert_eq!(r.problems().len(), 6, "{:?}", r.problems());
    }

    #[test]
    fn every_block_of_twelve_holds_each_fault_once() {
        let mut s = Schedule { rng: StdRng::seed_from_u64(3), block: Vec::new() };
        for _ in 0..3 {
            let mut block: Vec<FaultKind> = (0..12).filter_map(|_| s.next()).collect();
            block.sort();
            assert_eq!(block, FaultKind::ALL);
        }
    }
}
