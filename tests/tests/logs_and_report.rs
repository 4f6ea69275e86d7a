//! Logs at the most verbose level hold no secret after a full card login and are readable by their owner
//! only, and `cpx-agent report` masks the holder's identity and the sites used unless asked to keep them.

use cpx_tests::agent::{server_pki, AgentProcess, Nginx};
use cpx_tests::{assert_no_pin, binary, insert_with, logged_commands, out_dir, poll, stack, Options};
use serde_json::json;

#[test]
fn trace_logs_hold_no_pin_nor_signed_data_and_the_report_is_redacted() {
    let dir = out_dir("logs-report");
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    let site = format!("[[site]]\norigin = \"https://portal.test\"\nmtls_endpoint = \"https://127.0.0.1:{}/x\"\nserver_roots = \"{}\"\n", nginx.port, pki.ca_pem.display());
    let agent = AgentProcess::start(&dir.join("agent"), &site);
    let reader = stack().reader();
    let apdus = dir.join("apdu.log");
    let _card = insert_with("cps3", &reader, &Options::default(), Some(&apdus));
    agent.answer_pins(&["0000", "1234"]);
    let body = json!({"challenge": "A".repeat(43) + "="}).to_string();
    let headers = [("Origin", "https://portal.test"), ("Content-Type", "application/json")];
    assert_eq!(
        agent.request("POST", "/v1/authenticate", &headers, Some(&body)).status,
        403,
        "wrong PIN first"
    );
    assert_eq!(agent.request("POST", "/v1/authenticate", &headers, Some(&body)).status, 200);
    // The log writer is asynchronous: wait for the login's last line.
    let logs = poll("the login in the agent's log", std::time::Duration::from_secs(10), || {
        Some(agent.logs()).filter(|l| l.contains("card login done"))
    });
    assert!(logs.contains("\"apdu\""), "trace level is on: {}", &logs[..logs.len().min(2000)]);
    assert_no_pin(&logs, &["1234", "0000"]);
    // What the card signed (INTERNAL AUTHENTICATE's DigestInfo) never reaches the logs, in any case.
    let signed: Vec<String> = logged_commands(&apdus)
        .into_iter()
        .filter(|c| c.starts_with("00880000"))
        .map(|c| c[10..c.len() - 2].to_owned())
        .collect();
    assert!(!signed.is_empty());
    for s in signed {
        let digest = &s[s.len() - 64..];
        assert!(!logs.to_uppercase().contains(digest), "signed digest in the logs");
    }
    assert!(logs.contains("899700123456"), "the trace log names the card (for the report to mask)");

    // The report: identity masked by default, kept on request.
    // The log folder and files are the owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let logs_dir = agent.dir.join("logs");
        assert_eq!(mode(&logs_dir), 0o700, "log folder");
        let files: Vec<_> = std::fs::read_dir(&logs_dir).unwrap().flatten().map(|e| e.path()).collect();
        assert!(!files.is_empty());
        for f in files {
            assert_eq!(mode(&f), 0o600, "{} is readable by others", f.display());
        }
    }

    let report = |include: bool| {
        let out = dir.join(if include { "report-full.json" } else { "report.json" });
        let mut cmd = binary("cpx-agent");
        cmd.args(["report", "--reader", &reader.name, "--out"])
            .arg(&out)
            .env("CPX_AGENT_LOG_DIR", agent.dir.join("logs"));
        if include {
            cmd.args(["--include-identity", "--include-origins"]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let masked = report(false);
    for who in ["DUPONT", "JEAN", "899700123456"] {
        assert!(!masked.contains(who), "{who} in the redacted report");
    }
    for want in ["\"checks\"", "3BAC00402A001225006480000310009000", "card login done", "agent_version"] {
        assert!(masked.contains(want), "{want} missing from the report");
    }
    // The site the professional used is not in it either (the log lines named it: "[site 1]" instead).
    assert!(logs.contains("https://portal.test"));
    assert!(
        !masked.contains("portal.test") && masked.contains("[site 1]"),
        "the visited site is in the report"
    );
    let full = report(true);
    assert!(full.contains("DUPONT") && full.contains("899700123456"));
    assert!(full.contains("https://portal.test"), "kept with --include-origins");
}
