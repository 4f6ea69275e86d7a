//! What real cards do that the first virtual cards did not, end to end on the real pcscd + vpcd stack with
//! `cpx-agent` as users run it: a CPS3 named by its ATR and EF.SN.ICC whose PKCS#15 cannot be read (named
//! in `status`, `card`, `diagnose` and the loopback API, never « mal insérée »); a certificate that changed
//! under the same card number (the cache must not serve the old one); a card swapped in the same reader
//! between two operations of a running agent. The card facts are in docs/card-facts.md.
//!
//! The cards are personas of `cpx-sim` changed by the test (another card number in EF.SN.ICC, a spoilt
//! EF.ODF), built in the test and inserted through the harness.

use std::path::Path;
use std::process::Output;
use std::sync::Mutex;

use cpx_sim::fs::{Body, MF};
use cpx_sim::{CardOs, Options};
use cpx_tests::agent::{server_pki, AgentProcess};
use cpx_tests::{agent_cli, insert, insert_built, insert_with, out_dir, stack};
use serde_json::{json, Value};

/// The agent-serve tests log in with the card of any reader: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
const ORIGIN: &str = "https://portal.test";
const UNREADABLE_FR: &str = "Carte CPS3 reconnue, mais son contenu n'a pas pu être lu";

fn persona(name: &str) -> CardOs {
    cpx_sim::find(name).unwrap_or_else(|| panic!("persona {name}")).card(&Options::default())
}

/// The card with another card number in EF.SN.ICC (9 digits, as the personas have).
fn with_serial(mut card: CardOs, serial: &str) -> CardOs {
    let content = hex::decode(format!("5A0A8025000001{serial}F")).expect("serial digits");
    let node = card
        .spec
        .fs
        .nodes
        .iter_mut()
        .find(|n| n.parent == Some(MF) && n.fid == 0xD003)
        .expect("EF.SN.ICC in the MF");
    if let Body::Ef { content: c, .. } = &mut node.body {
        *c = content;
    }
    card
}

/// The card with every EF `fid` spoilt (same size, content that is no TLV: `30 84 …`).
fn with_spoilt(mut card: CardOs, fid: u16) -> CardOs {
    let mut spoilt = 0;
    for node in card.spec.fs.nodes.iter_mut().filter(|n| n.fid == fid) {
        if let Body::Ef { content, .. } = &mut node.body {
            let n = content.len();
            *content = [vec![0x30, 0x84], vec![0xFF; n.saturating_sub(2)]].concat();
            spoilt += 1;
        }
    }
    assert!(spoilt > 0, "no EF {fid:04X} on the card");
    card
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

fn site(roots: &Path) -> String {
    // Nothing listens on port 9: the login stops at the card, before any network.
    format!("[[site]]\norigin = \"{ORIGIN}\"\nmtls_endpoint = \"https://127.0.0.1:9/cpx/login\"\nserver_roots = \"{}\"\nsigned_token = true\n", roots.display())
}

fn reader_of<'a>(status: &'a Value, reader: &str) -> &'a Value {
    status["readers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["reader"] == reader))
        .unwrap_or_else(|| panic!("{reader} in {status}"))
}

