//! A connected card: every call runs on the connection's own thread and is given up after a timeout, so a
//! mute card or a wedged reader driver can never hang the caller. T=0 response chaining is resolved here:
//! `61xx` is followed by GET RESPONSE on the same logical channel, `6Cxx` resends with the right Le.

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use crate::apdu::{Command, Response};
use crate::error::PcscError;

/// The transmission protocol negotiated with the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Protocol {
    T0,
    T1,
    Raw,
}

/// What the card drivers need from a connected card. [`Connection`] is the PC/SC one; unit tests use scripted ones.
pub trait Transport: Send {
    /// Sends one command and returns the complete answer (T=0 chaining already resolved).
    fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError>;
    /// Starts a PC/SC transaction: no other program's APDUs are interleaved until [`Transport::end_transaction`].
    fn begin_transaction(&mut self) -> Result<(), PcscError>;
    fn end_transaction(&mut self) -> Result<(), PcscError>;
    /// Resets the card (security state, selections and logical channels), keeping the connection.
    fn reset(&mut self) -> Result<(), PcscError>;
    /// APDUs sent since the connection was made, GET RESPONSEs included.
    fn apdu_count(&self) -> u64;
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// The longest any single PC/SC call may take.
    pub timeout: Duration,
    /// Exclusive access (no other program may use the card while connected).
    pub exclusive: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(5), exclusive: false }
    }
}

type Reply<T> = Sender<Result<T, PcscError>>;

enum Job {
    Transmit(Vec<u8>, Reply<Vec<u8>>),
    Begin(Reply<()>),
    End(Reply<()>),
    Reset(Reply<()>),
    Disconnect(Reply<()>),
}

/// A card connected through PC/SC.
pub struct Connection {
    reader: String,
    atr: Vec<u8>,
    protocol: Protocol,
    timeout: Duration,
    jobs: Sender<Job>,
    /// Set once a call timed out or the card went away: the connection is then unusable.
    broken: Option<PcscError>,
    apdus: u64,
}

impl Connection {
    /// Connects to the card in `reader` (shared mode unless `options.exclusive`). The connection has a
    /// PC/SC context of its own: pcsc-lite serialises the calls of one context, so a card that hangs
    /// must not hold up the calls made for other readers.
    pub fn connect(reader: &str, options: &ConnectionOptions) -> Result<Self, PcscError> {
        Self::connect_with(reader, options, None)
    }

