//! For the helpdesk: `cpx-agent diagnose` (ordered checks naming the fault and its fix), its `--health`
//! verdict (installed and healthy without a card, for compliance scripts), `cpx-agent report` (a bundle
//! to attach to a ticket) and the log files they read.

pub(crate) mod diagnose;
pub(crate) mod health;
pub(crate) mod logging;
pub(crate) mod report;

pub use diagnose::{exit_status, first_fault, run as diagnose, Options as DiagnoseOptions, Verdict};
pub use health::{exit_status as health_exit_status, first_fault as health_first_fault};
pub use logging::init as init_logging;
pub use report::{gather as report, gather_with as report_with, Include};
