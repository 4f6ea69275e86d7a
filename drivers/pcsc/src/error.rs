//! Typed PC/SC errors: every failure of the PC/SC service becomes one of these, with the WinSCard code.

use serde::Serialize;

/// A PC/SC failure, with the reader it concerns when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PcscError {
    /// The PC/SC service is not running.
    #[error("PC/SC service not running (SCARD_E_NO_SERVICE)")]
    ServiceStopped,
    /// The service lists no reader.
    #[error("no smart-card reader available (SCARD_E_NO_READERS_AVAILABLE)")]
    NoReaders,
    /// The reader is listed but cannot be used.
    #[error("reader {reader:?} unavailable (SCARD_E_READER_UNAVAILABLE)")]
    ReaderUnavailable {
        /// The reader's name.
        reader: String,
    },
    /// No card in the reader.
    #[error("no card in reader {reader:?} (SCARD_E_NO_SMARTCARD)")]
    NoCard {
        /// The reader's name.
        reader: String,
    },
    /// The card was taken out during the session.
    #[error("card removed (SCARD_W_REMOVED_CARD)")]
    CardRemoved,
    /// Another program reset the card: its state (selections, verified code porteur) is gone.
    #[error("card reset by another application (SCARD_W_RESET_CARD)")]
    CardReset,
    /// A card is there but does not answer.
    #[error("card does not answer (SCARD_W_UNRESPONSIVE_CARD)")]
    Unresponsive,
    /// The card is not powered.
    #[error("card not powered (SCARD_W_UNPOWERED_CARD)")]
    Unpowered,
    /// The reader cannot handle this card.
    #[error("card not supported by the reader (SCARD_W_UNSUPPORTED_CARD / SCARD_E_CARD_UNSUPPORTED)")]
    UnsupportedCard,
    /// Another program holds the card exclusively.
    #[error("card held exclusively by another program (SCARD_E_SHARING_VIOLATION)")]
    SharingViolation,
    /// The card does not speak the protocol asked for.
    #[error("protocol mismatch (SCARD_E_PROTO_MISMATCH)")]
    ProtocolMismatch,
    /// The exchange with the card or the reader failed.
    #[error("communication with the card or reader failed (0x{code:08X})")]
    Communication {
        /// The PC/SC code.
        code: u32,
    },
    /// The card's answer does not parse as an APDU response.
    #[error("malformed answer from the card: {detail}")]
    BadResponse {
        /// What is wrong with it.
        detail: String,
    },
    /// A command that cannot be encoded (data too long for a short APDU), typically built from card data.
    #[error("command not sent: {detail}")]
    BadCommand {
        /// Why it cannot be encoded.
        detail: String,
    },
    /// A card call took longer than the connection's timeout.
    #[error("card call did not finish within {millis} ms")]
    Timeout {
        /// The timeout, in milliseconds.
        millis: u64,
    },
    /// The call was cancelled (the monitor stopping).
    #[error("PC/SC call cancelled")]
    Cancelled,
    /// Any other PC/SC error.
    #[error("PC/SC error 0x{code:08X}")]
    Other {
        /// The PC/SC code.
        code: u32,
    },
    /// The card could not be reset at the end of a session that presented the code porteur: it may still
    /// be verified. The connection refuses any further use; the card must be connected again.
    #[error("the card could not be reset after the code porteur was presented ({cause}); connect again")]
    ResetFailed {
        /// Why the reset failed.
        cause: Box<PcscError>,
    },
}

impl PcscError {
    /// Maps an error of the `pcsc` crate; `reader` names the reader the call was about, if any.
    pub fn from_pcsc(err: pcsc::Error, reader: Option<&str>) -> Self {
        use pcsc::Error as E;
        let reader = || reader.unwrap_or_default().to_owned();
        match err {
            E::NoService | E::ServiceStopped => Self::ServiceStopped,
            E::NoReadersAvailable => Self::NoReaders,
            E::ReaderUnavailable | E::UnknownReader => Self::ReaderUnavailable { reader: reader() },
            E::NoSmartcard => Self::NoCard { reader: reader() },
            E::RemovedCard => Self::CardRemoved,
            E::ResetCard => Self::CardReset,
            E::UnresponsiveCard => Self::Unresponsive,
            E::UnpoweredCard => Self::Unpowered,
            E::UnsupportedCard | E::CardUnsupported => Self::UnsupportedCard,
            E::SharingViolation => Self::SharingViolation,
            E::ProtoMismatch => Self::ProtocolMismatch,
            E::Cancelled => Self::Cancelled,
            E::Timeout => Self::Timeout { millis: 0 },
            E::CommError | E::NotTransacted | E::CommDataLost => Self::Communication { code: err as u32 },
            other => Self::Other { code: other as u32 },
        }
    }

