//! Opening a card: who it is (ATR table, then EF.SN.ICC), then its PKCS#15 layout — from the certificate
//! cache when the card still holds the certificate the cache remembers, otherwise read from EF.DIR, the
//! ODF, PrKDF, CDF and AODF of the CPx application chosen by AID.
//!
//! Once the ATR table or EF.SN.ICC has said « CPx », every later failure is returned as
//! [`CardError::Recognised`] with the generation, so that the user hears « Carte CPS3 reconnue, mais … »
//! and not « mal insérée ». The card facts relied on here are in docs/card-facts.md.

use cpx_pcsc::Transport;

use crate::atr::{self, Generation, Interface};
use crate::cache::{CertCache, Layout};
use crate::card::{CardInfo, CpxCard, Opened, Recognition};
use crate::card_type::{self, CardType, TypeSource};
use crate::cps3::Cps3;
use crate::cps4::Cps4;
use crate::efsn;
use crate::error::{CardError, Credential};
use crate::fcp;
use crate::iso;
use crate::path::{ObjectPath, Pkcs15Path};
use crate::pkcs15::{self, find_app, DirApp, AID_CHIPDOC, AID_CPX_IAS, AID_CPX_IAS_CL};

/// Short file identifiers of the MF's EFs, from the FCPs (tag 88) of real CPS3 cards.
pub const SFI_EF_SN_ICC: u8 = 0x1C;
/// Short file identifier of EF.ATR (EF.SN.ICC is read through it).
pub const SFI_EF_ATR: u8 = 0x1D;
/// Short file identifier of EF.DIR, the list of applications.
pub const SFI_EF_DIR: u8 = 0x1E;
const EF_SN_ICC: [u8; 4] = [0x3F, 0x00, 0xD0, 0x03];
const EF_DIR: [u8; 4] = [0x3F, 0x00, 0x2F, 0x00];
const EF_ACTUA: [u8; 4] = [0x3F, 0x00, 0xD0, 0x10];
/// EF.ODF's file id in the application DF (PKCS#15).
const EF_ODF: u16 = 0x5031;

fn not_cpx(atr: &[u8], reason: impl Into<String>) -> CardError {
    CardError::NotCpx { atr: hex::encode_upper(atr), reason: reason.into() }
}

/// Recognises the card behind `transport` and returns its driver, ready (identity known).
///
/// A card read before in the same reader that has not left it since (the reader's event count is the
/// same, through the cache's PC/SC context, and so is the ATR) is known without a single APDU: what was
/// learnt then serves. A card swapped or pulled and put back changes the count; a certificate renewed
/// in place is caught by the signature check of [`CpxCard::authenticate`].
pub fn open(
    mut transport: Box<dyn Transport>,
    atr: &[u8],
    cache: &CertCache,
) -> Result<Box<dyn CpxCard>, CardError> {
    // The count is read after the connection was made: a card swapped before it changes the count, one
    // swapped after it leaves this connection's handle dead (every command then fails).
    let reader = transport.reader().map(str::to_owned);
    let events = reader.as_deref().and_then(|r| cache.reader_events(r).map(|n| (r.to_owned(), n)));
    if let Some(known) = events.as_ref().and_then(|(r, n)| cache.known(r, *n, atr)) {
        let identity = crate::identity::from_certificate(&known.layout.cert_der)
            .map_err(|e| e.after_recognition(Some(known.info.generation)))?;
        let mut opened = Opened::new(transport, known.info, known.layout, identity);
        opened.vouched = Some(known.vouched);
        return Ok(driver(opened));
    }
    let reading = transport.transaction()?;
    let opened = identify(transport.as_mut(), atr, cache);
    let ended = reading.end();
    let (info, layout) = opened?;
    ended?;
    let identity = crate::identity::from_certificate(&layout.cert_der)
        .map_err(|e| e.after_recognition(Some(info.generation)))?;
    let mut info = info;
    (info.card_type, info.card_type_source) = card_type::decide(layout.card_type_code, identity.id_nat_kind);
    // Remembered for this reader only when the count did not move while the card was read.
    let vouched = events
        .filter(|(r, n)| cache.reader_events(r) == Some(*n))
        .map(|(r, n)| cache.saw(&r, n, &info, &layout));
    let mut opened = Opened::new(transport, info, layout, identity);
    opened.vouched = vouched;
    Ok(driver(opened))
}

