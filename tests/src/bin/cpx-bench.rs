//! `cpx-bench`: card-side speed on the virtual cards, through the real pcscd + vpcd stack.
//!
//! Run it with `sudo ./scripts/bench.sh` (release build, inside the isolated stack). It reports, for CPS3
//! and CPS4: APDUs and milliseconds to recognise the card and know its holder (cold, empty cache), and to
//! read the tries, verify the code porteur and sign (warm: card open, certificate known); the time from
//! pcscd's insertion event to "card ready"; and the APDUs OpenSC's pkcs11-tool needs to log in and sign
//! on the same card. Times are also given as ratios to a baseline measured in the same run: one APDU
//! round trip (SELECT MF) on the same stack.
//!
//! `--real`: the card login at real-card speed (the virtual card's latency model, docs/benchmarks.md),
//! ours (page → agent → card → mTLS → portal session) beside the browser's own TLS client authentication
//! to the same mTLS endpoint through OpenSC's PKCS#11 module in an NSS database (NSS's `tstclnt`), on
//! the same card: APDUs, milliseconds and the ratio, in one run.

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpx_card::{CertCache, CpxCard, Pin};
use cpx_pcsc::{Monitor, MonitorEvent, Transport};
use cpx_tests::{insert, insert_with, logged_commands, open_card, out_dir, poll, root, stack, Options};

const RUNS: usize = 25;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One APDU round trip (SELECT MF, no data back) on a card in the stack: the baseline.
fn baseline(reader: &str) -> f64 {
    let mut conn = cpx_pcsc::Connection::connect(reader, &Default::default()).expect("connect");
    let select_mf = cpx_pcsc::Command::new(0, 0xA4, 0x00, 0x0C).with_data([0x3F, 0x00]);
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        conn.transmit(&select_mf).expect("SELECT MF");
        times.push(ms(t.elapsed()));
    }
    median(times)
}

struct Figures {
    persona: &'static str,
    cold_apdus: u64,
    cold_ms: f64,
    warm_apdus: u64,
    warm_ms: f64,
    ready_ms: f64,
    opensc_apdus: Option<usize>,
}

fn measure(persona: &'static str) -> Figures {
    let reader = stack().reader();
    let _card = insert(persona, &reader);
    // Cold: connect + recognise + PKCS#15 + certificate + identity, nothing cached.
    let mut cold_ms = Vec::new();
    let mut cold_apdus = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut card = open_card(&reader.name, &CertCache::memory()).expect("open");
        cold_ms.push(ms(t.elapsed()));
        cold_apdus = card.apdu_count();
    }
    // Warm: tries + VERIFY + signature on an open card whose certificate is known.
    let mut card: Box<dyn CpxCard> = open_card(&reader.name, &CertCache::memory()).expect("open");
    let scheme = card.schemes()[0];
    let pin = Pin::new("1234").unwrap();
    let digest = [0x5Au8; 32];
    card.authenticate(&pin, scheme, &digest).expect("first authentication");
    let mut warm_ms = Vec::new();
    let mut warm_apdus = 0;
    for _ in 0..RUNS {
        let before = card.apdu_count();
        let t = Instant::now();
        card.authenticate(&pin, scheme, &digest).expect("authenticate");
        warm_ms.push(ms(t.elapsed()));
        warm_apdus = card.apdu_count() - before;
    }
    drop(card);
    drop(_card);
    Figures {
        persona,
        cold_apdus,
        cold_ms: median(cold_ms),
        warm_apdus,
        warm_ms: median(warm_ms),
        ready_ms: ready_after_insertion(persona),
        opensc_apdus: opensc_apdus(persona),
    }
}

/// Time from pcscd's insertion event (as the monitor receives it) to the identity being known, with the
/// certificate cache warm (the card was seen before), as the agent works.
fn ready_after_insertion(persona: &'static str) -> f64 {
    let reader = stack().reader();
    let cache = CertCache::memory();
    let (tx, rx) = mpsc::channel();
    let name = reader.name.clone();
    let monitor = Monitor::start(move |e, at| {
        if matches!(&e, MonitorEvent::CardInserted { reader, .. } if *reader == name) {
            let _ = tx.send(at);
        }
    });
    let mut times = Vec::new();
    for _ in 0..10 {
        let card = insert(persona, &reader);
        let at = rx.recv_timeout(Duration::from_secs(5)).expect("insertion event");
        let opened = open_card(&reader.name, &cache).expect("open");
        times.push(ms(at.elapsed()));
        drop(opened);
        card.remove();
    }
    monitor.stop();
    median(times)
}

