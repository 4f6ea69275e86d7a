//! The monitor's polling fallback (macOS 11 and earlier have no `\\?PnP?\Notification` pseudo-reader),
//! forced on the real pcscd: readers found by listing them every period, cards still seen, readers
//! appearing and disappearing with the service (this binary owns its pcscd, so stopping it disturbs no
//! other test).
//!
//! pcsc-lite adds and removes only USB readers while it runs; the stack's vpcd readers are configured
//! ones, fixed for the life of a pcscd: they come and go here with pcscd restarted, which the polling
//! monitor sees through the same list comparison as a reader plugged in on a Mac.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_pcsc::{Monitor, MonitorEvent, MonitorOptions, ReaderWatch};
use cpx_tests::{all_readers, insert, stack};

fn next(rx: &mpsc::Receiver<MonitorEvent>, what: &str, pred: impl Fn(&MonitorEvent) -> bool) -> MonitorEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut others = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(e) if pred(&e) => return e,
            Ok(e) => others.push(e),
            Err(_) => panic!("monitor: no {what} within 10 s; saw {others:?}"),
        }
    }
}

#[test]
fn polling_monitor_sees_readers_come_and_go_and_cards() {
    let s = stack();
    let reader = s.reader();
    let (tx, rx) = mpsc::channel();
    let options = MonitorOptions { readers: ReaderWatch::Poll { period: Duration::from_millis(200) } };
    let monitor = Monitor::start_with(options, move |e, _| {
        let _ = tx.send(e);
    });
    assert!(monitor.is_polling());
    next(&rx, "service started", |e| *e == MonitorEvent::ServiceStarted);
    let mut unseen: Vec<String> = all_readers().into_iter().map(|r| r.name).collect();
    while !unseen.is_empty() {
        match next(&rx, "every reader listed", |e| matches!(e, MonitorEvent::ReaderAdded { .. })) {
            MonitorEvent::ReaderAdded { reader } => unseen.retain(|r| *r != reader),
            _ => unreachable!(),
        }
    }

    // Cards: the wait on the known readers is still event-driven between two listings.
    let card = insert("cps4", &reader);
    let e = next(
        &rx,
        "insertion",
        |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if *r == reader.name),
    );
    assert!(
        matches!(e, MonitorEvent::CardInserted { atr, .. } if hex::encode_upper(&atr) == cpx_sim::persona::ATR_CPS4)
    );
    card.remove();
    next(&rx, "removal", |e| matches!(e, MonitorEvent::CardRemoved { reader: r } if *r == reader.name));

    // The readers go: a card in one is reported removed first.
    let card = insert("cps3", &reader);
    next(
        &rx,
        "insertion",
        |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if *r == reader.name),
    );
    s.stop();
    next(
        &rx,
        "card gone with its reader",
        |e| matches!(e, MonitorEvent::CardRemoved { reader: r } if *r == reader.name),
    );
    next(&rx, "reader gone", |e| matches!(e, MonitorEvent::ReaderRemoved { reader: r } if *r == reader.name));
    next(&rx, "service stopped", |e| *e == MonitorEvent::ServiceStopped);
    drop(card);

    // A service with no reader: the poll waits on nothing but its period, and sees the service go.
    s.start_without_readers().unwrap();
    next(&rx, "service started (no reader)", |e| *e == MonitorEvent::ServiceStarted);
    assert!(monitor.is_polling());
    s.stop();
    next(&rx, "service stopped again", |e| *e == MonitorEvent::ServiceStopped);

    // The readers are back: listed again, and a card in one is seen.
    s.start().unwrap();
    next(&rx, "service started again", |e| *e == MonitorEvent::ServiceStarted);
    next(
        &rx,
        "reader listed again",
        |e| matches!(e, MonitorEvent::ReaderAdded { reader: r } if *r == reader.name),
    );
    let _card = insert("cps3", &reader);
    next(
        &rx,
        "insertion after the readers came back",
        |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if *r == reader.name),
    );
    monitor.stop();
}