    /// The WinSCard/pcsc-lite code of this error (docs/card-facts.md#pcsc-errors); 0 for errors that are
    /// ours.
    pub fn scard_code(&self) -> u32 {
        match self {
            Self::ServiceStopped => 0x8010_001D,
            Self::NoReaders => 0x8010_002E,
            Self::ReaderUnavailable { .. } => 0x8010_0017,
            Self::NoCard { .. } => 0x8010_000C,
            Self::CardRemoved => 0x8010_0069,
            Self::CardReset => 0x8010_0068,
            Self::Unresponsive => 0x8010_0066,
            Self::Unpowered => 0x8010_0067,
            Self::UnsupportedCard => 0x8010_001C,
            Self::SharingViolation => 0x8010_000B,
            Self::ProtocolMismatch => 0x8010_000F,
            Self::Cancelled => 0x8010_0002,
            Self::Timeout { .. } => 0,
            Self::Communication { code } => *code,
            Self::BadResponse { .. } | Self::BadCommand { .. } => 0,
            Self::Other { code } => *code,
            Self::ResetFailed { cause } => cause.scard_code(),
        }
    }

    /// True when the PC/SC service itself failed (`SCARD_F_INTERNAL_ERROR`, `SCARD_F_UNKNOWN_ERROR`,
    /// `SCARD_F_WAITED_TOO_LONG`, `SCARD_E_NO_MEMORY`, `SCARD_E_SYSTEM_CANCELLED`,
    /// `SCARD_E_SERVER_TOO_BUSY`): neither the card nor the reader is at fault, the smart-card service
    /// is, and restarting it (pcscd, « Carte à puce » on Windows) is the fix. Under Wine's winscard every
    /// call answers `SCARD_F_INTERNAL_ERROR`.
    pub fn service_fault(&self) -> bool {
        matches!(
            self,
            Self::Other {
                code: 0x8010_0001 | 0x8010_0014 | 0x8010_0007 | 0x8010_0006 | 0x8010_0012 | 0x8010_0031
            }
        )
    }

    /// True when the card is gone or changed under us: the session must be dropped and the card read again.
    pub fn card_lost(&self) -> bool {
        matches!(
            self,
            Self::CardRemoved
                | Self::CardReset
                | Self::NoCard { .. }
                | Self::Unresponsive
                | Self::Timeout { .. }
                | Self::Communication { .. }
                | Self::ResetFailed { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_codes_of_cpx_card_md() {
        let cases = [
            (pcsc::Error::NoService, 0x8010_001D),
            (pcsc::Error::NoReadersAvailable, 0x8010_002E),
            (pcsc::Error::UnresponsiveCard, 0x8010_0066),
            (pcsc::Error::CardUnsupported, 0x8010_001C),
            (pcsc::Error::SharingViolation, 0x8010_000B),
            (pcsc::Error::ProtoMismatch, 0x8010_000F),
            (pcsc::Error::RemovedCard, 0x8010_0069),
        ];
        for (err, code) in cases {
            assert_eq!(PcscError::from_pcsc(err, Some("r")).scard_code(), code, "{err:?}");
            assert_eq!(err as u32, code, "pcsc crate code of {err:?}");
        }
    }

    #[test]
    fn the_services_own_failures_are_told_from_the_cards_and_readers() {
        for err in [
            pcsc::Error::InternalError,
            pcsc::Error::UnknownError,
            pcsc::Error::WaitedTooLong,
            pcsc::Error::NoMemory,
            pcsc::Error::SystemCancelled,
            pcsc::Error::ServerTooBusy,
        ] {
            assert!(PcscError::from_pcsc(err, None).service_fault(), "{err:?}");
        }
        for err in [pcsc::Error::RemovedCard, pcsc::Error::NoSmartcard, pcsc::Error::CommError] {
            assert!(!PcscError::from_pcsc(err, Some("r")).service_fault(), "{err:?}");
        }
    }
}
