//! Agent CPx: the core, with no GUI. Its rooms, each a folder with a small public face, one way
//! (a room imports only the rooms below it; `scripts/module-cycles.sh` checks it):
//!
//! - [`service`]: starting the agent (shared by `cpx-agent serve` and the tray app).
//! - [`cli`]: rendering what the agent says (text, JSON, colours) and the CLI's exit statuses.
//! - [`helpdesk`]: `diagnose`, `report` and the log files.
//! - [`loopback`]: the loopback HTTPS server pages call, its typed errors, caps and deadlines, the OS
//!   user behind a connection, and the broker of a shared computer.
//! - [`card`]: the one way to the card (PC/SC, opening cards, scans), the card state, mTLS login and
//!   signed token, asking for the code porteur and about sites outside policy.
//! - [`platform`]: per-OS folders, configuration and managed policy, secrets, the loopback certificate
//!   and its trust, browser policies, the autostart entry.
//! - [`messages`]: every user-facing text, French and English, with stable codes.

pub mod card;
pub mod cli;
pub mod helpdesk;
pub mod loopback;
pub mod messages;
pub mod platform;
pub mod service;
