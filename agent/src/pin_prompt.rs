//! Asking the professional for the code porteur. Always shows the requesting site (origin), the holder,
//! the card and the tries left, and warns before the last try. The PIN goes from the prompt straight to
//! the card session: it is never logged, stored or retried by the agent.
//!
//! Two prompts here: the terminal one, and any pinentry program (the Assuan protocol GnuPG uses), so a
//! desktop without the tray app still gets a dialog. The tray app's own dialog implements the same trait.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cpx_card::Pin;
use zeroize::Zeroizing;

use crate::messages::Lang;

/// What the prompt shows.
#[derive(Debug, Clone)]
pub struct PinRequest {
    pub origin: String,
    pub holder: String,
    pub card: String,
    pub tries_left: u8,
    pub max_tries: u8,
    pub lang: Lang,
}

impl PinRequest {
    pub fn title(&self) -> &'static str {
        match self.lang {
            Lang::Fr => "Agent CPx — code porteur",
            Lang::En => "Agent CPx — code porteur (PIN)",
        }
    }

    /// The text of the dialog: the site first, then the card and the tries.
    pub fn description(&self) -> String {
        let (n, max) = (self.tries_left, self.max_tries);
        let mut s = match self.lang {
            Lang::Fr => format!("Le site {}\ndemande à utiliser votre carte CPx.\n\nTitulaire : {} ({})\nEssais restants : {n} sur {max}", self.origin, self.holder, self.card),
            Lang::En => format!("The site {}\nasks to use your CPx card.\n\nHolder: {} ({})\nTries left: {n} of {max}", self.origin, self.holder, self.card),
        };
        if n == 1 {
            s.push_str(match self.lang {
                Lang::Fr => "\n\nATTENTION : dernier essai. Une erreur bloquera la carte.",
                Lang::En => "\n\nWARNING: last try. One more error will block the card.",
            });
        }
        s
    }

    pub fn prompt_label(&self) -> &'static str {
        match self.lang {
            Lang::Fr => "Code porteur (4 chiffres) :",
            Lang::En => "Code porteur (4 digits):",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("cancelled by the user")]
    Cancelled,
    #[error("the PIN prompt cannot be shown: {0}")]
    Unavailable(String),
}

pub trait PinPrompt: Send + Sync {
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError>;
}

/// The controlling terminal (`/dev/tty`), echo off.
pub struct TerminalPrompt;

impl PinPrompt for TerminalPrompt {
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError> {
        use std::os::fd::AsRawFd;
        let unavailable = |e: std::io::Error| PromptError::Unavailable(format!("/dev/tty: {e}"));
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(unavailable)?;
        let mut out = &tty;
        writeln!(out, "\n{}\n\n{}", request.title(), request.description()).map_err(unavailable)?;
        write!(out, "{} ", request.prompt_label()).map_err(unavailable)?;
        out.flush().map_err(unavailable)?;
        let fd = tty.as_raw_fd();
        // SAFETY: termios calls on a file descriptor we own for the duration of the call.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        let have_termios = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
        if have_termios {
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
        }
        let mut line = Zeroizing::new(String::new());
        let read = BufReader::new(&tty).read_line(&mut line);
        if have_termios {
            unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        }
        let _ = writeln!(out);
        match read {
            Ok(0) => Err(PromptError::Cancelled),
            Ok(_) => Pin::new(line.trim_end_matches(['\r', '\n'])).map_err(|_| PromptError::Cancelled),
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// A pinentry program spoken to in the Assuan protocol.
pub struct PinentryPrompt {
    pub program: PathBuf,
}

/// Assuan percent-encoding of a parameter (`%`, CR, LF and control characters).
fn assuan_escape(s: &str) -> String {
    s.chars().map(|c| if c == '%' || c.is_control() { format!("%{:02X}", c as u32) } else { c.to_string() }).collect()
}

fn assuan_unescape(s: &str) -> Zeroizing<String> {
    let b = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(b.len()));
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Zeroizing::new(String::from_utf8_lossy(&out).into_owned())
}

impl PinPrompt for PinentryPrompt {
    fn ask(&self, request: &PinRequest) -> Result<Pin, PromptError> {
        let unavailable = |e: String| PromptError::Unavailable(format!("{}: {e}", self.program.display()));
        let mut child = Command::new(&self.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| unavailable(e.to_string()))?;
        let mut input = child.stdin.take().ok_or_else(|| unavailable("no stdin".into()))?;
        let mut output = BufReader::new(child.stdout.take().ok_or_else(|| unavailable("no stdout".into()))?);
        let expect_ok = |output: &mut BufReader<std::process::ChildStdout>| -> Result<(), PromptError> {
            let mut line = String::new();
            loop {
                line.clear();
                if output.read_line(&mut line).map_err(|e| unavailable(e.to_string()))? == 0 {
                    return Err(unavailable("pinentry closed the connection".into()));
                }
                if line.starts_with("OK") {
                    return Ok(());
                }
                if line.starts_with("ERR") {
                    return Err(unavailable(line.trim().to_owned()));
                }
            }
        };
        expect_ok(&mut output)?;
        let (ok, cancel) = match request.lang {
            Lang::Fr => ("Valider", "Annuler"),
            Lang::En => ("OK", "Cancel"),
        };
        for cmd in [
            format!("SETTITLE {}", assuan_escape(request.title())),
            format!("SETDESC {}", assuan_escape(&request.description())),
            format!("SETPROMPT {}", assuan_escape(request.prompt_label())),
            format!("SETOK {ok}"),
            format!("SETCANCEL {cancel}"),
        ] {
            writeln!(input, "{cmd}").map_err(|e| unavailable(e.to_string()))?;
            expect_ok(&mut output)?;
        }
        writeln!(input, "GETPIN").map_err(|e| unavailable(e.to_string()))?;
        let mut pin: Option<Zeroizing<String>> = None;
        let result = loop {
            let mut line = Zeroizing::new(String::new());
            match output.read_line(&mut line) {
                Ok(0) | Err(_) => break Err(PromptError::Cancelled),
                Ok(_) => {}
            }
            if let Some(data) = line.strip_prefix("D ") {
                pin = Some(assuan_unescape(data.trim_end_matches(['\r', '\n'])));
            } else if line.starts_with("OK") {
                break match pin.take() {
                    Some(p) => Pin::new(&p).map_err(|_| PromptError::Cancelled),
                    None => Err(PromptError::Cancelled),
                };
            } else if line.starts_with("ERR") {
                break Err(PromptError::Cancelled);
            }
        };
        let _ = writeln!(input, "BYE");
        drop(input);
        let _ = child.wait();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialog_names_the_site_and_warns_on_the_last_try() {
        let mut r = PinRequest { origin: "https://portail.example.fr".into(), holder: "JEAN DUPONT".into(), card: "CPS3".into(), tries_left: 3, max_tries: 3, lang: Lang::Fr };
        let d = r.description();
        assert!(d.starts_with("Le site https://portail.example.fr\n"), "{d}");
        assert!(d.contains("Essais restants : 3 sur 3") && !d.contains("dernier essai"));
        r.tries_left = 1;
        assert!(r.description().contains("dernier essai"));
    }

    #[test]
    fn assuan_escaping() {
        assert_eq!(assuan_escape("a%b\nc"), "a%25b%0Ac");
        assert_eq!(assuan_unescape("12%334").as_str(), "1234");
        assert_eq!(assuan_unescape("50%").as_str(), "50%");
    }
}
