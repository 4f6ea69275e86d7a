//! « Installed and healthy », without a card: the verdict of `cpx-agent diagnose --health`, for compliance
//! scripts and SCCM/Intune detection. It is read from the same checks as `diagnose`, leaving out those
//! that depend on what the professional has at hand (a reader, a card, its code porteur and certificate)
//! or on the network (the portals, the clock against them): an empty reader is not a broken install. The
//! PC/SC service is left out too: Windows stops it while no reader is plugged in. What counts is what the
//! installation set up: the loopback port, the local CA and its trust, the key store, the configuration
//! and the managed policy.

use super::diagnose::{Check, CheckKind, Verdict};

/// Whether a check says something about the installation (`true`), or about the card at hand or the
/// network (`false`).
pub fn about_installation(kind: CheckKind) -> bool {
    use CheckKind::*;
    match kind {
        LoopbackPort | LoopbackTrust | KeyStore | Configuration | Policy | PolicyProblem => true,
        PcscService | Readers | Card | CardType | CardContent | Pin | Certificate | Site | PortalWay
        | PortalEndpoint | Clock | PinPad => false,
    }
}

/// The checks that make the health verdict.
pub fn installation_checks(checks: &[Check]) -> Vec<&Check> {
    checks.iter().filter(|c| about_installation(c.id.kind)).collect()
}

/// The first check of the installation that is not fine: what to fix.
pub fn first_fault(checks: &[Check]) -> Option<&Check> {
    checks.iter().find(|c| about_installation(c.id.kind) && c.verdict != Verdict::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit::ExitStatus;
    use crate::messages::Code;
    use crate::said::Said;

    fn check(kind: CheckKind, verdict: Verdict) -> Check {
        Check {
            id: kind.into(),
            verdict,
            code: (verdict != Verdict::Ok).then_some(Code::NoCard),
            detail: Said::new(crate::messages::detail::CONFIG_DEFAULTS),
        }
    }

    fn exit_status(checks: &[Check]) -> ExitStatus {
        ExitStatus::of_health(checks)
    }

    #[test]
    fn every_check_kind_is_classified_once() {
        // The match in about_installation has no wildcard: a new kind must be classified to compile.
        let installation: Vec<_> = CheckKind::ALL.iter().filter(|k| about_installation(**k)).collect();
        assert!(installation.contains(&&CheckKind::LoopbackTrust));
        assert!(!installation.contains(&&CheckKind::Card));
    }

    #[test]
    fn no_pcsc_service_no_reader_and_no_card_are_healthy() {
        let checks = [
            check(CheckKind::PcscService, Verdict::Fail),
            check(CheckKind::Readers, Verdict::Fail),
            check(CheckKind::Card, Verdict::Fail),
            check(CheckKind::LoopbackPort, Verdict::Ok),
            check(CheckKind::LoopbackTrust, Verdict::Ok),
            check(CheckKind::KeyStore, Verdict::Ok),
            check(CheckKind::Configuration, Verdict::Ok),
            check(CheckKind::PortalEndpoint, Verdict::Fail),
        ];
        assert_eq!(ExitStatus::of_checks(&checks), ExitStatus::CheckFailed, "diagnose itself fails");
        assert_eq!(exit_status(&checks), ExitStatus::AllFine);
        assert!(first_fault(&checks).is_none());
    }

    #[test]
    fn an_untrusted_local_ca_or_a_malformed_policy_is_not() {
        let untrusted = [check(CheckKind::Card, Verdict::Ok), check(CheckKind::LoopbackTrust, Verdict::Fail)];
        assert_eq!(exit_status(&untrusted), ExitStatus::CheckFailed);
        assert_eq!(first_fault(&untrusted).map(|c| c.id.kind), Some(CheckKind::LoopbackTrust));
        let malformed = [check(CheckKind::PolicyProblem, Verdict::Warn)];
        assert_eq!(exit_status(&malformed), ExitStatus::Warnings);
    }
}
