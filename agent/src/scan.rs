//! Looks at every reader and the card in it: the state the professional sees, and for a CPx card its
//! type, holder, certificate and code porteur. Shared by `status`, `card` and `watch`.

use std::time::Duration;

use cpx_card::{CardError, CertCache, CpxCard, IdKind, Identity, PinStatus, Recognition, Validity};
use cpx_pcsc::{Connection, ConnectionOptions, PcscError, ReaderInfo};
use serde::Serialize;

use crate::messages::{Code, SlotState};

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
    /// Technical detail of the failure, for the helpdesk.
    pub detail: Option<String>,
}

impl ReaderReport {
    fn new(reader: &ReaderInfo, state: SlotState) -> Self {
        Self { reader: reader.name.clone(), state, codes: Vec::new(), atr: hex::encode_upper(&reader.atr), card: None, detail: None }
    }
}

/// Options of a scan.
#[derive(Clone)]
pub struct ScanOptions {
    /// Longest wait for any single card call.
    pub timeout: Duration,
    /// Also read the tries left on the code porteur (two more APDUs).
    pub with_pin: bool,
    /// Only this reader.
    pub reader: Option<String>,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Opens the CPx card in `reader` through PC/SC.
pub fn open_card(reader: &str, timeout: Duration, cache: &CertCache) -> Result<Box<dyn CpxCard>, CardError> {
    let conn = Connection::connect(reader, &ConnectionOptions { timeout, exclusive: false })?;
    let atr = conn.atr().to_vec();
    cpx_card::open(Box::new(conn), &atr, cache)
}

/// Scans the readers. A stopped PC/SC service is an error; no reader is an empty list.
pub fn scan(ctx: &cpx_pcsc::Context, cache: &CertCache, options: &ScanOptions) -> Result<Vec<ReaderReport>, PcscError> {
    let mut readers = cpx_pcsc::list_readers(ctx)?;
    readers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(readers
        .iter()
        .filter(|r| options.reader.as_deref().is_none_or(|only| only == r.name))
        .map(|r| report(cache, r, options))
        .collect())
}

/// The report of one reader.
pub fn report(cache: &CertCache, reader: &ReaderInfo, options: &ScanOptions) -> ReaderReport {
    use cpx_pcsc::SlotState as S;
    match reader.state {
        S::Empty => ReaderReport::new(reader, SlotState::NoCard),
        S::Mute => failed(reader, SlotState::CardNotRecognised, Code::CardMute, None),
        S::Exclusive => failed(reader, SlotState::CardInUse, Code::CardInUse, None),
        S::Unavailable => failed(reader, SlotState::CardNotRecognised, Code::ReaderUnavailable, None),
        S::Present => match open_card(&reader.name, options.timeout, cache) {
            Ok(mut card) => ready(reader, card.as_mut(), options),
            Err(e) => {
                let code = Code::from(&e);
                let state = if code == Code::CardInUse { SlotState::CardInUse } else if code == Code::NoCard { SlotState::NoCard } else { SlotState::CardNotRecognised };
                failed(reader, state, code, Some(e.to_string()))
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
                out.codes.push(Code::from(&e));
                out.detail = Some(e.to_string());
            }
        }
    }
    let info = card.info();
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
