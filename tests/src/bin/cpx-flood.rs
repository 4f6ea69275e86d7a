//! `cpx-flood PORT COUNT SECONDS`: a local program that holds up to COUNT TCP connections open on
//! 127.0.0.1:PORT without ever sending a byte (what exhausted the agent's descriptors), opening new ones
//! as the server closes them, for SECONDS at most or until its standard input closes. Loopback only.
//! Prints `attempts N open M closed_by_server K` after each round, for the test to follow.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(unsafe_code)] // libc: getrlimit, setrlimit
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(count), Some(seconds)) = (
        args.get(1).and_then(|a| a.parse::<u16>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: cpx-flood PORT COUNT SECONDS");
        std::process::exit(2);
    };
    // Room for COUNT descriptors.
    // SAFETY: `r` outlives both calls.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max.min(count as u64 + 64);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop_on_eof = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().lock().lines().count();
        stop_on_eof.store(true, Ordering::SeqCst);
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut open, mut attempts, mut closed) = (Vec::<TcpStream>::new(), 0u64, 0u64);
    let out = std::io::stdout();
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        while open.len() < count && Instant::now() < deadline {
            attempts += 1;
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Ok(s) => {
                    let _ = s.set_nonblocking(true);
                    open.push(s);
                }
                Err(_) => break,
            }
        }
        // Connections the server closed: EOF or reset on a non-blocking read.
        let before = open.len();
        open.retain(|mut s| {
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            }
        });
        closed += (before - open.len()) as u64;
        let _ = writeln!(out.lock(), "attempts {attempts} open {} closed_by_server {closed}", open.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}
