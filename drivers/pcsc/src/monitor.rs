//! Event-driven reader and card monitor on `SCardGetStatusChange`.
//!
//! The monitor thread sleeps inside the PC/SC service until something changes (no polling of its own),
//! with the `\\?PnP?\Notification` pseudo-reader so that readers plugged in or out are seen too. When the
//! service stops, it reports [`MonitorEvent::ServiceStopped`] and tries to reconnect with a growing delay
//! (pcsc-lite offers no event for a service coming back); once back, [`MonitorEvent::ServiceStarted`] and
//! the current readers and cards are reported again.
//!
//! Readers plugged in or out: pcsc-lite, Windows and macOS 12 and later wake a wait on the pseudo-reader
//! when the reader list changes. macOS 11 and earlier (Apple's PC/SC on CryptoTokenKit) do not know the
//! pseudo-reader: a wait on it answers at once with `SCARD_STATE_UNKNOWN` in its event state (the probe
//! pcsc-tools' `pcsc_scan` uses). The monitor probes for it once per connection to the service and, when
//! it is refused, falls back to listing the readers every [`POLL_PERIOD`] (card events stay event-driven:
//! the wait on the known readers ends at each period to list them again). [`MonitorOptions`] forces the
//! fallback (the tests use it on pcsc-lite). Reader names are taken as the service gives them (macOS: the
//! USB product name, without pcsc-lite's ` 00 00` suffix).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::readers::{hex_bytes, SlotState};

/// One thing that happened to the PC/SC service, a reader or a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum MonitorEvent {
    /// The PC/SC service answers (at start, or again after it stopped).
    ServiceStarted,
    /// The PC/SC service stopped; the monitor tries to reconnect.
    ServiceStopped,
    /// A reader was plugged in.
    ReaderAdded {
        /// The reader's name.
        reader: String,
    },
    /// A reader was unplugged.
    ReaderRemoved {
        /// The reader's name.
        reader: String,
    },
    /// A card answered to reset in the reader.
    CardInserted {
        /// The reader's name.
        reader: String,
        /// The card's ATR.
        #[serde(serialize_with = "hex_bytes")]
        atr: Vec<u8>,
    },
    /// A card is in the reader but does not answer (no ATR).
    CardMute {
        /// The reader's name.
        reader: String,
    },
    /// The card was taken out.
    CardRemoved {
        /// The reader's name.
        reader: String,
    },
}

/// A running monitor; dropping it (or [`Monitor::stop`]) ends the thread.
pub struct Monitor {
    ctx: Arc<Mutex<Option<pcsc::Context>>>,
    polling: Arc<AtomicBool>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// How often the reader list is read again where the service has no plug-and-play notification.
pub const POLL_PERIOD: Duration = Duration::from_secs(1);

/// How the monitor learns that readers were plugged in or out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderWatch {
    /// The `\\?PnP?\Notification` pseudo-reader where the service honours it, else polling every `period`.
    Auto {
        /// How often to list the readers when polling.
        period: Duration,
    },
    /// Always list the readers every `period`, as on macOS 11 and earlier (tests force it).
    Poll {
        /// How often to list the readers.
        period: Duration,
    },
}

/// The monitor's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorOptions {
    /// How reader arrivals and removals are noticed.
    pub readers: ReaderWatch,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        Self { readers: ReaderWatch::Auto { period: POLL_PERIOD } }
    }
}

impl Monitor {
    /// Starts the monitor; `on_event` runs on the monitor thread, in order, for every event, with the
    /// time the PC/SC service reported it.
    pub fn start(on_event: impl FnMut(MonitorEvent, Instant) + Send + 'static) -> Self {
        Self::start_with(MonitorOptions::default(), on_event)
    }

