//! `cpx-sim`: puts a virtual CPx card into a vpcd reader.
//!
//!   cpx-sim personas
//!   cpx-sim insert cps3 --port 35963 [--remove-after 10] [--apdu-log FILE] [--pin 1234] [--tries 3]
//!                  [--unblock 12345678] [--unblock-tries 3]
//!                  [--layout real|absolute] [--serial 9DIGITS] [--holder NAME] [--latency real|off|apdu=MS,baud=N,rsa=MS]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cpx-sim", version, about = "Virtual CPx card for pcsc-lite's vpcd reader driver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up: boxing would buy nothing
enum Command {
    /// List the personas (virtual cards) with what each one is for.
    Personas {
        /// One JSON object per persona.
        #[arg(long)]
        json: bool,
    },
    /// Insert a card into the vpcd reader on PORT and keep it there until killed.
    Insert {
        /// Persona name (see `cpx-sim personas`).
        persona: String,
        /// TCP port of the vpcd reader (CHANNELID + slot in pcscd's reader configuration).
        #[arg(long, default_value_t = 35963)]
        port: u16,
        /// Host where pcscd's vpcd driver listens.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Pull the card out after this many seconds.
        #[arg(long)]
        remove_after: Option<f64>,
        /// Write every command and response to FILE (PIN bytes are never written).
        #[arg(long, value_name = "FILE")]
        apdu_log: Option<std::path::PathBuf>,
        /// The code porteur of the card.
        #[arg(long, default_value = "1234")]
        pin: String,
        /// Tries left on the code porteur.
        #[arg(long)]
        tries: Option<u8>,
        /// The code de déblocage of the card (8 digits).
        #[arg(long, default_value = cpx_sim::persona::UNBLOCK_CODE)]
        unblock: String,
        /// Tries left on the code de déblocage.
        #[arg(long)]
        unblock_tries: Option<u8>,
        /// Content of EF_ACTUA (3F00/D010), hex; absent by default.
        #[arg(long, value_name = "HEX")]
        actua: Option<String>,
        /// Spoil a share of the answers: nonsense, truncate, wrong-length or bad-status.
        #[arg(long)]
        garble: Option<cpx_sim::fault::Garble>,
        /// Share of the answers spoilt by --garble (0 to 1).
        #[arg(long, default_value_t = 0.2)]
        garble_rate: f64,
        /// Seed of --garble, to reproduce a run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Leave the reader on the first command with this INS (hex, e.g. B0 for READ BINARY).
        #[arg(long, value_name = "INS", value_parser = |s: &str| u8::from_str_radix(s, 16))]
        pull_on: Option<u8>,
        /// PKCS#15 layout: `real` (paths relative to the application DF, as on real CPS3 cards) or
        /// `absolute` (every path from 3F00); default: the persona's.
        #[arg(long)]
        layout: Option<cpx_sim::Layout>,
        /// Card number in EF.SN.ICC (9 digits); with --holder, a card whose certificate changed under the
        /// same serial.
        #[arg(long, value_name = "DIGITS")]
        serial: Option<String>,
        /// Test holder whose keys and certificates the card carries: dupont, dupont-renewed, martin, leroy, roux.
        #[arg(long, value_name = "NAME", value_parser = |s: &str| cpx_sim::pki::holder(s).map(|_| s.to_owned()).ok_or_else(|| format!("unknown holder {s:?}")))]
        holder: Option<String>,
        /// Latency model: `off` (default), `real` (docs/benchmarks.md) or `apdu=MS,baud=N,rsa=MS`.
        #[arg(long, default_value = "off")]
        latency: cpx_sim::Latency,
        /// How long to wait for the reader to listen, in seconds.
        #[arg(long, default_value_t = 5.0)]
        wait: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Personas { json } => {
            for p in cpx_sim::PERSONAS {
                if json {
                    let layout = format!("{:?}", p.layout).to_lowercase();
                    println!(
                        "{}",
                        serde_json::json!({"name": p.name, "description": p.description, "layout": layout})
                    );
                } else {
                    println!("{:<14} {}", p.name, p.description);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Insert {
            persona,
            port,
            host,
            remove_after,
            apdu_log,
            pin,
            tries,
            unblock,
            unblock_tries,
            actua,
            garble,
            garble_rate,
            seed,
            pull_on,
            layout,
            serial,
            holder,
            latency,
            wait,
        } => {
            let Some(p) = cpx_sim::find(&persona) else {
                eprintln!("cpx-sim: unknown persona {persona:?}; `cpx-sim personas` lists them");
                return ExitCode::from(2);
            };
            let actua = match actua.map(|h| hex::decode(h.replace(' ', ""))).transpose() {
                Ok(a) => a,
                Err(_) => {
                    eprintln!("cpx-sim: --actua takes hex bytes");
                    return ExitCode::from(2);
                }
            };
            let log: Option<cpx_sim::vpcd::ApduLog> = match apdu_log.map(std::fs::File::create).transpose() {
                Ok(f) => f.map(|f| Box::new(f) as _),
                Err(e) => {
                    eprintln!("cpx-sim: cannot write the APDU log: {e}");
                    return ExitCode::from(1);
                }
            };
            let options = cpx_sim::Options {
                pin,
                tries,
                unblock,
                unblock_tries,
                actua,
                garble: garble.map(|g| (g, garble_rate, seed)),
                pull_on,
                layout,
                serial,
                holder: holder.as_deref().and_then(cpx_sim::pki::holder),
                latency,
            };
            if let Err(e) = options.check() {
                eprintln!("cpx-sim: {e}");
                return ExitCode::from(2);
            }
            let card = p.card(&options);
            let inserted = match cpx_sim::insert(card, &host, port, Duration::from_secs_f64(wait), log) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("cpx-sim: {e}");
                    return ExitCode::from(1);
                }
            };
            eprintln!("cpx-sim: {persona} inserted in the reader on {host}:{port}");
            match remove_after {
                Some(secs) => {
                    std::thread::sleep(Duration::from_secs_f64(secs));
                    inserted.remove();
                    eprintln!("cpx-sim: {persona} removed");
                }
                None => {
                    let _ = inserted.wait();
                    eprintln!("cpx-sim: {persona} left the reader");
                }
            }
            ExitCode::SUCCESS
        }
    }
}
