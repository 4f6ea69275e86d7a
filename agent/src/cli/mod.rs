//! The command line's words and numbers: rendering what the agent says (terminal conventions, reader
//! reports, problems and checks as text or JSON, for the CLI, `serve` and the tray app) and the exit
//! statuses of `cpx-agent`. The binary itself is `src/main.rs`.
#![forbid(unsafe_code)]

pub(crate) mod exit;
pub(crate) mod output;

pub use exit::ExitStatus;
pub use output::{
    autostart_text, browser_policies_text, catalogue_entry_text, check_json, check_text, colour_enabled,
    event_json, event_lines, machine_trust_text, problem_json, problem_text, reader_view, report_json,
    report_text, tries_text,
};
