//! What the app's parts share: the language, the running agent, the card state shown in the tray, the
//! dialogs, and why the loopback server is not running if it is not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpx_agent::card::Overall;
use cpx_agent::card::{ReaderReport, ScanOptions};
use cpx_agent::loopback::Agent;
use cpx_agent::messages::{Code, Lang};

use crate::dialogs::Dialogs;

pub struct Shared {
    pub lang: Lang,
    pub agent: Arc<Agent>,
    pub dialogs: Arc<Dialogs>,
    /// Where the configuration came from (for the status and diagnostics windows).
    pub config_source: String,
    /// The agent's data folder (local CA, approved sites).
    pub data_dir: std::path::PathBuf,
    pub card_timeout: Duration,
    /// The state the tray shows.
    pub state: Mutex<Overall>,
    /// Why the loopback server is not running (port taken…), with the technical detail.
    pub server_error: Mutex<Option<(Code, String)>>,
}

impl Shared {
    /// What the tray and its status window scan: card type, holder, tries left.
    pub fn scan_options() -> ScanOptions {
        ScanOptions { with_pin: true, reader: None }
    }

    /// Scans the readers now, through the agent's card service (during a login: the state before it).
    pub fn scan(&self) -> Result<Vec<ReaderReport>, Code> {
        self.agent.cards.scan_blocking(&Self::scan_options())
    }

    pub fn overall(&self) -> Overall {
        Overall::of(self.scan().as_deref().map_err(|c| *c))
    }
}
