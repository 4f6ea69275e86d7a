//! A reader's event counter: how many times a card was inserted in it or taken out of it, as one PC/SC
//! context sees it (pcsc-lite and WinSCard keep it in the upper 16 bits of the reader's event state). The
//! same count, asked again through the same context, says that the card in the reader has not left it in
//! between. The context is kept open: a PC/SC service restarted since it was made (whose counters start
//! again from zero) fails every call on it, so a count from before the restart is never compared with one
//! from after.

use std::ffi::CString;
use std::time::Duration;

use crate::error::PcscError;

/// A PC/SC context kept open to read readers' event counters.
pub struct EventCounter(pcsc::Context);

impl EventCounter {
    /// Connects to the PC/SC service; a stopped service is [`PcscError::ServiceStopped`].
    pub fn establish() -> Result<Self, PcscError> {
        pcsc::Context::establish(pcsc::Scope::User).map(Self).map_err(|e| PcscError::from_pcsc(e, None))
    }

    /// The number of insertions and removals `reader` has seen with a card in it now; `None` when the
    /// platform does not count them (zero) or no card is there. An error when the reader is gone or the
    /// service stopped or restarted since this context was made: the context is then useless.
    pub fn events(&self, reader: &str) -> Result<Option<u32>, PcscError> {
        let name =
            CString::new(reader).map_err(|_| PcscError::ReaderUnavailable { reader: reader.to_owned() })?;
        let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
        match self.0.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(PcscError::from_pcsc(e, Some(reader))),
        }
        let present = states[0].event_state().contains(pcsc::State::PRESENT);
        let count = states[0].event_count();
        Ok((present && count != 0).then_some(count))
    }
}