/// APDUs OpenSC's pkcs11-tool sends to log in and sign once (one process, as a browser would load it).
fn opensc_apdus(persona: &'static str) -> Option<usize> {
    if persona != "cps3" {
        return None; // OpenSC has no CPS4 support
    }
    let reader = stack().reader();
    let dir = out_dir("bench-opensc");
    let log = dir.join("apdu.log");
    let _card = insert_with(persona, &reader, &Options::default(), Some(&log));
    let conf = root().join("tests/stack/opensc.conf");
    let listing = Command::new("pkcs11-tool")
        .args(["--module", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "-L"])
        .env("OPENSC_CONF", &conf)
        .output()
        .ok()?;
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let slot = listing
        .split("Slot ")
        .find(|s| s.contains(&reader.name) && s.contains("Code porteur"))?
        .split_once('(')?
        .1
        .split_once(')')?
        .0
        .to_owned();
    std::fs::write(
        dir.join("di"),
        [
            &[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
                0x05, 0x00, 0x04, 0x20,
            ][..],
            &[0x5A; 32],
        ]
        .concat(),
    )
    .ok()?;
    let before = logged_commands(&log).len();
    let ok = Command::new("pkcs11-tool")
        .args([
            "--module",
            "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
            "--slot",
            &slot,
            "--login",
            "--pin",
            "1234",
            "--sign",
            "--mechanism",
            "RSA-PKCS",
            "--id",
            "e828bd080f8025000001ff001002",
        ])
        .arg("--input-file")
        .arg(dir.join("di"))
        .arg("--output-file")
        .arg(dir.join("sig"))
        .env("OPENSC_CONF", &conf)
        .output()
        .ok()?
        .status
        .success();
    ok.then(|| logged_commands(&log).len() - before)
}

