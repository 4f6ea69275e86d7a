//! The monitor on the real pcscd: insertion and removal events, and pcscd stopped then restarted (this
//! binary owns its pcscd, so stopping it disturbs no other test).

use cpx_pcsc::MonitorOptions;
use cpx_tests::events::Events;
use cpx_tests::{binary, insert, stack};

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
    let events = Events::start(MonitorOptions::default());
    events.service_started("service started");
    events.reader_added("reader listed", &reader.name);
    assert!(!events.monitor.is_polling(), "pcsc-lite honours the plug-and-play pseudo-reader: no polling");

    let card = insert("cps4", &reader);
    assert_eq!(events.card_inserted("insertion", &reader.name), cpx_sim::persona::ATR_CPS4);
    card.remove();
    events.card_removed("removal", &reader.name);

    // pcscd stops: the monitor says so, and the CLI says « service arrêté » with its exit status.
    let _card = insert("cps3", &reader);
    events.card_inserted("insertion", &reader.name);
    s.stop();
    events.service_stopped("service stopped");
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
    events.service_started("service started (no reader)");
    assert_eq!(first_fault(), "NO_READER", "diagnose names the missing reader first");
    s.stop();
    events.service_stopped("service stopped again");

    // pcscd is back: the monitor reconnects by itself and reports the reader again.
    s.start().unwrap();
    events.service_started("service started again");
    events.reader_added("reader listed again", &reader.name);
    drop(_card);
    let _card = insert("cps3", &reader);
    events.card_inserted("insertion after the restart", &reader.name);
    events.monitor.stop();
}
