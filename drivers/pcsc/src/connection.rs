//! A connected card: every call runs on the connection's own thread and is given up after a timeout, so a
//! mute card or a wedged reader driver can never hang the caller. T=0 response chaining is resolved here:
//! `61xx` is followed by GET RESPONSE on the same logical channel, `6Cxx` resends with the right Le.
//!
//! Every exchange with the card runs inside a PC/SC transaction, so that no other program's APDU lands
//! between a command and its GET RESPONSE: a [`Transaction`] the caller holds, or else one opened for
//! that single command. Transactions nest (the outermost one is the PC/SC one). One that ends with
//! [`Disposition::Reset`] resets the card before letting it go; if that reset fails, the connection is
//! poisoned ([`PcscError::ResetFailed`] for every further call) and resets the card as it disconnects.

use std::ffi::CString;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::apdu::{Command, Response};
use crate::error::PcscError;
use crate::transaction::{Disposition, Transaction};

/// The transmission protocol negotiated with the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Protocol {
    /// T=0: character protocol, with `61xx`/`6Cxx` response chaining.
    T0,
    /// T=1: block protocol.
    T1,
    /// Raw: no protocol (direct reader commands).
    Raw,
}

/// What the card drivers need from a connected card. [`Connection`] is the PC/SC one; unit tests use scripted ones.
pub trait Transport: Send {
    /// Sends one command and returns the complete answer (T=0 chaining already resolved). Outside a
    /// transaction, the command and its GET RESPONSEs run in one of their own.
    fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError>;
    /// Begins a PC/SC transaction, or joins the one in progress: no other program's APDUs are
    /// interleaved until the last guard ends. The card is reset at the end if any guard asked for it.
    fn transaction(&mut self) -> Result<Transaction, PcscError>;
    /// APDUs sent since the connection was made, GET RESPONSEs included.
    fn apdu_count(&self) -> u64;
    /// Sends a reader command (`SCardControl`) and returns the reader's answer; `wait` is how long it may
    /// take (a PIN entry on the reader's keypad takes as long as the person typing). Transports with no
    /// reader behind them answer [`PcscError::Other`] with `SCARD_E_UNSUPPORTED_FEATURE`.
    fn control(&mut self, code: u32, data: &[u8], wait: Duration) -> Result<Vec<u8>, PcscError> {
        let _ = (code, data, wait);
        Err(PcscError::Other { code: crate::pinpad::UNSUPPORTED_FEATURE })
    }
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
    /// An encoded APDU (it may hold the code porteur: zeroized once sent).
    Transmit(Zeroizing<Vec<u8>>, Reply<Vec<u8>>),
    /// A reader command (`SCardControl`): its code and data.
    Control(u32, Zeroizing<Vec<u8>>, Reply<Vec<u8>>),
    Begin(Reply<()>),
    End(Disposition, Reply<()>),
    Disconnect(Disposition, Reply<()>),
}

fn pcsc_disposition(d: Disposition) -> pcsc::Disposition {
    match d {
        Disposition::Leave => pcsc::Disposition::LeaveCard,
        Disposition::Reset => pcsc::Disposition::ResetCard,
    }
}

/// The caller's side of the connection thread, shared by the [`Connection`] and its transaction guards.
struct Link {
    /// The reader's name, to ask PC/SC what became of the card after a failure.
    reader: String,
    jobs: Sender<Job>,
    timeout: Duration,
    state: Mutex<LinkState>,
}

#[derive(Default)]
struct LinkState {
    /// Set once a call timed out, the card went away or a reset failed: the connection is then unusable.
    broken: Option<PcscError>,
    /// Transaction guards alive.
    depth: u32,
    /// One of them asked for a reset.
    reset: bool,
}

impl Link {
    fn state(&self) -> MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn broken(&self) -> Option<PcscError> {
        self.state().broken.clone()
    }

    fn break_with(&self, err: PcscError) {
        let mut state = self.state();
        if state.broken.is_none() {
            state.broken = Some(err);
        }
    }

    fn call<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, PcscError> {
        self.call_within(self.timeout, job)
    }

