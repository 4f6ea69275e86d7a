//! Agent CPx: the core, with no GUI.
//!
//! - [`messages`]: every user-facing text, French and English, with stable codes.
//! - [`scan`]: readers and cards as the professional sees them (`status`, `card`, `watch`).
//! - [`config`]: port, allowed sites and their mTLS endpoints, under the machine's managed policy
//!   ([`policy_registry`]: the Windows registry's; [`policy_macos`]: a macOS configuration profile's);
//!   [`paths`]: the per-OS folders.
//! - [`server`]: the loopback HTTPS API pages call; [`api`] its typed errors.
//! - [`login`]: mTLS login and signed token; [`mtls`]: the TLS client with the card's key.
//! - [`card_service`]: the one way to the card (PC/SC, opening cards, scans), one card operation at a
//!   time; [`pin_prompt`]: asking for the code porteur.
//! - [`localca`], [`secrets`]: the loopback certificate and where its key lives; [`machine_trust`]: the
//!   machine's loopback identity and its machine-wide trust (`cpx-agent install-trust`); [`root_store`]:
//!   the Windows machine Root store it is trusted in.
//! - [`consent`]: sites outside policy, asked about once; [`card_state`]: the card state at a glance,
//!   and its watch for the tray; [`card`]: the driver's types the tray needs.
//! - [`service`]: starting the agent (shared by `cpx-agent serve` and the tray app).
//! - [`peer`]: the OS user behind a loopback connection; [`limits`]: caps and deadlines of the servers;
//!   [`broker`]: on a shared computer, tells each user's pages where that user's agent listens.
//! - [`diagnose`], [`report`], [`logging`], [`browser_trust`]: for the helpdesk.
//! - [`output`]: rendering reports, problems and checks (text, JSON, colours) for the CLI, `serve` and the
//!   tray app; [`exit`]: the CLI's exit statuses; [`autostart`]: the tray app's per-user autostart entry.

/// The card driver's types the agent's users need (the tray's PIN dialog and status window), so that
/// they depend on the agent alone.
pub mod card {
    pub use cpx_card::identity::date;
    pub use cpx_card::{Generation, Identity, Pin, PinStatus, Validity};
}

pub mod api;
pub mod autostart;
pub mod broker;
pub mod browser_policies;
pub mod browser_trust;
pub mod card_service;
pub mod card_state;
pub mod config;
pub mod consent;
pub mod diagnose;
pub mod exit;
pub mod firefox_policies;
pub mod limits;
pub mod localca;
pub mod logging;
pub mod login;
pub mod machine_trust;
pub mod messages;
pub mod mtls;
pub mod output;
pub mod paths;
pub mod peer;
pub mod pin_prompt;
pub mod policy_keys;
pub mod policy_macos;
pub mod policy_registry;
pub mod proxy;
pub mod report;
pub mod root_store;
pub mod scan;
pub mod secrets;
pub mod server;
pub mod service;
