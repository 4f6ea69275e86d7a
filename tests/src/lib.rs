//! The test harness: the real pcscd with the vpcd driver (started through `tests/stack/stack.sh`), a pool
//! of virtual readers, and virtual cards inserted into them.
//!
//! Tests run inside `stack.sh isolated` (private mount, network and PID namespaces): the harness refuses
//! to start pcscd anywhere else. Each test binary gets one pcscd, started on first use and stopped when
//! the binary exits (PR_SET_PDEATHSIG from a thread that lives as long as the process). Tests of one
//! binary run in parallel, each on readers it borrows from the pool.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod agent;
pub mod browser;
/// Test CRLs signed by the test PKI's CAs (the same builder as the verifier's tests).
#[path = "../../relying-party/verifier/tests/support/crl.rs"]
pub mod crl;
pub mod desktop;
pub mod events;
pub mod floor;
pub mod openapi;
pub mod pinpad;
pub mod proxy;
pub mod rival;
pub mod soak;
pub mod terminal;
pub mod webdriver;

pub use cpx_sim::Options;

const MARKER: &str = "/run/pcscd/.cpx-test-stack";
const SOCKET: &str = "/run/pcscd/pcscd.comm";

/// Every log file in `dir` (the agent's or the tray app's `CPX_AGENT_LOG_DIR`), oldest first.
pub fn log_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|f| f.path()).collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect()
}

/// Every form a log line could hold the code porteur `pin` (ASCII digits) in, as the driver sends it or
/// as code could print it: the hex of its digits and of the VERIFY data (padded with `FF` to 8 bytes),
/// upper or lower case, bare or with spaces or colons between the bytes; the bytes as a Rust `Debug`
/// list; base64 of the padded block. (The digits themselves are checked as a token: see
/// [`assert_no_pin`].)
pub fn pin_forms(pin: &str) -> Vec<String> {
    use base64::Engine;
    let mut padded = pin.as_bytes().to_vec();
    padded.resize(8, 0xFF);
    let mut forms = Vec::new();
    for bytes in [pin.as_bytes(), &padded[..]] {
        for sep in ["", " ", ":"] {
            let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
            forms.push(hex.join(sep));
            forms.push(hex.join(sep).to_uppercase());
        }
        forms.push(bytes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "));
    }
    forms.push(base64::engine::general_purpose::STANDARD.encode(&padded).trim_end_matches('=').to_owned());
    forms
}

/// Fails if any of `pins` is in `logs`: its digits as a token (not inside a longer run of letters or
/// digits, so that a port or a serial number that happens to contain them does not count), or any of
/// [`pin_forms`].
pub fn assert_no_pin(logs: &str, pins: &[&str]) {
    for pin in pins {
        let bytes = logs.as_bytes();
        let alnum =
            |i: Option<usize>| i.and_then(|i| bytes.get(i)).is_some_and(|b| b.is_ascii_alphanumeric());
        for (at, _) in logs.match_indices(pin) {
            let line_start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            assert!(
                alnum(at.checked_sub(1)) || alnum(Some(at + pin.len())),
                "the code porteur is in the logs as digits: {}",
                &logs[line_start..line_end]
            );
        }
        for form in pin_forms(pin) {
            assert!(!logs.contains(&form), "the code porteur is in the logs as {form}");
        }
    }
}

/// Calls `check` every 20 ms until it gives something, and returns that; fails naming `what` when
/// `timeout` passes first. For what happens in another process or thread (a log line written, a window
/// shown, a state reached): no test waits a fixed time and hopes.
pub fn poll<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    try_poll(timeout, check).unwrap_or_else(|| panic!("{what}: not within {timeout:?}"))
}

/// [`poll`] that gives `None` when `timeout` passes first, for a caller that says more about what it saw
/// or that gives up quietly.
pub fn try_poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The command lines of the processes whose parent is `pid` (from /proc), arguments joined by spaces.
pub fn child_commands(pid: u32) -> Vec<String> {
    let parent_of = |stat: &str| {
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
        stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat")).ok().as_deref().and_then(parent_of) == Some(pid)
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).split('\0').collect::<Vec<_>>().join(" ").trim().to_owned())
        .collect()
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Where build products of the workspace live (target/debug or target/release).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A command for one of the workspace's binaries (`cpx-agent`, `cpx-sim`).
pub fn binary(name: &str) -> Command {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} not built: run `cargo build --workspace` first", path.display());
    Command::new(path)
}

