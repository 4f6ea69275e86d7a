//! Changing and unblocking the code porteur, for the command line and the tray app — never for a page:
//! the loopback API has no route to either. The card is chosen, its tries read, the professional asked
//! through a [`CodeDialog`] (the current code; the code de déblocage with its tries shown first and a
//! confirmation before its last try; the new code twice, compared here before anything reaches the
//! card), then the driver's [`CodePorteur`] does the rest in one transaction ending with a reset. The
//! codes go from the dialog to the card: never logged, stored or retried. On a PIN-pad reader (as for the
//! login: `pinpad` allows it, the reader is not in the quirk list) the codes porteur are typed on the
//! reader's keypad (PC/SC part 10 modify) while the dialog shows a notice; only the code de déblocage,
//! which the card's unblock command carries with the new code, is typed on screen.

use cpx_card::{
    CardError, CodePorteur, CpxCard, Pin, PinChangeError, PinPad, PinPadChangeError, PinPadModify, PinStatus,
    UnblockingCode,
};
use cpx_pcsc::pinpad::ReaderAnswer;
use zeroize::Zeroizing;

use crate::card::card_service::CardService;
use crate::card::pin_prompt::{KeypadNotice, PromptError};
use crate::card::pinpad::PinPadPolicy;
use crate::messages::{pin_life, Code, Text};

/// The card as the dialogs name it: « JEAN DUPONT — CPS (CPS3) », and its reader.
#[derive(Debug, Clone)]
pub struct CardLabel {
    /// Holder and card type.
    pub text: String,
    /// The reader it is in.
    pub reader: String,
}

/// What the professional is asked, in this order; each implementation shows the catalogue's words.
pub trait CodeDialog {
    /// Several CPx cards are present: the index of the one to use.
    fn choose_card(&self, cards: &[CardLabel]) -> Result<usize, PromptError>;
    /// The current code porteur as typed, the tries left shown (its form is checked by the flow).
    fn current_pin(&self, card: &CardLabel, status: PinStatus) -> Result<Zeroizing<String>, PromptError>;
    /// The code de déblocage is at its last try: whether to go on (nothing typed yet).
    fn confirm_last_unblock_try(&self, card: &CardLabel) -> Result<bool, PromptError>;
    /// The code de déblocage as typed, its tries shown before it is typed (its form is checked by the flow).
    /// `new_on_keypad`: the new code porteur will be typed on the reader's keypad, not asked on screen.
    fn unblocking_code(
        &self,
        card: &CardLabel,
        status: PinStatus,
        new_on_keypad: bool,
    ) -> Result<Zeroizing<String>, PromptError>;
    /// The new code porteur, typed twice: both entries as typed (compared by the flow).
    fn new_pin_twice(&self, card: &CardLabel) -> Result<[Zeroizing<String>; 2], PromptError>;
    /// Tells the professional to type the codes of `step` on the reader's keypad, while the reader waits;
    /// no code comes back through the computer. The notice stays until the returned value is dropped.
    fn show_keypad(&self, card: &CardLabel, step: KeypadStep) -> Result<KeypadNotice, PromptError>;
}

/// What the reader's keypad takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeypadStep {
    /// A change: the current code porteur, then the new one twice.
    Change,
    /// An unblock: the new code porteur twice (the code de déblocage was typed on screen).
    NewPin,
}

impl KeypadStep {
    /// What the notice says.
    pub fn text(self) -> Text {
        match self {
            KeypadStep::Change => pin_life::KEYPAD_CHANGE,
            KeypadStep::NewPin => pin_life::KEYPAD_NEW_PIN,
        }
    }
}