#[test]
fn a_cps3_whose_pkcs15_cannot_be_read_is_named_everywhere_never_badly_inserted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("real-cards-unreadable");
    let reader = stack().reader();
    // A CPS3 by its ATR and EF.SN.ICC, whose EF.ODF (5031) is not PKCS#15.
    let _card = insert_built("cps3 with a spoilt ODF", &reader, || with_spoilt(persona("cps3"), 0x5031));

    let out = agent_cli(&["status", "--json", "--reader", &reader.name], &dir.join("cache"));
    assert_eq!(out.status.code(), Some(6), "not usable: {}", text(&out));
    let j = json_of(&out);
    let r = &j["readers"][0];
    assert_eq!(r["state"], "CARD_RECOGNISED_UNUSABLE", "{j}");
    assert_eq!(r["generation"], "CPS3", "{j}");
    assert_eq!(r["codes"][0], "CARD_RECOGNISED_UNREADABLE", "{j}");
    assert_eq!(r["message"], UNREADABLE_FR, "{j}");
    assert!(
        r["problems"][0]["fix"].as_str().unwrap_or_default().contains("0 825 85 2000"),
        "the helpdesk route: {j}"
    );
    assert!(r["detail"].as_str().unwrap_or_default().contains("CPS3 card recognised"), "{j}");

    for args in [
        &["status", "--reader", &reader.name][..],
        &["card", "--reader", &reader.name],
        &["card", "--lang", "en", "--reader", &reader.name],
    ] {
        let out = agent_cli(args, &dir.join("cache"));
        let t = text(&out);
        assert!(
            t.contains(UNREADABLE_FR)
                || t.contains("CPS3 card recognised, but its content could not be read"),
            "{args:?}:\n{t}"
        );
        assert!(!t.contains("mal insérée") && !t.contains("badly inserted"), "{args:?}:\n{t}");
    }

    let diag = agent_cli(&["diagnose", "--json", "--reader", &reader.name], &dir.join("cache"));
    let d = json_of(&diag);
    assert_eq!(d["first_fault"]["check"], format!("card_content:{}", reader.name), "{d}");
    assert_eq!(d["first_fault"]["code"], "CARD_RECOGNISED_UNREADABLE", "{d}");
    let checks = d["checks"].as_array().unwrap();
    let card_type =
        checks.iter().find(|c| c["check"] == format!("card_type:{}", reader.name)).expect("card type check");
    assert_eq!(card_type["verdict"], "ok", "the card type is known: {d}");
    assert!(card_type["detail"].as_str().unwrap().starts_with("CPS3"), "{d}");
    let diag_text = text(&agent_cli(&["diagnose", "--reader", &reader.name], &dir.join("cache")));
    assert!(diag_text.contains(UNREADABLE_FR) && !diag_text.contains("mal insérée"), "{diag_text}");

    // The loopback API: the status the pages read, and a login attempt.
    let pki = server_pki(&dir.join("pki"));
    let served = AgentProcess::start(&dir.join("agent"), &site(&pki.ca_pem));
    let status = served.request("GET", "/v1/status", &[("Origin", ORIGIN)], None).json();
    let mine = reader_of(&status, &reader.name);
    assert_eq!(
        (mine["state"].as_str(), mine["generation"].as_str(), mine["message"].as_str()),
        (Some("CARD_RECOGNISED_UNUSABLE"), Some("CPS3"), Some(UNREADABLE_FR)),
        "{status}"
    );
    let login = served.request(
        "POST",
        "/v1/authenticate",
        &[("Origin", ORIGIN), ("Content-Type", "application/json")],
        Some(&json!({"challenge": "Q".repeat(44)}).to_string()),
    );
    let e = &login.json()["error"];
    assert_eq!(e["code"], "CARD_RECOGNISED_UNREADABLE", "{}", login.body);
    assert_eq!(e["message_fr"], UNREADABLE_FR);
    assert!(served.dialogs().is_empty(), "no code porteur asked of a card that cannot be read");
}

#[test]
fn a_new_certificate_under_the_same_card_number_is_read_not_the_cached_one() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("real-cards-same-serial");
    let cache = dir.join("cache");
    let reader = stack().reader();
    {
        let _card = insert("cps3", &reader);
        let j = json_of(&agent_cli(&["card", "--json", "--reader", &reader.name], &cache));
        let r = &j["readers"][0];
        assert_eq!(
            (r["card"]["serial"].as_str(), r["card"]["identity"]["nom"].as_str()),
            (Some("992138450"), Some("DUPONT")),
            "{j}"
        );
    }
    // The cache now holds card 992138450, in a private file.
    let file = cache.join("cards/992138450-contact.json");
    assert!(file.exists(), "cache file {}", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The same card number, another certificate (and no EF_ACTUA, as on a real CPS3 never updated online).
    let _card = insert_built("cps3-expired as card 992138450", &reader, || {
        with_serial(persona("cps3-expired"), "992138450")
    });
    let j = json_of(&agent_cli(&["card", "--json", "--reader", &reader.name], &cache));
    let r = &j["readers"][0];
    assert_eq!(
        (r["card"]["serial"].as_str(), r["card"]["identity"]["nom"].as_str()),
        (Some("992138450"), Some("LEROY")),
        "the new certificate, not the cached one: {j}"
    );
    // Seen again, the card is served from the refreshed cache with the same answer.
    let j = json_of(&agent_cli(&["card", "--json", "--reader", &reader.name], &cache));
    assert_eq!(j["readers"][0]["card"]["identity"]["nom"], "LEROY", "{j}");
}