/// `cpx-agent ARGS` run to its end, as a user would (in French), with its certificate cache in `cache`.
pub fn agent_cli(args: &[&str], cache: &Path) -> std::process::Output {
    binary("cpx-agent")
        .args(args)
        .env("CPX_AGENT_CACHE_DIR", cache)
        .env_remove("CPX_LANG")
        .output()
        .expect("cpx-agent runs")
}

/// One virtual reader: the vpcd port a card connects to and the name PC/SC gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub port: u16,
    pub name: String,
}

/// All readers of the stack (`stack.sh readers`).
pub fn all_readers() -> Vec<Reader> {
    let out =
        Command::new(root().join("tests/stack/stack.sh")).arg("readers").output().expect("stack.sh readers");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(p, n)| Reader { port: p.parse().expect("port"), name: n.to_owned() })
        .collect()
}

enum Ctl {
    /// Start pcscd; `false`: with no reader configured.
    Start(bool, Sender<Result<(), String>>),
    Stop(Sender<()>),
}

pub struct Stack {
    control: Mutex<Sender<Ctl>>,
    free: Mutex<Vec<Reader>>,
    returned: Condvar,
}

static STACK: OnceLock<Stack> = OnceLock::new();

/// The stack of this test binary, pcscd started.
#[allow(unsafe_code)] // libc: kill
pub fn stack() -> &'static Stack {
    STACK.get_or_init(|| {
        assert!(
            Path::new(MARKER).exists(),
            "the card tests need the isolated PC/SC stack: run them with `./scripts/test.sh`, or one test file with `tests/stack/stack.sh isolated cargo test -p cpx-tests --test NAME`"
        );
        let dir = root().join("target/stack");
        let (tx, rx) = mpsc::channel::<Ctl>();
        thread::Builder::new()
            .name("pcscd keeper".into())
            .spawn(move || {
                let mut child: Option<Child> = None;
                while let Ok(ctl) = rx.recv() {
                    match ctl {
                        Ctl::Start(readers, reply) => {
                            let r = start_pcscd(&dir, readers).map(|c| child = Some(c));
                            let _ = reply.send(r);
                        }
                        Ctl::Stop(reply) => {
                            if let Some(mut c) = child.take() {
                                // SAFETY: plain kill(2) of the pcscd this keeper started (not yet waited for).
                                unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                                let _ = c.wait();
                            }
                            let _ = reply.send(());
                        }
                    }
                }
            })
            .expect("keeper thread");
        let s = Stack { control: Mutex::new(tx), free: Mutex::new(all_readers()), returned: Condvar::new() };
        s.start().expect("pcscd starts");
        s
    })
}

