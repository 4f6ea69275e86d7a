//! The PC/SC monitor's events as a test reads them: each wait takes the next event that matches within a
//! deadline and fails naming what came instead.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_pcsc::{Monitor, MonitorEvent, MonitorOptions};

/// How long a test waits for one event.
const WAIT: Duration = Duration::from_secs(10);

/// A running monitor and the events it sent.
pub struct Events {
    pub monitor: Monitor,
    rx: mpsc::Receiver<MonitorEvent>,
}

impl Events {
    /// Starts a monitor with `options` whose events this test reads.
    pub fn start(options: MonitorOptions) -> Self {
        let (tx, rx) = mpsc::channel();
        let monitor = Monitor::start_with(options, move |e, _| {
            let _ = tx.send(e);
        });
        Self { monitor, rx }
    }

    /// The next event that `pred` accepts; fails after [`WAIT`] with the events seen meanwhile.
    pub fn next(&self, what: &str, pred: impl Fn(&MonitorEvent) -> bool) -> MonitorEvent {
        let deadline = Instant::now() + WAIT;
        let mut others = Vec::new();
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(e) if pred(&e) => return e,
                Ok(e) => others.push(e),
                Err(_) => panic!("monitor: no {what} within {WAIT:?}; saw {others:?}"),
            }
        }
    }

    pub fn service_started(&self, what: &str) {
        self.next(what, |e| *e == MonitorEvent::ServiceStarted);
    }

    pub fn service_stopped(&self, what: &str) {
        self.next(what, |e| *e == MonitorEvent::ServiceStopped);
    }

    pub fn reader_added(&self, what: &str, reader: &str) {
        self.next(what, |e| matches!(e, MonitorEvent::ReaderAdded { reader: r } if r == reader));
    }

    pub fn reader_removed(&self, what: &str, reader: &str) {
        self.next(what, |e| matches!(e, MonitorEvent::ReaderRemoved { reader: r } if r == reader));
    }

    /// Waits for a card inserted in `reader`; its ATR in hex.
    pub fn card_inserted(&self, what: &str, reader: &str) -> String {
        match self.next(what, |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if r == reader)) {
            MonitorEvent::CardInserted { atr, .. } => hex::encode_upper(atr),
            _ => unreachable!("the predicate accepts insertions only"),
        }
    }

    pub fn card_removed(&self, what: &str, reader: &str) {
        self.next(what, |e| matches!(e, MonitorEvent::CardRemoved { reader: r } if r == reader));
    }
}
