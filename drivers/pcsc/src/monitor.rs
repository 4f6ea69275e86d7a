//! Event-driven reader and card monitor on `SCardGetStatusChange`.
//!
//! The monitor thread sleeps inside the PC/SC service until something changes (no polling of its own),
//! with the `\\?PnP?\Notification` pseudo-reader so that readers plugged in or out are seen too. When the
//! service stops, it reports [`MonitorEvent::ServiceStopped`] and tries to reconnect with a growing delay
//! (pcsc-lite offers no event for a service coming back); once back, [`MonitorEvent::ServiceStarted`] and
//! the current readers and cards are reported again.

use std::collections::BTreeMap;
use std::ffi::CString;
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
    ServiceStarted,
    ServiceStopped,
    ReaderAdded { reader: String },
    ReaderRemoved { reader: String },
    CardInserted {
        reader: String,
        #[serde(serialize_with = "hex_bytes")]
        atr: Vec<u8>,
    },
    /// A card is in the reader but does not answer (no ATR).
    CardMute { reader: String },
    CardRemoved { reader: String },
}

/// A running monitor; dropping it (or [`Monitor::stop`]) ends the thread.
pub struct Monitor {
    ctx: Arc<Mutex<Option<pcsc::Context>>>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Monitor {
    /// Starts the monitor; `on_event` runs on the monitor thread, in order, for every event, with the
    /// time the PC/SC service reported it.
    pub fn start(mut on_event: impl FnMut(MonitorEvent, Instant) + Send + 'static) -> Self {
        let ctx = Arc::new(Mutex::new(None));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let shared = ctx.clone();
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
                        let outcome = watch(&c, &mut on_event, &stop_rx);
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
        Self { ctx, stop: Some(stop_tx), thread: Some(thread) }
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

/// Watches until the service goes away (or the monitor is cancelled).
fn watch(ctx: &pcsc::Context, on_event: &mut impl FnMut(MonitorEvent, Instant), stop: &mpsc::Receiver<()>) -> Outcome {
    // What we last reported per reader: its slot state and PC/SC event counter.
    let mut known: BTreeMap<String, (SlotState, u32)> = BTreeMap::new();
    let mut pnp = pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE);
    loop {
        let names = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(pcsc::Error::Cancelled) => return Outcome::Stopped,
            Err(_) => return lost(known, on_event),
        };
        let listed: Vec<String> = names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
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
        pnp.sync_current_state();
        states.push(pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pnp.current_state()));

        // Wait for changes on this set of readers until the set itself changes.
        loop {
            if stop.try_recv() != Err(mpsc::TryRecvError::Empty) {
                return Outcome::Stopped;
            }
            match ctx.get_status_change(None, &mut states) {
                Ok(()) => {}
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
                let card_changed = now.has_card() && before.has_card() && count != before_count && before_count != 0;
                if before.has_card() && (!now.has_card() || card_changed) {
                    on_event(MonitorEvent::CardRemoved { reader: reader.clone() }, at);
                }
                if now.has_card() && (!before.has_card() || card_changed || (before == SlotState::Mute) != (now == SlotState::Mute)) {
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
fn lost(known: BTreeMap<String, (SlotState, u32)>, on_event: &mut impl FnMut(MonitorEvent, Instant)) -> Outcome {
    for (reader, (state, _)) in known {
        if state.has_card() {
            on_event(MonitorEvent::CardRemoved { reader: reader.clone() }, Instant::now());
        }
        on_event(MonitorEvent::ReaderRemoved { reader }, Instant::now());
    }
    Outcome::ServiceLost
}
