//! The card read in the background as soon as it is inserted (`cpx-agent serve`, agent/src/service.rs
//! `read_cards_on_insertion`; the tray app's watch does the same): a professional who clicks later finds
//! the card known, and the first login costs the card-known commands only (7 APDUs on a CPS3: tries,
//! VERIFY, MSE SET, INTERNAL AUTHENTICATE, docs/benchmarks.md « The floor »). Through the real pcscd +
//! vpcd and the agent as a page calls it; the count is the virtual card's own APDU log. What the read
//! relies on stays safe: a card pulled in the middle of its background read, then another put in, and a
//! card renewed under the same serial, are each read again, and the login signs with the card in the
//! reader.
//!
//! The tests of this file run one at a time: the agent logs in with the CPx card it finds in any reader.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use cpx_card::CertCache;
use cpx_tests::agent::AgentProcess;
use cpx_tests::{insert_with, logged_commands, open_card, out_dir, poll, stack, wait_state, Options};
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ORIGIN: &str = "https://portal.test";
/// What the agent logs when it has read an inserted card (agent/src/service.rs).
const READ_ON_INSERTION: &str = "card read on insertion";
/// A card-known login on a CPS3: SELECT MF, GET DATA of the tries and its GET RESPONSE, VERIFY, MSE SET
/// AT, INTERNAL AUTHENTICATE and its GET RESPONSE (tests/tests/card_known.rs counts the same).
const CARD_KNOWN_APDUS: usize = 7;

fn challenge() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn agent(name: &str) -> AgentProcess {
    AgentProcess::start(
        &out_dir(name).join("agent"),
        &format!("[[site]]\norigin = \"{ORIGIN}\"\nsigned_token = true\n"),
    )
}

/// A signed-token login, as a page asks for it; the token's certificate (DER).
fn login(agent: &AgentProcess) -> Vec<u8> {
    agent.answer_pins(&["1234"]);
    let r = agent.request_unchecked(
        "POST",
        "/v1/token",
        &[("Origin", ORIGIN), ("Content-Type", "application/json")],
        Some(&json!({"challenge": challenge()}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let certificate = r.json()["certificate"].as_str().expect("the token's certificate").to_owned();
    base64::engine::general_purpose::STANDARD.decode(certificate).expect("base64 certificate")
}

/// Waits until the agent's log says it read an inserted card in `reader` `times` times (no request is
/// made to the agent meanwhile).
fn wait_read_on_insertion(agent: &AgentProcess, reader: &str, times: usize) {
    poll("the agent reads the inserted card in the background", Duration::from_secs(30), || {
        let logs = agent.logs();
        let read = logs.lines().filter(|l| l.contains(READ_ON_INSERTION) && l.contains(reader)).count();
        (read >= times).then_some(())
    });
}

/// A SELECT of the authentication certificate's file (by file id under the application, or by path).
fn selects_certificate(commands: &[String]) -> bool {
    commands.iter().any(|c| c.starts_with("00A4") && c.ends_with("C002"))
}

/// The commands the card received from index `from` on, checked to be a card-known login.
fn assert_card_known_login(what: &str, commands: &[String], from: usize) {
    let login = &commands[from..];
    assert_eq!(login.len(), CARD_KNOWN_APDUS, "{what}: the card-known commands only: {login:?}");
    assert!(!selects_certificate(login), "{what}: the certificate was not read again: {login:?}");
    assert!(!login.iter().any(|c| c.starts_with("00B0")), "{what}: no READ BINARY: {login:?}");
}

#[test]
fn a_card_inserted_is_read_in_the_background_and_its_first_login_is_card_known() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = agent("on-insertion");
    let reader = stack().reader();
    let log = out_dir("on-insertion-card").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));

    // Nothing asked the agent anything: its own watch reads the card.
    wait_read_on_insertion(&agent, &reader.name, 1);
    let read = logged_commands(&log);
    assert!(selects_certificate(&read), "the background read reads the certificate: {read:?}");

    // The professional clicks: the first login costs what a card-known login costs, and so does the next.
    login(&agent);
    let after_first = logged_commands(&log);
    assert_card_known_login("first login", &after_first, read.len());
    login(&agent);
    assert_card_known_login("second login", &logged_commands(&log), after_first.len());
}

#[test]
fn a_card_pulled_mid_read_or_renewed_under_the_same_serial_is_read_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = agent("on-insertion-safe");
    let reader = stack().reader();

    // Pulled at the background read's first READ BINARY: nothing is remembered of it.
    let pulled = Options { pull_on: Some(0xB0), ..Options::default() };
    let gone = insert_with("cps3", &reader, &pulled, None);
    wait_state(&reader.name, false, Duration::from_secs(10)).expect("the card left mid-read");
    drop(gone);

    // The card put back: read again in the background, then a card-known login.
    let log = out_dir("on-insertion-safe-card").join("apdu.log");
    let card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    wait_read_on_insertion(&agent, &reader.name, 1);
    let read = logged_commands(&log);
    assert!(selects_certificate(&read), "the card put back is read again: {read:?}");
    let first = login(&agent);
    assert_card_known_login("after the pulled card", &logged_commands(&log), read.len());
    card.remove();
    wait_state(&reader.name, false, Duration::from_secs(10)).expect("card removed");

    // The same serial, its certificate renewed: read again on insertion, and the login signs with the new
    // certificate, not the cached one.
    let renewed_log = out_dir("on-insertion-renewed-card").join("apdu.log");
    let renewed = Options { holder: Some(cpx_sim::pki::DUPONT_RENEWED), ..Options::default() };
    let _renewed = insert_with("cps3", &reader, &renewed, Some(&renewed_log));
    wait_read_on_insertion(&agent, &reader.name, 2);
    let read = logged_commands(&renewed_log);
    assert!(selects_certificate(&read), "the renewed card is read again: {read:?}");
    let second = login(&agent);
    assert_card_known_login("renewed card", &logged_commands(&renewed_log), read.len());
    assert_ne!(second, first, "the renewed certificate, not the cached one");
    let on_card =
        open_card(&reader.name, &CertCache::memory()).expect("the renewed card").certificate().to_vec();
    assert_eq!(second, on_card, "the token carries the certificate of the card in the reader");
}
