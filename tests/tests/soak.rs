//! A short soak (docs/benchmarks.md, « Soak »): 30 card logins driven as the portal's page drives them,
//! through pcscd + vpcd, a virtual CPS3, `cpx-agent serve` and the demo portal, with every kind of fault
//! injected (card pulled mid-login, pcscd restarted, garbled answers, two pages at once, a wrong code
//! porteur, a competing PC/SC client). No login hangs, every failure is typed, clean logins succeed, the
//! agent's descriptors do not grow, nobody else gets the card's signature, the code porteur is presented
//! once per dialog and never logged.

use std::time::Duration;

use cpx_tests::soak::{run, FaultKind, Plan, WRONG_PIN};
use cpx_tests::{assert_no_pin, log_text, root};

#[test]
fn thirty_logins_with_faults_all_answered_and_typed() {
    let dir = root().join("target/test-out/soak-e2e");
    let plan = Plan { every: 10, deadline: Duration::from_secs(120), ..Plan::new(30, 20261130, dir.clone()) };
    let report = run(&plan, |line| eprintln!("soak: {line}"));
    eprintln!("{}", report.human());

    assert_eq!(report.attempted, 30);
    assert!(report.hung.is_empty(), "hung logins: {:#?}", report.hung);
    assert!(report.untyped.is_empty(), "untyped failures: {:#?}", report.untyped);
    assert!(report.unexpected.is_empty(), "outcomes no fault explains: {:#?}", report.unexpected);
    for kind in FaultKind::ALL {
        assert!(
            report.faults.get(kind.name()).is_some_and(|n| *n >= 1),
            "{} was not injected: {:?}",
            kind.name(),
            report.faults
        );
    }
    // Each wrong code porteur was refused as such, with the tries left; the card was never brought near
    // blocking, and no code porteur reached a card more often than it was typed.
    assert_eq!(
        report.failed.get("PIN_WRONG"),
        report.faults.get(FaultKind::WrongPin.name()),
        "{:?}",
        report.failed
    );
    assert_eq!(report.fewest_tries_shown, Some(2), "a wrong code was typed, and never two in a row");
    assert!(
        report.verifies <= report.pin_dialogs && report.verifies > 0,
        "{} VERIFY for {} dialogs",
        report.verifies,
        report.pin_dialogs
    );
    assert!(
        report.rival_turns > 0 && report.rival_gains.is_empty(),
        "rivals: {} turns, gains {:?}",
        report.rival_turns,
        report.rival_gains
    );
    // Descriptors: readings after 10, 20 and 30 logins, none above the one after the warm-up.
    assert_eq!(report.samples.iter().map(|s| s.after_logins).collect::<Vec<_>>(), [0, 10, 20, 30]);
    assert!(report.fds_flat(), "the agent's descriptors grow: {:?}", report.samples);
    assert!(
        report.problems().is_empty() || report.problems().iter().all(|p| p.starts_with("resident memory")),
        "{:?}",
        report.problems()
    );
    assert_no_pin(&log_text(&dir.join("agent/logs")), &["1234", WRONG_PIN]);
}