/// Why the code porteur was not changed or unblocked.
#[derive(Debug, thiserror::Error)]
pub enum PinLifeError {
    /// The card could not be found or used (no reader, no CPx card, contactless…): its code.
    #[error("{}", .0.as_str())]
    Card(Code),
    /// The professional closed the dialog, or it could not be shown.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The professional did not confirm the last try of the code de déblocage.
    #[error("not confirmed")]
    NotConfirmed,
    /// The two entries of the new code porteur differ: nothing was sent to the card.
    #[error("the two entries of the new code porteur differ")]
    NewPinMismatch,
    /// The card refused: a wrong or blocked code, a new code of the wrong form…
    #[error(transparent)]
    Refused(#[from] PinChangeError),
    /// The PIN-pad reader answered instead of the card: cancelled, no key in time, the new code and its
    /// confirmation differ…
    #[error(transparent)]
    Keypad(ReaderAnswer),
}

impl From<PinPadChangeError> for PinLifeError {
    fn from(e: PinPadChangeError) -> Self {
        match e {
            PinPadChangeError::Reader(answer) => PinLifeError::Keypad(answer),
            PinPadChangeError::Refused(e) => PinLifeError::Refused(e),
        }
    }
}

impl PinLifeError {
    /// The catalogue's code for this outcome, as the CLI and the tray say it (closing the dialog or not
    /// confirming the last try is USER_CANCELLED).
    pub fn code(&self) -> Code {
        match self {
            PinLifeError::Card(code) => *code,
            PinLifeError::Prompt(PromptError::Cancelled) | PinLifeError::NotConfirmed => Code::UserCancelled,
            PinLifeError::Prompt(PromptError::Unavailable(_)) => Code::PromptUnavailable,
            PinLifeError::Prompt(PromptError::BadFormat) => Code::PinFormat,
            PinLifeError::NewPinMismatch => Code::NewPinMismatch,
            PinLifeError::Refused(e) => Code::from(e),
            PinLifeError::Keypad(answer) => match answer {
                ReaderAnswer::Timeout => Code::PinpadTimeout,
                ReaderAnswer::Cancelled => Code::UserCancelled,
                ReaderAnswer::CodesDiffer => Code::NewPinMismatch,
                ReaderAnswer::Length => Code::PinFormat,
                ReaderAnswer::InvalidStructure => Code::CardRecognisedRefused(None),
            },
        }
    }

