//! The command lines as their READMEs say to run them: `cpx-agent status|card|watch`, `cpx-sim`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cpx_tests::{binary, insert, stack};

fn agent(args: &[&str]) -> Output {
    cpx_tests::agent_cli(args, &tempdir("cli-cache"))
}

fn tempdir(name: &str) -> std::path::PathBuf {
    cpx_tests::root().join("target/test-out").join(name)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn status_in_french_and_english_with_exit_codes() {
    let reader = stack().reader();
    let empty = agent(&["status", "--reader", &reader.name]);
    assert_eq!(empty.status.code(), Some(5), "no card: {}", text(&empty));
    assert!(text(&empty).contains("Aucune carte dans le lecteur"));

    let _card = insert("cps3", &reader);
    let fr = agent(&["status", "--reader", &reader.name]);
    assert_eq!(fr.status.code(), Some(0));
    assert!(text(&fr).contains("Carte CPS insérée et reconnue"), "{}", text(&fr));
    assert!(text(&fr).contains("DUPONT"));
    assert!(!text(&fr).contains('\x1b'), "no colour when stdout is not a terminal");
    let en = agent(&["status", "--reader", &reader.name, "--lang", "en"]);
    assert!(text(&en).contains("CPS card inserted and recognised"), "{}", text(&en));

    let j = json(&agent(&["status", "--json", "--reader", &reader.name]));
    assert_eq!(j["service"], "running");
    assert_eq!(j["readers"][0]["state"], "CARD_READY");
    assert_eq!(j["readers"][0]["message"], "Carte CPS insérée et reconnue");
    assert_eq!(j["readers"][0]["card"]["identity"]["national_id"], "899700123456");
}

#[test]
fn status_of_cards_that_are_not_ready() {
    let reader = stack().reader();
    for (persona, exit, code) in [
        ("not-cpx", 6, "CARD_NOT_CPX"),
        ("mute", 6, "CARD_TIMEOUT"),
        ("cps3-expired", 7, "CERTIFICATE_EXPIRED"),
    ] {
        let card = insert(persona, &reader);
        let out = agent(&["status", "--json", "--card-timeout", "500", "--reader", &reader.name]);
        assert_eq!(out.status.code(), Some(exit), "{persona}: {}", text(&out));
        let j = json(&out);
        assert_eq!(j["readers"][0]["codes"][0], code, "{persona}: {j}");
        let fix = j["readers"][0]["problems"][0]["fix"].as_str().unwrap_or_default();
        assert!(!fix.is_empty(), "{persona}: every problem says what to do");
        if exit == 6 {
            assert_eq!(j["readers"][0]["message"], "Carte CPS mal insérée / non reconnue");
        }
        card.remove();
    }
}

#[test]
fn card_shows_identity_validity_and_tries() {
    let reader = stack().reader();
    let card = insert("cps3-variant", &reader);
    let out = agent(&["card", "--reader", &reader.name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    for want in [
        "ANNE ROUX",
        "0751012345 (ADELI 751012345)",
        "Masseur-Kinésithérapeute",
        "variante CPx non répertoriée",
        "3 essai(s) restant(s) sur 3",
        "valide du 2025-01-01 au 2035-12-31",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    card.remove();

    let _blocked = insert("cps3-blocked", &reader);
    let out = agent(&["card", "--json", "--reader", &reader.name]);
    assert_eq!(out.status.code(), Some(7), "blocked card cannot log in");
    let j = json(&out);
    assert_eq!(j["readers"][0]["card"]["pin"]["tries_left"], 0);
    assert!(j["readers"][0]["codes"].as_array().unwrap().iter().any(|c| c == "PIN_BLOCKED"), "{j}");
}

#[test]
fn watch_prints_one_line_per_event() {
    let reader = stack().reader();
    let mut child = binary("cpx-agent")
        .args(["watch", "--json", "--timeout", "20"])
        .env("CPX_AGENT_CACHE_DIR", tempdir("watch-cache"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_for = |event: &str| loop {
        let line = lines.next().expect("watch ended early").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["event"] == event && (v["reader"] == reader.name.as_str() || v.get("reader").is_none()) {
            return v;
        }
    };
    next_for("service_started");
    // The monitor watches our reader from now on.
    next_for("reader_added");
    let card = insert("cps4", &reader);
    let v = next_for("card_inserted");
    assert_eq!(v["card"]["state"], "CARD_READY", "{v}");
    assert_eq!(v["card"]["card"]["identity"]["nom"], "MARTIN");
    assert!(v["ready_ms"].as_f64().is_some());
    card.remove();
    let v = next_for("card_removed");
    assert_eq!(v["message"], "carte retirée");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn cpx_sim_cli_inserts_and_removes() {
    let out = binary("cpx-sim").arg("personas").output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    for p in [
        "cps3",
        "cps3-cl",
        "cps4",
        "cps3-blocked",
        "cps3-one-try",
        "cps3-expired",
        "cps3-variant",
        "cpe",
        "cpe-anonyme",
        "cpa",
        "cpf",
        "not-cpx",
        "mute",
        "pull-mid-sign",
    ] {
        assert!(listed.lines().any(|l| l.split_whitespace().next() == Some(p)), "persona {p} listed");
    }
    let bad = binary("cpx-sim").args(["insert", "nobody"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let reader = stack().reader();
    let mut sim = Command::new(cpx_tests::bin_dir().join("cpx-sim"))
        .args(["insert", "cps3-one-try", "--port", &reader.port.to_string(), "--remove-after", "30"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cpx_tests::wait_state(&reader.name, true, Duration::from_secs(5)).unwrap();
    let j = json(&agent(&["card", "--json", "--reader", &reader.name]));
    assert_eq!(j["readers"][0]["card"]["pin"]["tries_left"], 1);
    let _ = sim.kill();
    let _ = sim.wait();
    cpx_tests::wait_state(&reader.name, false, Duration::from_secs(5)).unwrap();
}

#[test]
fn help_and_usage_errors() {
    let help = binary("cpx-agent").arg("--help").output().unwrap();
    assert!(help.status.success());
    let h = String::from_utf8_lossy(&help.stdout);
    assert!(h.contains("status") && h.contains("Exit status"), "{h}");
    let wrong = binary("cpx-agent").arg("frobnicate").output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
}