    fn call_within<T>(&self, timeout: Duration, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, PcscError> {
        if let Some(err) = self.broken() {
            return Err(err);
        }
        let (tx, rx) = mpsc::channel();
        let result = match self.jobs.send(job(tx)) {
            Ok(()) => wait(&rx, timeout),
            Err(_) => Err(PcscError::CardRemoved),
        };
        if let Err(err) = &result {
            if err.card_lost() {
                self.break_with(err.clone());
            }
        }
        result
    }

    fn begin(self: &Arc<Self>) -> Result<Transaction, PcscError> {
        let outermost = {
            let state = self.state();
            if let Some(err) = &state.broken {
                return Err(err.clone());
            }
            state.depth == 0
        };
        if outermost {
            self.call(Job::Begin)?;
        }
        self.state().depth += 1;
        let link = self.clone();
        Ok(Transaction::new(move |disposition| link.end(disposition)))
    }

    fn end(&self, disposition: Disposition) -> Result<(), PcscError> {
        let (disposition, broken) = {
            let mut state = self.state();
            state.reset |= disposition == Disposition::Reset;
            state.depth = state.depth.saturating_sub(1);
            if state.depth > 0 {
                return Ok(());
            }
            let d = if std::mem::take(&mut state.reset) { Disposition::Reset } else { Disposition::Leave };
            (d, state.broken.clone())
        };
        let result = match broken {
            // The thread may be stuck on an earlier call: leave the order queued, without waiting, so
            // that the card is reset if the thread ever gets to it.
            Some(err) => {
                let (reply, _) = mpsc::channel();
                let _ = self.jobs.send(Job::End(disposition, reply));
                Err(err)
            }
            // Ending the transaction is the first call to fail when the card left or pcscd restarted
            // during the session (opening the card, a signature): say which.
            None => self.call(|reply| Job::End(disposition, reply)).map_err(|e| explain(&self.reader, e)),
        };
        match result {
            // A card that left keeps no verified code porteur, nor does one whose reader went away; with
            // the PC/SC service stopped, every handle to the card went with it (nobody, us included, can
            // send the card anything until a pcscd starts and powers it up for its first client): the
            // plain cause is the answer.
            Err(cause)
                if disposition == Disposition::Reset
                    && !matches!(
                        cause,
                        PcscError::CardRemoved
                            | PcscError::NoCard { .. }
                            | PcscError::ServiceStopped
                            | PcscError::ReaderUnavailable { .. }
                    ) =>
            {
                let err = match cause {
                    already @ PcscError::ResetFailed { .. } => already,
                    cause => PcscError::ResetFailed { cause: Box::new(cause) },
                };
                tracing::warn!(error = %err, "card not reset after the code porteur was presented");
                self.state().broken = Some(err.clone());
                Err(err)
            }
            other => other,
        }
    }
}

/// A card connected through PC/SC.
pub struct Connection {
    reader: String,
    atr: Vec<u8>,
    protocol: Protocol,
    link: Arc<Link>,
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
    pub fn connect_with(
        reader: &str,
        options: &ConnectionOptions,
        protocol: Option<Protocol>,
    ) -> Result<Self, PcscError> {
        let protocols = match protocol {
            Some(Protocol::T0) => pcsc::Protocols::T0,
            Some(Protocol::T1) => pcsc::Protocols::T1,
            _ => pcsc::Protocols::T0 | pcsc::Protocols::T1,
        };
        let name =
            CString::new(reader).map_err(|_| PcscError::ReaderUnavailable { reader: reader.to_owned() })?;
        let (jobs, inbox) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let share = if options.exclusive { pcsc::ShareMode::Exclusive } else { pcsc::ShareMode::Shared };
        let reader_owned = reader.to_owned();
        thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || {
                let connected = pcsc::Context::establish(pcsc::Scope::User)
                    .and_then(|ctx| ctx.connect(&name, share, protocols))
                    .and_then(|card| {
                        card.status2_owned().map(|st| (st.atr().to_vec(), st.protocol2(), card))
                    });
                match connected {
                    Ok((atr, protocol, card)) => {
                        let protocol = match protocol {
                            Some(pcsc::Protocol::T0) => Protocol::T0,
                            Some(pcsc::Protocol::T1) => Protocol::T1,
                            _ => Protocol::Raw,
                        };
                        if ready_tx.send(Ok((atr, protocol))).is_ok() {
                            serve(card, inbox, &reader_owned, share, protocols);
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(PcscError::from_pcsc(e, Some(&reader_owned))));
                    }
                }
            })
            .map_err(|_| PcscError::Other { code: 0 })?;
        let (atr, protocol) = wait(&ready_rx, options.timeout).map_err(|e| explain(reader, e))?;
        let link = Arc::new(Link {
            reader: reader.to_owned(),
            jobs,
            timeout: options.timeout,
            state: Mutex::new(LinkState::default()),
        });
        Ok(Self { reader: reader.to_owned(), atr, protocol, link, apdus: 0 })
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }
    /// The card's ATR as read when connecting.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }
    /// The protocol the connection uses.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// [`explain`]; the connection, broken by the unexplained error, keeps the explained one (the end of
    /// the transaction reports it).
    fn explain(&self, err: PcscError) -> PcscError {
        let explained = explain(&self.reader, err.clone());
        if explained != err {
            let mut state = self.link.state();
            if state.broken.as_ref() == Some(&err) {
                state.broken = Some(explained.clone());
            }
        }
        explained
    }