#[allow(unsafe_code)] // libc: kill, prctl
fn start_pcscd(dir: &Path, readers: bool) -> Result<Child, String> {
    // A pcscd of the previous test binary may still be on its way out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(pid) =
        std::fs::read_to_string("/run/pcscd/pcscd.pid").ok().and_then(|p| p.trim().parse::<i32>().ok())
    {
        // SAFETY: signal 0 only asks whether the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    // A new file, not the old one truncated: a target/ folder copied with hard links shares it.
    let _ = std::fs::remove_file(dir.with_extension("pcscd.log"));
    let log = std::fs::File::create(dir.with_extension("pcscd.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(root().join("tests/stack/stack.sh"));
    cmd.arg("pcscd").arg(dir).stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log);
    if !readers {
        cmd.env("CPX_STACK_ENTRIES", "none");
    }
    // SAFETY: the closure only calls prctl, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("stack.sh pcscd: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Path::new(SOCKET).exists() {
            if let Ok(ctx) = pcsc::Context::establish(pcsc::Scope::User) {
                if !readers || ctx.list_readers_owned().map(|r| r.len()).unwrap_or(0) >= 8 {
                    return Ok(child);
                }
            }
        }
        if Instant::now() > deadline {
            return Err("pcscd did not list its readers within 30 s (see target/stack.pcscd.log)".into());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Stack {
    /// Starts pcscd (again).
    pub fn start(&self) -> Result<(), String> {
        self.start_pcscd(true)
    }

    /// Starts pcscd with no reader configured.
    pub fn start_without_readers(&self) -> Result<(), String> {
        self.start_pcscd(false)
    }

    fn start_pcscd(&self, readers: bool) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.control.lock().unwrap().send(Ctl::Start(readers, tx)).map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?
    }

    /// Stops pcscd (SIGTERM, and waits for it).
    pub fn stop(&self) {
        let (tx, rx) = mpsc::channel();
        if self.control.lock().unwrap().send(Ctl::Stop(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Borrows a reader for the length of a test (waits while all are in use).
    pub fn reader(&'static self) -> ReaderGuard {
        let mut free = self.free.lock().unwrap();
        loop {
            if let Some(r) = free.pop() {
                return ReaderGuard { reader: r, stack: self };
            }
            free = self.returned.wait(free).unwrap();
        }
    }
}

/// A borrowed reader, given back on drop.
pub struct ReaderGuard {
    pub reader: Reader,
    stack: &'static Stack,
}

impl std::ops::Deref for ReaderGuard {
    type Target = Reader;
    fn deref(&self) -> &Reader {
        &self.reader
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        // The reader goes back empty: wait until PC/SC has seen any card leave.
        let _ = wait_state(&self.reader.name, false, Duration::from_secs(5));
        self.stack.free.lock().unwrap().push(self.reader.clone());
        self.stack.returned.notify_one();
    }
}

/// Waits until PC/SC reports a card present (or absent) in `reader`.
pub fn wait_state(reader: &str, present: bool, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let ctx = pcsc::Context::establish(pcsc::Scope::User).map_err(|e| e.to_string())?;
    let mut states = [pcsc::ReaderState::new(CString::new(reader).unwrap(), pcsc::State::UNAWARE)];
    loop {
        let left = timeout.checked_sub(start.elapsed()).ok_or_else(|| {
            format!("{reader}: card {} not seen", if present { "insertion" } else { "removal" })
        })?;
        match ctx.get_status_change(left, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(format!("{reader}: {e}")),
        }
        let s = states[0].event_state();
        // Every persona answers the reset, so a "mute" slot is a stale state, not the card we wait for.
        let settled = !s.intersects(pcsc::State::UNKNOWN | pcsc::State::MUTE);
        if s.contains(pcsc::State::PRESENT) == present && settled {
            return Ok(start.elapsed());
        }
        states[0].sync_current_state();
    }
}

/// A virtual card in a reader; pulled out on drop.
pub struct Card {
    inserted: Option<cpx_sim::Inserted>,
    pub reader: String,
}

impl Card {
    /// Pulls the card out and waits until PC/SC has seen it leave.
    pub fn remove(mut self) {
        self.pull();
    }
    fn pull(&mut self) {
        if let Some(i) = self.inserted.take() {
            i.remove();
            let _ = wait_state(&self.reader, false, Duration::from_secs(5));
        }
    }
    /// True while the card has not left by itself.
    pub fn is_inserted(&self) -> bool {
        self.inserted.as_ref().is_some_and(|i| i.is_inserted())
    }
}

impl Drop for Card {
    fn drop(&mut self) {
        self.pull();
    }
}

/// Inserts a persona into `reader` and waits until PC/SC reports it.
pub fn insert(persona: &str, reader: &Reader) -> Card {
    insert_with(persona, reader, &Options::default(), None)
}

/// Same, with persona options and an APDU log file.
///
/// One retry: when a card that hung (the `mute` persona) leaves and the next one arrives within one of
/// pcscd's 400 ms polls, pcsc-lite's clean-up of the hung client (a reset that fails on the vanished
/// card) can overwrite the new card's state. A real reader cannot swap cards that fast; the harness
/// pulls the card and inserts it again.
pub fn insert_with(persona: &str, reader: &Reader, options: &Options, apdu_log: Option<&Path>) -> Card {
    let p = cpx_sim::find(persona).unwrap_or_else(|| panic!("unknown persona {persona}"));
    insert_made(persona, reader, || p.card(options), apdu_log)
}

/// Inserts the card `build` makes (a persona changed by the test: another card number, a spoilt file…)
/// into `reader` and waits until PC/SC reports it; one retry, as [`insert_with`].
pub fn insert_built(label: &str, reader: &Reader, build: impl Fn() -> cpx_sim::CardOs) -> Card {
    insert_made(label, reader, build, None)
}

/// Inserts the card `build` makes and waits until PC/SC reports it, with the one retry [`insert_with`]
/// explains.
fn insert_made(
    label: &str,
    reader: &Reader,
    build: impl Fn() -> cpx_sim::CardOs,
    apdu_log: Option<&Path>,
) -> Card {
    for attempt in 0..2 {
        let log =
            apdu_log.map(|f| Box::new(std::fs::File::create(f).expect("apdu log")) as cpx_sim::vpcd::ApduLog);
        let inserted = cpx_sim::insert(build(), "127.0.0.1", reader.port, Duration::from_secs(5), log)
            .expect("vpcd reader listens");
        match wait_state(&reader.name, true, Duration::from_secs(5)) {
            Ok(_) => return Card { inserted: Some(inserted), reader: reader.name.clone() },
            Err(e) if attempt == 0 => {
                eprintln!("harness: {e}; inserting {label} again");
                inserted.remove();
                let _ = wait_state(&reader.name, false, Duration::from_secs(5));
            }
            Err(e) => panic!("pcscd sees the card: {e}"),
        }
    }
    unreachable!()
}

/// A folder for this test's files under target/test-out/.
pub fn out_dir(test: &str) -> PathBuf {
    let d = root().join("target/test-out").join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("test output dir");
    d
}

/// Opens the CPx card in `reader` through the real PC/SC stack, with the driver.
pub fn open_card(
    reader: &str,
    cache: &cpx_card::CertCache,
) -> Result<Box<dyn cpx_card::CpxCard>, cpx_card::CardError> {
    open_card_with_timeout(reader, cache, Duration::from_secs(5))
}

pub fn open_card_with_timeout(
    reader: &str,
    cache: &cpx_card::CertCache,
    timeout: Duration,
) -> Result<Box<dyn cpx_card::CpxCard>, cpx_card::CardError> {
    // The agent's own way to the card, as a CLI process has it.
    let cards = cpx_agent::card::CardService::new(cpx_card::CertCache::memory(), timeout, timeout);
    cards.open_card(reader, None, cache)
}

/// Verifies an RSA signature on a SHA-256 digest against a DER certificate's public key.
pub fn verify_signature(
    cert_der: &[u8],
    scheme: cpx_card::SignScheme,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use rsa::pkcs8::DecodePublicKey;
    use x509_parser::prelude::FromDer;
    let (_, cert) =
        x509_parser::certificate::X509Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
    let key = rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).map_err(|e| e.to_string())?;
    let result = match scheme {
        cpx_card::SignScheme::RsaPkcs1Sha256 => {
            key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, signature)
        }
        cpx_card::SignScheme::RsaPssSha256 => key.verify(rsa::Pss::new::<sha2::Sha256>(), digest, signature),
        cpx_card::SignScheme::RsaPkcs1Sha384 => {
            key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), digest, signature)
        }
        cpx_card::SignScheme::RsaPkcs1Sha512 => {
            key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), digest, signature)
        }
    };
    result.map_err(|e| e.to_string())
}

