//! Asking the professional for the code porteur. Always shows the requesting site (origin), the holder,
//! the card and the tries left, and warns before the last try. The PIN goes from the prompt straight to
//! the card session: it is never logged, stored or retried by the agent.
//!
//! Two prompts here: the terminal one, and any pinentry program (the Assuan protocol GnuPG uses), so a
//! desktop without the tray app still gets a dialog. The tray app's own dialog implements the same trait.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cpx_card::{Pin, PinStatus};
use zeroize::Zeroizing;

use crate::failure::Failure;
use crate::messages::{pin_life, prompt, Code, Lang};
use crate::said::{field, fill};

/// What the prompt shows.
#[derive(Debug, Clone)]
pub struct PinRequest {
    /// The site asking (always shown).
    pub origin: String,
    /// The card holder's name.
    pub holder: String,
    /// The card type (« CPS3 »…).
    pub card: String,
    /// Tries left before the code porteur blocks.
    pub tries_left: u8,
    /// Tries a fresh code porteur has.
    pub max_tries: u8,
    /// The code porteur typed just before was wrong (the prompt asks again).
    pub wrong_pin: bool,
    /// The language the prompt speaks.
    pub lang: Lang,
}

impl PinRequest {
    /// The dialog's title.
    pub fn title(&self) -> &'static str {
        prompt::TITLE.get(self.lang)
    }

    /// The text of the dialog: the site first, then the card and the tries (the words of the tray's dialog).
    pub fn description(&self) -> String {
        let lang = self.lang;
        let tries = format!("{} {} {}", self.tries_left, prompt::OF.get(lang), self.max_tries);
        let mut s = format!(
            "{}\n\n{}\n{}",
            site_asks(lang, &self.origin),
            field(lang, prompt::HOLDER, &format!("{} — {}", self.holder, self.card)),
            field(lang, prompt::TRIES, &tries)
        );
        if self.tries_left == 1 {
            s.push_str(&format!("\n\n{}", prompt::LAST_TRY.get(lang)));
        }
        s
    }

    /// The text of the notice shown while a PIN-pad reader waits for the code porteur on its keypad: the
    /// site, the card and the tries as in [`Self::description`], then what to type where, what to do when
    /// the reader stops waiting, and that only the reader's Cancel key cancels.
    pub fn keypad_description(&self) -> String {
        let lang = self.lang;
        let mut s = self.description();
        if self.wrong_pin {
            s.push_str(&format!("\n\n{}", prompt::KEYPAD_WRONG.get(lang)));
        }
        for line in [prompt::KEYPAD_ASK, prompt::KEYPAD_TIMEOUT, prompt::KEYPAD_CANCEL] {
            s.push_str(&format!("\n\n{}", line.get(lang)));
        }
        s
    }

    /// « Code porteur (4 chiffres) : », before the typed code.
    pub fn prompt_label(&self) -> String {
        fill(prompt::ASK.get(self.lang), &[("label", prompt::PIN_FIELD.get(self.lang))])
    }
}

/// Why no code porteur (or card choice) came back from a prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// The professional cancelled (« Annuler »).
    #[error("cancelled by the user")]
    Cancelled,
    /// The prompt could not be shown (no terminal, no pinentry program…).
    #[error("the PIN prompt cannot be shown: {0}")]
    Unavailable(String),
    /// What was typed is not a code porteur (4 to 8 digits): PIN_FORMAT, as the tray's dialog says.
    #[error("what was typed is not a code porteur")]
    BadFormat,
}

impl From<PromptError> for Failure {
    fn from(e: PromptError) -> Self {
        match e {
            PromptError::Cancelled => Failure::new(Code::UserCancelled),
            PromptError::Unavailable(d) => Failure::new(Code::PromptUnavailable).detail(d),
            PromptError::BadFormat => Failure::new(Code::PinFormat),
        }
    }
}

/// Several CPx cards are present: which one to log in with (each shown with its holder).
#[derive(Debug, Clone)]
pub struct CardChoice {
    /// The site asking.
    pub origin: String,
    /// "JEAN DUPONT (CPS3, lecteur …)" for each card, in reader order.
    pub cards: Vec<String>,
    /// The language the question speaks.
    pub lang: Lang,
}

/// « Le site https://…\ndemande à utiliser votre carte CPx. »
fn site_asks(lang: Lang, origin: &str) -> String {
    format!("{} {origin}\n{}", prompt::SITE.get(lang), prompt::SITE_ASKS.get(lang))
}

impl CardChoice {
    /// The question about one card; without a card (`None`), the lead-in of the terminal's numbered list.
    fn question(&self, card: Option<&str>) -> String {
        let lang = self.lang;
        let head = format!("{}\n{}", site_asks(lang, &self.origin), prompt::SEVERAL_CARDS.get(lang));
        match card {
            Some(card) => format!("{head}\n\n{}", fill(prompt::USE_CARD_OF.get(lang), &[("card", card)])),
            None => head,
        }
    }
}