#[test]
fn a_card_swapped_in_the_same_reader_is_the_one_a_running_agent_reads() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("real-cards-swap");
    let pki = server_pki(&dir.join("pki"));
    let served = AgentProcess::start(&dir.join("agent"), &site(&pki.ca_pem));
    let reader = stack().reader();
    let holder = |served: &AgentProcess| {
        let status = served.request("GET", "/v1/status", &[("Origin", ORIGIN)], None).json();
        let mine = reader_of(&status, &reader.name).clone();
        (
            mine["card_type"].as_str().unwrap_or_default().to_owned(),
            mine["holder"]["nom"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let first = insert("cps3", &reader);
    assert_eq!(holder(&served), ("CPS3 (contact)".to_owned(), "DUPONT".to_owned()));
    first.remove();
    let second = insert("cps4", &reader);
    assert_eq!(
        holder(&served),
        ("CPS4".to_owned(), "MARTIN".to_owned()),
        "the new card, on a fresh connection"
    );
    second.remove();
    // Same card number as the first card, another holder: the agent's cache must not answer DUPONT.
    let _third = insert_built("cps3-expired as card 992138450", &reader, || {
        with_serial(persona("cps3-expired"), "992138450")
    });
    assert_eq!(holder(&served).1, "LEROY");
}

#[test]
fn a_cps4_offering_t0_and_t1_is_connected_in_t0() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cps4", &reader);
    // The ATR as PC/SC reports it, before any connection (a first connection fixes the protocol).
    let ctx = cpx_pcsc::Context::establish().expect("PC/SC");
    let atr =
        ctx.readers().expect("readers").into_iter().find(|r| r.name == reader.name).expect("the reader").atr;
    assert_eq!(cpx_card::atr::parse(&atr).protocols, vec![0, 1], "the CPS4 offers T=0 and T=1");
    let wanted = cpx_card::atr::protocol_for(&atr);
    assert_eq!(wanted, Some(cpx_pcsc::Protocol::T0));
    let options = cpx_pcsc::ConnectionOptions::default();
    let conn = cpx_pcsc::Connection::connect_with(&reader.name, &options, wanted).expect("connects in T=0");
    assert_eq!(conn.protocol(), cpx_pcsc::Protocol::T0);
    drop(conn);
    // The agent's way of opening it reads the card in that protocol.
    let timeout = std::time::Duration::from_secs(5);
    let cards = cpx_agent::card::CardService::new(cpx_card::CertCache::memory(), timeout, timeout);
    let card = cards.open_card(&reader.name, Some(&atr), &cards.cache).expect("CPS4 opens");
    assert_eq!(card.identity().nom, "MARTIN");
}

#[test]
fn a_cps4_answering_69_85_mid_login_is_brought_back_by_the_chipdoc_recovery() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = out_dir("real-cards-6985");
    let pki = server_pki(&dir.join("pki"));
    let served = AgentProcess::start(&dir.join("agent"), &site(&pki.ca_pem));
    let reader = stack().reader();
    let log = dir.join("apdu.log");
    // After a good VERIFY, the card answers 69 85 to the MSE until the ChipDoc recovery sequence is run.
    let _card = insert_with("cps4-6985", &reader, &Options::default(), Some(&log));
    served.answer_pins(&["1234"]);
    let token = served.request_unchecked(
        "POST",
        "/v1/token",
        &[("Origin", ORIGIN), ("Content-Type", "application/json")],
        Some(&json!({"challenge": "Q".repeat(44)}).to_string()),
    );
    assert_eq!(token.status, 200, "the login goes through: {}", token.body);
    assert!(token.json()["signature"].is_string(), "{}", token.body);
    let sent = cpx_tests::logged_commands(&log);
    let ids = sent
        .iter()
        .position(|c| c.starts_with("01A40") && c.contains("A0000001510000"))
        .unwrap_or_else(|| panic!("no SELECT IDS on channel 1: {sent:?}"));
    assert!(
        sent[ids + 1].starts_with("00A40") && sent[ids + 1].contains("8025000001FF0002"),
        "then CPS2ter with CLA 00: {sent:?}"
    );
    assert!(
        sent[ids + 2].starts_with("01A40") && sent[ids + 2].contains("8025000001FF0100"),
        "then ChipDoc with CLA 01: {sent:?}"
    );
    assert!(
        sent[ids..].iter().any(|c| c.starts_with("012A9E9A")),
        "the signature after the recovery: {sent:?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|c| c.starts_with("0120") || c.starts_with("0020"))
            .filter(|c| c.len() > 8)
            .count(),
        1,
        "the code porteur presented once, never replayed: {sent:?}"
    );
}
