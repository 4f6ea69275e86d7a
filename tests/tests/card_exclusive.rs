//! The card is ours alone while the code porteur is verified: other programs on the machine (`cpx-rival`,
//! plain PC/SC clients without the PIN) hammer the virtual CPS3 through the real pcscd during the agent's
//! logins, and never find the code porteur verified nor get a signature. They do get the card between
//! and during logins (the test checks it, so that it cannot pass with rivals that never competed).
//! GET DATA's `61xx` and its GET RESPONSE travel in one transaction, so a rival cannot turn them into
//! `69 85`. A rival that takes the card exclusively after a login finds it reset, and the agent's next
//! login reports the card in use, with a typed error and no PIN dialog.
//!
//! The tests of this file run one at a time: the agent logs in with the CPx card it finds in any reader.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use cpx_card::CertCache;
use cpx_tests::agent::AgentProcess;
use cpx_tests::rival::{Rival, Seen};
use cpx_tests::{insert_with, logged_commands, open_card, out_dir, stack, Options};
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ORIGIN: &str = "https://portal.test";

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

fn challenge() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn token(agent: &AgentProcess) -> cpx_tests::agent::HttpAnswer {
    agent.request_unchecked(
        "POST",
        "/v1/token",
        &[("Origin", ORIGIN), ("Content-Type", "application/json")],
        Some(&json!({"challenge": challenge()}).to_string()),
    )
}

fn agent(name: &str) -> AgentProcess {
    AgentProcess::start(
        &out_dir(name).join("agent"),
        &format!("[[site]]\norigin = \"{ORIGIN}\"\nsigned_token = true\n"),
    )
}

/// The rival never found the code porteur verified nor had the card sign.
fn assert_nothing_gained(what: &str, seen: &[Seen]) {
    for s in seen {
        assert_ne!(s.asked, "9000", "{what} found the code porteur verified: {s:?}");
        assert!(!(s.signed == "9000" || s.signed.starts_with("61")), "{what} had the card sign: {s:?}");
    }
}

#[test]
fn rivals_never_find_the_code_porteur_verified() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const LOGINS: usize = 30;
    let agent = agent("exclusive-logins");
    let reader = stack().reader();
    let log = out_dir("exclusive-logins-card").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    let rivals = vec![
        Rival::start(&reader.name, "poll", 300, 0),
        Rival::start(&reader.name, "poll", 700, 0),
        Rival::start(&reader.name, "transaction", 20_000, 0),
        // One that keeps the card a while once it has it (the agent must not be left waiting to reset it).
        Rival::start(&reader.name, "transaction", 200_000, 30),
    ];

    agent.answer_pins(&["1234"; LOGINS]);
    let mut logins = Vec::new();
    let mut failures = Vec::new();
    for i in 0..LOGINS {
        let start = now_nanos();
        let r = token(&agent);
        logins.push((start, now_nanos()));
        if r.status != 200 {
            failures.push(format!("login {i}: {} {}", r.status, r.body));
        }
    }
    let seen: Vec<(String, Vec<Seen>)> =
        rivals.into_iter().map(|r| (r.what.clone(), r.finish().unwrap_or_else(|e| panic!("{e}")))).collect();

    for (what, s) in &seen {
        assert_nothing_gained(what, s);
    }
    assert!(
        failures.is_empty(),
        "logins failed while rivals competed for the card:\n{}",
        failures.join("\n")
    );
    // The rivals really competed: they had the card many times, and during most of the logins (between
    // the agent's own transactions: opening the card, tries left, the PIN dialog, the signature).
    let all: Vec<u128> = seen.iter().flat_map(|(_, s)| s.iter().map(|x| x.at_nanos)).collect();
    assert!(all.len() >= LOGINS, "the rivals had the card only {} times", all.len());
    let contested = logins.iter().filter(|(a, b)| all.iter().any(|t| a < t && t < b)).count();
    assert!(contested * 2 >= LOGINS, "the rivals had the card during only {contested} of {LOGINS} logins");
    // The card itself signed exactly once per login: nothing for anyone else.
    let commands = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = commands.lines().collect();
    let signatures = lines
        .windows(2)
        .filter(|w| {
            w[0].starts_with("> 00880000")
                && (w[1].starts_with("< ")
                    && (w[1].ends_with("9000") || w[1][w[1].len() - 4..].starts_with("61")))
        })
        .count();
    assert_eq!(signatures, LOGINS, "INTERNAL AUTHENTICATEs the card answered with a signature");
}