/// The notice on screen while a PIN-pad reader waits for the code porteur: it goes away when dropped (the
/// reader's command has ended). The notice has no cancel of its own: the reader cannot be stopped from the
/// computer, only by its Cancel key.
pub struct KeypadNotice {
    close: Option<Box<dyn FnOnce() + Send>>,
}

impl KeypadNotice {
    /// A notice with nothing to take away (the terminal's lines stay where they were written).
    pub fn none() -> Self {
        Self { close: None }
    }

    /// A notice that `close` takes away.
    pub fn closed_by(close: impl FnOnce() + Send + 'static) -> Self {
        Self { close: Some(Box::new(close)) }
    }
}

impl Drop for KeypadNotice {
    fn drop(&mut self) {
        if let Some(close) = self.close.take() {
            close();
        }
    }
}

/// Asks the professional for the code porteur: the terminal, pinentry, or the tray app's dialog.
pub trait PinPrompt: Send + Sync {
    /// The code porteur typed, checked for its form (never logged, stored or retried).
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError>;
    /// The index of the card to use among `choice.cards`.
    fn choose_card(&self, choice: &CardChoice) -> Result<usize, PromptError>;
    /// Whether a wrong code porteur is asked for again within the same login, as Web eID's dialog does (the
    /// professional types it again: the agent never resends one). The terminal and pinentry prompts end
    /// the login instead and let the page say how many tries are left.
    fn asks_again_after_wrong_pin(&self) -> bool {
        false
    }
    /// Tells the professional the card is blocked, with what to do (no PIN field). By default the page
    /// says it from the API's error.
    fn show_blocked(&self, _request: &PinRequest) {}
    /// Tells the professional to type the code porteur on the reader's keypad
    /// ([`PinRequest::keypad_description`]), while the reader waits; no code comes back through the
    /// computer. The notice stays until the returned value is dropped.
    fn show_keypad(&self, request: &PinRequest) -> Result<KeypadNotice, PromptError>;
}

/// The terminal (`/dev/tty`; the console on Windows), echo off.
pub struct TerminalPrompt;

impl PinPrompt for TerminalPrompt {
    fn choose_card(&self, choice: &CardChoice) -> Result<usize, PromptError> {
        self.choose(choice)
    }