/// `--login`: the whole card login (page → agent → card → mTLS → portal), its breakdown, the agent's
/// idle memory and CPU, and concurrent status requests (as many as one OS user may have open at once).
fn login_bench(json_out: bool) {
    use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess};
    use serde_json::json;
    let dir = out_dir("bench-login");
    let pki = server_pki(&dir.join("pki"));
    let agent_port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    let reader = stack().reader();
    let mut rows = Vec::new();
    for persona in ["cps3", "cps4"] {
        let _card = insert(persona, &reader);
        let login = || {
            let t = Instant::now();
            let (cookie, challenge) = portal.challenge();
            let a = agent.authenticate_unchecked(&portal.origin, &challenge);
            let f = portal.finish(&cookie, a["portal"]["code"].as_str().expect("portal code"));
            assert_eq!(f.status, 200);
            let total = ms(t.elapsed());
            let card = a["timings_ms"]["card"].as_f64().unwrap();
            let prompt = a["timings_ms"]["prompt"].as_f64().unwrap();
            let in_agent = a["timings_ms"]["total"].as_f64().unwrap();
            (total, card, prompt, in_agent)
        };
        for _ in 0..2 {
            login();
        }
        let runs: Vec<(f64, f64, f64, f64)> = (0..RUNS).map(|_| login()).collect();
        let overhead = median(runs.iter().map(|(t, c, p, _)| t - c - p).collect());
        let agent_own = median(runs.iter().map(|(_, c, p, a)| a - c - p).collect());
        rows.push((
            persona,
            median(runs.iter().map(|r| r.0).collect()),
            median(runs.iter().map(|r| r.1).collect()),
            median(runs.iter().map(|r| r.2).collect()),
            overhead,
            agent_own,
        ));
    }
    // Concurrent /v1/status from an allowed origin, up to the agent's per-user connection cap (more are
    // closed at once by design: agent/src/loopback/limits.rs).
    let errors = std::sync::atomic::AtomicUsize::new(0);
    let concurrent = cpx_agent::loopback::Limits::default().max_per_peer;
    std::thread::scope(|s| {
        for _ in 0..concurrent {
            s.spawn(|| {
                let r = agent.try_request(
                    "GET",
                    "/v1/status",
                    &[("Origin", &portal.origin)],
                    None,
                    Duration::from_secs(60),
                );
                if !r.is_ok_and(|r| r.status == 200) {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    // Idle: resident memory, and CPU ticks over 5 s with nothing to do.
    let stat = |pid: u32| -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0);
        (rss_kb, ticks)
    };
    std::thread::sleep(Duration::from_secs(1));
    let (_, before) = stat(agent.pid());
    std::thread::sleep(Duration::from_secs(5));
    let (rss_kb, after) = stat(agent.pid());
    let errors = errors.into_inner();
    if json_out {
        let cards: Vec<_> = rows.iter().map(|(p, t, c, pr, o, a)| json!({"card": p, "login_ms": t, "card_ms": c, "prompt_ms": pr, "agent_and_portal_overhead_ms": o, "inside_agent_overhead_ms": a})).collect();
        println!(
            "{}",
            json!({"runs": RUNS, "logins": cards, "status_concurrent": concurrent, "status_concurrent_errors": errors, "agent_idle_rss_kib": rss_kb, "agent_idle_cpu_ticks_5s": after - before})
        );
        return;
    }
    println!("Card login end to end (page → agent → card → mTLS → portal), medians of {RUNS}:\n");
    println!(
        "{:<6} {:>10} {:>9} {:>14} {:>26} {:>22}",
        "card", "login ms", "card ms", "PIN prompt ms", "agent + portal overhead ms", "of which inside agent"
    );
    for (p, t, c, pr, o, a) in &rows {
        println!("{p:<6} {t:>10.1} {c:>9.1} {pr:>14.1} {o:>26.1} {a:>22.1}");
    }
    println!("(overhead = login − card − PIN prompt; it includes the three HTTPS connections the page opens, to the portal twice and to the agent)");
    println!("\n{concurrent} concurrent GET /v1/status: {errors} error(s)");
    println!(
        "cpx-agent serve idle: {:.1} MiB resident, {} CPU tick(s) in 5 s",
        rss_kb as f64 / 1024.0,
        after - before
    );
    println!("Targets: overhead < 20 ms median; idle < 25 MB RSS and no CPU; concurrent status answered with no error.");
}

/// Resident memory (KiB, the process and its children: the web engine's processes too) and CPU ticks.
fn process_tree_stat(pid: u32) -> (u64, u64) {
    let mut pids = vec![pid];
    let mut i = 0;
    while i < pids.len() {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", pids[i])).unwrap_or_default();
        pids.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        i += 1;
    }
    pids.iter().fold((0, 0), |(rss, ticks), pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
        let t = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0);
        (rss + rss_kb, ticks + t)
    })
}

/// `--tray`: the tray app's cold start to tray ready, its idle memory and CPU, and the time from pcscd's
/// insertion event to the new tray icon; baselines from the same run: `cpx-agent serve`'s cold start and
/// idle memory, and the time from the same event to the card identified.
fn tray_bench(json_out: bool) {
    use cpx_tests::agent::{free_port, AgentProcess};
    use cpx_tests::desktop::{start_plain, Desktop, Panel};
    use serde_json::json;
    const STARTS: usize = 7;
    let dir = out_dir("bench-tray");
    let desktop = Desktop::start(Panel::Dark);
    // Baseline: the headless agent, started and measured the same way.
    let serve_starts: Vec<f64> = (0..STARTS)
        .map(|i| {
            let t = Instant::now();
            let agent = AgentProcess::start_full(&dir.join(format!("serve-{i}")), "", free_port(), &[]);
            let elapsed = ms(t.elapsed());
            drop(agent);
            elapsed
        })
        .collect();
    let serve = AgentProcess::start_full(&dir.join("serve-idle"), "", free_port(), &[]);
    std::thread::sleep(Duration::from_secs(2));
    let (serve_rss, _) = process_tree_stat(serve.pid());
    drop(serve);

    let tray_starts: Vec<f64> = (0..STARTS)
        .map(|i| {
            let (mut child, elapsed) = start_plain(&desktop, &dir.join(format!("tray-{i}")), free_port());
            let _ = child.kill();
            let _ = child.wait();
            ms(elapsed)
        })
        .collect();
    let tray_dir = dir.join("tray-idle");
    let (mut tray, _) = start_plain(&desktop, &tray_dir, free_port());
    std::thread::sleep(Duration::from_secs(2));
    let (_, before) = process_tree_stat(tray.id());
    std::thread::sleep(Duration::from_secs(5));
    let (tray_rss, after) = process_tree_stat(tray.id());

    // Insertion → icon: the app logs the time from pcscd's event to the icon set.
    let reader = stack().reader();
    let logs = || cpx_tests::log_text(&tray_dir.join("logs"));
    let mut icon_ms = Vec::new();
    for _ in 0..10 {
        let seen = logs().lines().count();
        let card = insert("cps3", &reader);
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = loop {
            if let Some(l) =
                logs().lines().skip(seen).find(|l| l.contains("tray state") && l.contains("\"Ready\""))
            {
                break l.to_owned();
            }
            assert!(Instant::now() < deadline, "no icon change");
            std::thread::sleep(Duration::from_millis(20));
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        icon_ms.push(v["fields"]["ms"].as_f64().expect("ms"));
        let seen = logs().lines().count();
        card.remove();
        while !logs().lines().skip(seen).any(|l| l.contains("tray state")) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    drop(reader);
    let _ = tray.kill();
    let _ = tray.wait();
    let card_ready = ready_after_insertion("cps3");

    let (serve_start, tray_start, icon) = (median(serve_starts), median(tray_starts), median(icon_ms));
    let idle_ticks = after - before;
    if json_out {
        println!(
            "{}",
            json!({
                "tray_ready_ms": tray_start, "serve_ready_ms": serve_start, "tray_ready_vs_serve": tray_start / serve_start,
                "tray_idle_rss_kib": tray_rss, "serve_idle_rss_kib": serve_rss, "tray_idle_rss_vs_serve": tray_rss as f64 / serve_rss as f64,
                "tray_idle_cpu_ticks_5s": idle_ticks, "icon_change_ms": icon, "card_ready_ms": card_ready, "icon_change_vs_card_ready": icon / card_ready,
            })
        );
        return;
    }
    println!("Tray app (release build), medians of {STARTS} starts and 10 insertions; baselines measured in the same run:\n");
    println!("cold start to tray ready     {tray_start:>8.0} ms   cpx-agent serve to listening {serve_start:>6.0} ms   ×{:.1}", tray_start / serve_start);
    println!(
        "idle resident memory         {:>8.1} MiB  cpx-agent serve {:>6.1} MiB              ×{:.1}",
        tray_rss as f64 / 1024.0,
        serve_rss as f64 / 1024.0,
        tray_rss as f64 / serve_rss as f64
    );
    println!("idle CPU                     {idle_ticks:>8} tick(s) in 5 s");
    println!("insertion → icon changed     {icon:>8.1} ms   insertion → card identified {card_ready:>6.1} ms   ×{:.1}", icon / card_ready);
    println!("\nTargets: tray ready < 1500 ms; no CPU when idle; icon change < 100 ms after pcscd's event.");
}

/// The card of the `--real` comparison. `cps3-abs` (absolute paths) until the driver reads the real
/// cards' relative layout; then `cps3`. OpenSC reads both.
const REAL_PERSONA: &str = "cps3";
/// Logins measured per path in `--real` (each takes seconds at real-card speed).
const REAL_RUNS: usize = 3;

/// One measured path of `--real`: APDUs and milliseconds of each run.
struct Path {
    label: &'static str,
    runs: Vec<(usize, f64)>,
}

impl Path {
    fn apdus(&self) -> usize {
        let mut v: Vec<usize> = self.runs.iter().map(|r| r.0).collect();
        v.sort_unstable();
        v[v.len() / 2]
    }
    fn ms(&self) -> f64 {
        median(self.runs.iter().map(|r| r.1).collect())
    }
}

/// The browser's side of `--real`: an NSS database with OpenSC's PKCS#11 module (what a Firefox or
/// Chromium user with a card middleware has), the portal's server CA trusted, and NSS's own TLS client.
struct NssClient {
    db: String,
    nickname: String,
    conf: std::path::PathBuf,
}

const OPENSC_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

impl NssClient {
    /// `conf`: the OpenSC configuration (OPENSC_CONF) its PKCS#11 module reads.
    fn new(dir: &std::path::Path, server_ca: &std::path::Path, conf: std::path::PathBuf) -> Self {
        let db = format!("sql:{}", dir.display());
        let run = |program: &str, args: &[&str]| {
            let out = Command::new(program)
                .args(args)
                .env("OPENSC_CONF", &conf)
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e} (apt-get install libnss3-tools)"));
            assert!(
                out.status.success(),
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        std::fs::create_dir_all(dir).expect("NSS database folder");
        run("certutil", &["-N", "-d", &db, "--empty-password"]);
        run("modutil", &["-dbdir", &db, "-add", "OpenSC", "-libfile", OPENSC_MODULE, "-force"]);
        run(
            "certutil",
            &[
                "-A",
                "-d",
                &db,
                "-n",
                "portal server CA",
                "-t",
                "C,,",
                "-i",
                server_ca.to_str().expect("UTF-8 path"),
            ],
        );
        // The card's authentication certificate as NSS names it: "<token label>:<certificate label>".
        let listing = run("certutil", &["-L", "-d", &db, "-h", "all"]);
        let nickname = listing
            .lines()
            .filter(|l| l.contains("Certificat d'Authentification CPS"))
            .map(|l| l.trim_end())
            .filter_map(|l| l.rfind(char::is_whitespace).map(|i| l[..i].trim().to_owned()))
            .next()
            .unwrap_or_else(|| {
                panic!("no card authentication certificate in NSS through OpenSC:\n{listing}")
            });
        Self { db, nickname, conf }
    }

    /// Runs `tstclnt` to 127.0.0.1:`port` sending `request`; `client_auth`: with the card's certificate
    /// and the code porteur on the command line. Returns what it printed and how long it took.
    fn run(&self, dir: &std::path::Path, port: u16, request: &str, client_auth: bool) -> (String, f64) {
        let file = dir.join("request.http");
        std::fs::write(&file, request).expect("request file");
        let mut cmd = Command::new("tstclnt");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-d", &self.db, "-V", "tls1.2:tls1.2", "-4"])
            .arg("-A")
            .arg(&file)
            .env("OPENSC_CONF", &self.conf);
        if client_auth {
            cmd.args(["-n", &self.nickname, "-w", "1234", "-J", "rsa_pkcs1_sha256,ecdsa_secp256r1_sha256"]);
        } else {
            cmd.arg("-Q");
        }
        let t = Instant::now();
        let out = cmd.output().expect("tstclnt (apt-get install libnss3-tools)");
        let elapsed = ms(t.elapsed());
        (format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)), elapsed)
    }
}

/// `--real`: insertion → identity known at real-card speed, as the agent opens a card it is told of
/// (pcscd's insertion event → the driver knows the holder): with `seen_before`, the card was read once
/// before in another insertion (the cache has it), otherwise nothing is cached.
fn real_insertion(latency: cpx_sim::Latency, seen_before: bool) -> Path {
    let reader = stack().reader();
    let cache = CertCache::memory();
    if seen_before {
        let _card = insert_with(REAL_PERSONA, &reader, &Options { latency, ..Options::default() }, None);
        open_card(&reader.name, &cache).expect("open");
    }
    cpx_tests::wait_state(&reader.name, false, Duration::from_secs(10)).expect("reader empty");
    let (tx, rx) = mpsc::channel();
    let name = reader.name.clone();
    let monitor = Monitor::start(move |e, at| {
        if matches!(&e, MonitorEvent::CardInserted { reader, .. } if *reader == name) {
            let _ = tx.send(at);
        }
    });
    let mut runs = Vec::new();
    for _ in 0..REAL_RUNS {
        let card = insert_with(REAL_PERSONA, &reader, &Options { latency, ..Options::default() }, None);
        let at = rx.recv_timeout(Duration::from_secs(10)).expect("insertion event");
        let fresh = CertCache::memory();
        let mut opened = open_card(&reader.name, if seen_before { &cache } else { &fresh }).expect("open");
        runs.push((opened.apdu_count() as usize, ms(at.elapsed())));
        drop(opened);
        card.remove();
        cpx_tests::wait_state(&reader.name, false, Duration::from_secs(10)).expect("card removed");
    }
    monitor.stop();
    Path {
        label: if seen_before {
            "ours: insertion → identity known, card seen before"
        } else {
            "ours: insertion → identity known, card never seen"
        },
        runs,
    }
}

/// `--real`: the card login at real-card speed, ours beside the browser's TLS client authentication
/// through OpenSC's PKCS#11 module, same card, same latency model, same portal.
fn real_speed_bench(json_out: bool, latency: cpx_sim::Latency, browser: bool) {
    use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess};
    use serde_json::json;
    let dir = out_dir("bench-real");
    let pki = server_pki(&dir.join("pki"));
    let agent_port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
    let reader = stack().reader();
    let log = dir.join("apdu.log");
    let card_options = Options { latency, ..Options::default() };
    let apdus_so_far = || logged_commands(&log).len();
    // The card is linked to an account once (not measured), so that every measured login ends in a session.
    portal.add_account("amelie", "motdepasse-de-test", "DUPONT", "Jean");

    // Ours: « S'identifier par carte CPx » → challenge → agent (PIN prompt excluded) → portal session. The
    // agent runs before the card is inserted, as on a professional's computer: it reads each card as
    // soon as it is inserted (agent/src/service.rs, `read_cards_on_insertion`).
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    // A login; `since`: count the APDUs and the time from there (the insertion) rather than from the click.
    let login = |link: bool, since: Option<(usize, Instant)>| -> (usize, f64) {
        let (before, t) = since.unwrap_or_else(|| (apdus_so_far(), Instant::now()));
        let (cookie, challenge) = portal.challenge();
        let a = agent.authenticate_unchecked(&portal.origin, &challenge);
        let code = a["portal"]["code"].as_str().unwrap_or_else(|| panic!("agent login failed: {a}"));
        let f = portal.finish(&cookie, code);
        assert_eq!(f.status, 200, "{}", f.body);
        let total = ms(t.elapsed());
        if link {
            // The portal gives the session a new id at each login step.
            let cookie = f.session_cookie().unwrap_or(cookie);
            // Linking confirms the card shown on the page (cps3: Jean DUPONT).
            let l = portal.page(
                "POST",
                "/premiere-connexion/lier",
                Some(&cookie),
                "application/x-www-form-urlencoded",
                Some("username=amelie&password=motdepasse-de-test&carte=899700123456"),
            );
            assert!(l.status < 400, "linking: {} {}", l.status, l.body);
        }
        let prompt = a["timings_ms"]["prompt"].as_f64().unwrap_or(0.0);
        (apdus_so_far() - before, total - prompt)
    };
    // The click at the insertion: the login waits for the card's background read, then signs.
    let card = insert_with(REAL_PERSONA, &reader, &card_options, Some(&log));
    let first = login(true, Some((0, Instant::now())));
    let ours_cold = Path {
        label: "ours: agent, first login clicked at insertion (insertion → session)",
        runs: vec![first],
    };
    // The click half a minute later: the background read is done (the agent's log says so).
    drop(card);
    let _card = insert_with(REAL_PERSONA, &reader, &card_options, Some(&log));
    poll("the agent reads the inserted card", Duration::from_secs(60), || {
        let read = agent.logs().lines().filter(|l| l.contains("card read on insertion")).count();
        (read >= 2).then_some(())
    });
    let ours_later = Path {
        label: "ours: agent, first login clicked after the background read",
        runs: vec![login(false, None)],
    };
    let ours = Path {
        label: "ours: agent, card known (« S'identifier » → session)",
        runs: (0..REAL_RUNS).map(|_| login(false, None)).collect(),
    };
    drop(agent);
    let insertion_new = real_insertion(latency, false);
    let insertion_seen = real_insertion(latency, true);
    let floors =
        cpx_tests::floor::floors(REAL_PERSONA, latency).expect("the floors play on the virtual card");
    let ours_paths = [&ours, &ours_cold, &ours_later, &insertion_new, &insertion_seen];
    if !browser {
        print_floors(json_out, &floors, &ours_paths, &describe(latency));
        return;
    }

    // The browser's own TLS client authentication, through OpenSC's PKCS#11 module in NSS.
    let nss = NssClient::new(&dir.join("nssdb"), &pki.ca_pem, root().join("tests/stack/opensc.conf"));
    let browser_runs = if latency.is_off() { REAL_RUNS } else { 1 };
    let browser_login = || -> Result<(usize, f64), String> {
        let before = apdus_so_far();
        let t = Instant::now();
        let (cookie, challenge) = portal.challenge();
        let body = json!({"challenge": challenge, "origin": portal.origin}).to_string();
        let request = format!("POST /cpx/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", portal.mtls_port, body.len());
        let (printed, _) = nss.run(&dir, portal.mtls_port, &request, true);
        let failed = |why: &str| {
            format!(
                "{why} after {:.0} ms and {} APDUs: {}",
                ms(t.elapsed()),
                apdus_so_far() - before,
                printed.trim()
            )
        };
        let answer: serde_json::Value = printed
            .find("{\"")
            .and_then(|i| serde_json::Deserializer::from_str(&printed[i..]).into_iter().next()?.ok())
            .ok_or_else(|| failed("no answer from the portal's mTLS endpoint"))?;
        let f = portal.finish(&cookie, answer["code"].as_str().ok_or_else(|| failed("login refused"))?);
        assert_eq!(f.status, 200, "{}", f.body);
        Ok((apdus_so_far() - before, ms(t.elapsed())))
    };
    let mut runs = Vec::new();
    let mut portal_failure = None;
    for _ in 0..browser_runs {
        match browser_login() {
            Ok(r) => runs.push(r),
            Err(e) => {
                portal_failure = Some(e);
                break;
            }
        }
    }
    // The portal gives a TLS handshake 30 s: when NSS + OpenSC need longer, measure the same client
    // authentication against nginx (ssl_verify_client on) with no limit that could cut it.
    // nginx waiting as long as the client needs (client_header_timeout also bounds its TLS handshake).
    let nginx = portal_failure.is_some().then(|| {
        cpx_tests::agent::Nginx::start_with(
            &dir.join("nginx"),
            &pki,
            "client_header_timeout 600s; send_timeout 600s;",
        )
    });
    let to_nginx = |client: &NssClient, port: u16| -> (usize, f64) {
        let before = apdus_so_far();
        let (printed, elapsed) =
            client.run(&dir, port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", true);
        assert!(
            printed.contains("\"verify\":\"SUCCESS\""),
            "NSS + OpenSC client authentication to nginx failed:\n{printed}"
        );
        (apdus_so_far() - before, elapsed)
    };
    let browser = match &nginx {
        None => Path {
            label: "browser: NSS tstclnt + OpenSC PKCS#11 → portal (process start → session)",
            runs,
        },
        Some(n) => Path {
            label: "browser: NSS tstclnt + OpenSC PKCS#11 → nginx mTLS (process start → answer)",
            runs: (0..browser_runs).map(|_| to_nginx(&nss, n.port)).collect(),
        },
    };
    // The same with OpenSC's file cache on (`use_file_caching`, off in Debian's configuration): the card's
    // files are read from disk after a first run has filled the cache.
    let cached_conf = dir.join("opensc-cached.conf");
    std::fs::write(
        &cached_conf,
        format!(
            "app default {{\n    framework pkcs15 {{ use_file_caching = yes; file_cache_dir = {}; }}\n}}\napp opensc-pkcs11 {{\n    pkcs11 {{ max_virtual_slots = 64; slots_per_card = 4; }}\n}}\n",
            dir.join("opensc-cache").display()
        ),
    )
    .expect("OpenSC configuration");
    let cached = NssClient::new(&dir.join("nssdb-cached"), &pki.ca_pem, cached_conf);
    let cached_run = |client: &NssClient| match &nginx {
        Some(n) => to_nginx(client, n.port),
        None => {
            let before = apdus_so_far();
            let (_, challenge) = portal.challenge();
            let body = json!({"challenge": challenge, "origin": portal.origin}).to_string();
            let request = format!("POST /cpx/login HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", portal.mtls_port, body.len());
            let (printed, elapsed) = client.run(&dir, portal.mtls_port, &request, true);
            assert!(printed.contains("\"code\""), "cached OpenSC login refused:\n{printed}");
            (apdus_so_far() - before, elapsed)
        }
    };
    cached_run(&cached); // fills OpenSC's cache
    let browser_cached = Path {
        label: "browser, OpenSC file cache on (cache already filled)",
        runs: (0..browser_runs).map(|_| cached_run(&cached)).collect(),
    };
    // What NSS and OpenSC cost before any TLS (module load, token scan): a TLS connection without
    // client authentication from the same database. A browser already running has paid it.
    let startup = Path {
        label: "browser start-up alone (NSS + OpenSC token scan, no client auth)",
        runs: (0..browser_runs)
            .map(|_| {
                let before = apdus_so_far();
                let (_, elapsed) = nss.run(&dir, portal.site_port, "", false);
                (apdus_so_far() - before, elapsed)
            })
            .collect(),
    };
    let warm_browser = Path {
        label: "browser already running (the above minus its start-up)",
        runs: vec![(browser.apdus().saturating_sub(startup.apdus()), browser.ms() - startup.ms())],
    };
    let model = describe(latency);
    let rows = [&ours, &ours_cold, &ours_later, &browser, &startup, &warm_browser, &browser_cached];
    if json_out {
        let paths: Vec<_> = rows
            .iter()
            .map(
                |p| json!({"path": p.label, "apdus": p.apdus(), "ms": p.ms(), "vs_ours": p.ms() / ours.ms()}),
            )
            .collect();
        println!(
            "{}",
            json!({"card": REAL_PERSONA, "latency": model, "runs": REAL_RUNS, "browser_runs": browser_runs, "paths": paths, "browser_vs_ours": browser.ms() / ours.ms(), "running_browser_vs_ours": warm_browser.ms() / ours.ms(), "portal_refused_browser": portal_failure, "floors": floor_json(&floors, &ours_paths)})
        );
        return;
    }
    println!("Card login at real-card speed, card {REAL_PERSONA} (latency model: {model}), ours: medians of {REAL_RUNS}, browser: {browser_runs} run(s):\n");
    println!("{:<72} {:>6} {:>9} {:>8}", "path", "APDUs", "ms", "× ours");
    for p in rows {
        println!("{:<72} {:>6} {:>9.0} {:>8.1}", p.label, p.apdus(), p.ms(), p.ms() / ours.ms());
    }
    if let Some(why) = &portal_failure {
        println!("\nThrough NSS + OpenSC the portal's mTLS endpoint gave up (its TLS handshake limit is 30 s): {why}");
    }
    println!("\nOurs excludes the time the scripted PIN prompt took; tstclnt gets the code porteur on its command line.");
    println!("Headless Chromium cannot do the browser side: the token's PIN is asked by a dialog headless mode cannot answer.\n");
    print_floors(false, &floors, &ours_paths, &model);
}

/// The latency model in words.
fn describe(latency: cpx_sim::Latency) -> String {
    let atr_rate = cpx_sim::latency::atr_baud(
        &cpx_sim::find(REAL_PERSONA).expect("persona").card(&Options::default()).spec.atr,
    );
    if latency.is_off() {
        "off".to_owned()
    } else {
        format!(
            "{} ms per APDU, bytes at {} bit/s{}, {} ms per RSA operation",
            latency.per_apdu.as_millis(),
            latency.baud.unwrap_or(atr_rate),
            if latency.baud.is_none() { " (the ATR's rate)" } else { "" },
            latency.rsa.as_millis()
        )
    }
}

/// Each floor beside ours: APDUs, milliseconds and the ratio (`ours[i]` is the path of `floors[i]`).
fn floor_json(floors: &[cpx_tests::floor::Floor], ours: &[&Path]) -> serde_json::Value {
    floors
        .iter()
        .zip(ours)
        .map(|(f, o)| {
            let floor_ms = ms(f.time());
            serde_json::json!({"path": f.path, "floor_apdus": f.apdus.len(), "floor_ms": floor_ms, "floor_commands": f.listing(),
                "ours_apdus": o.apdus(), "ours_ms": o.ms(), "vs_floor": o.ms() / floor_ms})
        })
        .collect()
}

/// The table of the floors and ours (or its JSON line when `json_out`).
fn print_floors(json_out: bool, floors: &[cpx_tests::floor::Floor], ours: &[&Path], model: &str) {
    if json_out {
        println!(
            "{}",
            serde_json::json!({"card": REAL_PERSONA, "latency": model, "runs": REAL_RUNS, "floors": floor_json(floors, ours)})
        );
        return;
    }
    println!("The card's floor (the least it must see for the path, same latency model: {model}) and ours, medians of {REAL_RUNS}:\n");
    println!(
        "{:<48} {:>12} {:>9} {:>11} {:>9} {:>9}",
        "path", "floor APDUs", "floor ms", "ours APDUs", "ours ms", "× floor"
    );
    for (f, o) in floors.iter().zip(ours) {
        let floor_ms = ms(f.time());
        println!(
            "{:<48} {:>12} {:>9.0} {:>11} {:>9.0} {:>9.2}",
            f.path,
            f.apdus.len(),
            floor_ms,
            o.apdus(),
            o.ms(),
            o.ms() / floor_ms
        );
    }
    println!("\nThe floors' commands:");
    for f in floors {
        println!("  {}: {}", f.path, f.listing());
    }
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    if std::env::args().any(|a| a == "--real") {
        std::env::set_var("CPX_AGENT_LOG", "info");
        let args: Vec<String> = std::env::args().collect();
        let latency = args
            .iter()
            .position(|a| a == "--latency")
            .and_then(|i| args.get(i + 1))
            .map_or(Ok(cpx_sim::Latency::REAL), |s| s.parse());
        match latency {
            Ok(l) => return real_speed_bench(json, l, !std::env::args().any(|a| a == "--no-browser")),
            Err(e) => {
                eprintln!("cpx-bench: {e}");
                std::process::exit(2);
            }
        }
    }
    if std::env::args().any(|a| a == "--tray") {
        std::env::set_var("CPX_AGENT_LOG", "info");
        return tray_bench(json);
    }
    if std::env::args().any(|a| a == "--login") {
        // Measure the agent as installed: log level info.
        std::env::set_var("CPX_AGENT_LOG", "info");
        return login_bench(json);
    }
    let reader = stack().reader();
    let base = {
        let _card = insert("cps3", &reader);
        baseline(&reader.name)
    };
    drop(reader);
    let figures: Vec<Figures> = ["cps3", "cps4"].into_iter().map(measure).collect();
    if json {
        let rows: Vec<_> = figures
            .iter()
            .map(|f| {
                serde_json::json!({
                    "card": f.persona, "cold_apdus": f.cold_apdus, "cold_ms": f.cold_ms, "warm_apdus": f.warm_apdus,
                    "warm_ms": f.warm_ms, "ready_after_insertion_ms": f.ready_ms, "opensc_login_sign_apdus": f.opensc_apdus,
                    "cold_in_apdu_round_trips": f.cold_ms / base, "warm_in_apdu_round_trips": f.warm_ms / base,
                })
            })
            .collect();
        println!("{}", serde_json::json!({"baseline_apdu_round_trip_ms": base, "runs": RUNS, "cards": rows}));
        return;
    }
    println!("Baseline: one APDU round trip (SELECT MF) = {base:.3} ms (median of 200)\n");
    println!(
        "{:<6} {:>11} {:>9} {:>8} {:>11} {:>9} {:>8} {:>10} {:>13}",
        "card",
        "cold APDUs",
        "cold ms",
        "×base",
        "warm APDUs",
        "warm ms",
        "×base",
        "ready ms",
        "OpenSC APDUs"
    );
    for f in &figures {
        let opensc = f.opensc_apdus.map_or("n/a".to_owned(), |n| n.to_string());
        println!(
            "{:<6} {:>11} {:>9.2} {:>8.1} {:>11} {:>9.2} {:>8.1} {:>10.2} {:>13}",
            f.persona,
            f.cold_apdus,
            f.cold_ms,
            f.cold_ms / base,
            f.warm_apdus,
            f.warm_ms,
            f.warm_ms / base,
            f.ready_ms,
            opensc
        );
    }
    println!("\nTargets: warm authentication ≤ 6 APDUs and ≤ half of OpenSC's count; card ready < 100 ms after pcscd's event.");
    for f in &figures {
        let half = f.opensc_apdus.map(|n| f.warm_apdus * 2 <= n as u64);
        println!(
            "  {}: warm {} APDUs {} 6 · {} · ready {:.1} ms {} 100",
            f.persona,
            f.warm_apdus,
            if f.warm_apdus <= 6 { "≤" } else { ">" },
            match half {
                Some(true) => "≤ OpenSC/2",
                Some(false) => "> OpenSC/2",
                None => "no OpenSC figure",
            },
            f.ready_ms,
            if f.ready_ms < 100.0 { "<" } else { "≥" }
        );
    }
}
