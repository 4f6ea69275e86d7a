//! `cpx-soak`: many card logins through the real stack with seeded faults (docs/benchmarks.md, « Soak »).
//!
//! Run it with `sudo ./scripts/soak.sh [--logins N] [--seed S] [--every E] [--json]` (inside the isolated
//! PC/SC stack). It prints the logins attempted, succeeded, failed per error code and hung, the faults
//! injected, and the agent's resident memory and open descriptors every E logins; it exits 1 when a
//! login hung, a failure was untyped or is not one its fault explains, memory or descriptors are not
//! flat, a competing PC/SC client got anything from the card, or a code porteur was presented more often
//! than typed.

use std::time::Duration;

use cpx_tests::soak::{run, Plan};

fn usage() -> ! {
    eprintln!("usage: cpx-soak [--logins N] [--seed S] [--every E] [--deadline SECONDS] [--json]");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut plan = Plan::new(1000, 1, cpx_tests::root().join("target/test-out/soak"));
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let value = || args.get(i + 1).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| usage());
        match args[i].as_str() {
            "--logins" => plan.logins = value() as usize,
            "--seed" => plan.seed = value(),
            "--every" => plan.every = value().max(1) as usize,
            "--deadline" => plan.deadline = Duration::from_secs(value()),
            "--json" => {
                json = true;
                i += 1;
                continue;
            }
            _ => usage(),
        }
        i += 2;
    }
    // The agent as installed: log level info (the e2e test keeps the tests' trace level).
    if std::env::var_os("CPX_AGENT_LOG").is_none() {
        std::env::set_var("CPX_AGENT_LOG", "info");
    }
    let report = run(&plan, |line| eprintln!("cpx-soak: {line}"));
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    std::process::exit(if report.problems().is_empty() { 0 } else { 1 });
}
