//! The monitor's polling fallback (macOS 11 and earlier have no `\\?PnP?\Notification` pseudo-reader),
//! forced on the real pcscd: readers found by listing them every period, cards still seen, readers
//! appearing and disappearing with the service (this binary owns its pcscd, so stopping it disturbs no
//! other test).
//!
//! pcsc-lite adds and removes only USB readers while it runs; the stack's vpcd readers are configured
//! ones, fixed for the life of a pcscd: they come and go here with pcscd restarted, which the polling
//! monitor sees through the same list comparison as a reader plugged in on a Mac.

use std::time::Duration;

use cpx_pcsc::{MonitorEvent, MonitorOptions, ReaderWatch};
use cpx_tests::events::Events;
use cpx_tests::{all_readers, insert, stack};

#[test]
fn polling_monitor_sees_readers_come_and_go_and_cards() {
    let s = stack();
    let reader = s.reader();
    let events =
        Events::start(MonitorOptions { readers: ReaderWatch::Poll { period: Duration::from_millis(200) } });
    assert!(events.monitor.is_polling());
    events.service_started("service started");
    let mut unseen: Vec<String> = all_readers().into_iter().map(|r| r.name).collect();
    while !unseen.is_empty() {
        match events.next("every reader listed", |e| matches!(e, MonitorEvent::ReaderAdded { .. })) {
            MonitorEvent::ReaderAdded { reader } => unseen.retain(|r| *r != reader),
            _ => unreachable!(),
        }
    }

    // Cards: the wait on the known readers is still event-driven between two listings.
    let card = insert("cps4", &reader);
    assert_eq!(events.card_inserted("insertion", &reader.name), cpx_sim::persona::ATR_CPS4);
    card.remove();
    events.card_removed("removal", &reader.name);

    // The readers go: a card in one is reported removed first.
    let card = insert("cps3", &reader);
    events.card_inserted("insertion", &reader.name);
    s.stop();
    events.card_removed("card gone with its reader", &reader.name);
    events.reader_removed("reader gone", &reader.name);
    events.service_stopped("service stopped");
    drop(card);

    // A service with no reader: the poll waits on nothing but its period, and sees the service go.
    s.start_without_readers().unwrap();
    events.service_started("service started (no reader)");
    assert!(events.monitor.is_polling());
    s.stop();
    events.service_stopped("service stopped again");

    // The readers are back: listed again, and a card in one is seen.
    s.start().unwrap();
    events.service_started("service started again");
    events.reader_added("reader listed again", &reader.name);
    let _card = insert("cps3", &reader);
    events.card_inserted("insertion after the readers came back", &reader.name);
    events.monitor.stop();
}
