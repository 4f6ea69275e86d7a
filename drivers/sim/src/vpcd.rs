//! The vpcd wire protocol (docs/simulator.md, « The test stack »): the virtual card connects to the vpcd reader driver inside
//! pcscd over TCP. Every frame is a big-endian u16 length and a payload; a 1-byte payload is a control
//! code (0 power off, 1 power on, 2 reset, 4 get ATR: only the last is answered); anything else is an APDU.
//! Connecting inserts the card, closing the socket removes it. The card's latency model
//! (`CardOs::latency`) is applied here, before each answer is sent.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::card::{CardOs, Reaction};

/// Where a card's APDUs are written (the `--apdu-log` of the CLI); PIN bytes are never written.
pub type ApduLog = Box<dyn Write + Send>;

/// A card sitting in a vpcd reader.
pub struct Inserted {
    stream: TcpStream,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Inserted {
    /// Pulls the card out (closes the connection) and waits for its thread.
    pub fn remove(mut self) {
        self.pull();
    }

    fn pull(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the card leaves by itself (vpcd closed the connection, or a fault persona pulled it).
    pub fn wait(mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("card thread panicked"))),
            None => Ok(()),
        }
    }

    /// True while the card is still in the reader.
    pub fn is_inserted(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Inserted {
    fn drop(&mut self) {
        self.pull();
    }
}

/// Inserts `card` into the vpcd reader listening on `host:port`, retrying for up to `wait` while no
/// reader listens yet (pcscd starting).
pub fn insert(
    card: CardOs,
    host: &str,
    port: u16,
    wait: Duration,
    log: Option<ApduLog>,
) -> io::Result<Inserted> {
    let deadline = Instant::now() + wait;
    let stream = loop {
        match TcpStream::connect((host, port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("no vpcd reader on {host}:{port} ({e}); is pcscd running with the vpcd driver?"),
                ))
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    };
    stream.set_nodelay(true)?;
    let reader = stream.try_clone()?;
    let thread =
        thread::Builder::new().name(format!("vicc {port}")).spawn(move || serve(card, reader, log))?;
    Ok(Inserted { stream, thread: Some(thread) })
}

fn serve(mut card: CardOs, mut stream: TcpStream, mut log: Option<ApduLog>) -> io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return Ok(()); // vpcd went away or we were pulled: the card is out
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut msg).is_err() {
            return Ok(());
        }
        if msg.len() == 1 {
            match msg[0] {
                0x04 => send(&mut stream, &card.spec.atr)?,
                0x00..=0x02 => card.reset(),
                _ => {}
            }
            continue;
        }
        let rsa_before = card.rsa_ops;
        let reaction = card.process(&msg);
        if let Some(log) = log.as_mut() {
            let shown = redact(&msg);
            let answer = match &reaction {
                Reaction::Answer(r) => hex::encode_upper(r),
                Reaction::Silence => "(silence)".into(),
                Reaction::Pull => "(card pulled)".into(),
            };
            let _ = writeln!(log, "> {shown}\n< {answer}");
            let _ = log.flush();
        }
        match reaction {
            Reaction::Answer(r) => {
                // The latency model: the answer leaves when a real card and reader would have given it.
                let delay = card.latency.delay(
                    &card.spec.atr,
                    msg.len(),
                    r.len(),
                    card.rsa_ops.saturating_sub(rsa_before),
                );
                if !delay.is_zero() {
                    thread::sleep(delay);
                }
                send(&mut stream, &r)?
            }
            Reaction::Silence => {}
            Reaction::Pull => {
                let _ = stream.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
}

/// An APDU as the log shows it: VERIFY / CHANGE / RESET RETRY COUNTER lose their data.
fn redact(apdu: &[u8]) -> String {
    if apdu.len() > 5 && matches!(apdu[1], 0x20 | 0x24 | 0x2C) {
        format!("{} <{} secret bytes>", hex::encode_upper(&apdu[..5]), apdu.len() - 5)
    } else {
        hex::encode_upper(apdu)
    }
}

/// One frame in one write: two writes would meet Nagle and delayed ACK (docs/simulator.md, « The test stack »).
fn send(stream: &mut TcpStream, payload: &[u8]) -> io::Result<()> {
    let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream.write_all(&frame)
}