    fn raw(&mut self, cmd: &Command) -> Result<Response, PcscError> {
        let bytes = Zeroizing::new(cmd.to_bytes()?);
        self.apdus += 1;
        let raw = match self.link.call(|reply| Job::Transmit(bytes, reply)) {
            Err(err) => return Err(self.explain(err)),
            Ok(raw) => raw,
        };
        match raw.len() {
            // Nothing at all: the reader lost the card (vpcd reports a vanished card this way).
            0 => {
                let err = why_failed(&self.reader, PcscError::Communication { code: 0 });
                self.link.break_with(err.clone());
                Err(err)
            }
            n => Response::parse(&raw)
                .ok_or_else(|| PcscError::BadResponse { detail: format!("{n} byte, no status word") }),
        }
    }

    /// One command and the GET RESPONSEs its answer calls for; once again if another program's APDU
    /// took the answer waiting for GET RESPONSE (`69 85`): pcsc-lite checks a command against the
    /// transaction lock before it waits for the reader, so one APDU sent just before our transaction
    /// began can still reach the card inside it. Never for a command carrying a secret (VERIFY).
    fn exchange(&mut self, cmd: &Command) -> Result<Response, PcscError> {
        let resp = self.exchange_once(cmd)?;
        match resp {
            Exchanged::Answer(resp) => Ok(resp),
            Exchanged::AnswerLost(resp) if cmd.carries_secret() => Ok(resp),
            Exchanged::AnswerLost(_) => {
                tracing::debug!(reader = %self.reader, ins = cmd.ins, "GET RESPONSE found nothing waiting: command sent again");
                Ok(match self.exchange_once(cmd)? {
                    Exchanged::Answer(r) | Exchanged::AnswerLost(r) => r,
                })
            }
        }
    }

    fn exchange_once(&mut self, cmd: &Command) -> Result<Exchanged, PcscError> {
        let mut resp = self.raw(cmd)?;
        // Header and status only: command data may be a PIN, a digest to sign or a cryptogram.
        tracing::trace!(reader = %self.reader, cla = cmd.cla, ins = cmd.ins, p1 = cmd.p1, p2 = cmd.p2, lc = cmd.data.len(), sw = %resp.sw, "apdu");
        if resp.sw.sw1() == 0x6C {
            // A clone of the command (zeroized on drop, like the original: it may hold a secret).
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
            if more.sw == ANSWER_GONE {
                return Ok(Exchanged::AnswerLost(more));
            }
            resp.data.extend_from_slice(&more.data);
            resp.sw = more.sw;
        }
        Ok(Exchanged::Answer(resp))
    }
}

/// A communication error, or one PC/SC gives no meaning for us, explained by what became of the card and
/// the service ([`why_failed`]); other errors as they are.
fn explain(reader: &str, err: PcscError) -> PcscError {
    match err {
        PcscError::Communication { .. } | PcscError::Other { .. } => why_failed(reader, err),
        other => other,
    }
}

/// How long the reader is given to report a card gone after a command failed on it.
const REMOVAL_NOTICE: Duration = Duration::from_secs(2);

