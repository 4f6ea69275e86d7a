//! A running `cpx-rival` (tests/src/bin/cpx-rival.rs): another PC/SC client without the PIN that competes
//! for the card, used by the card-exclusivity tests and the soak. It is stopped by closing its standard
//! input, and says what it got each time it had the card.

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::binary;

/// A `cpx-rival` process.
pub struct Rival {
    child: Child,
    /// « poll rival », « transaction rival »…: for messages.
    pub what: String,
    /// Its standard output, read as it comes (a full pipe would stop it).
    output: Option<std::thread::JoinHandle<String>>,
}

/// What a rival saw each time it had the card.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at_nanos: u128,
    /// What it found when it asked for the code porteur's state.
    pub asked: String,
    /// What it got when it asked the card to sign.
    pub signed: String,
}

impl Rival {
    /// Starts one on `reader` (`mode`: poll, transaction, exclusive; see cpx-rival's doc).
    pub fn start(reader: &str, mode: &str, pause_micros: u64, hold_millis: u64) -> Self {
        let mut cmd = binary("cpx-rival");
        cmd.args([reader, mode, &pause_micros.to_string(), &hold_millis.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if mode == "poll" {
            // A card held by someone else answers at once, instead of after pcsc-lite's 100 ms poll.
            cmd.env("PCSCLITE_NO_BLOCKING", "1");
        }
        let mut child = cmd.spawn().expect("cpx-rival starts");
        let mut stdout = child.stdout.take().expect("rival stdout");
        let output = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out);
            out
        });
        Self { child, what: format!("{mode} rival"), output: Some(output) }
    }

    /// Tells the rival to stop (its standard input closes) and reads what it saw; an error when it did
    /// not stop within 20 s or did not end its output with `done`.
    pub fn finish(mut self) -> Result<Vec<Seen>, String> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                return Err(format!("{} did not stop", self.what));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.output.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if out.lines().last() != Some("done") {
            return Err(format!("{} ended badly: {out}", self.what));
        }
        out.lines()
            .filter(|l| *l != "done")
            .map(|l| match l.split(' ').collect::<Vec<_>>()[..] {
                [at, asked, signed] => Ok(Seen {
                    at_nanos: at.parse().map_err(|_| format!("{}: bad time in {l:?}", self.what))?,
                    asked: asked.into(),
                    signed: signed.into(),
                }),
                _ => Err(format!("{}: bad line {l:?}", self.what)),
            })
            .collect()
    }
}

impl Drop for Rival {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