fn driver(opened: Opened) -> Box<dyn CpxCard> {
    match opened.info.generation {
        Generation::Cps3 => Box::new(Cps3::new(opened)),
        Generation::Cps4 => Box::new(Cps4::new(opened)),
    }
}

/// Recognises the card and learns its layout (inside the caller's transaction).
pub(crate) fn identify(
    t: &mut dyn Transport,
    atr: &[u8],
    cache: &CertCache,
) -> Result<(CardInfo, Layout), CardError> {
    let entry = atr::recognise(atr);
    let named = entry.map(|e| e.generation);
    // Until EF.SN.ICC has been read, only a listed ATR names the card.
    let by_atr = |e: CardError| if entry.is_some() { e.after_recognition(named) } else { e };
    let sn = match read_sn_icc(t).map_err(by_atr)? {
        Some(content) => content,
        None if entry.is_some() => {
            return Err(CardError::Missing { what: "EF.SN.ICC" }.after_recognition(named))
        }
        None => return Err(not_cpx(atr, "EF.SN.ICC not readable")),
    };
    let sn = match efsn::parse(&sn) {
        Ok(sn) => sn,
        Err(e) if entry.is_none() => return Err(not_cpx(atr, e.to_string())),
        Err(e) => return Err(e.after_recognition(named)),
    };
    if !sn.issued_by_ans() {
        return Err(not_cpx(atr, format!("issuer {} is not the ANS", hex::encode_upper(&sn.issuer))));
    }
    // A CPx card from here on: whatever fails is reported with the card's name.
    let interface = entry.map_or(Interface::Contact, |e| e.interface);
    let layout = layout(t, named, interface, &sn.serial, cache).map_err(|e| e.after_recognition(named))?;
    let info = CardInfo {
        generation: layout.generation,
        interface,
        atr: atr.to_vec(),
        recognition: entry.map_or(Recognition::IssuerOnly, |e| Recognition::AtrTable { label: e.label }),
        serial: sn.serial,
        application: layout.app_label.clone(),
        card_type: CardType::Cpx,
        card_type_source: TypeSource::Unknown,
    };
    Ok((info, layout))
}

/// EF.SN.ICC by its short file identifier (one APDU), or by path when the card does not take the SFI;
/// `None` when neither works (a non-CPx card answers with an error).
fn read_sn_icc(t: &mut dyn Transport) -> Result<Option<Vec<u8>>, CardError> {
    let r = iso::read_sfi(t, 0x00, SFI_EF_SN_ICC, 12)?;
    if r.sw.is_ok() {
        return Ok(Some(r.data));
    }
    let r = iso::select_path(t, 0x00, &EF_SN_ICC)?;
    if !r.sw.is_ok() {
        return Ok(None);
    }
    iso::read_selected(t, 0x00, &r.data).map(Some)
}

/// EF.DIR by path (as OpenSC reads it; one APDU fewer than by SFI, whose size is not known beforehand),
/// or by its short file identifier `1E` when the card does not let it be selected by path.
fn read_ef_dir(t: &mut dyn Transport) -> Result<Vec<u8>, CardError> {
    let r = iso::select_path(t, 0x00, &EF_DIR)?;
    if r.sw.is_ok() {
        return iso::read_selected(t, 0x00, &r.data);
    }
    match iso::read_sfi_file(t, 0x00, SFI_EF_DIR)? {
        Some(content) => Ok(content),
        None => Err(CardError::status("SELECT EF.DIR", r.sw)),
    }
}

