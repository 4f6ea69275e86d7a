//! The exit statuses of `cpx-agent`. The help text's section about them is written from this enum, and a
//! test keeps the README's copy equal to it, so that the three say the same.

use std::process::ExitCode;

use crate::helpdesk::diagnose::{Check, Verdict};

/// What a `cpx-agent` command ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `status`, `card`: a CPx card is ready.
    Ready,
    /// The agent itself failed (configuration, files, a bug).
    Internal,
    /// clap's own status for a bad command line.
    Usage,
    /// The PC/SC service is stopped.
    ServiceStopped,
    /// No reader.
    NoReader,
    /// No card.
    NoCard,
    /// A card that is not a usable CPx card.
    NotUsable,
    /// A CPx card that cannot log in (blocked code porteur, expired certificate, contactless).
    CannotLogIn,
    /// `diagnose`: every check is fine.
    AllFine,
    /// `diagnose`: no check failed, some warn.
    Warnings,
    /// `diagnose`: a check failed.
    CheckFailed,
}

impl ExitStatus {
    /// Exit status of `diagnose` ([`ExitStatus::DIAGNOSE`]): its worst check.
    pub fn of_checks<'a>(checks: impl IntoIterator<Item = &'a Check>) -> ExitStatus {
        match checks.into_iter().map(|c| c.verdict).max() {
            Some(Verdict::Fail) => ExitStatus::CheckFailed,
            Some(Verdict::Warn) => ExitStatus::Warnings,
            _ => ExitStatus::AllFine,
        }
    }

    /// The exit status of `diagnose --health`: 0 installed and healthy, 8 healthy with warnings (a
    /// malformed policy value in its safe default…), 9 a check of the installation failed
    /// ([`crate::helpdesk::installation_checks`]). A card or reader problem never counts.
    pub fn of_health(checks: &[Check]) -> ExitStatus {
        Self::of_checks(crate::helpdesk::installation_checks(checks))
    }
}

impl ExitStatus {
    /// The statuses of `status` and `card` (and of every command for 1 and 2), in order.
    pub const CARD: [ExitStatus; 8] = [
        Self::Ready,
        Self::Internal,
        Self::Usage,
        Self::ServiceStopped,
        Self::NoReader,
        Self::NoCard,
        Self::NotUsable,
        Self::CannotLogIn,
    ];
    /// The statuses of `diagnose`.
    pub const DIAGNOSE: [ExitStatus; 3] = [Self::AllFine, Self::Warnings, Self::CheckFailed];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ready | Self::AllFine => 0,
            Self::Internal => 1,
            Self::Usage => 2,
            Self::ServiceStopped => 3,
            Self::NoReader => 4,
            Self::NoCard => 5,
            Self::NotUsable => 6,
            Self::CannotLogIn => 7,
            Self::Warnings => 8,
            Self::CheckFailed => 9,
        }
    }

    /// What it means, in the words of the help and the README.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Ready => "a CPx card is ready",
            Self::Internal => "internal error",
            Self::Usage => "usage error",
            Self::ServiceStopped => "PC/SC service stopped or failing",
            Self::NoReader => "no reader",
            Self::NoCard => "no card",
            Self::NotUsable => {
                "a card is there but no usable CPx card (mute, not a CPx, held by another program…)"
            }
            Self::CannotLogIn => {
                "the CPx card is recognised but cannot log in (code porteur blocked, certificate expired, \
                 contactless)"
            }
            Self::AllFine => "all fine",
            Self::Warnings => "warnings only",
            Self::CheckFailed => "a check failed",
        }
    }

    /// « Exit status: 0 … · 1 … » for a list of statuses.
    pub fn sentence(list: &[ExitStatus]) -> String {
        let items: Vec<String> = list.iter().map(|s| format!("{} {}", s.code(), s.meaning())).collect();
        format!("Exit status: {}.", items.join(" · "))
    }

    /// The help's section: every status, those of `diagnose` apart.
    pub fn help() -> String {
        format!(
            "{} For `diagnose`: {} NO_COLOR disables colours.",
            Self::sentence(&Self::CARD),
            Self::sentence(&Self::DIAGNOSE).replacen("Exit status: ", "", 1)
        )
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README says what the code does (its copy is checked, not generated: run `cpx-agent --help`).
    #[test]
    fn the_readme_lists_the_exit_statuses_of_the_code() {
        let readme = include_str!("../../../README.md").split_whitespace().collect::<Vec<_>>().join(" ");
        for list in [&ExitStatus::CARD[..], &ExitStatus::DIAGNOSE[..]] {
            let sentence = ExitStatus::sentence(list);
            assert!(readme.contains(&sentence), "README.md must say: {sentence}");
        }
    }

    #[test]
    fn codes_are_distinct_within_a_command() {
        for list in [&ExitStatus::CARD[..], &ExitStatus::DIAGNOSE[..]] {
            let codes: std::collections::HashSet<u8> = list.iter().map(|s| s.code()).collect();
            assert_eq!(codes.len(), list.len());
        }
        assert!(ExitStatus::help().contains("4 no reader · 5 no card"), "{}", ExitStatus::help());
        assert!(
            ExitStatus::help().contains("For `diagnose`: 0 all fine · 8 warnings only · 9 a check failed.")
        );
    }
}