    /// The notice is written once; nothing is read from the terminal (the reader takes the code).
    fn show_keypad(&self, request: &PinRequest) -> Result<KeypadNotice, PromptError> {
        terminal_notice(prompt::KEYPAD_TITLE.get(request.lang), &request.keypad_description())
    }

    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError> {
        let unavailable = |e: std::io::Error| PromptError::Unavailable(format!("{}: {e}", Terminal::NAME));
        let tty = Terminal::open().map_err(unavailable)?;
        let mut out = &tty;
        writeln!(out, "\n{}\n\n{}", request.title(), request.description()).map_err(unavailable)?;
        write!(out, "{} ", request.prompt_label()).map_err(unavailable)?;
        out.flush().map_err(unavailable)?;
        // Room for any code porteur (no reallocation leaving a copy behind); the read buffer is wiped too.
        let mut line = Zeroizing::new(String::with_capacity(256));
        let read = {
            let _quiet = NoEcho::on(&tty.input);
            WipedReader::new(&tty.input).read_line(&mut line)
        };
        let _ = writeln!(out);
        match read {
            Ok(0) => Err(PromptError::Cancelled),
            Ok(_) => Pin::new(line.trim_end_matches(['\r', '\n'])).map_err(|_| PromptError::BadFormat),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// The terminal the professional sits at, whatever the standard streams are: the controlling terminal
/// (`/dev/tty`) on Unix; on Windows the console, `CONIN$` to read and `CONOUT$` to write (text written with
/// `WriteConsoleW`, so that accents show whatever the console's code page).
struct Terminal {
    input: std::fs::File,
    output: std::fs::File,
}

impl Terminal {
    #[cfg(not(windows))]
    const NAME: &'static str = "/dev/tty";
    #[cfg(windows)]
    const NAME: &'static str = "CONIN$/CONOUT$";

    fn open() -> std::io::Result<Self> {
        let open = |path: &str| std::fs::OpenOptions::new().read(true).write(true).open(path);
        #[cfg(not(windows))]
        let (input, output) = {
            let tty = open("/dev/tty")?;
            (tty.try_clone()?, tty)
        };
        #[cfg(windows)]
        let (input, output) = (open("CONIN$")?, open("CONOUT$")?);
        Ok(Self { input, output })
    }
}

impl Write for &Terminal {
    #[cfg(not(windows))]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&self.output).write(buf)
    }

    /// UTF-8 in, UTF-16 to the console; the prompts are whole strings, so a write never splits a character.
    #[cfg(windows)]
    #[allow(unsafe_code)] // Win32: WriteConsoleW
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::windows::io::AsRawHandle;
        let text =
            std::str::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let wide: Vec<u16> = text.encode_utf16().collect();
        let mut done = 0usize;
        while done < wide.len() {
            let chunk = u32::try_from(wide.len() - done).unwrap_or(u32::MAX);
            let mut written = 0u32;
            // SAFETY: the console output handle outlives the call; `wide[done..]` holds at least `chunk` units.
            let ok = unsafe {
                windows_sys::Win32::System::Console::WriteConsoleW(
                    self.output.as_raw_handle(),
                    wide[done..].as_ptr().cast(),
                    chunk,
                    &mut written,
                    std::ptr::null(),
                )
            };
            if ok == 0 {
                return Err(std::io::Error::last_os_error());
            }
            done += written as usize;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&self.output).flush()
    }
}

/// The terminal's echo, off while this lives: termios `ECHO` on Unix, the console's `ENABLE_ECHO_INPUT`
/// on Windows (line input stays on: the code porteur is read up to Enter).
struct NoEcho {
    #[cfg(unix)]
    saved: Option<(i32, libc::termios)>,
    #[cfg(windows)]
    saved: Option<(windows_sys::Win32::Foundation::HANDLE, u32)>,
}

#[allow(unsafe_code)] // termios; Win32 console mode
impl NoEcho {
    #[cfg(unix)]
    fn on(tty: &std::fs::File) -> Self {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: termios calls on a file descriptor that outlives this guard.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` outlives the call.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Self { saved: None };
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: `quiet` outlives the call.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        Self { saved: Some((fd, saved)) }
    }

    #[cfg(windows)]
    fn on(console: &std::fs::File) -> Self {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::System::Console::{GetConsoleMode, SetConsoleMode, ENABLE_ECHO_INPUT};
        let handle = console.as_raw_handle();
        let mut saved = 0u32;
        // SAFETY: console mode calls on a handle that outlives this guard.
        if unsafe { GetConsoleMode(handle, &mut saved) } == 0 {
            return Self { saved: None };
        }
        // SAFETY: as above.
        unsafe { SetConsoleMode(handle, saved & !ENABLE_ECHO_INPUT) };
        Self { saved: Some((handle, saved)) }
    }

    #[cfg(not(any(unix, windows)))]
    fn on(_tty: &std::fs::File) -> Self {
        Self {}
    }
}

#[allow(unsafe_code)] // termios; Win32 console mode
impl Drop for NoEcho {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some((fd, saved)) = self.saved {
            // SAFETY: as in `on`.
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        }
        #[cfg(windows)]
        if let Some((handle, saved)) = self.saved {
            // SAFETY: as in `on`.
            unsafe { windows_sys::Win32::System::Console::SetConsoleMode(handle, saved) };
        }
    }
}

impl TerminalPrompt {
    fn choose(&self, choice: &CardChoice) -> Result<usize, PromptError> {
        let unavailable = |e: std::io::Error| PromptError::Unavailable(format!("{}: {e}", Terminal::NAME));
        let tty = Terminal::open().map_err(unavailable)?;
        let mut out = &tty;
        writeln!(out, "\n{}", choice.question(None)).map_err(unavailable)?;
        for (i, c) in choice.cards.iter().enumerate() {
            writeln!(out, "  {} : {c}", i + 1).map_err(unavailable)?;
        }
        write!(out, "> ").map_err(unavailable)?;
        let mut line = String::new();
        BufReader::new(&tty.input).read_line(&mut line).map_err(unavailable)?;
        match line.trim().parse::<usize>() {
            Ok(n) if (1..=choice.cards.len()).contains(&n) => Ok(n - 1),
            _ => Err(PromptError::Cancelled),
        }
    }
}

/// A pinentry program spoken to in the Assuan protocol.
pub struct PinentryPrompt {
    /// The pinentry program (e.g. /usr/bin/pinentry-gnome3).
    pub program: PathBuf,
}

/// Assuan percent-encoding of a parameter (`%`, CR, LF and control characters).
fn assuan_escape(s: &str) -> String {
    s.chars()
        .map(|c| if c == '%' || c.is_control() { format!("%{:02X}", c as u32) } else { c.to_string() })
        .collect()
}

/// Assuan percent-decoding of a data line: `%XX` is a byte, a `%` not followed by two hex digits stays as
/// it is (a pinentry's answer comes from another program: nothing in it may panic the agent).
fn assuan_unescape(s: &str) -> Zeroizing<String> {
    let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(percent_encoding::percent_decode_str(s).collect());
    match std::str::from_utf8(&bytes) {
        Ok(text) => Zeroizing::new(text.to_owned()),
        Err(_) => Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// One conversation with a pinentry program.
struct Pinentry {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: WipedReader<std::process::ChildStdout>,
    program: String,
}

/// What a pinentry answered to GETPIN or CONFIRM.
pub enum Answer {
    /// `OK`, with the last `D` line's data (percent-decoded) if any: the code porteur after GETPIN.
    Ok(Option<Zeroizing<String>>),
    /// `ERR 83886194` (GPG_ERR_NOT_CONFIRMED): the "not OK" button of a CONFIRM.
    NotConfirmed,
    /// Any other `ERR`, or the pinentry closed the connection or sent what is not text.
    Cancelled,
}

/// A buffered reader whose buffer is wiped when dropped: the terminal's line and the pinentry's `D` line
/// carry the code porteur through it (a `BufReader` would leave it in freed memory).
pub struct WipedReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    filled: usize,
}

impl<R: std::io::Read> WipedReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, buf: Zeroizing::new(vec![0; 4096]), pos: 0, filled: 0 }
    }
}

impl<R: std::io::Read> std::io::Read for WipedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: std::io::Read> BufRead for WipedReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.filled = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        Ok(self.buf.get(self.pos..self.filled).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// Reads a pinentry's lines up to `OK` (status and comment lines are skipped); `ERR …`, the end of the
/// stream or a read error (a line that is not UTF-8) is the error, as text. Everything comes from
/// another program: nothing in it may panic the agent (fuzz target `assuan`, docs/fuzzing.md).
pub fn read_ok(output: &mut impl BufRead) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        match output.read_line(&mut line) {
            Ok(0) => return Err("pinentry closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        if line.starts_with("OK") {
            return Ok(());
        }
        if line.starts_with("ERR") {
            return Err(line.trim().to_owned());
        }
    }
}

/// Reads a pinentry's answer to GETPIN or CONFIRM: `D` lines (the data, percent-decoded), then `OK` or
/// `ERR`; other lines (`S`, `#`, `INQUIRE`…) are skipped. A closed stream or a read error cancels. The
/// lines that may hold the code porteur are zeroized once read.
pub fn read_answer(output: &mut impl BufRead) -> Answer {
    let mut data = None;
    loop {
        let mut line = Zeroizing::new(String::with_capacity(1024));
        match output.read_line(&mut line) {
            Ok(0) | Err(_) => return Answer::Cancelled,
            Ok(_) => {}
        }
        if let Some(d) = line.strip_prefix("D ") {
            data = Some(assuan_unescape(d.trim_end_matches(['\r', '\n'])));
        } else if line.starts_with("OK") {
            return Answer::Ok(data);
        } else if line.starts_with("ERR") {
            // 83886194 is GPG_ERR_NOT_CONFIRMED (the "not OK" button); anything else cancels.
            return if line.contains("83886194") { Answer::NotConfirmed } else { Answer::Cancelled };
        }
    }
}

impl Pinentry {
    fn start(program: &std::path::Path) -> Result<Self, PromptError> {
        let name = program.display().to_string();
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| PromptError::Unavailable(format!("{name}: {e}")))?;
        let input =
            child.stdin.take().ok_or_else(|| PromptError::Unavailable(format!("{name}: no stdin")))?;
        let output = WipedReader::new(
            child.stdout.take().ok_or_else(|| PromptError::Unavailable(format!("{name}: no stdout")))?,
        );
        let mut p = Self { child, input, output, program: name };
        p.expect_ok()?;
        Ok(p)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> PromptError {
        PromptError::Unavailable(format!("{}: {e}", self.program))
    }

    fn expect_ok(&mut self) -> Result<(), PromptError> {
        read_ok(&mut self.output).map_err(|e| self.unavailable(e))
    }

    fn set(&mut self, commands: &[String]) -> Result<(), PromptError> {
        for cmd in commands {
            writeln!(self.input, "{cmd}").map_err(|e| self.unavailable(e))?;
            self.expect_ok()?;
        }
        Ok(())
    }

    /// Sends GETPIN or CONFIRM and reads the answer.
    fn run(&mut self, command: &str) -> Answer {
        if writeln!(self.input, "{command}").is_err() {
            return Answer::Cancelled;
        }
        read_answer(&mut self.output)
    }
}

impl Drop for Pinentry {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "BYE");
        let _ = self.child.wait();
    }
}

impl PinPrompt for PinentryPrompt {
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError> {
        let mut p = Pinentry::start(&self.program)?;
        let lang = request.lang;
        p.set(&[
            format!("SETTITLE {}", assuan_escape(request.title())),
            format!("SETDESC {}", assuan_escape(&request.description())),
            format!("SETPROMPT {}", assuan_escape(&request.prompt_label())),
            format!("SETOK {}", assuan_escape(prompt::OK.get(lang))),
            format!("SETCANCEL {}", assuan_escape(prompt::CANCEL.get(lang))),
        ])?;
        match p.run("GETPIN") {
            Answer::Ok(Some(pin)) => Pin::new(&pin).map_err(|_| PromptError::BadFormat),
            _ => Err(PromptError::Cancelled),
        }
    }