/// EF_ACTUA (3F00/D010): absent (`6A 82`) until the card's first online update.
fn read_actua(t: &mut dyn Transport) -> Result<Option<Vec<u8>>, CardError> {
    let r = iso::select_path(t, 0x00, &EF_ACTUA)?;
    match r.sw {
        sw if sw.is_ok() => Ok(Some(iso::read_selected(t, 0x00, &r.data)?)),
        iso::FILE_NOT_FOUND => Ok(None),
        sw => Err(CardError::status("SELECT EF_ACTUA", sw)),
    }
}

/// The layout: the cached one when EF_ACTUA is unchanged and the card still holds the cached
/// certificate, otherwise read from the card (and the cache updated).
fn layout(
    t: &mut dyn Transport,
    named: Option<Generation>,
    interface: Interface,
    serial: &str,
    cache: &CertCache,
) -> Result<Layout, CardError> {
    let actua = read_actua(t)?;
    // The same chip shows another application over contactless: the interface is part of the key.
    let key = format!("{serial}-{}", if interface == Interface::Contact { "contact" } else { "contactless" });
    if let Some(cached) = cache.get(&key, actua.as_deref()) {
        match still_on_card(t, &cached) {
            Ok(true) => return Ok(cached),
            // Removed, mute…: reading the layout would fail the same way; say so now.
            Err(e) if e.card_lost() => return Err(e),
            // Another certificate under the same serial (or one that cannot be checked): read again.
            _ => cache.forget(&key),
        }
    }
    let layout = read_layout(t, named, interface)?;
    cache.put(&key, actua.as_deref(), &layout);
    Ok(layout)
}

/// The application's files, reached the way ISO 7816-15 paths say: from the MF, from the application DF
/// (selected by AID; selected again when a path left it), or from the application a path names by AID.
pub(crate) struct AppFiles<'t> {
    t: &'t mut dyn Transport,
    cla: u8,
    aid: Vec<u8>,
    /// The application DF is the current DF.
    in_app: bool,
}

impl<'t> AppFiles<'t> {
    pub(crate) fn open(t: &'t mut dyn Transport, cla: u8, aid: &[u8]) -> Result<Self, CardError> {
        iso::select_aid(t, cla, aid)?;
        Ok(Self { t, cla, aid: aid.to_vec(), in_app: true })
    }

    /// Selects the EF `path` names; returns its FCP.
    pub(crate) fn select(&mut self, path: &Pkcs15Path) -> Result<Vec<u8>, CardError> {
        let r = match &path.file {
            ObjectPath::None => {
                return Err(CardError::malformed("PKCS#15 path", "no file where a file is needed"))
            }
            ObjectPath::Absolute(fids) => {
                self.in_app = false;
                iso::select_path(
                    self.t,
                    self.cla,
                    &[&[0x3F, 0x00][..], &ObjectPath::fid_bytes(fids)].concat(),
                )?
            }
            ObjectPath::Relative(fids) => {
                match path.aid.as_deref() {
                    Some(aid) if aid != self.aid.as_slice() => {
                        iso::select_aid(self.t, self.cla, aid)?;
                        self.in_app = false;
                    }
                    _ if !self.in_app => {
                        iso::select_aid(self.t, self.cla, &self.aid)?;
                        self.in_app = true;
                    }
                    _ => {}
                }
                match fids.as_slice() {
                    [] => {
                        return Err(CardError::malformed("PKCS#15 path", "names a DF where a file is needed"))
                    }
                    // A file of the application DF: the DF stays current.
                    [fid] => iso::select_fid(self.t, self.cla, *fid)?,
                    _ => {
                        self.in_app = false;
                        iso::select_below(self.t, self.cla, &ObjectPath::fid_bytes(fids))?
                    }
                }
            }
        };
        if !r.sw.is_ok() {
            return Err(CardError::status("SELECT file", r.sw));
        }
        Ok(r.data)
    }