/// Why a command failed with a communication error: a card pulled out mid-command fails it that way
/// (pcsc-lite answers `SCARD_E_NOT_TRANSACTED` or `SCARD_F_COMM_ERROR`) before the reader, at its next
/// poll, reports the slot empty; a pcscd stopped mid-command too, and one restarted under an open
/// handle answers `SCARD_W_SECURITY_VIOLATION` (the handle is not one of its own). Waits up to
/// [`REMOVAL_NOTICE`] for PC/SC to tell: [`PcscError::CardRemoved`] (slot empty),
/// [`PcscError::ServiceStopped`] (no service), [`PcscError::ReaderUnavailable`] (the reader still missing
/// at the end: a restarted pcscd without it yet), `err` otherwise (the card is still there).
fn why_failed(reader: &str, err: PcscError) -> PcscError {
    let Ok(name) = CString::new(reader) else { return err };
    let deadline = std::time::Instant::now() + REMOVAL_NOTICE;
    // The reader was missing at the last look (a pcscd on its way out, or one just started that has not
    // loaded its readers yet, answers without it).
    let mut missing = false;
    // Ask again, with a new context, until the service is gone, the slot is seen empty or the notice is over.
    while std::time::Instant::now() < deadline {
        let ctx = match pcsc::Context::establish(pcsc::Scope::User) {
            Ok(ctx) => ctx,
            Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => return PcscError::ServiceStopped,
            Err(_) => {
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let mut states = [pcsc::ReaderState::new(name.clone(), pcsc::State::UNAWARE)];
        loop {
            match ctx
                .get_status_change(deadline.saturating_duration_since(std::time::Instant::now()), &mut states)
            {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => break,
                Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => {
                    return PcscError::ServiceStopped
                }
                Err(pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable) => {
                    missing = true;
                    break;
                }
                Err(_) => break,
            }
            let state = states[0].event_state();
            if state.contains(pcsc::State::EMPTY) {
                return PcscError::CardRemoved;
            }
            missing = state.intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE);
            if std::time::Instant::now() >= deadline {
                break;
            }
            states[0].sync_current_state();
        }
        thread::sleep(Duration::from_millis(50));
    }
    if missing {
        PcscError::ReaderUnavailable { reader: reader.to_owned() }
    } else {
        err
    }
}

/// How long a new transaction leaves for other programs' commands already on their way to the card.
const SETTLE: Duration = Duration::from_millis(2);

/// What GET RESPONSE answers when no answer is waiting (conditions of use not satisfied).
const ANSWER_GONE: crate::StatusWord = crate::StatusWord(0x6985);

enum Exchanged {
    Answer(Response),
    /// A GET RESPONSE found no answer waiting: another APDU reached the card in between.
    AnswerLost(Response),
}

/// At most this many GET RESPONSE rounds for one command (a card that keeps answering `61xx` is broken).
const MAX_GET_RESPONSE: usize = 64;

impl Transport for Connection {
    fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError> {
        let own = if self.link.state().depth == 0 {
            Some(self.link.begin().map_err(|e| self.explain(e))?)
        } else {
            None
        };
        let result = self.exchange(cmd);
        match own {
            Some(tx) => {
                let ended = tx.end();
                let resp = result?;
                ended?;
                Ok(resp)
            }
            None => result,
        }
    }

    fn transaction(&mut self) -> Result<Transaction, PcscError> {
        self.link.begin().map_err(|e| self.explain(e))
    }

    fn apdu_count(&self) -> u64 {
        self.apdus
    }

    fn control(&mut self, code: u32, data: &[u8], wait: Duration) -> Result<Vec<u8>, PcscError> {
        let data = Zeroizing::new(data.to_vec());
        // The reader's own wait, plus the connection's timeout for the card's answer.
        self.link
            .call_within(wait + self.link.timeout, |reply| Job::Control(code, data, reply))
            .map_err(|e| self.explain(e))
    }
}

impl Drop for Connection {
    /// Disconnects and waits, within the timeout, for the connection thread to let the card go, so that
    /// nothing of ours still holds it when the caller goes on. The card is left as it is (sessions that
    /// verified the code porteur reset it as their transaction ends), unless that reset failed: then it
    /// is reset now.
    fn drop(&mut self) {
        let disposition = match self.link.broken() {
            None => Disposition::Leave,
            Some(PcscError::ResetFailed { .. }) => Disposition::Reset,
            // The thread may be stuck on the card: do not wait for it.
            Some(_) => return,
        };
        let (tx, rx) = mpsc::channel();
        if self.link.jobs.send(Job::Disconnect(disposition, tx)).is_ok() {
            let _ = rx.recv_timeout(self.link.timeout);
        }
    }
}

fn wait<T>(rx: &Receiver<Result<T, PcscError>>, timeout: Duration) -> Result<T, PcscError> {
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(PcscError::Timeout { millis: timeout.as_millis() as u64 })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(PcscError::CardRemoved),
    }
}