    /// The tries left the card answered to a wrong code (code porteur or code de déblocage), if that is
    /// what happened.
    pub fn tries_left(&self) -> Option<u8> {
        match self {
            PinLifeError::Refused(
                PinChangeError::WrongUnblockingCode { tries_left }
                | PinChangeError::Card(CardError::WrongPin { tries_left }),
            ) => Some(*tries_left),
            _ => None,
        }
    }
}

/// The CPx card in `reader`, or the only one present (the dialog chooses among several), with its label.
/// Inside [`CardService::blocking`] or [`CardService::exclusive`].
fn chosen_card(
    cards: &CardService,
    reader: Option<&str>,
    dialog: &dyn CodeDialog,
) -> Result<(Box<dyn CpxCard>, CardLabel), PinLifeError> {
    let no_card = PinLifeError::Card;
    let readers = cards.readers().map_err(|e| no_card(Code::from(&e)))?;
    if readers.is_empty() {
        return Err(no_card(Code::NoReader));
    }
    let mut present = Vec::new();
    let mut last_problem = None;
    for r in readers.iter().filter(|r| reader.is_none_or(|name| r.name == name)) {
        if !matches!(r.state, cpx_pcsc::SlotState::Present | cpx_pcsc::SlotState::Exclusive) {
            continue;
        }
        match cards.open_card(&r.name, Some(&r.atr), &cards.cache) {
            Ok(card) => {
                let text = format!("{} — {}", card.identity().display_name(), card.info().type_name());
                present.push((card, CardLabel { text, reader: r.name.clone() }));
            }
            Err(e) => last_problem = Some(e),
        }
    }
    let index = match present.len() {
        0 => {
            return Err(match last_problem {
                Some(e) if Code::from(&e) != Code::CardNotCpx => no_card(Code::from(&e)),
                _ => no_card(Code::NoCpxCard),
            })
        }
        1 => 0,
        _ => dialog.choose_card(&present.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>())?,
    };
    if index >= present.len() {
        return Err(no_card(Code::NoCpxCard));
    }
    let (card, label) = present.swap_remove(index);
    if card.info().interface == cpx_card::Interface::Contactless {
        return Err(no_card(Code::Contactless));
    }
    Ok((card, label))
}

/// The new code porteur, typed twice and compared; its form checked (4 digits) before the card sees it.
fn new_pin(dialog: &dyn CodeDialog, label: &CardLabel) -> Result<Pin, PinLifeError> {
    let [first, second] = dialog.new_pin_twice(label)?;
    if first.as_str() != second.as_str() {
        return Err(PinLifeError::NewPinMismatch);
    }
    Pin::new(&first).map_err(|e| PinLifeError::Refused(e.into()))
}

fn card_error(e: CardError) -> PinLifeError {
    PinLifeError::Refused(e.into())
}

/// The reader's keypad, when it is to take the codes porteur: the login's rule
/// ([`crate::card::login`]), and the reader changes a code typed on its keypad (`FEATURE_MODIFY_PIN_DIRECT`).
fn keypad(card: &mut dyn CpxCard, policy: PinPadPolicy) -> Option<(PinPad, PinPadModify)> {
    let pad = crate::card::login::keypad(card, policy)?;
    let modify = PinPadModify::detect(card.transport(), crate::card::login::KEYPAD_SECONDS).ok().flatten()?;
    Some((pad, modify))
}

/// Changes the code porteur of the chosen card: a blocked one is refused before anything is asked.
pub fn change(
    cards: &CardService,
    reader: Option<&str>,
    dialog: &dyn CodeDialog,
    pinpad: PinPadPolicy,
) -> Result<(), PinLifeError> {
    let (mut card, label) = chosen_card(cards, reader, dialog)?;
    let status = card.pin_status().map_err(card_error)?.ok_or(card_error(CardError::NoPinOnInterface))?;
    if status.blocked() {
        return Err(card_error(CardError::PinBlocked));
    }
    if let Some((pad, modify)) = keypad(card.as_mut(), pinpad) {
        let _notice = dialog.show_keypad(&label, KeypadStep::Change)?;
        card.change_pin_on_reader(&pad, &modify)?;
        tracing::info!(serial = %card.info().serial, "code porteur changed on the reader's keypad");
        return Ok(());
    }
    let current = Pin::new(&dialog.current_pin(&label, status)?).map_err(card_error)?;
    let new = new_pin(dialog, &label)?;
    card.change_pin(&current, &new)?;
    tracing::info!(serial = %card.info().serial, "code porteur changed");
    Ok(())
}

/// Unblocks the chosen card with its code de déblocage and a new code porteur: a blocked code de
/// déblocage is refused before anything is asked; its last try needs a confirmation.
pub fn unblock(
    cards: &CardService,
    reader: Option<&str>,
    dialog: &dyn CodeDialog,
    pinpad: PinPadPolicy,
) -> Result<(), PinLifeError> {
    let (mut card, label) = chosen_card(cards, reader, dialog)?;
    let status = card.unblock_status().map_err(card_error)?.ok_or(card_error(CardError::NoPinOnInterface))?;
    if status.blocked() {
        return Err(PinChangeError::UnblockingCodeBlocked.into());
    }
    if status.tries_left == 1 && !dialog.confirm_last_unblock_try(&label)? {
        return Err(PinLifeError::NotConfirmed);
    }
    let keypad = keypad(card.as_mut(), pinpad);
    let code = UnblockingCode::new(&dialog.unblocking_code(&label, status, keypad.is_some())?)?;
    if let Some((_, modify)) = keypad {
        let _notice = dialog.show_keypad(&label, KeypadStep::NewPin)?;
        card.unblock_pin_on_reader(&code, &modify)?;
        tracing::info!(serial = %card.info().serial, "code porteur unblocked, the new one typed on the reader's keypad");
        return Ok(());
    }
    let new = new_pin(dialog, &label)?;
    card.unblock_pin(&code, &new)?;
    tracing::info!(serial = %card.info().serial, "code porteur unblocked");
    Ok(())
}