    /// A one-button message (`CONFIRM --one-button`, « Masquer »: no cancel that would pretend to stop
    /// the reader), taken away when the reader's command ends (the pinentry is stopped, as gpg-agent does
    /// with its PIN-pad popup).
    fn show_keypad(&self, request: &PinRequest) -> Result<KeypadNotice, PromptError> {
        let lang = request.lang;
        pinentry_notice(&self.program, prompt::KEYPAD_TITLE.get(lang), &request.keypad_description(), lang)
    }

    /// One question per card, « Utiliser cette carte » / « Carte suivante » / « Annuler ».
    fn choose_card(&self, choice: &CardChoice) -> Result<usize, PromptError> {
        let lang = choice.lang;
        let (use_it, next, cancel) =
            (prompt::USE_THIS_CARD.get(lang), prompt::NEXT_CARD.get(lang), prompt::CANCEL.get(lang));
        for (i, card) in choice.cards.iter().enumerate() {
            let mut p = Pinentry::start(&self.program)?;
            p.set(&[
                "SETTITLE Agent CPx".to_owned(),
                format!("SETDESC {}", assuan_escape(&choice.question(Some(card)))),
                format!("SETOK {}", assuan_escape(use_it)),
                format!("SETNOTOK {}", assuan_escape(next)),
                format!("SETCANCEL {}", assuan_escape(cancel)),
            ])?;
            match p.run("CONFIRM") {
                Answer::Ok(_) => return Ok(i),
                Answer::NotConfirmed => continue,
                Answer::Cancelled => return Err(PromptError::Cancelled),
            }
        }
        Err(PromptError::Cancelled)
    }
}

/// Changing and unblocking the code porteur on the terminal (`cpx-agent pin`): the card and the tries
/// first, every code read without echo, a yes/no before the last try of the code de déblocage.
pub struct TerminalCodeDialog {
    /// The language of the dialog.
    pub lang: Lang,
    /// The title of the dialog: changing or unblocking.
    pub title: crate::messages::Text,
}

impl TerminalCodeDialog {
    fn unavailable(e: std::io::Error) -> PromptError {
        PromptError::Unavailable(format!("{}: {e}", Terminal::NAME))
    }

