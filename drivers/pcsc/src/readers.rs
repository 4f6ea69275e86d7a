//! A one-shot view of the readers and what is in them (no waiting).

use std::time::Duration;

use serde::Serialize;

use crate::error::PcscError;

/// What a reader slot holds, as the PC/SC service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotState {
    /// No card.
    Empty,
    /// A card that answered to reset (it has an ATR).
    Present,
    /// A card is there but gave no ATR: upside down, dirty contacts, dead chip.
    Mute,
    /// A card held exclusively by another program.
    Exclusive,
    /// The reader is there but unusable (driver trouble, unplugged while listed).
    Unavailable,
}

impl SlotState {
    pub(crate) fn from_pcsc(state: pcsc::State) -> Self {
        use pcsc::State as S;
        if state.intersects(S::UNAVAILABLE | S::UNKNOWN | S::IGNORE) {
            Self::Unavailable
        } else if state.contains(S::MUTE) {
            Self::Mute
        } else if state.contains(S::PRESENT) && state.contains(S::EXCLUSIVE) {
            Self::Exclusive
        } else if state.contains(S::PRESENT) {
            Self::Present
        } else {
            Self::Empty
        }
    }

    /// True when a card is physically there, usable or not.
    pub fn has_card(self) -> bool {
        matches!(self, Self::Present | Self::Mute | Self::Exclusive)
    }
}

/// One reader and its slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderInfo {
    /// The reader's name as the PC/SC service gives it.
    pub name: String,
    /// What its slot holds.
    pub state: SlotState,
    /// The ATR of the card, empty when there is none.
    #[serde(serialize_with = "hex_bytes")]
    pub atr: Vec<u8>,
}

pub(crate) fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(bytes))
}

/// A session with the PC/SC service, to list readers (a card connection has a context of its own).
pub struct Context(pcsc::Context);

impl Context {
    /// Connects to the PC/SC service; a stopped service is [`PcscError::ServiceStopped`].
    pub fn establish() -> Result<Self, PcscError> {
        pcsc::Context::establish(pcsc::Scope::User).map(Self).map_err(|e| PcscError::from_pcsc(e, None))
    }

    /// Lists the readers with their current state. No readers is an empty list, not an error; a stopped
    /// PC/SC service is [`PcscError::ServiceStopped`].
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let ctx = &self.0;
        let names = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(PcscError::from_pcsc(e, None)),
        };
        let mut states: Vec<pcsc::ReaderState> =
            names.iter().map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE)).collect();
        match ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(PcscError::from_pcsc(e, None)),
        }
        Ok(states
            .iter()
            .map(|s| ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                state: SlotState::from_pcsc(s.event_state()),
                atr: if s.event_state().contains(pcsc::State::PRESENT) {
                    s.atr().to_vec()
                } else {
                    Vec::new()
                },
            })
            .collect())
    }
}