    /// The object at `path`: the slice it names, or the whole file. Also returns the file's size.
    pub(crate) fn read(&mut self, path: &Pkcs15Path) -> Result<(Vec<u8>, Option<usize>), CardError> {
        let size = fcp::parse(&self.select(path)?)?.size;
        let content = match path.slice {
            Some(s) => {
                let (index, length) = (s.index as usize, s.length as usize);
                if size.is_some_and(|size| index + length > size) {
                    return Err(CardError::malformed(
                        "PKCS#15 path",
                        format!("bytes {index}..{} of a {}-byte file", index + length, size.unwrap_or(0)),
                    ));
                }
                iso::read_range(self.t, self.cla, index, length)?
            }
            None => iso::read_range(
                self.t,
                self.cla,
                0,
                size.ok_or_else(|| CardError::malformed("FCP", "no file size"))?,
            )?,
        };
        Ok((content, size))
    }

    /// The first `n` bytes of the object at `path` (a slice's first bytes), and the file's size.
    fn head(&mut self, path: &Pkcs15Path, n: usize) -> Result<(Vec<u8>, Option<usize>), CardError> {
        let size = fcp::parse(&self.select(path)?)?.size;
        let start = path.slice.map_or(0, |s| s.index as usize);
        Ok((iso::read_range(self.t, self.cla, start, n)?, size))
    }
}

/// The class byte to reach the application: the basic channel on a CPS3, a logical channel opened for
/// ChipDoc on a CPS4 (closed by [`leave`]).
fn enter(t: &mut dyn Transport, generation: Generation) -> Result<u8, CardError> {
    match generation {
        Generation::Cps3 => Ok(0x00),
        Generation::Cps4 => crate::cps4::open_channel(t),
    }
}

fn leave(t: &mut dyn Transport, cla: u8) -> Result<(), CardError> {
    if cla != 0 {
        crate::cps4::close_channel(t, cla)?;
    }
    Ok(())
}

/// Does the card still hold the certificate the cache remembers? The certificate file's size (its FCP)
/// and its first READ BINARY: a new certificate has a new serial number in its first bytes. A real CPS3
/// never updated online has no EF_ACTUA, so this is what keeps the cache from going stale.
fn still_on_card(t: &mut dyn Transport, layout: &Layout) -> Result<bool, CardError> {
    let cla = enter(t, layout.generation)?;
    let checked = (|| -> Result<bool, CardError> {
        let mut app = AppFiles::open(t, cla, &layout.app_aid)?;
        let n = layout.cert_der.len().min(iso::MAX_READ);
        let (head, size) = app.head(&layout.cert_path, n)?;
        Ok(size == layout.cert_file_size && layout.cert_der.get(..n) == Some(head.as_slice()))
    })();
    let left = leave(t, cla);
    let same = checked?;
    left?;
    Ok(same)
}

/// The CPx application of EF.DIR for this card, chosen by AID whatever the order of the records (a real
/// CPS3 lists the contactless application first), and the generation it implies.
pub fn choose_application(
    dir: &[DirApp],
    generation: Option<Generation>,
    interface: Interface,
) -> Result<(Generation, &DirApp), CardError> {
    let missing = |what| CardError::Missing { what };
    Ok(match (generation, interface) {
        (Some(Generation::Cps4), _) => {
            (Generation::Cps4, find_app(dir, AID_CHIPDOC).ok_or_else(|| missing("ChipDoc application"))?)
        }
        (_, Interface::Contactless) => (
            Generation::Cps3,
            find_app(dir, AID_CPX_IAS_CL).ok_or_else(|| missing("contactless CPx application"))?,
        ),
        (Some(Generation::Cps3), _) => {
            (Generation::Cps3, find_app(dir, AID_CPX_IAS).ok_or_else(|| missing("CPx IAS application"))?)
        }
        // A variant: the applications it lists say which generation it is.
        (None, _) => match (find_app(dir, AID_CPX_IAS), find_app(dir, AID_CHIPDOC)) {
            (Some(app), _) => (Generation::Cps3, app),
            (None, Some(app)) => (Generation::Cps4, app),
            (None, None) => return Err(missing("CPx application in EF.DIR")),
        },
    })
}

