//! The card state at a glance: one verdict over every reader, for the tray icon and its tooltip. A usable
//! CPx card anywhere wins; otherwise the most telling problem (blocked code porteur, expired certificate,
//! a card not recognised) before the plain absences (no card, no reader, no PC/SC service). [`watch`]
//! follows it: the PC/SC monitor's events, each answered by a scan through the card service.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use cpx_pcsc::{Monitor, MonitorEvent};
use serde::Serialize;

use crate::card::card_service::{CardService, Source};
use crate::card::scan::{ReaderReport, ScanOptions};
use crate::messages::{Code, SlotState, Text};

/// The card state at a glance, over every reader: what the tray icon and its tooltip show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    /// The PC/SC service is stopped.
    ServiceStopped,
    /// No reader is plugged in.
    NoReader,
    /// No card in any reader.
    NoCard,
    /// A CPx card is ready to log in.
    Ready,
    /// A card that is not a CPx card.
    NotRecognised,
    /// The card is held by another program.
    InUse,
    /// The code porteur is blocked.
    PinBlocked,
    /// The card's certificate has expired.
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
    /// Every state (the icons and their tests).
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
            // A login kept the card longer than a scan waits for it.
            Err(Code::Busy) => return Self::InUse,
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

    /// The words for this state over these readers: for a ready card, its own type (« Carte CPE insérée et
    /// reconnue »), otherwise [`Overall::text`].
    pub fn text_for(self, reports: &[ReaderReport]) -> Text {
        let ready = |r: &&ReaderReport| {
            r.state == SlotState::CardReady && matches!(r.codes.first(), None | Some(Code::PinLastTry))
        };
        match (self, reports.iter().find(ready)) {
            (Self::Ready, Some(r)) => r.message(),
            _ => self.text(),
        }
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

/// One look at the readers, after a PC/SC event.
#[derive(Debug, Clone)]
pub struct Update {
    /// The verdict over every reader.
    pub overall: Overall,
    /// Every reader, or why none could be looked at.
    pub readers: Result<Vec<ReaderReport>, Code>,
    /// What the PC/SC service reported.
    pub event: MonitorEvent,
    /// When it reported it.
    pub at: Instant,
}

/// A running watch; dropping it (or [`Watch::stop`]) ends it.
pub struct Watch {
    monitor: Monitor,
}

impl Watch {
    /// Stops the monitor; the thread that scans ends after its current scan.
    pub fn stop(self) {
        self.monitor.stop();
    }
}

/// Follows the card state: starts the PC/SC monitor and, on each of its events, scans the readers
/// through `cards` and hands the result to `on_update` (on a thread of its own, in order). A scan that a
/// login answered from the state before it (see [`crate::card::card_service`]) is made again as soon as the
/// login ends, so the state after the login (tries left, a card removed meanwhile) is shown too.
pub fn watch(
    cards: Arc<CardService>,
    options: ScanOptions,
    mut on_update: impl FnMut(Update) + Send + 'static,
) -> Watch {
    let (tx, rx) = mpsc::channel::<(MonitorEvent, Instant)>();
    let monitor = Monitor::start(move |event, at| {
        let _ = tx.send((event, at));
    });
    let scanning = std::thread::Builder::new().name("card state".into()).spawn(move || {
        let mut look = |event: &MonitorEvent, at: Instant| {
            // The scan before the event no longer tells the state: a page asking meanwhile (while this
            // look reads a card just inserted) waits for it rather than hear « no card ».
            cards.forget();
            let (readers, source) = cards.scan_from(&options);
            let overall = Overall::of(readers.as_deref().map_err(|c| *c));
            on_update(Update { overall, readers, event: event.clone(), at });
            source
        };
        while let Ok((event, at)) = rx.recv() {
            if look(&event, at) == Source::Remembered {
                // An event that comes meanwhile is answered by the look after the login.
                let stopped = || matches!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
                if !cards.wait_free(stopped) {
                    return;
                }
                look(&event, at);
            }
        }
    });
    if let Err(e) = scanning {
        tracing::warn!(error = %e, "card state thread not started");
    }
    Watch { monitor }
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
        // A login kept the card longer than the scan waited (see card_service.rs).
        assert_eq!(Overall::of(Err(Code::Busy)), Overall::InUse);
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
