//! The card as a shared resource of the agent, and the one way to it: connecting to the PC/SC service,
//! listing the readers and opening a card happen here and nowhere else. One card operation at a time:
//! a login ([`CardService::exclusive`]) waits a bounded time for the card, then gets BUSY; a scan of the
//! readers ([`CardService::scan`], `GET /v1/status`, the CLI's `status`/`card`/`watch`, diagnose, the
//! tray) takes the same permit. The certificate cache is kept across logins. Of several cards, the CPx
//! ones count (a bi-fente reader also holds the patient's Carte Vitale).
//!
//! **A scan while a login holds the card** answers from the last scan (the state before the login:
//! a page polling `GET /v1/status` and the tray's status window keep their answer at once, and no PIN
//! dialog is ever disturbed by APDUs of a scan). With no scan to answer from, it waits for the card up to
//! the card timeout (a login's card calls end within it; its PIN dialog may last much longer, and a page
//! or a window must not hang that long), then reports BUSY; so do diagnose and the CLI's reads. A login
//! forgets the last scan when it ends (the tries left may have changed), so the next scan reads the card
//! again; the tray's watch ([`crate::card::card_state::watch`]) reads it again as soon as the login ends. A CLI
//! command in its own process has its own service, hence its own permit.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cpx_card::{CardError, CertCache, CpxCard};
use cpx_pcsc::{Connection, ConnectionOptions, PcscError, ReaderInfo};

use crate::card::scan::{self, ReaderReport, ScanOptions};
use crate::failure::Failure;
use crate::messages::Code;

/// The agent's access to the cards; see the module documentation.
pub struct CardService {
    /// What was learnt of the cards already seen (their PKCS#15 layout and certificate).
    pub cache: CertCache,
    /// Longest wait for one card call.
    pub card_timeout: Duration,
    /// Longest wait for the card while another request uses it (a PIN dialog may be open).
    pub busy_wait: Duration,
    permit: Arc<tokio::sync::Semaphore>,
    /// The last full scan, answered while a login holds the card.
    last: Mutex<Option<Remembered>>,
}

/// A full scan (every reader) and when it was made.
#[derive(Clone)]
struct Remembered {
    at: Instant,
    with_pin: bool,
    readers: Result<Vec<ReaderReport>, Code>,
}

/// Where a scan's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The card was read for it (or by a scan that finished while it waited for the card).
    Read,
    /// Another operation held the card: the last scan made before it.
    Remembered,
}

/// How often a blocking caller looks whether the card is free again.
const FREE_POLL: Duration = Duration::from_millis(20);