    /// Writes `lead` (if any), then « label : » and reads a line without echo; end of input cancels.
    fn secret(&self, lead: Option<&str>, label: &str) -> Result<Zeroizing<String>, PromptError> {
        let tty = Terminal::open().map_err(Self::unavailable)?;
        let mut out = &tty;
        if let Some(lead) = lead {
            writeln!(out, "\n{}\n\n{lead}", self.title.get(self.lang)).map_err(Self::unavailable)?;
        }
        write!(out, "{} ", fill(prompt::ASK.get(self.lang), &[("label", label)]))
            .map_err(Self::unavailable)?;
        out.flush().map_err(Self::unavailable)?;
        let mut line = Zeroizing::new(String::new());
        let read = {
            let _quiet = NoEcho::on(&tty.input);
            BufReader::new(&tty.input).read_line(&mut line)
        };
        let _ = writeln!(out);
        match read {
            Ok(0) => Err(PromptError::Cancelled),
            Ok(_) => Ok(Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())),
            Err(e) => Err(Self::unavailable(e)),
        }
    }

    /// The card and a count of tries: « Titulaire : JEAN DUPONT — CPS (CPS3) », « Essais restants : 3 sur 3 ».
    fn lead(&self, card: &crate::card::CardLabel, tries: crate::messages::Text, status: PinStatus) -> String {
        let lang = self.lang;
        let count = format!("{} {} {}", status.tries_left, prompt::OF.get(lang), status.max_tries);
        format!("{}\n{}", field(lang, prompt::HOLDER, &card.text), field(lang, tries, &count))
    }
}

impl crate::card::CodeDialog for TerminalCodeDialog {
    fn choose_card(&self, cards: &[crate::card::CardLabel]) -> Result<usize, PromptError> {
        let choice = CardChoice {
            origin: String::new(),
            cards: cards.iter().map(|c| format!("{} — {}", c.text, c.reader)).collect(),
            lang: self.lang,
        };
        TerminalPrompt.choose(&choice)
    }

    fn current_pin(
        &self,
        card: &crate::card::CardLabel,
        status: PinStatus,
    ) -> Result<Zeroizing<String>, PromptError> {
        let lead = self.lead(card, prompt::TRIES, status);
        self.secret(Some(&lead), pin_life::CURRENT_FIELD.get(self.lang))
    }