#[test]
fn get_response_chains_are_not_interleaved() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let log = out_dir("exclusive-get-data").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
    let mut card = open_card(&reader.name, &CertCache::memory()).expect("CPS3 opens");
    let rivals = vec![Rival::start(&reader.name, "poll", 100, 0), Rival::start(&reader.name, "poll", 250, 0)];
    // Tries left: GET DATA answers 61xx (T=0) and the data comes with the GET RESPONSE that follows.
    let mut errors = Vec::new();
    for _ in 0..200 {
        if let Err(e) = card.pin_status() {
            errors.push(e.to_string());
        }
        // Room for the rivals between two reads (back to back, the agent's next transaction would
        // mostly win the lock).
        std::thread::sleep(Duration::from_millis(1));
    }
    let seen: Vec<Seen> =
        rivals.into_iter().flat_map(|r| r.finish().unwrap_or_else(|e| panic!("{e}"))).collect();
    assert!(
        errors.is_empty(),
        "{} of 200 GET DATA failed with rivals around, first: {}",
        errors.len(),
        errors[0]
    );
    assert!(seen.len() >= 50, "the rivals reached the card only {} times", seen.len());
    // In the card's log, a GET RESPONSE always follows the command that announced it.
    let lines = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    let orphans = lines
        .windows(3)
        .filter(|w| w[1].starts_with("< ") && w[1].ends_with("6985") && w[0].starts_with("> 00C0"))
        .count();
    assert_eq!(orphans, 0, "GET RESPONSEs that found another program's command in between");
}

/// Waits until PC/SC reports the card in `reader` held exclusively by someone.
fn wait_exclusive(reader: &str) {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut states =
            [pcsc::ReaderState::new(std::ffi::CString::new(reader).unwrap(), pcsc::State::UNAWARE)];
        match ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => panic!("{reader}: {e}"),
        }
        if states[0].event_state().contains(pcsc::State::EXCLUSIVE) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the holder did not get the card exclusively within 10 s ({:?})",
            states[0].event_state()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_rival_holding_the_card_after_a_login_finds_it_reset() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = agent("exclusive-holder");
    let reader = stack().reader();
    let log = out_dir("exclusive-holder-card").join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));

    for round in 0..3 {
        agent.answer_pins(&["1234"]);
        let r = token(&agent);
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
        // Right after the login, a program takes the card for itself: it connects as soon as the agent
        // lets go of the card.
        let holder = Rival::start(&reader.name, "exclusive", 0, 0);
        wait_exclusive(&reader.name);
        // The agent's next login: the card is someone else's now.
        let dialogs = agent.dialogs().len();
        let busy = token(&agent);
        let code = busy.json()["error"]["code"].as_str().map(str::to_owned);
        assert_eq!(code.as_deref(), Some("CARD_IN_USE"), "round {round}: {} {}", busy.status, busy.body);
        assert_eq!(
            agent.dialogs().len(),
            dialogs,
            "round {round}: no PIN dialog for a card held by another program"
        );
        let seen = holder.finish().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen.len(), 1, "round {round}: the holder had the card once: {seen:?}");
        assert_nothing_gained("the holder", &seen);
    }
    // Once the holder let go, the agent logs in again.
    agent.answer_pins(&["1234"]);
    let r = token(&agent);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        logged_commands(&log).iter().any(|c| c.starts_with("00200001") && !c.contains("secret")),
        "the holder asked the card"
    );
}