    /// Same, with options.
    pub fn start_with(
        options: MonitorOptions,
        mut on_event: impl FnMut(MonitorEvent, Instant) + Send + 'static,
    ) -> Self {
        let ctx = Arc::new(Mutex::new(None));
        let polling = Arc::new(AtomicBool::new(matches!(options.readers, ReaderWatch::Poll { .. })));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = ctx.clone();
        let polling_flag = polling.clone();
        let thread = thread::Builder::new()
            .name("pcsc monitor".into())
            .spawn(move || {
                let mut service_up: Option<bool> = None;
                let mut delay = RETRY_MIN;
                loop {
                    if let Ok(c) = pcsc::Context::establish(pcsc::Scope::User) {
                        delay = RETRY_MIN;
                        *shared.lock().unwrap() = Some(c.clone());
                        if stop_rx.try_recv() != Err(mpsc::TryRecvError::Empty) {
                            return;
                        }
                        if service_up != Some(true) {
                            on_event(MonitorEvent::ServiceStarted, Instant::now());
                        }
                        service_up = Some(true);
                        let poll = match options.readers {
                            ReaderWatch::Poll { period } => Some(period),
                            ReaderWatch::Auto { period } => match pnp_supported(&c) {
                                Ok(true) => None,
                                Ok(false) => Some(period),
                                Err(pcsc::Error::Cancelled) => return,
                                Err(_) => Some(period),
                            },
                        };
                        polling_flag.store(poll.is_some(), Ordering::SeqCst);
                        let outcome = watch(&c, &mut on_event, &stop_rx, poll);
                        *shared.lock().unwrap() = None;
                        if outcome == Outcome::Stopped {
                            return;
                        }
                    }
                    if service_up != Some(false) {
                        on_event(MonitorEvent::ServiceStopped, Instant::now());
                        service_up = Some(false);
                    }
                    match stop_rx.recv_timeout(delay) {
                        Err(RecvTimeoutError::Timeout) => delay = (delay * 2).min(RETRY_MAX),
                        _ => return,
                    }
                }
            })
            .expect("spawn monitor thread");
        Self { ctx, polling, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// True when readers are found by listing them every period (no plug-and-play notification from the
    /// service, or forced), as last decided on connecting to the service.
    pub fn is_polling(&self) -> bool {
        self.polling.load(Ordering::SeqCst)
    }

    /// Stops the monitor and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            if let Some(t) = self.thread.take() {
                // SCardCancel only interrupts a wait in progress: repeat it until the thread has seen it
                // (it may be between two waits when the first one lands).
                while !t.is_finished() {
                    if let Some(ctx) = self.ctx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                        let _ = ctx.cancel();
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                let _ = t.join();
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(PartialEq)]
enum Outcome {
    Stopped,
    ServiceLost,
}

/// Whether the service honours the `\\?PnP?\Notification` pseudo-reader: a wait on it that returns at
/// once (timeout 0) must not mark it `SCARD_STATE_UNKNOWN`.
fn pnp_supported(ctx: &pcsc::Context) -> Result<bool, pcsc::Error> {
    let mut probe = [pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE)];
    let result = ctx.get_status_change(Duration::ZERO, &mut probe);
    pnp_answer(result, probe[0].event_state())
}

/// The probe's answer read: `Ok(false)` when the pseudo-reader is refused (`UNKNOWN` in its event state,
/// or `SCARD_E_UNKNOWN_READER`), an error when the service itself failed.
fn pnp_answer(result: Result<(), pcsc::Error>, event: pcsc::State) -> Result<bool, pcsc::Error> {
    match result {
        Ok(()) | Err(pcsc::Error::Timeout) => Ok(!event.contains(pcsc::State::UNKNOWN)),
        Err(pcsc::Error::UnknownReader) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the reader list read at a polling period differs from the one being watched.
fn readers_changed(watched: &[String], listed: &[String]) -> bool {
    watched.len() != listed.len() || watched.iter().any(|r| !listed.contains(r))
}

/// The readers the service lists now (none is no error).
fn list(ctx: &pcsc::Context) -> Result<(Vec<CString>, Vec<String>), pcsc::Error> {
    let names = match ctx.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(e),
    };
    let listed = names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
    Ok((names, listed))
}

/// Watches until the service goes away (or the monitor is cancelled). With `poll`, the reader list is
/// read again every period instead of waiting on the plug-and-play pseudo-reader.
fn watch(
    ctx: &pcsc::Context,
    on_event: &mut impl FnMut(MonitorEvent, Instant),
    stop: &mpsc::Receiver<()>,
    poll: Option<Duration>,
) -> Outcome {
    // What we last reported per reader: its slot state and PC/SC event counter.
    let mut known: BTreeMap<String, (SlotState, u32)> = BTreeMap::new();
    let mut pnp = pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE);
    loop {
        let (names, listed) = match list(ctx) {
            Ok(l) => l,
            Err(pcsc::Error::Cancelled) => return Outcome::Stopped,
            Err(_) => return lost(known, on_event),
        };
        let gone: Vec<String> = known.keys().filter(|k| !listed.contains(k)).cloned().collect();
        for reader in gone {
            if known.remove(&reader).is_some_and(|(s, _)| s.has_card()) {
                on_event(MonitorEvent::CardRemoved { reader: reader.clone() }, Instant::now());
            }
            on_event(MonitorEvent::ReaderRemoved { reader }, Instant::now());
        }
        let mut states: Vec<pcsc::ReaderState> = Vec::with_capacity(names.len() + 1);
        for (name, reader) in names.iter().zip(&listed) {
            if !known.contains_key(reader) {
                on_event(MonitorEvent::ReaderAdded { reader: reader.clone() }, Instant::now());
                known.insert(reader.clone(), (SlotState::Empty, 0));
            }
            states.push(pcsc::ReaderState::new(CString::clone(name), pcsc::State::UNAWARE));
        }
        if poll.is_none() {
            pnp.sync_current_state();
            states.push(pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pnp.current_state()));
        }

        // Wait for changes on this set of readers until the set itself changes.
        loop {
            if stop.try_recv() != Err(mpsc::TryRecvError::Empty) {
                return Outcome::Stopped;
            }
            if let (Some(period), true) = (poll, states.is_empty()) {
                // Polling with no reader: nothing to wait on but the period (or the stop).
                match stop.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => break,
                    _ => return Outcome::Stopped,
                }
            }
            match ctx.get_status_change(poll, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) if poll.is_some() => match list(ctx) {
                    Ok((_, now)) if readers_changed(&listed, &now) => break,
                    Ok(_) => continue,
                    Err(pcsc::Error::Cancelled) => return Outcome::Stopped,
                    Err(_) => return lost(known, on_event),
                },
                Err(pcsc::Error::Timeout) => continue,
                Err(pcsc::Error::Cancelled) => return Outcome::Stopped,
                Err(pcsc::Error::UnknownReader) => break,
                Err(_) => return lost(known, on_event),
            }
            let at = Instant::now();
            let mut relist = false;
            for rs in states.iter_mut() {
                let ev = rs.event_state();
                if rs.name() == pcsc::PNP_NOTIFICATION() {
                    if ev.contains(pcsc::State::CHANGED) {
                        relist = true;
                    }
                    rs.sync_current_state();
                    continue;
                }
                let reader = rs.name().to_string_lossy().into_owned();
                if ev.contains(pcsc::State::UNKNOWN) {
                    relist = true;
                }
                let now = SlotState::from_pcsc(ev);
                let count = rs.event_count();
                let (before, before_count) = known.get(&reader).copied().unwrap_or((SlotState::Empty, 0));
                let card_changed =
                    now.has_card() && before.has_card() && count != before_count && before_count != 0;
                if before.has_card() && (!now.has_card() || card_changed) {
                    on_event(MonitorEvent::CardRemoved { reader: reader.clone() }, at);
                }
                if now.has_card()
                    && (!before.has_card()
                        || card_changed
                        || (before == SlotState::Mute) != (now == SlotState::Mute))
                {
                    let event = if now == SlotState::Mute {
                        MonitorEvent::CardMute { reader: reader.clone() }
                    } else {
                        MonitorEvent::CardInserted { reader: reader.clone(), atr: rs.atr().to_vec() }
                    };
                    on_event(event, at);
                }
                known.insert(reader, (now, count));
                rs.sync_current_state();
            }
            if relist {
                break;
            }
        }
    }
}