/// The connection thread: owns the card handle and runs the jobs in order, until the [`Connection`] is
/// dropped (Disconnect job, or the job channel closing).
fn serve(
    card: pcsc::Card,
    inbox: Receiver<Job>,
    reader: &str,
    share: pcsc::ShareMode,
    protocols: pcsc::Protocols,
) {
    if let Some(card) = run_jobs(card, &inbox, reader, share, protocols) {
        // The Connection went away without a Disconnect job (it gave up on a call that hung): leave the
        // card as it is. A reset here, on a card that may be gone, can wedge a reader driver (vpcd does).
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    }
}

/// The thread's own state between jobs.
struct Session<'a> {
    reader: &'a str,
    share: pcsc::ShareMode,
    /// The protocols allowed at connection, allowed again when reconnecting.
    protocols: pcsc::Protocols,
    buf: Vec<u8>,
    /// Our transaction ended with a reset: PC/SC reports it to every handle, ours included, and the
    /// protocol must be negotiated again. `SCardReconnect` (leaving the card) acknowledges it before the
    /// next call.
    reset_to_acknowledge: bool,
}

impl Session<'_> {
    fn err(&self, e: pcsc::Error) -> PcscError {
        PcscError::from_pcsc(e, Some(self.reader))
    }

    fn acknowledge_reset(&mut self, card: &mut pcsc::Card) -> Result<(), PcscError> {
        if self.reset_to_acknowledge {
            card.reconnect(self.share, self.protocols, pcsc::Disposition::LeaveCard)
                .map_err(|e| self.err(e))?;
            self.reset_to_acknowledge = false;
        }
        Ok(())
    }
}

/// Runs jobs until a Disconnect (returns None: the card is let go) or the job channel closes (returns
/// the card, still connected).
fn run_jobs(
    mut card: pcsc::Card,
    inbox: &Receiver<Job>,
    reader: &str,
    share: pcsc::ShareMode,
    protocols: pcsc::Protocols,
) -> Option<pcsc::Card> {
    let mut s = Session {
        reader,
        share,
        protocols,
        buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        reset_to_acknowledge: false,
    };
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Transmit(apdu, reply) => {
                let r = s.acknowledge_reset(&mut card).and_then(|()| {
                    card.transmit(&apdu, &mut s.buf).map(<[u8]>::to_vec).map_err(|e| s.err(e))
                });
                let _ = reply.send(r);
            }
            Job::Control(code, data, reply) => {
                let r = s.acknowledge_reset(&mut card).and_then(|()| {
                    card.control(code as _, &data, &mut s.buf).map(<[u8]>::to_vec).map_err(|e| s.err(e))
                });
                let _ = reply.send(r);
            }
            Job::End(_, reply) => {
                let _ =
                    reply.send(Err(PcscError::BadResponse { detail: "no transaction in progress".into() }));
            }
            Job::Begin(reply) => {
                if let Err(e) = s.acknowledge_reset(&mut card) {
                    let _ = reply.send(Err(e));
                    continue;
                }
                match in_transaction(&mut card, inbox, reply, &mut s) {
                    AfterTransaction::Continue => {}
                    AfterTransaction::Disconnect(disposition, reply) => {
                        let _ = reply
                            .send(card.disconnect(pcsc_disposition(disposition)).map_err(|(_, e)| s.err(e)));
                        return None;
                    }
                    AfterTransaction::Closed => return Some(card),
                }
            }
            Job::Disconnect(disposition, reply) => {
                let _ = reply.send(card.disconnect(pcsc_disposition(disposition)).map_err(|(_, e)| s.err(e)));
                return None;
            }
        }
    }
    Some(card)
}

enum AfterTransaction {
    Continue,
    Disconnect(Disposition, Reply<()>),
    Closed,
}

