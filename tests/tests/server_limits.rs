//! `cpx-agent serve` under a local program that tries to stop it: thousands of connections held open
//! (from another user, then from the agent's own user with its descriptors made scarce), a POST that
//! announces a body and never sends it, headers sent a line at a time (slowloris), a keep-alive
//! connection left idle. The agent must stay up, close what stalls, and answer a normal page's
//! `GET /v1/status` throughout and after. Loopback only, inside `stack.sh isolated`; every flood is
//! bounded in connections and in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cpx_tests::agent::AgentProcess;
use cpx_tests::{out_dir, stack};

const ORIGIN: &str = "https://portal.test";
const SITE: &str = "[[site]]\norigin = \"https://portal.test\"\nsigned_token = true\n";
/// The OS user of the other session in the flood (nobody).
const OTHER_UID: u32 = 65534;

/// A normal page's status request: answered, with the readers.
fn page_status(agent: &AgentProcess) {
    let r = agent.request("GET", "/v1/status", &[("Origin", ORIGIN)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["readers"].is_array(), "{}", r.body);
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Lowers (or raises) the agent's descriptor limit, as a small `ulimit -n` would have.
#[allow(unsafe_code)] // libc: prlimit
fn set_descriptor_limit(pid: u32, n: u64) {
    let limit = libc::rlimit { rlim_cur: n, rlim_max: 20000.max(n) };
    // SAFETY: `limit` outlives the call; the old limit is not asked for (null).
    let r = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// `cpx-flood` holding `count` connections for `seconds` at most, as `uid` (or this process's user).
struct Flood {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Flood {
    fn start(port: u16, count: usize, seconds: u64, uid: Option<u32>) -> Self {
        let exe = env!("CARGO_BIN_EXE_cpx-flood");
        let mut command = match uid {
            Some(uid) => {
                let mut c = std::process::Command::new("setpriv");
                c.args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups", exe]);
                c
            }
            None => std::process::Command::new(exe),
        };
        let mut child = command
            .args([port.to_string(), count.to_string(), seconds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cpx-flood");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for the flood to have made `n` connection attempts; its last report.
    /// (On a loaded machine the flood may end before `n`: its last report then, and the caller's own
    /// check says whether the fault was reproduced.)
    fn wait_attempts(&self, n: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let attempts = line.split_whitespace().nth(1).and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
            last = line;
            if attempts >= n {
                break;
            }
        }
        last
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_flood_from_another_user_is_capped_and_the_page_is_answered_throughout() {
    let _stack = stack();
    let dir = out_dir("limits-flood-other");
    let agent = AgentProcess::start(&dir.join("agent"), SITE);
    page_status(&agent);
    // The agent's descriptors are scarce (as on a system with a low limit): 1,094 connections exhausted
    // the default 1,024; 256 make it quicker.
    set_descriptor_limit(agent.pid(), 256);
    let baseline = open_descriptors(agent.pid());
    let flood = Flood::start(agent.port, 3000, 90, Some(OTHER_UID));
    let report = flood.wait_attempts(1500);
    let mut most = 0;
    for _ in 0..5 {
        page_status(&agent);
        most = most.max(open_descriptors(agent.pid()));
        flood.wait_attempts(0);
    }
    let report_after = flood.wait_attempts(3000);
    assert!(alive(agent.pid()), "the agent is still running ({report_after})");
    // The other user holds at most its share (32 connections) while it tries thousands; a few more
    // for the page's connections and the agent's own work.
    assert!(
        most <= baseline + 32 + 16,
        "baseline {baseline}: the agent held {most} descriptors under the flood ({report}; {report_after})"
    );
    let closed: u64 = report_after.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(closed > 100, "connections over the cap are closed at once: {report_after}");
    drop(flood);
    page_status(&agent);
}

#[test]
fn descriptors_exhausted_by_the_same_user_do_not_stop_the_server() {
    let _stack = stack();
    let dir = out_dir("limits-flood-self");
    let agent = AgentProcess::start(&dir.join("agent"), SITE);
    page_status(&agent);
    // Fewer descriptors than the per-peer share needs: accept() fails with EMFILE under the flood.
    let baseline = open_descriptors(agent.pid()) as u64;
    set_descriptor_limit(agent.pid(), baseline + 8);
    {
        let flood = Flood::start(agent.port, 2000, 120, None);
        flood.wait_attempts(500);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !agent.logs().contains("out of descriptors") {
            assert!(
                alive(agent.pid()),
                "the agent stopped when descriptors ran out:\n{}",
                agent.logs().lines().rev().take(5).collect::<Vec<_>>().join("\n")
            );
            assert!(Instant::now() < deadline, "the fault was not reproduced (no accept error logged)");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(alive(agent.pid()));
    }
    // The flood is gone: the agent serves again (its pause and the handshake deadline pass).
    set_descriptor_limit(agent.pid(), 1024);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(alive(agent.pid()), "the agent stopped");
        let ok = std::panic::catch_unwind(|| page_status(&agent)).is_ok();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the agent does not answer after the flood");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TLS connection to the agent that the test drives byte by byte.
fn raw_tls(agent: &AgentProcess) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let conn = rustls::ClientConnection::new(
        cpx_tests::agent::client_config(&agent.ca_pem),
        "127.0.0.1".try_into().unwrap(),
    )
    .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    // Longer than any deadline of the agent: a connection still open then is one the agent kept.
    tcp.set_read_timeout(Some(Duration::from_secs(45))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("TLS handshake");
    }
    tls
}

/// Reads until the agent closes the connection; what it sent. Fails if the connection stays open
/// (the socket's read timeout).
fn read_until_closed(tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!(
                    "the agent kept the connection open: {e} (so far: {:?})",
                    String::from_utf8_lossy(&got)
                )
            }
            // A close without close_notify, or a reset: closed.
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_body_announced_and_never_sent_is_given_up() {
    let _stack = stack();
    let dir = out_dir("limits-slow-body");
    let agent = AgentProcess::start(&dir.join("agent"), SITE);
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut tls = raw_tls(&agent);
        let head = format!("POST /v1/token HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n", agent.port);
        tls.write_all(head.as_bytes()).unwrap();
        tls.flush().unwrap();
        stalled.push(tls);
    }
    // The page is answered while they hang.
    page_status(&agent);
    for mut tls in stalled {
        let answer = read_until_closed(&mut tls);
        assert!(answer.starts_with("HTTP/1.1 408"), "the agent answers 408 and closes: {answer:?}");
        assert!(answer.contains("BAD_REQUEST"), "{answer}");
    }
    page_status(&agent);
}

#[test]
fn slowloris_headers_and_idle_keep_alive_are_closed() {
    let _stack = stack();
    let dir = out_dir("limits-slowloris");
    let agent = AgentProcess::start(&dir.join("agent"), SITE);
    // Headers one line at a time, never finished.
    let mut slow = raw_tls(&agent);
    slow.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", agent.port).as_bytes())
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    for i in 0..120 {
        page_status(&agent);
        if slow.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).and_then(|_| slow.flush()).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        // The agent's close shows on the next read attempt too.
        slow.sock.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let r = slow.read(&mut b);
        slow.sock.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || matches!(&r, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock) {
            closed = true;
            break;
        }
    }
    assert!(closed, "headers trickled for {:?} and the agent still waits", started.elapsed());
    // A keep-alive connection left idle after one request.
    let mut idle = raw_tls(&agent);
    idle.write_all(format!("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", agent.port).as_bytes())
        .unwrap();
    let answer = read_until_closed(&mut idle);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    page_status(&agent);
}