/// Reads EF.DIR, picks the CPx application and reads its PKCS#15 objects: the authentication key, its
/// certificate and the code porteur guarding it.
fn read_layout(
    t: &mut dyn Transport,
    named: Option<Generation>,
    interface: Interface,
) -> Result<Layout, CardError> {
    let dir = pkcs15::parse_dir(&read_ef_dir(t)?)?;
    let (generation, app) = choose_application(&dir, named, interface)?;
    let app = app.clone();
    let cla = enter(t, generation)?;
    // A variant's generation is known from here: its failures carry it.
    let read = read_objects(t, cla, &app, generation).map_err(|e| e.after_recognition(Some(generation)));
    let left = leave(t, cla);
    let layout = read?;
    left?;
    Ok(layout)
}

fn read_objects(
    t: &mut dyn Transport,
    cla: u8,
    app: &DirApp,
    generation: Generation,
) -> Result<Layout, CardError> {
    let mut files = AppFiles::open(t, cla, &app.aid)?;
    let odf = Pkcs15Path { aid: None, file: ObjectPath::Relative(vec![EF_ODF]), slice: None };
    let odf = pkcs15::parse_odf(&files.read(&odf)?.0)?;
    let mut keys = Vec::new();
    for path in &odf.prkdf {
        keys.extend(pkcs15::parse_prkdf(&files.read(path)?.0)?);
    }
    let key = keys
        .into_iter()
        .find(|k| k.is_authentication())
        .ok_or(CardError::MissingCredential { what: Credential::AuthenticationKey })?;
    let mut certs = Vec::new();
    for path in &odf.cdf {
        certs.extend(pkcs15::parse_cdf(&files.read(path)?.0)?);
    }
    let cert = certs
        .into_iter()
        .find(|c| c.id == key.id)
        .ok_or(CardError::MissingCredential { what: Credential::AuthenticationCertificate })?;
    let pin = match &key.auth_id {
        None => None,
        Some(auth_id) => {
            let mut pins = Vec::new();
            for path in &odf.aodf {
                pins.extend(pkcs15::parse_aodf(&files.read(path)?.0)?);
            }
            Some(
                pins.into_iter()
                    .find(|p| &p.auth_id == auth_id)
                    .ok_or(CardError::Missing { what: "code porteur" })?,
            )
        }
    };
    if cert.path.is_none() {
        return Err(CardError::MissingCredential { what: Credential::AuthenticationCertificate });
    }
    let (cert_der, cert_file_size) = files.read(&cert.path)?;
    let card_type_code = card_type_code(&mut files, &odf.dodf)?;
    Ok(Layout {
        generation,
        app_aid: app.aid.clone(),
        app_label: app.label.clone(),
        pin,
        key,
        cert_label: cert.label,
        cert_path: cert.path,
        cert_file_size,
        cert_der,
        card_type_code,
    })
}

/// Label of the data object holding the card's identification (Cryptolib exposes it as a PKCS#11 data
/// object of that label): its first byte is taken as the card type code (docs/card-facts.md#card-types).
pub const CPS_ID_CARD: &str = "CPS_ID_CARD";