    fn confirm_last_unblock_try(&self, card: &crate::card::CardLabel) -> Result<bool, PromptError> {
        let tty = Terminal::open().map_err(Self::unavailable)?;
        let mut out = &tty;
        let lang = self.lang;
        writeln!(out, "\n{}\n\n{}", self.title.get(lang), field(lang, prompt::HOLDER, &card.text))
            .map_err(Self::unavailable)?;
        write!(out, "{} {} ", pin_life::UNBLOCK_LAST_TRY.get(lang), pin_life::YES_NO.get(lang))
            .map_err(Self::unavailable)?;
        out.flush().map_err(Self::unavailable)?;
        let mut line = String::new();
        BufReader::new(&tty.input).read_line(&mut line).map_err(Self::unavailable)?;
        Ok(matches!(line.trim().to_lowercase().as_str(), "o" | "oui" | "y" | "yes"))
    }

    fn unblocking_code(
        &self,
        card: &crate::card::CardLabel,
        status: PinStatus,
        _new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        let lead = self.lead(card, pin_life::UNBLOCK_TRIES, status);
        self.secret(Some(&lead), pin_life::UNBLOCK_FIELD.get(self.lang))
    }

    fn new_pin_twice(&self, _card: &crate::card::CardLabel) -> Result<[Zeroizing<String>; 2], PromptError> {
        let first = self.secret(None, pin_life::NEW_FIELD.get(self.lang))?;
        let second = self.secret(None, pin_life::NEW_AGAIN_FIELD.get(self.lang))?;
        Ok([first, second])
    }

    /// The notice is written once; nothing is read from the terminal (the reader takes the codes).
    fn show_keypad(
        &self,
        card: &crate::card::CardLabel,
        step: crate::card::KeypadStep,
    ) -> Result<KeypadNotice, PromptError> {
        terminal_notice(self.title.get(self.lang), &keypad_step_text(self.lang, card, step))
    }
}

/// Changing and unblocking the code porteur through a pinentry program (`cpx-agent pin` when the
/// configuration's `[pin_prompt]` is a pinentry): one dialog per question, the card and the tries first,
/// a CONFIRM before the last try of the code de déblocage, the new code asked twice (compared by the flow).
pub struct PinentryCodeDialog {
    /// The pinentry program.
    pub program: PathBuf,
    /// The language of the dialogs.
    pub lang: Lang,
    /// The title of the dialogs: changing or unblocking.
    pub title: crate::messages::Text,
}

impl PinentryCodeDialog {
    /// A pinentry showing this dialog's title, `desc` and the OK/Cancel buttons (and `prompt` if any).
    fn start(&self, desc: &str, prompt_label: Option<&str>, ok: &str) -> Result<Pinentry, PromptError> {
        let mut p = Pinentry::start(&self.program)?;
        let mut commands = vec![
            format!("SETTITLE {}", assuan_escape(self.title.get(self.lang))),
            format!("SETDESC {}", assuan_escape(desc)),
            format!("SETOK {}", assuan_escape(ok)),
            format!("SETCANCEL {}", assuan_escape(prompt::CANCEL.get(self.lang))),
        ];
        if let Some(label) = prompt_label {
            commands.push(format!("SETPROMPT {}", assuan_escape(label)));
        }
        p.set(&commands)?;
        Ok(p)
    }

    /// One code, as typed (its form is checked by the flow); « Annuler » cancels.
    fn secret(&self, desc: &str, label: crate::messages::Text) -> Result<Zeroizing<String>, PromptError> {
        let mut p = self.start(desc, Some(label.get(self.lang)), prompt::OK.get(self.lang))?;
        match p.run("GETPIN") {
            Answer::Ok(Some(code)) => Ok(code),
            _ => Err(PromptError::Cancelled),
        }
    }

    /// « Titulaire : … » and a count of tries, as the terminal's dialog says them.
    fn lead(&self, card: &crate::card::CardLabel, tries: crate::messages::Text, status: PinStatus) -> String {
        TerminalCodeDialog { lang: self.lang, title: self.title }.lead(card, tries, status)
    }
}

impl crate::card::CodeDialog for PinentryCodeDialog {
    fn choose_card(&self, cards: &[crate::card::CardLabel]) -> Result<usize, PromptError> {
        let choice = CardChoice {
            origin: String::new(),
            cards: cards.iter().map(|c| format!("{} — {}", c.text, c.reader)).collect(),
            lang: self.lang,
        };
        PinentryPrompt { program: self.program.clone() }.choose_card(&choice)
    }

    fn current_pin(
        &self,
        card: &crate::card::CardLabel,
        status: PinStatus,
    ) -> Result<Zeroizing<String>, PromptError> {
        self.secret(&self.lead(card, prompt::TRIES, status), pin_life::CURRENT_FIELD)
    }

