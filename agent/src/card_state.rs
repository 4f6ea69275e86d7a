//! The card state at a glance: one verdict over every reader, for the tray icon and its tooltip. A usable
//! CPx card anywhere wins; otherwise the most telling problem (blocked code porteur, expired certificate,
//! a card not recognised) before the plain absences (no card, no reader, no PC/SC service).

use serde::Serialize;

use crate::messages::{Code, SlotState, Text};
use crate::scan::ReaderReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    ServiceStopped,
    NoReader,
    NoCard,
    Ready,
    NotRecognised,
    InUse,
    PinBlocked,
    CertificateExpired,
    /// A CPx card named by its ATR or EF.SN.ICC that cannot be used; the code says which card and why
    /// (« Carte CPS3 reconnue, mais son contenu n'a pas pu être lu »).
    Unusable(Code),
}

impl Serialize for Overall {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Overall {
    pub const ALL: [Overall; 9] = [
        Overall::ServiceStopped,
        Overall::NoReader,
        Overall::NoCard,
        Overall::Ready,
        Overall::NotRecognised,
        Overall::InUse,
        Overall::PinBlocked,
        Overall::CertificateExpired,
        Overall::Unusable(Code::CardRecognisedUnreadable(None)),
    ];

    /// The state's stable name (`not_recognised`, `unusable`…).
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceStopped => "service_stopped",
            Self::NoReader => "no_reader",
            Self::NoCard => "no_card",
            Self::Ready => "ready",
            Self::NotRecognised => "not_recognised",
            Self::InUse => "in_use",
            Self::PinBlocked => "pin_blocked",
            Self::CertificateExpired => "certificate_expired",
            Self::Unusable(_) => "unusable",
        }
    }

    /// The verdict of a scan (or of the PC/SC error that stopped it).
    pub fn of(scan: Result<&[ReaderReport], Code>) -> Self {
        let reports = match scan {
            Ok(r) => r,
            Err(Code::PcscServiceStopped) => return Self::ServiceStopped,
            Err(_) => return Self::NoReader,
        };
        if reports.is_empty() {
            return Self::NoReader;
        }
        let slot = |r: &ReaderReport| match r.state {
            SlotState::CardReady => match r.codes.first() {
                None | Some(Code::PinLastTry) => Self::Ready,
                Some(Code::PinBlocked) => Self::PinBlocked,
                Some(Code::CertificateExpired) | Some(Code::CertificateNotYetValid) => {
                    Self::CertificateExpired
                }
                Some(_) => Self::NotRecognised,
            },
            SlotState::CardNotRecognised => Self::NotRecognised,
            SlotState::CardInUse => Self::InUse,
            SlotState::NoCard => Self::NoCard,
            SlotState::CardRecognisedUnusable => Self::Unusable(
                r.codes.first().copied().unwrap_or(Code::CardRecognisedUnreadable(r.generation)),
            ),
        };
        // Lower rank wins.
        let rank = |o: Self| match o {
            Self::Ready => 0,
            Self::PinBlocked => 1,
            Self::CertificateExpired => 2,
            Self::Unusable(_) => 3,
            Self::NotRecognised => 4,
            Self::InUse => 5,
            Self::NoCard => 6,
            _ => 9,
        };
        reports.iter().map(slot).min_by_key(|o| rank(*o)).unwrap_or(Self::NoCard)
    }

    /// The tooltip: the catalogue's words for this state.
    pub fn text(self) -> Text {
        match self {
            Self::ServiceStopped => Code::PcscServiceStopped.entry().message,
            Self::NoReader => Code::NoReader.entry().message,
            Self::NoCard => SlotState::NoCard.text(),
            Self::Ready => SlotState::CardReady.text(),
            Self::NotRecognised => SlotState::CardNotRecognised.text(),
            Self::InUse => SlotState::CardInUse.text(),
            Self::PinBlocked => Code::PinBlocked.entry().message,
            Self::CertificateExpired => Code::CertificateExpired.entry().message,
            Self::Unusable(code) => code.entry().message,
        }
    }

    /// What to do, when there is something to do.
    pub fn fix(self) -> Option<Text> {
        let code = match self {
            Self::Ready => return None,
            Self::ServiceStopped => Code::PcscServiceStopped,
            Self::NoReader => Code::NoReader,
            Self::NoCard => Code::NoCard,
            Self::NotRecognised => Code::CardMute,
            Self::InUse => Code::CardInUse,
            Self::PinBlocked => Code::PinBlocked,
            Self::CertificateExpired => Code::CertificateExpired,
            Self::Unusable(code) => code,
        };
        Some(code.entry().fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(state: SlotState, codes: &[Code]) -> ReaderReport {
        ReaderReport {
            reader: "r".into(),
            state,
            codes: codes.to_vec(),
            atr: String::new(),
            card: None,
            generation: None,
            detail: None,
        }
    }

    #[test]
    fn a_usable_card_anywhere_wins_then_the_most_telling_problem() {
        let blocked = reader(SlotState::CardReady, &[Code::PinBlocked]);
        let ready = reader(SlotState::CardReady, &[]);
        let empty = reader(SlotState::NoCard, &[]);
        assert_eq!(Overall::of(Ok(&[empty.clone(), blocked.clone(), ready])), Overall::Ready);
        assert_eq!(Overall::of(Ok(&[empty.clone(), blocked])), Overall::PinBlocked);
        assert_eq!(Overall::of(Ok(&[reader(SlotState::CardReady, &[Code::PinLastTry])])), Overall::Ready);
        assert_eq!(
            Overall::of(Ok(&[reader(SlotState::CardReady, &[Code::CertificateExpired])])),
            Overall::CertificateExpired
        );
        assert_eq!(
            Overall::of(Ok(&[empty.clone(), reader(SlotState::CardNotRecognised, &[Code::CardMute])])),
            Overall::NotRecognised
        );
        assert_eq!(Overall::of(Ok(&[empty])), Overall::NoCard);
        assert_eq!(Overall::of(Ok(&[])), Overall::NoReader);
        assert_eq!(Overall::of(Err(Code::PcscServiceStopped)), Overall::ServiceStopped);
        // A CPS3 whose content cannot be read: named, with the helpdesk route, never « mal insérée ».
        let unreadable = Code::CardRecognisedUnreadable(Some(cpx_card::Generation::Cps3));
        let state = Overall::of(Ok(&[
            reader(SlotState::CardNotRecognised, &[Code::CardMute]),
            reader(SlotState::CardRecognisedUnusable, &[unreadable]),
        ]));
        assert_eq!(state, Overall::Unusable(unreadable));
        assert_eq!(state.text().fr, "Carte CPS3 reconnue, mais son contenu n'a pas pu être lu");
        assert!(state.fix().unwrap().fr.contains("0 825 85 2000"));
        assert_eq!(serde_json::to_value(state).unwrap(), "unusable");
    }

    #[test]
    fn every_state_has_distinct_words() {
        let texts: std::collections::HashSet<_> = Overall::ALL.iter().map(|o| o.text().fr).collect();
        assert_eq!(texts.len(), Overall::ALL.len());
        assert_eq!(Overall::Ready.text().fr, "Carte CPS insérée et reconnue");
        assert_eq!(Overall::NotRecognised.text().fr, "Carte CPS mal insérée / non reconnue");
    }
}