/// The card type code of the `CPS_ID_CARD` data object, when the DODF lists one. Optional data: a DODF
/// or object that cannot be read or parsed leaves the type to the certificate; a card gone is an error.
fn card_type_code(files: &mut AppFiles, dodfs: &[Pkcs15Path]) -> Result<Option<u8>, CardError> {
    let optional = |r: Result<Option<u8>, CardError>| match r {
        Err(e) if e.card_lost() => Err(e),
        Err(_) => Ok(None),
        ok => ok,
    };
    for dodf in dodfs {
        let found = optional((|| {
            let objects = pkcs15::parse_dodf(&files.read(dodf)?.0)?;
            match objects.into_iter().find(|o| o.label == CPS_ID_CARD) {
                Some(object) => Ok(files.read(&object.path)?.0.first().copied()),
                None => Ok(None),
            }
        })())?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpx_pcsc::{Command, PcscError, Response, StatusWord};
    use std::collections::HashMap;

    /// A scripted card: a file system of (DF path → EF id → content) answering SELECT by AID, by file id,
    /// by path from the MF or from the current DF, and READ BINARY; every command is recorded.
    struct FakeCard {
        /// Absolute path (MF = 3F00) → content; DFs have no content.
        files: HashMap<Vec<u16>, Vec<u8>>,
        /// AID → DF path.
        apps: HashMap<Vec<u8>, Vec<u16>>,
        current_df: Vec<u16>,
        current_ef: Option<Vec<u16>>,
        log: Vec<Command>,
    }

    impl FakeCard {
        fn new() -> Self {
            Self {
                files: HashMap::new(),
                apps: HashMap::new(),
                current_df: vec![0x3F00],
                current_ef: None,
                log: Vec::new(),
            }
        }
        fn fcp(size: usize) -> Vec<u8> {
            vec![0x62, 0x04, 0x80, 0x02, (size >> 8) as u8, size as u8]
        }
        fn select(&mut self, target: Vec<u16>) -> Response {
            let is_df = self.apps.values().any(|p| *p == target) || target == [0x3F00];
            if is_df {
                self.current_df = target;
                self.current_ef = None;
                return Response { data: Vec::new(), sw: StatusWord::OK };
            }
            match self.files.get(&target) {
                Some(content) => {
                    let fcp = Self::fcp(content.len());
                    self.current_df = target[..target.len() - 1].to_vec();
                    self.current_ef = Some(target);
                    Response { data: fcp, sw: StatusWord::OK }
                }
                None => Response { data: Vec::new(), sw: StatusWord(0x6A82) },
            }
        }
    }

    fn fids(data: &[u8]) -> Vec<u16> {
        data.chunks(2).map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)])).collect()
    }

    impl Transport for FakeCard {
        fn transmit(&mut self, cmd: &Command) -> Result<Response, PcscError> {
            cmd.to_bytes()?;
            self.log.push(cmd.clone());
            Ok(match (cmd.ins, cmd.p1) {
                (0xA4, 0x04) => match self.apps.get(cmd.data.as_slice()).cloned() {
                    Some(df) => self.select(df),
                    None => Response { data: Vec::new(), sw: StatusWord(0x6A82) },
                },
                (0xA4, 0x02) => {
                    let target = [self.current_df.clone(), fids(&cmd.data)].concat();
                    self.select(target)
                }
                (0xA4, 0x09) => {
                    let path = fids(&cmd.data);
                    let target = if path.first() == Some(&0x3F00) {
                        path
                    } else {
                        [self.current_df.clone(), path].concat()
                    };
                    self.select(target)
                }
                (0xB0, p1) if p1 & 0x80 == 0 => {
                    let offset = u16::from_be_bytes([cmd.p1, cmd.p2]) as usize;
                    let content = self
                        .current_ef
                        .as_ref()
                        .and_then(|ef| self.files.get(ef))
                        .cloned()
                        .unwrap_or_default();
                    let n = cmd.le.map_or(256, |l| if l == 0 { 256 } else { l as usize });
                    match content.get(offset..(offset + n).min(content.len())) {
                        Some(d) if !d.is_empty() => Response { data: d.to_vec(), sw: StatusWord::OK },
                        _ => Response { data: Vec::new(), sw: StatusWord(0x6B00) },
                    }
                }
                _ => Response { data: Vec::new(), sw: StatusWord(0x6A82) },
            })
        }
        fn transaction(&mut self) -> Result<cpx_pcsc::Transaction, PcscError> {
            Ok(cpx_pcsc::Transaction::new(|_| Ok(())))
        }
        fn apdu_count(&self) -> u64 {
            self.log.len() as u64
        }
    }

    fn path(file: ObjectPath) -> Pkcs15Path {
        Pkcs15Path { aid: None, file, slice: None }
    }

    fn card_with_app() -> FakeCard {
        let mut card = FakeCard::new();
        card.apps.insert(AID_CPX_IAS.to_vec(), vec![0x3F00, 0x0001]);
        card.apps.insert(AID_CPX_IAS_CL.to_vec(), vec![0x3F00, 0x0002]);
        card.apps.insert(vec![0xA0, 0, 0, 0, 0x01], vec![0x3F00, 0x0003]);
        card.files.insert(vec![0x3F00, 0x0001, 0xA001], b"in the application DF".to_vec());
        card.files.insert(vec![0x3F00, 0xA001], b"in the MF, same file id".to_vec());
        card.files.insert(vec![0x3F00, 0x0001, 0x5000, 0xB001], b"one DF further down".to_vec());
        card.files.insert(vec![0x3F00, 0x0003, 0xA001], b"in another application".to_vec());
        card.files.insert(vec![0x3F00, 0x0002, 0xC001], (0u8..=255).cycle().take(600).collect());
        card
    }

    #[test]
    fn a_bare_file_id_is_read_in_the_application_df_never_under_the_mf() {
        let mut card = card_with_app();
        let mut files = AppFiles::open(&mut card, 0, AID_CPX_IAS).unwrap();
        let (content, _) = files.read(&path(ObjectPath::Relative(vec![0xA001]))).unwrap();
        assert_eq!(content, b"in the application DF");
        let (content, _) = files.read(&path(ObjectPath::Absolute(vec![0xA001]))).unwrap();
        assert_eq!(content, b"in the MF, same file id");
        // After an absolute path, a relative one is relative to the application again.
        let (content, _) = files.read(&path(ObjectPath::Relative(vec![0xA001]))).unwrap();
        assert_eq!(content, b"in the application DF");
        let (content, _) = files.read(&path(ObjectPath::Relative(vec![0x5000, 0xB001]))).unwrap();
        assert_eq!(content, b"one DF further down");
        let (content, _) = files.read(&path(ObjectPath::Relative(vec![0xA001]))).unwrap();
        assert_eq!(content, b"in the application DF");
        drop(files);
        // 3F00 + A001 was sent once, for the absolute path; the relative ones went by file id.
        let from_mf = card
            .log
            .iter()
            .filter(|c| c.ins == 0xA4 && c.data.as_slice() == [0x3F, 0x00, 0xA0, 0x01])
            .count();
        let by_fid = card
            .log
            .iter()
            .filter(|c| c.ins == 0xA4 && c.p1 == 0x02 && c.data.as_slice() == [0xA0, 0x01])
            .count();
        assert_eq!((from_mf, by_fid), (1, 3));
    }

    #[test]
    fn aid_qualified_paths_and_slices() {
        let mut card = card_with_app();
        let mut files = AppFiles::open(&mut card, 0, AID_CPX_IAS).unwrap();
        let other = Pkcs15Path {
            aid: Some(vec![0xA0, 0, 0, 0, 0x01]),
            file: ObjectPath::Relative(vec![0xA001]),
            slice: None,
        };
        assert_eq!(files.read(&other).unwrap().0, b"in another application");
        let same = Pkcs15Path {
            aid: Some(AID_CPX_IAS.to_vec()),
            file: ObjectPath::Relative(vec![0xA001]),
            slice: None,
        };
        assert_eq!(files.read(&same).unwrap().0, b"in the application DF");
        let slice = Pkcs15Path {
            aid: Some(AID_CPX_IAS_CL.to_vec()),
            file: ObjectPath::Relative(vec![0xC001]),
            slice: Some(crate::path::Slice { index: 300, length: 250 }),
        };
        let (content, size) = files.read(&slice).unwrap();
        assert_eq!(size, Some(600));
        assert_eq!(content, (0u8..=255).cycle().skip(300).take(250).collect::<Vec<_>>());
        let past = Pkcs15Path { slice: Some(crate::path::Slice { index: 500, length: 200 }), ..slice };
        assert!(matches!(files.read(&past), Err(CardError::Malformed { .. })));
        assert!(matches!(files.read(&Pkcs15Path::none()), Err(CardError::Malformed { .. })));
        drop(files);
        // Only the slice was read: 250 bytes in two READ BINARY, from offset 300.
        let reads: Vec<_> = card
            .log
            .iter()
            .filter(|c| c.ins == 0xB0)
            .map(|c| (u16::from_be_bytes([c.p1, c.p2]), c.le))
            .collect();
        assert!(reads.contains(&(300, Some(iso::MAX_READ as u8))), "{reads:?}");
        assert!(
            reads.contains(&(300 + iso::MAX_READ as u16, Some((250 - iso::MAX_READ) as u8))),
            "{reads:?}"
        );
    }

    #[test]
    fn the_contact_application_is_chosen_by_aid_whatever_the_order() {
        let dir = |aids: &[&[u8]]| {
            aids.iter()
                .map(|a| DirApp { aid: a.to_vec(), label: hex::encode(a), path: None })
                .collect::<Vec<_>>()
        };
        for apps in [dir(&[AID_CPX_IAS_CL, AID_CPX_IAS]), dir(&[AID_CPX_IAS, AID_CPX_IAS_CL])] {
            let (generation, app) =
                choose_application(&apps, Some(Generation::Cps3), Interface::Contact).unwrap();
            assert_eq!((generation, app.aid.as_slice()), (Generation::Cps3, AID_CPX_IAS));
            let (_, app) = choose_application(&apps, Some(Generation::Cps3), Interface::Contactless).unwrap();
            assert_eq!(app.aid, AID_CPX_IAS_CL);
            let (_, app) = choose_application(&apps, None, Interface::Contact).unwrap();
            assert_eq!(app.aid, AID_CPX_IAS);
        }
        let only_cl = dir(&[AID_CPX_IAS_CL]);
        assert!(matches!(
            choose_application(&only_cl, Some(Generation::Cps3), Interface::Contact),
            Err(CardError::Missing { .. })
        ));
    }

    #[test]
    fn a_cps3_named_by_its_atr_whose_pkcs15_is_unreadable_is_reported_as_a_cps3() {
        let mut card = FakeCard::new();
        card.files.insert(vec![0x3F00, 0xD003], hex::decode("5A0A8025000001992138450F").unwrap());
        // No EF.DIR, no application: what a CPS3 showing only its ATR and EF.SN.ICC gives.
        let atr = hex::decode("3BAC00402A001225006480000310009000").unwrap();
        let err = identify(&mut card, &atr, &CertCache::memory()).unwrap_err();
        assert_eq!(err.recognised(), Some(Some(Generation::Cps3)), "{err}");
        assert!(err.to_string().starts_with("CPS3 card recognised"), "{err}");
        // EF.SN.ICC was read by path after its SFI was refused.
        assert!(card.log.iter().any(|c| c.ins == 0xB0 && c.p1 == (0x80 | SFI_EF_SN_ICC)));
        // The same card with an unknown ATR is not a CPx to the ATR table, but EF.SN.ICC names it: CPx.
        let mut card2 = FakeCard::new();
        card2.files.insert(vec![0x3F00, 0xD003], hex::decode("5A0A8025000001992138450F").unwrap());
        let err = identify(&mut card2, &[0x3B, 0x00], &CertCache::memory()).unwrap_err();
        assert_eq!(err.recognised(), Some(None), "{err}");
        // A card whose EF.SN.ICC is not the ANS's is not a CPx, whatever its ATR.
        let mut other = FakeCard::new();
        other.files.insert(vec![0x3F00, 0xD003], hex::decode("5A0A8033000001992138450F").unwrap());
        assert!(matches!(identify(&mut other, &atr, &CertCache::memory()), Err(CardError::NotCpx { .. })));
    }
}
