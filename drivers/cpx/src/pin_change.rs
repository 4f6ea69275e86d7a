//! Changing the code porteur and unblocking it with the code de déblocage: the secret the card came with
//! ([`UnblockingCode`]), what can go wrong ([`PinChangeError`]), the status words of the commands that
//! carry these secrets, and the session around them ([`secret_session`]): one PC/SC transaction that
//! ends with a reset of the card, as after a login, so that no other program finds it with a code
//! verified. Each generation's sequence of commands is its driver's (docs/card-facts.md, « Changing and
//! unblocking the code porteur »). Nothing here retries a command carrying a secret.

use cpx_pcsc::{PcscError, StatusWord, Transaction};
use zeroize::Zeroizing;

use crate::card::{verify_outcome, CpxCard};
use crate::error::CardError;

/// Digits of the code de déblocage: 8 (what CPS Gestion asked for; not seen in a public trace).
pub const UNBLOCKING_CODE_LEN: usize = 8;

/// The code de déblocage typed by the user: zeroized memory, never in a Debug output.
pub struct UnblockingCode(Zeroizing<Vec<u8>>);

impl UnblockingCode {
    /// Accepts exactly [`UNBLOCKING_CODE_LEN`] ASCII digits; anything else is refused before reaching the
    /// card (a try of the code de déblocage is precious).
    pub fn new(digits: &str) -> Result<Self, PinChangeError> {
        if digits.len() != UNBLOCKING_CODE_LEN || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PinChangeError::UnblockingCodeFormat);
        }
        Ok(Self(Zeroizing::new(digits.as_bytes().to_vec())))
    }

    /// The VERIFY data: the ASCII digits.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for UnblockingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnblockingCode(********)")
    }
}

/// Why the code porteur could not be changed or unblocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinChangeError {
    /// The card, the reader or the code porteur: a wrong current code ([`CardError::WrongPin`]), a
    /// blocked code porteur ([`CardError::PinBlocked`]), a new code the card refused
    /// ([`CardError::PinFormat`]), the card removed…
    #[error(transparent)]
    Card(#[from] CardError),
    /// The code de déblocage was wrong.
    #[error("wrong code de déblocage, {tries_left} tries left")]
    WrongUnblockingCode {
        /// Tries left before the code de déblocage is blocked too.
        tries_left: u8,
    },
    /// The code de déblocage is blocked: no VERIFY was (or will be) sent; the card must be replaced.
    #[error("code de déblocage blocked")]
    UnblockingCodeBlocked,
    /// The code de déblocage given is not 8 digits, or the card refused its length (no try was spent).
    #[error("the code de déblocage is {UNBLOCKING_CODE_LEN} digits")]
    UnblockingCodeFormat,
}

impl From<PcscError> for PinChangeError {
    fn from(e: PcscError) -> Self {
        Self::Card(e.into())
    }
}

impl PinChangeError {
    /// A code the card refused (wrong or blocked): the card was left with no code verified, so these
    /// win over a failed reset at the end of the session.
    pub(crate) fn code_refused(&self) -> bool {
        matches!(
            self,
            Self::WrongUnblockingCode { .. }
                | Self::UnblockingCodeBlocked
                | Self::Card(CardError::WrongPin { .. } | CardError::PinBlocked)
        )
    }
}

/// Maps the status word of a VERIFY of the code de déblocage.
pub(crate) fn unblock_verify_outcome(sw: StatusWord) -> Result<(), PinChangeError> {
    match sw.0 {
        0x9000 => Ok(()),
        0x6983 | 0x63C0 => Err(PinChangeError::UnblockingCodeBlocked),
        s if s & 0xFFF0 == 0x63C0 => {
            Err(PinChangeError::WrongUnblockingCode { tries_left: (s & 0x0F) as u8 })
        }
        0x6700 => Err(PinChangeError::UnblockingCodeFormat),
        _ => Err(CardError::status("VERIFY (code de déblocage)", sw).into()),
    }
}

/// Maps the status word of a command that sets the new code porteur (CHANGE REFERENCE DATA with the
/// current code, or the new one alone; RESET RETRY COUNTER): those with the current code in them are
/// VERIFY's outcomes; `69 82` means the card did not take the code presented before as enough.
pub(crate) fn new_code_outcome(command: &'static str, sw: StatusWord) -> Result<(), PinChangeError> {
    match sw.0 {
        0x6982 => Err(CardError::PinRequired.into()),
        0x9000 | 0x6983 | 0x6700 | 0x6985 => Ok(verify_outcome(sw)?),
        s if s & 0xFFF0 == 0x63C0 => Ok(verify_outcome(sw)?),
        _ => Err(CardError::status(command, sw).into()),
    }
}

/// Runs `op` in one PC/SC transaction that ends with a reset of the card (asked before `op` sends
/// anything, so that an error half-way still resets), then tells the driver its assumptions about the
/// card's state are gone. A failed reset is the error (the card may be left with a code verified),
/// except after a code the card refused.
pub(crate) fn secret_session<C: CpxCard + ?Sized, E: From<PcscError>>(
    card: &mut C,
    code_refused: impl Fn(&E) -> bool,
    op: impl FnOnce(&mut C, &mut Transaction) -> Result<(), E>,
) -> Result<(), E> {
    let mut session = card.transport().transaction()?;
    let result = op(card, &mut session);
    let reset = session.disposition() == cpx_pcsc::Disposition::Reset;
    let ended = session.end();
    if reset {
        card.end_session();
    }
    match (result, ended) {
        (Err(e), _) if code_refused(&e) => Err(e),
        (_, Err(e)) if reset => Err(e.into()),
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_de_deblocage_is_8_digits_and_hides_itself() {
        let code = UnblockingCode::new("12345678").unwrap();
        assert_eq!(code.bytes(), b"12345678");
        assert_eq!(format!("{code:?}"), "UnblockingCode(********)");
        for bad in ["1234", "1234567", "123456789", "1234567a", "", "١٢٣٤٥٦٧٨"] {
            assert!(matches!(UnblockingCode::new(bad), Err(PinChangeError::UnblockingCodeFormat)), "{bad}");
        }
    }

    #[test]
    fn status_words_of_the_code_de_deblocage_and_of_the_new_code() {
        let sw = StatusWord;
        assert_eq!(unblock_verify_outcome(sw(0x9000)), Ok(()));
        assert_eq!(
            unblock_verify_outcome(sw(0x63C2)),
            Err(PinChangeError::WrongUnblockingCode { tries_left: 2 })
        );
        assert_eq!(unblock_verify_outcome(sw(0x63C0)), Err(PinChangeError::UnblockingCodeBlocked));
        assert_eq!(unblock_verify_outcome(sw(0x6983)), Err(PinChangeError::UnblockingCodeBlocked));
        assert_eq!(unblock_verify_outcome(sw(0x6700)), Err(PinChangeError::UnblockingCodeFormat));
        assert!(matches!(
            unblock_verify_outcome(sw(0x6A88)),
            Err(PinChangeError::Card(CardError::UnexpectedStatus { .. }))
        ));
        assert_eq!(new_code_outcome("X", sw(0x9000)), Ok(()));
        assert_eq!(new_code_outcome("X", sw(0x63C1)), Err(CardError::WrongPin { tries_left: 1 }.into()));
        assert_eq!(new_code_outcome("X", sw(0x6983)), Err(CardError::PinBlocked.into()));
        assert_eq!(new_code_outcome("X", sw(0x6700)), Err(CardError::PinFormat.into()));
        assert_eq!(new_code_outcome("X", sw(0x6982)), Err(CardError::PinRequired.into()));
    }
}