    /// Connects like [`Connection::connect`], allowing only `protocol` when given (a card driver that
    /// knows from the ATR which protocol the card needs), T=0 or T=1 otherwise.
    pub fn connect_with(reader: &str, options: &ConnectionOptions, protocol: Option<Protocol>) -> Result<Self, PcscError> {
        let protocols = match protocol {
            Some(Protocol::T0) => pcsc::Protocols::T0,
            Some(Protocol::T1) => pcsc::Protocols::T1,
            _ => pcsc::Protocols::T0 | pcsc::Protocols::T1,
        };
        let name = CString::new(reader).map_err(|_| PcscError::ReaderUnavailable { reader: reader.to_owned() })?;
        let (jobs, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let share = if options.exclusive { pcsc::ShareMode::Exclusive } else { pcsc::ShareMode::Shared };
        let reader_owned = reader.to_owned();
        thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || {
                let connected = pcsc::Context::establish(pcsc::Scope::User)
                    .and_then(|ctx| ctx.connect(&name, share, protocols))
                    .and_then(|card| card.status2_owned().map(|st| (st.atr().to_vec(), st.protocol2(), card)));
                match connected {
                    Ok((atr, protocol, card)) => {
                        let protocol = match protocol {
                            Some(pcsc::Protocol::T0) => Protocol::T0,
                            Some(pcsc::Protocol::T1) => Protocol::T1,
                            _ => Protocol::Raw,
                        };
                        if ready_tx.send(Ok((atr, protocol))).is_ok() {
                            serve(card, inbox, &reader_owned);
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(PcscError::from_pcsc(e, Some(&reader_owned))));
                    }
                }
            })
            .map_err(|_| PcscError::Other { code: 0 })?;
        let (atr, protocol) = wait(&ready_rx, options.timeout)?;
        Ok(Self { reader: reader.to_owned(), atr, protocol, timeout: options.timeout, jobs, broken: None, apdus: 0 })
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn call<T>(&mut self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, PcscError> {
        if let Some(err) = &self.broken {
            return Err(err.clone());
        }
        let (tx, rx) = mpsc::channel();
        let result = match self.jobs.send(job(tx)) {
            Ok(()) => wait(&rx, self.timeout),
            Err(_) => Err(PcscError::CardRemoved),
        };
        if let Err(err) = &result {
            if err.card_lost() {
                self.broken = Some(err.clone());
            }
        }
        result
    }

    fn raw(&mut self, cmd: &Command) -> Result<Response, PcscError> {
        let bytes = cmd.to_bytes()?;
        self.apdus += 1;
        let raw = self.call(|reply| Job::Transmit(bytes, reply))?;
        match raw.len() {
            // Nothing at all: the reader lost the card (vpcd reports a vanished card this way).
            0 => {
                let err = PcscError::Communication { code: 0 };
                self.broken = Some(err.clone());
                Err(err)
            }
            n => Response::parse(&raw).ok_or_else(|| PcscError::BadResponse { detail: format!("{n} byte, no status word") }),
        }
    }
}

/// At most this many GET RESPONSE rounds for one command (a card that keeps answering `61xx` is broken).
const MAX_GET_RESPONSE: usize = 64;

impl Transport for Connection {
    fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError> {
        let mut resp = self.raw(cmd)?;
        // Header and status only: command data may be a PIN, a digest to sign or a cryptogram.
        tracing::trace!(reader = %self.reader, cla = cmd.cla, ins = cmd.ins, p1 = cmd.p1, p2 = cmd.p2, lc = cmd.data.len(), sw = %resp.sw, "apdu");
        if resp.sw.sw1() == 0x6C {
            let mut again = cmd.clone();
            again.le = Some(resp.sw.sw2());
            resp = self.raw(&again)?;
        }
        let mut rounds = 0;
        while resp.sw.sw1() == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE {
                return Err(PcscError::BadResponse { detail: "endless 61xx chain".into() });
            }
            let more = self.raw(&Command::new(cmd.channel(), 0xC0, 0, 0).with_le(resp.sw.sw2()))?;
            resp.data.extend_from_slice(&more.data);
            resp.sw = more.sw;
        }
        Ok(resp)
    }

    fn begin_transaction(&mut self) -> Result<(), PcscError> {
        self.call(Job::Begin)
    }
    fn end_transaction(&mut self) -> Result<(), PcscError> {
        self.call(Job::End)
    }
    fn reset(&mut self) -> Result<(), PcscError> {
        self.call(Job::Reset)
    }
    fn apdu_count(&self) -> u64 {
        self.apdus
    }
}

impl Drop for Connection {
    /// Disconnects (leaving the card as it is: sessions end with [`Transport::reset`]) and waits, within
    /// the timeout, for the connection thread to let the card go, so that nothing of ours still holds it
    /// when the caller goes on.
    fn drop(&mut self) {
        if self.broken.is_none() {
            let (tx, rx) = mpsc::channel();
            if self.jobs.send(Job::Disconnect(tx)).is_ok() {
                let _ = rx.recv_timeout(self.timeout);
            }
        }
    }
}

fn wait<T>(rx: &Receiver<Result<T, PcscError>>, timeout: Duration) -> Result<T, PcscError> {
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(PcscError::Timeout { millis: timeout.as_millis() as u64 }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(PcscError::CardRemoved),
    }
}

/// The connection thread: owns the card handle and runs the jobs in order, until the [`Connection`] is
/// dropped (Disconnect job, or the job channel closing).
fn serve(card: pcsc::Card, inbox: Receiver<Job>, reader: &str) {
    if let Some(card) = run_jobs(card, &inbox, reader) {
        // The Connection went away without a Disconnect job (it gave up on a call that hung): leave the
        // card as it is. A reset here, on a card that may be gone, can wedge a reader driver (vpcd does).
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    }
}

/// Runs jobs until a Disconnect (returns None: the card is let go) or the job channel closes (returns
/// the card, still connected).
fn run_jobs(mut card: pcsc::Card, inbox: &Receiver<Job>, reader: &str) -> Option<pcsc::Card> {
    let err = |e| PcscError::from_pcsc(e, Some(reader));
    let mut buf = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Transmit(apdu, reply) => {
                let _ = reply.send(card.transmit(&apdu, &mut buf).map(<[u8]>::to_vec).map_err(err));
            }
            Job::Reset(reply) => {
                let r = card.reconnect(pcsc::ShareMode::Shared, pcsc::Protocols::T0 | pcsc::Protocols::T1, pcsc::Disposition::ResetCard);
                let _ = reply.send(r.map_err(err));
            }
            Job::End(reply) => {
                let _ = reply.send(Err(PcscError::BadResponse { detail: "no transaction in progress".into() }));
            }
            Job::Begin(reply) => match in_transaction(&mut card, inbox, reply, &mut buf, reader) {
                AfterTransaction::Continue => {}
                AfterTransaction::Disconnect(reply) => {
                    let _ = reply.send(card.disconnect(pcsc::Disposition::LeaveCard).map_err(|(_, e)| err(e)));
                    return None;
                }
                AfterTransaction::Closed => return Some(card),
            },
            Job::Disconnect(reply) => {
                let _ = reply.send(card.disconnect(pcsc::Disposition::LeaveCard).map_err(|(_, e)| err(e)));
                return None;
            }
        }
    }
    Some(card)
}

enum AfterTransaction {
    Continue,
    Disconnect(Reply<()>),
    Closed,
}

/// Begins a transaction and runs jobs inside it until End; a Disconnect or a closed channel also ends it.
fn in_transaction(card: &mut pcsc::Card, inbox: &Receiver<Job>, begin: Reply<()>, buf: &mut [u8], reader: &str) -> AfterTransaction {
    let err = |e| PcscError::from_pcsc(e, Some(reader));
    let tx = match card.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let _ = begin.send(Err(err(e)));
            return AfterTransaction::Continue;
        }
    };
    let _ = begin.send(Ok(()));
    loop {
        match inbox.recv() {
            Ok(Job::Transmit(apdu, reply)) => {
                let _ = reply.send(tx.transmit(&apdu, buf).map(<[u8]>::to_vec).map_err(err));
            }
            Ok(Job::End(reply)) => {
                let _ = reply.send(tx.end(pcsc::Disposition::LeaveCard).map_err(|(_, e)| err(e)));
                return AfterTransaction::Continue;
            }
            Ok(Job::Begin(reply)) | Ok(Job::Reset(reply)) => {
                let _ = reply.send(Err(PcscError::BadResponse { detail: "already in a transaction".into() }));
            }
            Ok(Job::Disconnect(reply)) => {
                let _ = tx.end(pcsc::Disposition::LeaveCard);
                return AfterTransaction::Disconnect(reply);
            }
            Err(_) => {
                let _ = tx.end(pcsc::Disposition::LeaveCard);
                return AfterTransaction::Closed;
            }
        }
    }
}