/// The commands of an APDU log written by the virtual card (`> ` lines), without the answers.
pub fn logged_commands(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaks(logs: &str) -> bool {
        std::panic::catch_unwind(|| assert_no_pin(logs, &["5791"])).is_err()
    }

    #[test]
    fn a_code_porteur_is_found_in_every_form_a_log_could_hold_it() {
        for logs in ["pin=5791", "{\"pin\":\"5791\"}", "data: 5791\n"] {
            assert!(leaks(logs), "{logs}");
        }
        for logs in [
            "apdu=002000010835373931FFFFFFFF",
            "data=35373931",
            "data=35 37 39 31 ff ff ff ff",
            "data=35:37:39:31",
            "data=[53, 55, 57, 49, 255, 255, 255, 255]",
            "data=NTc5Mf////8=",
        ] {
            assert!(leaks(logs), "{logs}");
        }
    }

    #[test]
    fn digits_inside_a_longer_number_or_word_are_not_the_code_porteur() {
        assert!(!leaks("port=57910 national_id=899757910123 ms=15791.2 id=x5791 cps4-t0 sw=9000"));
    }

    #[test]
    fn child_commands_lists_a_child_of_this_process() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        // Between fork and exec the child's command line is not yet its own: poll.
        let listed = std::panic::catch_unwind(|| {
            poll("the child listed", Duration::from_secs(10), || {
                child_commands(std::process::id()).iter().any(|c| c == "sleep 30").then_some(())
            })
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(listed.is_ok(), "sleep 30 never listed among {:?}", child_commands(std::process::id()));
    }

    #[test]
    fn poll_returns_what_the_check_found_and_fails_at_the_deadline() {
        let mut n = 0;
        assert_eq!(
            poll("three calls", Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            3
        );
        let late = std::panic::catch_unwind(|| poll("never", Duration::from_millis(50), || None::<()>));
        assert!(late.is_err());
    }
}