/// Begins a transaction and runs jobs inside it until End; a Disconnect or a closed channel also ends it.
fn in_transaction(
    card: &mut pcsc::Card,
    inbox: &Receiver<Job>,
    begin: Reply<()>,
    s: &mut Session<'_>,
) -> AfterTransaction {
    let tx = match card.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let _ = begin.send(Err(s.err(e)));
            return AfterTransaction::Continue;
        }
    };
    // pcsc-lite checks a command against the transaction lock before the command waits for the reader:
    // another program's command that passed that check just before the lock was ours can still reach
    // the card now. Let such commands through before ours, so that none lands after a VERIFY or between
    // a command and its GET RESPONSE.
    thread::sleep(SETTLE);
    let _ = begin.send(Ok(()));
    loop {
        match inbox.recv() {
            Ok(Job::Transmit(apdu, reply)) => {
                let _ = reply.send(tx.transmit(&apdu, &mut s.buf).map(<[u8]>::to_vec).map_err(|e| s.err(e)));
            }
            Ok(Job::Control(code, data, reply)) => {
                let r = tx.control(code as _, &data, &mut s.buf).map(<[u8]>::to_vec).map_err(|e| s.err(e));
                let _ = reply.send(r);
            }
            Ok(Job::End(disposition, reply)) => {
                let ended = tx.end(pcsc_disposition(disposition));
                s.reset_to_acknowledge = ended.is_ok() && disposition == Disposition::Reset;
                // On failure the transaction comes back and ends (leaving the card) as it is dropped.
                let _ = reply.send(ended.map_err(|(_, e)| s.err(e)));
                return AfterTransaction::Continue;
            }
            Ok(Job::Begin(reply)) => {
                let _ = reply.send(Err(PcscError::BadResponse { detail: "already in a transaction".into() }));
            }
            Ok(Job::Disconnect(disposition, reply)) => {
                let _ = tx.end(pcsc_disposition(disposition));
                return AfterTransaction::Disconnect(disposition, reply);
            }
            Err(_) => {
                let _ = tx.end(pcsc::Disposition::LeaveCard);
                return AfterTransaction::Closed;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose thread is a script: what it was asked is recorded; GET DATA answers `61 04`
    /// and its GET RESPONSE the data; a reset at the end of a transaction fails when `reset_fails`.
    fn scripted(reset_fails: bool) -> (Connection, Arc<Mutex<Vec<String>>>) {
        scripted_losing(reset_fails.then_some(PcscError::Unresponsive), 0)
    }

    /// Same, with the first `lost` GET RESPONSEs finding no answer waiting (`69 85`), and the reset
    /// failing with `reset_error` if given.
    fn scripted_losing(
        reset_error: Option<PcscError>,
        mut lost: usize,
    ) -> (Connection, Arc<Mutex<Vec<String>>>) {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        thread::spawn(move || {
            while let Ok(job) = inbox.recv() {
                let mut log = log.lock().unwrap();
                match job {
                    Job::Transmit(apdu, reply) => {
                        log.push(format!("transmit {:02X}", apdu[1]));
                        let answer = match apdu[1] {
                            0xC0 if lost > 0 => {
                                lost -= 1;
                                vec![0x69, 0x85]
                            }
                            0xC0 => vec![1, 2, 3, 4, 0x90, 0x00],
                            _ => vec![0x61, 0x04],
                        };
                        let _ = reply.send(Ok(answer));
                    }
                    Job::Begin(reply) => {
                        log.push("begin".into());
                        let _ = reply.send(Ok(()));
                    }
                    Job::End(d, reply) => {
                        log.push(format!("end {d:?}"));
                        let _ = reply.send(match &reset_error {
                            Some(e) if d == Disposition::Reset => Err(e.clone()),
                            _ => Ok(()),
                        });
                    }
                    Job::Disconnect(d, reply) => {
                        log.push(format!("disconnect {d:?}"));
                        let _ = reply.send(Ok(()));
                    }
                    Job::Control(code, data, reply) => {
                        log.push(format!("control {code:08X} {}", data.len()));
                        let _ = reply.send(Ok(vec![0x63, 0xC2]));
                    }
                }
            }
        });
        let link = Arc::new(Link {
            reader: "r".into(),
            jobs,
            timeout: Duration::from_secs(5),
            state: Mutex::new(LinkState::default()),
        });
        (Connection { reader: "r".into(), atr: Vec::new(), protocol: Protocol::T0, link, apdus: 0 }, seen)
    }

    fn log(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        seen.lock().unwrap().clone()
    }

    #[test]
    fn a_reader_command_runs_on_the_connection_thread_inside_the_transaction() {
        let (mut c, seen) = scripted(false);
        let tx = c.transaction().unwrap();
        let answer = c.control(0x4233_0006, &[1, 2, 3], Duration::from_secs(30)).unwrap();
        tx.end().unwrap();
        assert_eq!(answer, [0x63, 0xC2]);
        assert_eq!(log(&seen), ["begin", "control 42330006 3", "end Leave"]);
    }

    #[test]
    fn a_command_and_its_get_response_share_one_transaction() {
        let (mut c, seen) = scripted(false);
        let r = c.transmit(&Command::new(0, 0xCB, 0x3F, 0xFF).with_data([0x4D, 0])).unwrap();
        assert_eq!((r.data.as_slice(), r.sw), (&[1u8, 2, 3, 4][..], crate::StatusWord::OK));
        assert_eq!(log(&seen), ["begin", "transmit CB", "transmit C0", "end Leave"]);
        assert_eq!(c.apdu_count(), 2);
    }

    #[test]
    fn an_answer_taken_by_another_program_is_asked_again_except_for_a_verify() {
        let (mut c, seen) = scripted_losing(None, 1);
        let r = c.transmit(&Command::new(0, 0xCB, 0x3F, 0xFF).with_data([0x4D, 0])).unwrap();
        assert_eq!(r.data.as_slice(), [1, 2, 3, 4]);
        assert_eq!(
            log(&seen),
            ["begin", "transmit CB", "transmit C0", "transmit CB", "transmit C0", "end Leave"]
        );

        let (mut c, seen) = scripted_losing(None, 1);
        let r = c.transmit(&Command::new(0, 0x20, 0, 1).with_data(*b"1234")).unwrap();
        assert_eq!(r.sw, crate::StatusWord(0x6985), "the code porteur is never sent twice");
        assert_eq!(log(&seen), ["begin", "transmit 20", "transmit C0", "end Leave"]);
    }

    #[test]
    fn transactions_nest_and_the_outermost_resets_when_any_asked() {
        let (mut c, seen) = scripted(false);
        let outer = c.transaction().unwrap();
        let mut inner = c.transaction().unwrap();
        c.transmit(&Command::new(0, 0xCB, 0x3F, 0xFF)).unwrap();
        inner.reset_on_end();
        inner.end().unwrap();
        assert_eq!(log(&seen), ["begin", "transmit CB", "transmit C0"], "the inner guard ends nothing");
        drop(outer);
        assert_eq!(log(&seen).last().map(String::as_str), Some("end Reset"));
        c.transmit(&Command::new(0, 0xCB, 0x3F, 0xFF)).unwrap();
        assert_eq!(
            log(&seen).last().map(String::as_str),
            Some("end Leave"),
            "the next transaction leaves the card"
        );
    }

    #[test]
    fn a_failed_reset_poisons_the_connection_and_resets_on_disconnect() {
        let (mut c, seen) = scripted(true);
        let mut session = c.transaction().unwrap();
        session.reset_on_end();
        let err = session.end().unwrap_err();
        assert_eq!(err, PcscError::ResetFailed { cause: Box::new(PcscError::Unresponsive) });
        assert!(err.card_lost(), "the caller connects again");
        assert_eq!(c.transmit(&Command::new(0, 0xCB, 0x3F, 0xFF)), Err(err.clone()));
        assert_eq!(c.transaction().err(), Some(err));
        drop(c);
        assert_eq!(log(&seen), ["begin", "end Reset", "disconnect Reset"]);
    }

    #[test]
    fn a_reset_that_fails_because_the_card_or_the_service_is_gone_says_so() {
        // pcscd stopped (it powers the card up anew when it starts) or the card left: no verified code
        // porteur remains, and the professional is told the plain cause.
        for gone in [
            PcscError::ServiceStopped,
            PcscError::CardRemoved,
            PcscError::ReaderUnavailable { reader: "r".into() },
        ] {
            let (mut c, seen) = scripted_losing(Some(gone.clone()), 0);
            let mut session = c.transaction().unwrap();
            session.reset_on_end();
            assert_eq!(session.end().unwrap_err(), gone);
            drop(c);
            assert!(
                !log(&seen).contains(&"disconnect Reset".to_owned()),
                "{gone:?}: not poisoned, nothing to reset"
            );
        }
    }
}
