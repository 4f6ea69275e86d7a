//! `cpx-rival`: another program on the machine that wants the CPx card's signature without knowing the
//! code porteur. It talks to PC/SC directly (the `pcsc` crate, not the project's driver) and keeps asking
//! a CPS3 whether its code porteur is verified (`00 20 00 01` with no data answers `90 00` when it is),
//! and tries to have the authentication key sign a digest of its own (MSE SET AT + INTERNAL
//! AUTHENTICATE: `90 00` or `61xx` means the card signed).
//!
//! Usage: `cpx-rival READER MODE [PAUSE_MICROS [HOLD_MILLIS]]`, until its standard input closes; then it
//! prints one line per time it had the card (`<unix nanos> <VERIFY status> <INTERNAL AUTHENTICATE
//! status>`, the latter `-` when not tried) and a last line `done`. MODE:
//! - `poll`: no transaction; one VERIFY-without-data after another, `PAUSE_MICROS` apart (run it with
//!   `PCSCLITE_NO_BLOCKING=1` so that a card held by someone else answers at once instead of after
//!   pcsc-lite's 100 ms poll): it lands in any gap the agent leaves between two of its commands;
//! - `transaction`: waits in `SCardBeginTransaction`, then asks, tries to sign, keeps the card
//!   `HOLD_MILLIS`, ends the transaction leaving the card as it is, pauses `PAUSE_MICROS`;
//! - `exclusive`: connects in exclusive mode as soon as it can (while the agent is connected it cannot),
//!   asks and tries to sign once, then keeps the card until told to stop.

use std::ffi::CString;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `00 20 00 01`, no data: "is the code porteur verified?" (the tries left otherwise).
const ASK: [u8; 4] = [0x00, 0x20, 0x00, 0x01];
/// MSE SET AT: RSA PKCS#1 (`80 01 02`) with the CPS3 authentication key (`84 01 82`).
const MSE: [u8; 11] = [0x00, 0x22, 0x41, 0xA4, 0x06, 0x80, 0x01, 0x02, 0x84, 0x01, 0x82];

/// INTERNAL AUTHENTICATE on a SHA-256 DigestInfo of the rival's choosing.
fn internal_authenticate() -> Vec<u8> {
    let prefix = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
        0x04, 0x20,
    ];
    let digest_info: Vec<u8> = prefix.iter().copied().chain([0x5A; 32]).collect();
    let mut apdu = vec![0x00, 0x88, 0x00, 0x00, digest_info.len() as u8];
    apdu.extend_from_slice(&digest_info);
    apdu.push(0x00);
    apdu
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// The status word of an answer, as 4 hex digits.
fn send(card: &pcsc::Card, apdu: &[u8]) -> Result<String, pcsc::Error> {
    let mut buf = [0u8; 300];
    let answer = card.transmit(apdu, &mut buf)?;
    match answer {
        [.., sw1, sw2] => Ok(format!("{sw1:02X}{sw2:02X}")),
        _ => Err(pcsc::Error::CommError),
    }
}

/// Asks whether the code porteur is verified and tries to sign; returns the line to record.
fn probe(card: &pcsc::Card) -> Result<String, pcsc::Error> {
    let asked = send(card, &ASK)?;
    let _ = send(card, &MSE);
    let signed = send(card, &internal_authenticate()).unwrap_or_else(|_| "-".into());
    Ok(format!("{} {asked} {signed}", now_nanos()))
}

/// After a reset by another program, PC/SC refuses this handle's calls until it reconnects.
fn acknowledge(card: &mut pcsc::Card, err: pcsc::Error) {
    if err == pcsc::Error::ResetCard {
        let _ = card.reconnect(
            pcsc::ShareMode::Shared,
            pcsc::Protocols::T0 | pcsc::Protocols::T1,
            pcsc::Disposition::LeaveCard,
        );
    }
}

fn connect(
    ctx: &pcsc::Context,
    reader: &CString,
    share: pcsc::ShareMode,
    stop: &AtomicBool,
) -> Option<pcsc::Card> {
    while !stop.load(Ordering::SeqCst) {
        match ctx.connect(reader, share, pcsc::Protocols::T0 | pcsc::Protocols::T1) {
            Ok(card) => return Some(card),
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
    None
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(reader), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: cpx-rival READER poll|transaction|exclusive [PAUSE_MICROS [HOLD_MILLIS]]");
        std::process::exit(2);
    };
    let pause = Duration::from_micros(args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500));
    let hold = Duration::from_millis(args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0));
    let reader = CString::new(reader.as_str()).expect("reader name");
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stopper.store(true, Ordering::SeqCst);
    });
    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("PC/SC context");
    let mut seen = Vec::new();
    match mode.as_str() {
        "poll" => {
            if let Some(mut card) = connect(&ctx, &reader, pcsc::ShareMode::Shared, &stop) {
                while !stop.load(Ordering::SeqCst) {
                    match send(&card, &ASK) {
                        Ok(asked) => {
                            // Only a verified card is worth a signature attempt outside a transaction.
                            let signed = if asked == "9000" {
                                let _ = send(&card, &MSE);
                                send(&card, &internal_authenticate()).unwrap_or_else(|_| "-".into())
                            } else {
                                "-".into()
                            };
                            seen.push(format!("{} {asked} {signed}", now_nanos()));
                        }
                        Err(e) => acknowledge(&mut card, e),
                    }
                    thread::sleep(pause);
                }
            }
        }
        "transaction" => {
            if let Some(mut card) = connect(&ctx, &reader, pcsc::ShareMode::Shared, &stop) {
                while !stop.load(Ordering::SeqCst) {
                    let outcome = match card.transaction() {
                        Ok(tx) => {
                            let probed = probe(&tx);
                            thread::sleep(hold);
                            let _ = tx.end(pcsc::Disposition::LeaveCard);
                            probed
                        }
                        Err(e) => Err(e),
                    };
                    match outcome {
                        Ok(line) => seen.push(line),
                        Err(e) => acknowledge(&mut card, e),
                    }
                    thread::sleep(pause);
                }
            }
        }
        "exclusive" => {
            if let Some(card) = connect(&ctx, &reader, pcsc::ShareMode::Exclusive, &stop) {
                if let Ok(line) = probe(&card) {
                    seen.push(line);
                }
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(10));
                }
                let _ = card.disconnect(pcsc::Disposition::LeaveCard);
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    for line in seen {
        println!("{line}");
    }
    println!("done");
}
