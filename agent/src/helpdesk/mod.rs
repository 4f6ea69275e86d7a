//! For the helpdesk: `cpx-agent diagnose` (ordered checks naming the fault and its fix), its `--health`
//! verdict (installed and healthy without a card, for compliance scripts), `cpx-agent report` (a bundle
//! to attach to a ticket) the log files they read, and the helpdesk page
//! (docs/helpdesk.md, docs/helpdesk.en.md).
#![forbid(unsafe_code)]

pub(crate) mod diagnose;
pub(crate) mod health;
pub(crate) mod logging;
pub(crate) mod page;
pub(crate) mod report;

pub use diagnose::{first_fault, run as diagnose, Options as DiagnoseOptions, Verdict};
pub use health::{first_fault as health_first_fault, installation_checks};
pub use logging::init as init_logging;
pub use page::helpdesk_markdown;
pub use report::{gather as report, gather_with as report_with, Include};