/// The service went away: every card and reader we knew of is gone with it.
fn lost(
    known: BTreeMap<String, (SlotState, u32)>,
    on_event: &mut impl FnMut(MonitorEvent, Instant),
) -> Outcome {
    for (reader, (state, _)) in known {
        if state.has_card() {
            on_event(MonitorEvent::CardRemoved { reader: reader.clone() }, Instant::now());
        }
        on_event(MonitorEvent::ReaderRemoved { reader }, Instant::now());
    }
    Outcome::ServiceLost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_pseudo_reader_means_polling() {
        // macOS 11 and earlier: the wait answers at once, the pseudo-reader marked unknown.
        assert_eq!(pnp_answer(Ok(()), pcsc::State::UNKNOWN | pcsc::State::CHANGED), Ok(false));
        assert_eq!(pnp_answer(Err(pcsc::Error::Timeout), pcsc::State::UNKNOWN), Ok(false));
        assert_eq!(pnp_answer(Err(pcsc::Error::UnknownReader), pcsc::State::UNAWARE), Ok(false));
        // pcsc-lite, Windows, macOS 12+: no reader change yet (timeout) or one already seen.
        assert_eq!(pnp_answer(Err(pcsc::Error::Timeout), pcsc::State::UNAWARE), Ok(true));
        assert_eq!(pnp_answer(Ok(()), pcsc::State::CHANGED), Ok(true));
        assert_eq!(
            pnp_answer(Err(pcsc::Error::NoService), pcsc::State::UNAWARE),
            Err(pcsc::Error::NoService)
        );
    }

    #[test]
    fn a_poll_relists_only_when_the_reader_set_changed() {
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let watched = set(&["SCR3310 Smart Card Reader", "Identiv uTrust 2700 R"]);
        assert!(
            !readers_changed(&watched, &set(&["Identiv uTrust 2700 R", "SCR3310 Smart Card Reader"])),
            "same readers, another order"
        );
        assert!(readers_changed(&watched, &set(&["SCR3310 Smart Card Reader"])), "one unplugged");
        assert!(
            readers_changed(
                &watched,
                &set(&["SCR3310 Smart Card Reader", "Identiv uTrust 2700 R", "Gemalto PC Twin Reader"])
            ),
            "one plugged in"
        );
        assert!(readers_changed(&set(&[]), &set(&["Gemalto PC Twin Reader"])));
    }
}
