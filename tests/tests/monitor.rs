//! The monitor on the real pcscd: insertion and removal events, and pcscd stopped then restarted (this
//! binary owns its pcscd, so stopping it disturbs no other test).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_pcsc::{Monitor, MonitorEvent};
use cpx_tests::{binary, insert, stack};

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

/// The code of `cpx-agent diagnose`'s first check that is not fine.
fn first_fault() -> String {
    let config = cpx_tests::out_dir("monitor-diagnose").join("config.toml");
    std::fs::write(&config, format!("port = {}\n", cpx_tests::agent::free_port())).unwrap();
    let out = binary("cpx-agent").args(["diagnose", "--json", "--config"]).arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["first_fault"]["code"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn monitor_follows_cards_and_survives_a_pcscd_restart() {
    let s = stack();
    let reader = s.reader();
    let (tx, rx) = mpsc::channel();
    let monitor = Monitor::start(move |e, _| {
        let _ = tx.send(e);
    });
    next(&rx, "service started", |e| *e == MonitorEvent::ServiceStarted);
    next(&rx, "reader listed", |e| matches!(e, MonitorEvent::ReaderAdded { reader: r } if *r == reader.name));
    assert!(!monitor.is_polling(), "pcsc-lite honours the plug-and-play pseudo-reader: no polling");

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

    // pcscd stops: the monitor says so, and the CLI says « service arrêté » with its exit status.
    let _card = insert("cps3", &reader);
    next(
        &rx,
        "insertion",
        |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if *r == reader.name),
    );
    s.stop();
    next(&rx, "service stopped", |e| *e == MonitorEvent::ServiceStopped);
    let out = binary("cpx-agent").arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "exit status for a stopped service");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("service de carte à puce (PC/SC) est arrêté"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(first_fault(), "PCSC_SERVICE_STOPPED", "diagnose names the stopped service first");

    // pcscd running with no reader configured.
    s.start_without_readers().unwrap();
    next(&rx, "service started (no reader)", |e| *e == MonitorEvent::ServiceStarted);
    assert_eq!(first_fault(), "NO_READER", "diagnose names the missing reader first");
    s.stop();
    next(&rx, "service stopped again", |e| *e == MonitorEvent::ServiceStopped);

    // pcscd is back: the monitor reconnects by itself and reports the reader again.
    s.start().unwrap();
    next(&rx, "service started again", |e| *e == MonitorEvent::ServiceStarted);
    next(
        &rx,
        "reader listed again",
        |e| matches!(e, MonitorEvent::ReaderAdded { reader: r } if *r == reader.name),
    );
    drop(_card);
    let _card = insert("cps3", &reader);
    next(
        &rx,
        "insertion after the restart",
        |e| matches!(e, MonitorEvent::CardInserted { reader: r, .. } if *r == reader.name),
    );
    monitor.stop();
}
