//! A PC/SC transaction as a guard: while it lives, no other program's APDUs reach the card; when it ends
//! (explicitly with [`Transaction::end`], or when dropped) the card is left as it is or reset, as chosen.
//!
//! A session that presents the code porteur asks for [`Transaction::reset_on_end`] before the VERIFY:
//! the reset then happens inside the transaction (`SCardEndTransaction` with `SCARD_RESET_CARD`), so
//! that no other program waiting for the card can find it with the code porteur verified.

use std::fmt;

use crate::error::PcscError;

/// What happens to the card when a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The card keeps its state (selections, verified code porteur): for sessions that verified nothing.
    Leave,
    /// Warm reset before the card is given to anyone else: security state, selections and logical
    /// channels are lost.
    Reset,
}

type EndFn = Box<dyn FnOnce(Disposition) -> Result<(), PcscError> + Send>;

/// A transaction in progress; see the module documentation.
#[must_use = "the transaction ends as soon as the guard is dropped"]
pub struct Transaction {
    end: Option<EndFn>,
    disposition: Disposition,
}

impl Transaction {
    /// For [`crate::Transport`] implementations: `end` is called exactly once, with the disposition
    /// chosen, when the transaction ends.
    pub fn new(end: impl FnOnce(Disposition) -> Result<(), PcscError> + Send + 'static) -> Self {
        Self { end: Some(Box::new(end)), disposition: Disposition::Leave }
    }

    /// The card will be reset when this transaction ends. Call it before sending the code porteur: if the
    /// session stops half-way (an error, a panic), the reset still happens.
    pub fn reset_on_end(&mut self) {
        self.disposition = Disposition::Reset;
    }

    /// How the card will be left.
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// Ends the transaction now and says whether the card could be left as chosen. A failed reset
    /// leaves the connection unusable: its next use reports the error, and it must be connected again.
    pub fn end(mut self) -> Result<(), PcscError> {
        match self.end.take() {
            Some(end) => end(self.disposition),
            None => Ok(()),
        }
    }
}

impl Drop for Transaction {
    /// Ends the transaction with the disposition chosen. A failure cannot be returned from here; the
    /// transport records it (a connection whose reset failed refuses further use).
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            let _ = end(self.disposition);
        }
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("disposition", &self.disposition)
            .field("ended", &self.end.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<Disposition>>>;

    /// A transaction whose end is recorded.
    fn recorded() -> (Seen, Transaction) {
        let seen = Seen::default();
        let s = seen.clone();
        (
            seen,
            Transaction::new(move |d| {
                s.lock().unwrap().push(d);
                Ok(())
            }),
        )
    }

    #[test]
    fn ends_once_with_the_disposition_chosen() {
        let (seen, mut tx) = recorded();
        tx.reset_on_end();
        tx.end().unwrap();
        assert_eq!(*seen.lock().unwrap(), [Disposition::Reset]);

        let (seen, tx) = recorded();
        drop(tx);
        assert_eq!(*seen.lock().unwrap(), [Disposition::Leave]);
    }

    #[test]
    fn a_panic_inside_still_resets() {
        let (seen, mut tx) = recorded();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            tx.reset_on_end();
            panic!("session stopped half-way");
        }));
        assert!(r.is_err());
        assert_eq!(*seen.lock().unwrap(), [Disposition::Reset]);
    }

    #[test]
    fn end_reports_a_failed_reset() {
        let mut tx = Transaction::new(|_| Err(PcscError::Unresponsive));
        tx.reset_on_end();
        assert_eq!(tx.end(), Err(PcscError::Unresponsive));
    }
}