    fn confirm_last_unblock_try(&self, card: &crate::card::CardLabel) -> Result<bool, PromptError> {
        let lang = self.lang;
        let desc = format!(
            "{}\n\n{}",
            field(lang, prompt::HOLDER, &card.text),
            pin_life::UNBLOCK_LAST_TRY.get(lang)
        );
        let mut p = self.start(&desc, None, pin_life::GO_ON.get(lang))?;
        match p.run("CONFIRM") {
            Answer::Ok(_) => Ok(true),
            Answer::NotConfirmed => Ok(false),
            Answer::Cancelled => Err(PromptError::Cancelled),
        }
    }

    fn unblocking_code(
        &self,
        card: &crate::card::CardLabel,
        status: PinStatus,
        _new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError> {
        self.secret(&self.lead(card, pin_life::UNBLOCK_TRIES, status), pin_life::UNBLOCK_FIELD)
    }

    fn new_pin_twice(&self, card: &crate::card::CardLabel) -> Result<[Zeroizing<String>; 2], PromptError> {
        let desc = field(self.lang, prompt::HOLDER, &card.text);
        let first = self.secret(&desc, pin_life::NEW_FIELD)?;
        let second = self.secret(&desc, pin_life::NEW_AGAIN_FIELD)?;
        Ok([first, second])
    }

    /// A one-button message, taken away when the reader's command ends (as for the login's keypad).
    fn show_keypad(
        &self,
        card: &crate::card::CardLabel,
        step: crate::card::KeypadStep,
    ) -> Result<KeypadNotice, PromptError> {
        let desc = keypad_step_text(self.lang, card, step);
        pinentry_notice(&self.program, self.title.get(self.lang), &desc, self.lang)
    }
}

/// A change or an unblock on the reader's keypad: the card, what to type there, what to do when the reader
/// stops waiting, and that only its Cancel key stops it.
fn keypad_step_text(lang: Lang, card: &crate::card::CardLabel, step: crate::card::KeypadStep) -> String {
    format!(
        "{}\n\n{}\n\n{}\n\n{}",
        field(lang, prompt::HOLDER, &card.text),
        step.text().get(lang),
        pin_life::KEYPAD_TIMEOUT.get(lang),
        prompt::KEYPAD_CANCEL.get(lang)
    )
}

/// A notice on the terminal while the reader's keypad takes a code: written once, nothing read.
fn terminal_notice(title: &str, text: &str) -> Result<KeypadNotice, PromptError> {
    let unavailable = |e: std::io::Error| PromptError::Unavailable(format!("{}: {e}", Terminal::NAME));
    let tty = Terminal::open().map_err(unavailable)?;
    let mut out = &tty;
    writeln!(out, "\n{title}\n\n{text}\n").map_err(unavailable)?;
    out.flush().map_err(unavailable)?;
    Ok(KeypadNotice::none())
}

/// A one-button pinentry message (`CONFIRM --one-button`, « Masquer »: no cancel that would pretend to stop
/// the reader), taken away when the returned notice is dropped (the pinentry is stopped, as gpg-agent does
/// with its PIN-pad popup).
fn pinentry_notice(program: &Path, title: &str, text: &str, lang: Lang) -> Result<KeypadNotice, PromptError> {
    let mut p = Pinentry::start(program)?;
    p.set(&[
        format!("SETTITLE {}", assuan_escape(title)),
        format!("SETDESC {}", assuan_escape(text)),
        format!("SETOK {}", assuan_escape(prompt::KEYPAD_HIDE.get(lang))),
    ])?;
    writeln!(p.input, "CONFIRM --one-button").map_err(|e| p.unavailable(e))?;
    Ok(KeypadNotice::closed_by(move || {
        let _ = p.child.kill();
        drop(p);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first request for a CPS3 of JEAN DUPONT's, in French.
    fn sample_request() -> PinRequest {
        PinRequest {
            origin: "https://portail.example.fr".into(),
            holder: "JEAN DUPONT".into(),
            card: "CPS3".into(),
            tries_left: 3,
            max_tries: 3,
            wrong_pin: false,
            lang: Lang::Fr,
        }
    }

    #[test]
    fn the_dialog_names_the_site_and_warns_on_the_last_try() {
        let mut r = sample_request();
        let d = r.description();
        assert!(d.starts_with("Le site https://portail.example.fr\n"), "{d}");
        assert!(d.contains("Essais restants : 3 sur 3") && !d.contains("dernier essai"));
        r.tries_left = 1;
        assert!(r.description().contains("dernier essai"));
        assert!(d.contains("Titulaire : JEAN DUPONT — CPS3"), "{d}");
        assert_eq!(r.prompt_label(), "Code porteur (4 chiffres) :");
    }

    /// The keypad notice: the request's site, card and tries, where to type, what to do when the reader
    /// stops waiting, and that only the reader's Cancel key cancels; in French and English.
    #[test]
    fn the_keypad_notice_says_where_to_type_and_how_to_cancel() {
        let mut r = sample_request();
        let d = r.keypad_description();
        assert!(d.starts_with(&r.description()), "{d}");
        for words in [
            "Saisissez votre code porteur sur le clavier du lecteur",
            "cesse d'attendre",
            "Pour annuler, appuyez sur la touche Annuler du lecteur",
        ] {
            assert!(d.contains(words), "{words:?}: {d}");
        }
        assert!(!d.contains("incorrect"));
        r.wrong_pin = true;
        r.lang = Lang::En;
        let en = r.keypad_description();
        assert!(en.contains("Wrong code porteur: type it again on the reader's keypad."), "{en}");
        assert!(en.contains("press the reader's Cancel key: this window cannot stop the reader"), "{en}");
    }

    /// The wiped reader gives the lines a BufReader would, across reads that end mid-line.
    #[test]
    fn the_wiped_reader_reads_the_pinentry_answer_in_pieces() {
        struct Dribble<'a>(&'a [u8]);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(out.len()).min(3);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = WipedReader::new(Dribble(b"S PIN_REPEATED\nD 12%2534\nOK\n"));
        match read_answer(&mut r) {
            Answer::Ok(Some(pin)) => assert_eq!(pin.as_str(), "12%34"),
            _ => panic!("no data"),
        }
        assert!(matches!(read_answer(&mut r), Answer::Cancelled), "end of stream");
        let mut r = WipedReader::new(Dribble(b"# hello\nOK Pleased to meet you\n"));
        assert_eq!(read_ok(&mut r), Ok(()));
    }

    /// The terminal, pinentry and the tray's dialog say the same words: those of the catalogue.
    #[test]
    fn the_prompts_say_the_words_of_the_tray_dialog() {
        let labels = crate::messages::labels(Lang::Fr);
        let label = |k: &str| labels[k].as_str().unwrap().to_owned();
        let r = PinRequest {
            origin: "https://portail.example.fr".into(),
            holder: "JEAN DUPONT".into(),
            card: "CPS3".into(),
            tries_left: 1,
            max_tries: 3,
            wrong_pin: false,
            lang: Lang::Fr,
        };
        let d = r.description();
        for key in ["pin_site", "pin_site_asks", "pin_tries", "pin_last_try"] {
            assert!(d.contains(&label(key)), "{key}: {d}");
        }
        assert!(r.prompt_label().starts_with(&label("pin_label")));
        let en = PinRequest { lang: Lang::En, ..r }.description();
        assert!(
            en.contains("Holder: JEAN DUPONT — CPS3") && en.contains("One more error will block"),
            "{en}"
        );
        let choice = CardChoice { origin: "https://p.fr".into(), cards: vec!["A".into()], lang: Lang::Fr };
        assert!(choice.question(Some("JEAN DUPONT")).ends_with("Utiliser la carte de JEAN DUPONT ?"));
        assert!(choice.question(None).ends_with("Plusieurs cartes CPx sont présentes."));
    }

    /// A badly formed code porteur is PIN_FORMAT in pinentry (and the terminal) as in the tray's dialog;
    /// only « Annuler » is USER_CANCELLED.
    #[cfg(unix)]
    #[test]
    fn a_badly_formed_code_porteur_is_pin_format_as_in_the_tray() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cpx-pinentry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("pinentry");
        std::fs::write(
            &program,
            "#!/bin/sh\necho OK\nwhile read -r c _; do case $c in GETPIN) echo 'D 12ab'; echo OK;; BYE) echo OK; exit 0;; *) echo OK;; esac; done\n",
        )
        .unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let request = sample_request();
        let answer = PinentryPrompt { program: program.clone() }.ask(&request);
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(answer, Err(PromptError::BadFormat)), "{answer:?}");
        assert_eq!(Failure::from(PromptError::BadFormat).code, Code::PinFormat);
        assert_eq!(Failure::from(PromptError::Cancelled).code, Code::UserCancelled);
    }

    #[test]
    fn assuan_escaping() {
        assert_eq!(assuan_escape("a%b\nc"), "a%25b%0Ac");
        assert_eq!(assuan_unescape("12%334").as_str(), "1234");
        assert_eq!(assuan_unescape("50%").as_str(), "50%");
        assert_eq!(assuan_unescape("12%33").as_str(), "123", "an escape at the very end");
    }

    #[test]
    fn assuan_unescaping_never_panics_on_odd_escapes() {
        // A `%` followed by a multi-byte character used to slice inside it and panic.
        assert_eq!(assuan_unescape("%aé").as_str(), "%aé");
        assert_eq!(assuan_unescape("%é1").as_str(), "%é1");
        assert_eq!(assuan_unescape("%").as_str(), "%");
        assert_eq!(assuan_unescape("%G1").as_str(), "%G1");
        assert_eq!(assuan_unescape("a%2").as_str(), "a%2");
        assert_eq!(assuan_unescape("%C3%A9").as_str(), "é");
        assert_eq!(assuan_unescape("%FF").as_str(), "\u{FFFD}", "bytes that are not UTF-8");
    }
}
