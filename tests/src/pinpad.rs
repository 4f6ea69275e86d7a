//! The virtual PIN-pad readers of the stack (`tests/stack/pinpad.c`, `stack.sh pinpad-readers`) and their
//! keypads: a test borrows a reader, inserts a virtual card into it as into any reader, and types on its
//! keypad — digits, OK, cancel, or nothing at all so that the reader times out.
//!
//! The keypad is a Unix socket: the reader says `ENTRY current` when it waits for a code and
//! `DONE XXXX` (the status word it returned) when the command ends; keys are bytes ('0'-'9', 'E' for OK,
//! 'C' for cancel).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{poll, root, stack, Reader};

/// How long the virtual PIN-pad readers wait for a key (stack.sh's PINPAD_SECONDS).
pub const KEYPAD_TIMEOUT: Duration = Duration::from_secs(5);

/// One virtual PIN-pad reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPadReader {
    /// The port a virtual card connects to, and the name PC/SC gives the reader.
    pub reader: Reader,
    /// Its keypad's socket.
    pub keypad: PathBuf,
}

impl PinPadReader {
    /// True for the reader named like a model known to claim a PIN pad it does not have.
    pub fn is_quirk_listed(&self) -> bool {
        self.reader.name.contains("OMNIKEY")
    }
}

/// All PIN-pad readers of the stack.
pub fn pinpad_readers() -> Vec<PinPadReader> {
    let dir = root().join("target/stack");
    let out = Command::new(root().join("tests/stack/stack.sh"))
        .arg("pinpad-readers")
        .arg(&dir)
        .output()
        .expect("stack.sh pinpad-readers");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let port = f.next()?.parse().ok()?;
            let name = f.next()?.to_owned();
            let keypad = PathBuf::from(f.next()?);
            Some(PinPadReader { reader: Reader { port, name }, keypad })
        })
        .collect()
}

struct Pool {
    free: Mutex<Vec<PinPadReader>>,
    returned: Condvar,
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// A borrowed PIN-pad reader, given back on drop.
pub struct PinPadGuard {
    /// The reader.
    pub pad: PinPadReader,
}

impl std::ops::Deref for PinPadGuard {
    type Target = PinPadReader;
    fn deref(&self) -> &PinPadReader {
        &self.pad
    }
}

impl Drop for PinPadGuard {
    fn drop(&mut self) {
        let _ = crate::wait_state(&self.pad.reader.name, false, Duration::from_secs(5));
        let pool = POOL.get().expect("pool");
        pool.free.lock().unwrap().push(self.pad.clone());
        pool.returned.notify_all();
    }
}

/// Borrows a PIN-pad reader (`quirk_listed`: the one named like an OMNIKEY 3x21), once pcscd lists it.
pub fn borrow(quirk_listed: bool) -> PinPadGuard {
    stack();
    let pool = POOL.get_or_init(|| Pool { free: Mutex::new(pinpad_readers()), returned: Condvar::new() });
    let pad = {
        let mut free = pool.free.lock().unwrap();
        loop {
            if let Some(i) = free.iter().position(|p| p.is_quirk_listed() == quirk_listed) {
                break free.remove(i);
            }
            free = pool.returned.wait(free).unwrap();
        }
    };
    let name = pad.reader.name.clone();
    poll(&format!("pcscd lists {name}"), Duration::from_secs(10), || {
        let ctx = pcsc::Context::establish(pcsc::Scope::User).ok()?;
        let readers = ctx.list_readers_owned().ok()?;
        readers.iter().any(|r| r.to_string_lossy() == name).then_some(())
    });
    PinPadGuard { pad }
}

/// The keypad of a virtual PIN-pad reader, as the test's fingers.
pub struct Keypad {
    stream: UnixStream,
    lines: BufReader<UnixStream>,
}

impl Keypad {
    /// Connects to the reader's keypad (replacing any earlier connection).
    pub fn connect(pad: &PinPadReader) -> Keypad {
        let stream =
            poll("the keypad socket", Duration::from_secs(10), || UnixStream::connect(&pad.keypad).ok());
        let lines = BufReader::new(stream.try_clone().expect("keypad socket"));
        Keypad { stream, lines }
    }

    /// Waits for the next line the reader writes that starts with `prefix`, and returns the rest.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the PIN-pad reader did not say {prefix:?} within {timeout:?}");
            self.stream.set_read_timeout(Some(left)).expect("keypad timeout");
            let mut line = String::new();
            match self.lines.read_line(&mut line) {
                Ok(0) => panic!("the PIN-pad reader closed its keypad"),
                Ok(_) => {
                    if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("keypad: {e}"),
            }
        }
    }

    /// Waits until the reader reports the structure the computer sent (hexadecimal).
    pub fn wait_structure(&mut self, timeout: Duration) -> String {
        self.wait_line("STRUCTURE", timeout)
    }

    /// Waits until the reader asks for a code; returns which (`current`, `new`, `confirm`).
    pub fn wait_entry(&mut self, timeout: Duration) -> String {
        self.wait_line("ENTRY", timeout)
    }

    /// Waits until the reader's command ends; returns the status word it returned (`9000`, `6400`…).
    pub fn wait_done(&mut self, timeout: Duration) -> String {
        self.wait_line("DONE", timeout)
    }

    /// Presses keys: digits, `E` (OK), `C` (cancel).
    pub fn press(&mut self, keys: &str) {
        self.stream.write_all(keys.as_bytes()).expect("keypad keys");
    }

    /// Types a code and presses OK.
    pub fn type_code(&mut self, digits: &str) {
        self.press(&format!("{digits}E"));
    }

    /// True when the reader has written nothing so far: called once the command that could have asked
    /// for a code has returned, it tells that the reader was never asked (an entry is announced before it
    /// starts).
    pub fn said_nothing(&mut self) -> bool {
        if !self.lines.buffer().is_empty() {
            return false;
        }
        self.stream.set_nonblocking(true).expect("keypad nonblocking");
        let mut byte = [0u8; 1];
        let quiet = matches!(std::io::Read::read(&mut self.stream, &mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).expect("keypad blocking");
        quiet
    }
}

/// Types `keys` on `pad`'s keypad once the reader asks for the code porteur, in a thread (no key at all:
/// the reader times out; `C`: cancel); returns the structure the computer sent and the status word the
/// reader returned. Each wait lasts `wait` at most.
pub fn typist(
    pad: &PinPadReader,
    keys: &'static str,
    wait: Duration,
) -> std::thread::JoinHandle<(String, String)> {
    let mut keypad = Keypad::connect(pad);
    std::thread::spawn(move || {
        let structure = keypad.wait_structure(wait);
        assert_eq!(keypad.wait_entry(wait), "current");
        if !keys.is_empty() {
            keypad.press(keys);
        }
        (structure, keypad.wait_done(wait))
    })
}