impl CardService {
    /// A service with nothing remembered and the card free.
    pub fn new(cache: CertCache, card_timeout: Duration, busy_wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            cache,
            card_timeout,
            busy_wait,
            permit: Arc::new(tokio::sync::Semaphore::new(1)),
            last: Mutex::new(None),
        })
    }

    /// Runs `f` with exclusive use of the card service, on a blocking thread; BUSY when the card stayed
    /// taken for `busy_wait`. The last scan is forgotten when `f` ends (a login changes the tries left).
    pub async fn exclusive<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&CardService) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let _permit = tokio::time::timeout(self.busy_wait, self.permit.acquire())
            .await
            .map_err(|_| Failure::new(Code::Busy))?
            .map_err(|_| Failure::new(Code::AgentError))?;
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || {
            let out = f(&me);
            me.forget();
            out
        })
        .await;
        done.map_err(|e| Failure::new(Code::AgentError).detail(e.to_string()))?
    }

    /// Runs `f` with exclusive use of the card, on this thread (a blocking one: the CLI, diagnose, the
    /// tray's threads); BUSY when the card stayed taken for the card timeout. Not for async code.
    pub fn blocking<T>(&self, f: impl FnOnce(&CardService) -> T) -> Result<T, Code> {
        let _permit = self.wait_blocking(self.card_timeout).ok_or(Code::Busy)?;
        let out = f(self);
        self.forget();
        Ok(out)
    }

    /// Scans the readers (async callers: `GET /v1/status`). A stopped PC/SC service is its code; no reader
    /// is an empty list. While a login holds the card, the last scan answers (see the module documentation).
    pub async fn scan(self: &Arc<Self>, options: ScanOptions) -> Result<Vec<ReaderReport>, Code> {
        let asked = Instant::now();
        let permit = match self.permit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if let Some(r) = self.remembered(&options, None) {
                    return r;
                }
                match tokio::time::timeout(self.card_timeout, self.permit.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => return Err(Code::AgentError),
                    Err(_) => return Err(Code::Busy),
                }
            }
        };
        if let Some(r) = self.remembered(&options, Some(asked)) {
            return r;
        }
        let me = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            me.read_now(&options)
        })
        .await;
        read.unwrap_or(Err(Code::AgentError))
    }

    /// The same, on this thread (the CLI, the tray's threads). Not for async code.
    pub fn scan_blocking(&self, options: &ScanOptions) -> Result<Vec<ReaderReport>, Code> {
        self.scan_from(options).0
    }

    /// [`Self::scan_blocking`], saying where the answer came from.
    pub(crate) fn scan_from(&self, options: &ScanOptions) -> (Result<Vec<ReaderReport>, Code>, Source) {
        let asked = Instant::now();
        let permit = match self.permit.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                if let Some(r) = self.remembered(options, None) {
                    return (r, Source::Remembered);
                }
                match self.wait_blocking(self.card_timeout) {
                    Some(p) => p,
                    None => return (Err(Code::Busy), Source::Read),
                }
            }
        };
        if let Some(r) = self.remembered(options, Some(asked)) {
            return (r, Source::Read);
        }
        let out = self.read_now(options);
        drop(permit);
        (out, Source::Read)
    }

    /// Blocks until no operation holds the card (the tray's watch, after a login); false when `stop`
    /// said to give up first.
    pub(crate) fn wait_free(&self, stop: impl Fn() -> bool) -> bool {
        loop {
            if self.permit.available_permits() > 0 {
                return true;
            }
            if stop() {
                return false;
            }
            std::thread::sleep(FREE_POLL);
        }
    }

    /// The report of one reader whose state PC/SC just gave (the CLI's `watch`, on a card inserted),
    /// with the card to itself.
    pub fn report_blocking(&self, reader: &ReaderInfo, options: &ScanOptions) -> Result<ReaderReport, Code> {
        self.blocking(|cards| scan::report(cards, reader, options))
    }

    /// The readers PC/SC lists, sorted by name, with what is in them: the one place that connects to the
    /// PC/SC service. A stopped service is [`PcscError::ServiceStopped`]; no reader is an empty list.
    /// Inside [`Self::blocking`] or [`Self::exclusive`].
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let mut readers = cpx_pcsc::Context::establish()?.readers()?;
        readers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(readers)
    }

    /// The CPx cards present, opened (other cards are skipped). Inside [`Self::exclusive`].
    pub fn cpx_cards(&self) -> Result<Vec<Box<dyn CpxCard>>, Failure> {
        let readers = self.readers().map_err(|e| Failure::from(&CardError::Pcsc(e)))?;
        if readers.is_empty() {
            return Err(Failure::new(Code::NoReader));
        }
        let mut cards = Vec::new();
        let mut last_problem = None;
        // A card another program holds exclusively is tried too: it answers "in use" (CARD_IN_USE), which
        // says more than "no CPx card".
        for r in readers
            .iter()
            .filter(|r| matches!(r.state, cpx_pcsc::SlotState::Present | cpx_pcsc::SlotState::Exclusive))
        {
            match self.open_card(&r.name, Some(&r.atr), &self.cache) {
                Ok(card) => cards.push(card),
                Err(e) => last_problem = Some(e),
            }
        }
        if cards.is_empty() {
            return Err(match last_problem {
                Some(e) if Code::from(&e) != Code::CardNotCpx => Failure::from(&e),
                _ => Failure::new(Code::NoCpxCard),
            });
        }
        Ok(cards)
    }

    /// Opens the CPx card in `reader`, whose ATR PC/SC reported as `atr`: the driver then picks the
    /// protocol the card needs (T=0 for a CPS4 that also offers T=1, see `cpx_card::atr::protocol_for`).
    /// Each call is a fresh connection, so a card swapped in the same reader is read as the new card.
    /// `cache` is the service's, or an empty one to read everything from the card (diagnose). Inside
    /// [`Self::exclusive`] or [`Self::blocking`].
    pub fn open_card(
        &self,
        reader: &str,
        atr: Option<&[u8]>,
        cache: &CertCache,
    ) -> Result<Box<dyn CpxCard>, CardError> {
        let options = ConnectionOptions { timeout: self.card_timeout, exclusive: false };
        let protocol = atr.and_then(cpx_card::atr::protocol_for);
        let conn = match Connection::connect_with(reader, &options, protocol) {
            // The card changed since its ATR was read: let the reader choose.
            Err(PcscError::ProtocolMismatch) if protocol.is_some() => Connection::connect(reader, &options)?,
            other => other?,
        };
        let atr = conn.atr().to_vec();
        cpx_card::open(Box::new(conn), &atr, cache)
    }

    /// Reads every reader now (the permit is held).
    fn read_now(&self, options: &ScanOptions) -> Result<Vec<ReaderReport>, Code> {
        let full = ScanOptions { reader: None, ..options.clone() };
        let readers = self
            .readers()
            .map(|list| list.iter().map(|r| scan::report(self, r, &full)).collect::<Vec<_>>())
            .map_err(|e| Code::from(&e));
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some(Remembered { at: Instant::now(), with_pin: options.with_pin, readers: readers.clone() });
        only(readers, options)
    }

    /// The last scan, if it tells what `options` ask (and was made after `since`, when given).
    fn remembered(
        &self,
        options: &ScanOptions,
        since: Option<Instant>,
    ) -> Option<Result<Vec<ReaderReport>, Code>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let last = last.as_ref()?;
        if (options.with_pin && !last.with_pin) || since.is_some_and(|t| last.at < t) {
            return None;
        }
        Some(only(last.readers.clone(), options))
    }

    /// Drops the last scan: it no longer tells the readers' state (an operation changed the card, or PC/SC
    /// reported an event since).
    pub(crate) fn forget(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Waits up to `wait` for the card, on this thread.
    fn wait_blocking(&self, wait: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(p) = self.permit.try_acquire() {
                return Some(p);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(FREE_POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    #[cfg(test)]
    fn remember(&self, with_pin: bool, readers: Result<Vec<ReaderReport>, Code>) {
        *self.last.lock().unwrap() = Some(Remembered { at: Instant::now(), with_pin, readers });
    }
}

/// The readers of a scan that `options` ask for (one reader, or all).
fn only(readers: Result<Vec<ReaderReport>, Code>, options: &ScanOptions) -> Result<Vec<ReaderReport>, Code> {
    let mut readers = readers?;
    if let Some(name) = &options.reader {
        readers.retain(|r| &r.reader == name);
    }
    Ok(readers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::SlotState;

    /// A service whose waits (for a login and for a scan) are all `wait`.
    fn service(wait: Duration) -> Arc<CardService> {
        CardService::new(CertCache::memory(), wait, wait)
    }

    fn ready(name: &str) -> ReaderReport {
        ReaderReport {
            reader: name.into(),
            state: SlotState::CardReady,
            codes: Vec::new(),
            atr: String::new(),
            card: None,
            generation: None,
            detail: None,
        }
    }

    fn options(with_pin: bool, reader: Option<&str>) -> ScanOptions {
        ScanOptions { with_pin, reader: reader.map(str::to_owned) }
    }

    /// Holds the card as a login with its PIN dialog open does, until the returned sender is dropped.
    async fn login_holding(
        cards: &Arc<CardService>,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (held, is_held) = tokio::sync::oneshot::channel();
        let c = cards.clone();
        let login = tokio::spawn(async move {
            c.exclusive(move |_| {
                let _ = held.send(());
                let _ = wait.recv();
                Ok(())
            })
            .await
            .unwrap();
        });
        is_held.await.unwrap();
        (release, login)
    }

    #[tokio::test]
    async fn a_scan_during_a_login_answers_the_last_scan_and_a_login_still_gets_busy() {
        let cards = service(Duration::from_millis(50));
        cards.remember(true, Ok(vec![ready("A"), ready("B")]));
        let (release, login) = login_holding(&cards).await;

        // The page's status and the CLI-style blocking scan: the state before the login, filtered.
        let seen = cards.scan(options(true, None)).await.unwrap();
        assert_eq!(seen.iter().map(|r| r.reader.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        let c = cards.clone();
        let (one, source) =
            tokio::task::spawn_blocking(move || c.scan_from(&options(false, Some("B")))).await.unwrap();
        assert_eq!((one.unwrap()[0].reader.as_str(), source), ("B", Source::Remembered));

        // A second login still waits, then gets BUSY.
        let second = cards.exclusive(|_| Ok(())).await.unwrap_err();
        assert_eq!(second.code, Code::Busy);
        drop(release);
        login.await.unwrap();
        // The login ended: its tries left may have changed, the last scan is forgotten.
        assert!(cards.remembered(&options(false, None), None).is_none());
    }

    #[tokio::test]
    async fn with_nothing_to_answer_from_a_scan_waits_then_reports_busy() {
        let cards = service(Duration::from_millis(50));
        // Remembered without the tries left: not enough for a scan that asks for them.
        cards.remember(false, Ok(vec![ready("A")]));
        let (release, login) = login_holding(&cards).await;
        assert_eq!(cards.scan(options(true, None)).await.unwrap_err(), Code::Busy);
        let c = cards.clone();
        let blocking =
            tokio::task::spawn_blocking(move || c.scan_blocking(&options(true, None))).await.unwrap();
        assert_eq!(blocking.unwrap_err(), Code::Busy);
        let c = cards.clone();
        let held = tokio::task::spawn_blocking(move || c.blocking(|_| ())).await.unwrap();
        assert_eq!(held, Err(Code::Busy));
        drop(release);
        login.await.unwrap();
        let c = cards.clone();
        assert!(tokio::task::spawn_blocking(move || c.wait_free(|| false)).await.unwrap());
    }
}
