//! What a reader and the card in it look like to the professional: the slot state, and for a CPx card its
//! type, holder, certificate and code porteur. The readers are scanned through the card service
//! ([`crate::card::card_service::CardService::scan`]); shared by `status`, `card`, `watch`, `GET /v1/status`
//! and the tray.

use cpx_card::{CardError, CpxCard, IdKind, Identity, PinStatus, Recognition, Validity};
use cpx_pcsc::ReaderInfo;
use serde::Serialize;

use crate::card::card_service::CardService;
use crate::messages::{Code, SlotState, Text};

/// What the agent knows of a CPx card.
#[derive(Debug, Clone, Serialize)]
pub struct CardSummary {
    pub generation: cpx_card::Generation,
    pub interface: cpx_card::Interface,
    pub recognition: Recognition,
    pub serial: String,
    pub application: String,
    pub identity: Identity,
    pub certificate_validity: Validity,
    /// Tries left, when asked for and the card has a code porteur on this interface.
    pub pin: Option<PinStatus>,
}

/// One reader and its slot.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderReport {
    pub reader: String,
    pub state: SlotState,
    /// Why the card is not ready (or what makes a ready card unusable for login).
    pub codes: Vec<Code>,
    pub atr: String,
    pub card: Option<CardSummary>,
    /// The card generation as soon as the ATR table or EF.SN.ICC named it (`CPS3`, `CPS4`), even when
    /// the card could not be read further; `null` for no card, a non-CPx card, or a CPx variant whose
    /// generation is not known yet.
    pub generation: Option<cpx_card::Generation>,
    /// Technical detail of the failure, for the helpdesk.
    pub detail: Option<String>,
}

impl ReaderReport {
    fn new(reader: &ReaderInfo, state: SlotState) -> Self {
        Self {
            reader: reader.name.clone(),
            state,
            codes: Vec::new(),
            atr: hex::encode_upper(&reader.atr),
            card: None,
            generation: None,
            detail: None,
        }
    }

    /// The reader's line: the slot state in words, or for a CPx card that cannot be used, what its first
    /// code says (« Carte CPS3 reconnue, mais son contenu n'a pas pu être lu »).
    pub fn message(&self) -> Text {
        match (self.state, self.codes.first()) {
            (SlotState::CardRecognisedUnusable, Some(code)) => code.entry().message,
            (state, _) => state.text(),
        }
    }
}

/// Options of a scan (the longest wait for a card call is the card service's).
#[derive(Clone)]
pub struct ScanOptions {
    /// Also read the tries left on the code porteur (two more APDUs).
    pub with_pin: bool,
    /// Only this reader.
    pub reader: Option<String>,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The slot state of a card that could not be opened.
pub fn failed_state(e: &CardError, code: Code) -> SlotState {
    match code {
        Code::CardInUse => SlotState::CardInUse,
        Code::NoCard => SlotState::NoCard,
        // Named by its ATR or EF.SN.ICC, and it answered: its content is at fault, not its insertion.
        _ if e.recognised().is_some() && !matches!(e.root(), CardError::Pcsc(_)) => {
            SlotState::CardRecognisedUnusable
        }
        _ => SlotState::CardNotRecognised,
    }
}

/// The report of one reader; the card is opened through `cards`, whose permit the caller holds.
pub(crate) fn report(cards: &CardService, reader: &ReaderInfo, options: &ScanOptions) -> ReaderReport {
    use cpx_pcsc::SlotState as S;
    match reader.state {
        S::Empty => ReaderReport::new(reader, SlotState::NoCard),
        S::Mute => failed(reader, SlotState::CardNotRecognised, Code::CardMute, None),
        S::Exclusive => failed(reader, SlotState::CardInUse, Code::CardInUse, None),
        S::Unavailable => failed(reader, SlotState::CardNotRecognised, Code::ReaderUnavailable, None),
        S::Present => match cards.open_card(&reader.name, Some(&reader.atr), &cards.cache) {
            Ok(mut card) => ready(reader, card.as_mut(), options),
            Err(e) => {
                let code = Code::from(&e);
                let mut out = failed(reader, failed_state(&e, code), code, Some(e.to_string()));
                // Named by the driver, or at least by the ATR table (a card that stopped answering).
                out.generation = match e.recognised() {
                    Some(generation) => generation,
                    None if code != Code::CardNotCpx => {
                        cpx_card::atr::recognise(&reader.atr).map(|entry| entry.generation)
                    }
                    None => None,
                };
                out
            }
        },
    }
}

fn failed(reader: &ReaderInfo, state: SlotState, code: Code, detail: Option<String>) -> ReaderReport {
    ReaderReport { codes: vec![code], detail, ..ReaderReport::new(reader, state) }
}

fn ready(reader: &ReaderInfo, card: &mut dyn CpxCard, options: &ScanOptions) -> ReaderReport {
    let mut out = ReaderReport::new(reader, SlotState::CardReady);
    let identity = card.identity().clone();
    let validity = identity.validity_at(now_unix());
    match validity {
        Validity::Expired => out.codes.push(Code::CertificateExpired),
        Validity::NotYetValid => out.codes.push(Code::CertificateNotYetValid),
        Validity::Valid => {}
    }
    if card.info().interface == cpx_card::Interface::Contactless {
        out.codes.push(Code::Contactless);
    }
    let mut pin = None;
    if options.with_pin {
        match card.pin_status() {
            Ok(p) => {
                if p.is_some_and(|p| p.blocked()) {
                    out.codes.push(Code::PinBlocked);
                }
                pin = p;
            }
            Err(e) => {
                out.codes.push(Code::about_card(&e, Some(card.info().generation)));
                out.detail = Some(e.to_string());
            }
        }
    }
    let info = card.info();
    out.generation = Some(info.generation);
    out.card = Some(CardSummary {
        generation: info.generation,
        interface: info.interface,
        recognition: info.recognition.clone(),
        serial: info.serial.clone(),
        application: info.application.clone(),
        identity,
        certificate_validity: validity,
        pin,
    });
    out
}

/// The card type as people name it: "CPS3", "CPS3 (sans contact)", "CPS4".
pub fn card_label(card: &CardSummary) -> String {
    match &card.recognition {
        Recognition::AtrTable { label } => (*label).to_owned(),
        Recognition::IssuerOnly => format!("{:?}", card.generation).to_uppercase(),
    }
}

/// "899700123456 (RPPS 99700123456)".
pub fn national_id_label(id: &Identity) -> String {
    match id.id_kind {
        IdKind::Rpps => format!("{} (RPPS {})", id.national_id, id.id_number),
        IdKind::Adeli => format!("{} (ADELI {})", id.national_id, id.id_number),
        IdKind::Other => id.national_id.clone(),
    }
}
