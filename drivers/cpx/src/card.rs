//! The card trait every generation's driver implements, and [`open`], which recognises a card and hands
//! it to the right driver: ATR table first, then the EF.SN.ICC issuer check, then the PKCS#15 structure
//! (from the certificate cache when the card was seen before).

use cpx_pcsc::{Command, Transport};
use serde::Serialize;

use crate::atr::{self, Generation, Interface};
use crate::cache::{CertCache, Layout};
use crate::cps3::Cps3;
use crate::cps4::Cps4;
use crate::efsn;
use crate::error::CardError;
use crate::identity::{self, Identity};
use crate::iso;
use crate::pin::{Pin, PinStatus};
use crate::pkcs15::{self, DirApp, AID_CHIPDOC, AID_CPX_IAS, AID_CPX_IAS_CL};
use crate::scheme::SignScheme;

/// How the card was recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Recognition {
    /// Its ATR is in the table.
    AtrTable { label: &'static str },
    /// Its ATR is in no table, but EF.SN.ICC names the ANS as issuer: a CPx variant.
    IssuerOnly,
}

/// What is known of a card once opened.
#[derive(Debug, Clone, Serialize)]
pub struct CardInfo {
    pub generation: Generation,
    pub interface: Interface,
    #[serde(serialize_with = "hex_ser")]
    pub atr: Vec<u8>,
    pub recognition: Recognition,
    /// Card number from EF.SN.ICC.
    pub serial: String,
    /// The PKCS#15 application used.
    pub application: String,
}

fn hex_ser<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(b))
}

/// What every driver holds: the connection, and what was learnt when the card was opened.
pub struct Opened {
    pub(crate) transport: Box<dyn Transport>,
    pub(crate) info: CardInfo,
    pub(crate) layout: Layout,
    pub(crate) identity: Identity,
}

/// One CPx card, whatever its generation.
pub trait CpxCard: Send {
    fn opened(&self) -> &Opened;
    fn opened_mut(&mut self) -> &mut Opened;

    fn info(&self) -> &CardInfo {
        &self.opened().info
    }
    fn layout(&self) -> &Layout {
        &self.opened().layout
    }
    fn identity(&self) -> &Identity {
        &self.opened().identity
    }
    /// The connection, for transactions and APDU counts.
    fn transport(&mut self) -> &mut dyn Transport {
        self.opened_mut().transport.as_mut()
    }

    /// Tries left on the code porteur, without spending one; `None` when the card has no code porteur
    /// on this interface (contactless).
    fn pin_status(&mut self) -> Result<Option<PinStatus>, CardError>;
    /// Presents the code porteur.
    fn verify_pin(&mut self, pin: &Pin) -> Result<(), CardError>;
    /// Signs a digest computed by the host with the authentication key.
    fn sign(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError>;
    /// The schemes this card's authentication key can produce, preferred first.
    fn schemes(&self) -> &'static [SignScheme];
    /// Forgets what the driver assumed about the card's state (selected DF, open logical channel): called
    /// once the card was reset at the end of a session.
    fn end_session(&mut self);

    /// The authentication certificate (DER).
    fn certificate(&self) -> &[u8] {
        &self.layout().cert_der
    }

    /// APDUs sent since the card was connected.
    fn apdu_count(&mut self) -> u64 {
        self.transport().apdu_count()
    }

    /// The whole card login step, in one PC/SC transaction: tries left (a blocked card gets no VERIFY),
    /// VERIFY, signature. From the VERIFY on, the transaction ends with a reset of the card: no other
    /// program waiting for the card can get it while the code porteur is verified. A reset that fails is
    /// an error ([`cpx_pcsc::PcscError::ResetFailed`]), even after a signature, and the connection must be
    /// made again.
    fn authenticate(&mut self, pin: &Pin, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, CardError> {
        if digest.len() != scheme.digest_len() {
            return Err(CardError::Unsupported { what: format!("digest of {} bytes for {scheme:?}", digest.len()) });
        }
        if !self.schemes().contains(&scheme) {
            return Err(CardError::Unsupported { what: format!("{scheme:?} on this card") });
        }
        let mut session = self.transport().transaction()?;
        let result = (|| {
            match self.pin_status()? {
                None => return Err(CardError::Unsupported { what: "no code porteur on this interface".into() }),
                Some(s) if s.blocked() => return Err(CardError::PinBlocked),
                Some(_) => {}
            }
            session.reset_on_end();
            self.verify_pin(pin)?;
            self.sign(scheme, digest)
        })();
        let reset = session.disposition() == cpx_pcsc::Disposition::Reset;
        let ended = session.end();
        if reset {
            self.end_session();
        }
        match (result, ended) {
            // A failed reset outweighs anything else (the card may be left verified), except a wrong or
            // blocked code porteur: then it is not verified, and the tries left are what the user needs.
            (Err(e @ (CardError::WrongPin { .. } | CardError::PinBlocked)), _) => Err(e),
            (_, Err(e)) if reset => Err(e.into()),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
            (Ok(signature), Ok(())) => Ok(signature),
        }
    }
}

/// Recognises the card behind `transport` and returns its driver, ready (identity known).
pub fn open(mut transport: Box<dyn Transport>, atr: &[u8], cache: &CertCache) -> Result<Box<dyn CpxCard>, CardError> {
    let reading = transport.transaction()?;
    let opened = identify(transport.as_mut(), atr, cache);
    let ended = reading.end();
    let (info, layout) = opened?;
    ended?;
    let identity = identity::from_certificate(&layout.cert_der)?;
    let opened = Opened { transport, info, layout, identity };
    Ok(match opened.info.generation {
        Generation::Cps3 => Box::new(Cps3::new(opened)),
        Generation::Cps4 => Box::new(Cps4::new(opened)),
    })
}

fn not_cpx(atr: &[u8], reason: impl Into<String>) -> CardError {
    CardError::NotCpx { atr: hex::encode_upper(atr), reason: reason.into() }
}

fn identify(t: &mut dyn Transport, atr: &[u8], cache: &CertCache) -> Result<(CardInfo, Layout), CardError> {
    let entry = atr::recognise(atr);
    // EF.SN.ICC by short file identifier: one APDU, and a non-CPx card answers it with an error.
    let r = iso::read_sfi(t, 0x00, 0x1C, 12)?;
    if !r.sw.is_ok() {
        return Err(not_cpx(atr, format!("EF.SN.ICC not readable ({})", r.sw)));
    }
    let sn = match efsn::parse(&r.data) {
        Ok(sn) => sn,
        Err(e) if entry.is_none() => return Err(not_cpx(atr, e.to_string())),
        Err(e) => return Err(e),
    };
    if !sn.issued_by_ans() {
        return Err(not_cpx(atr, format!("issuer {} is not the ANS", hex::encode_upper(&sn.issuer))));
    }
    let actua = read_actua(t)?;
    let interface = entry.map_or(Interface::Contact, |e| e.interface);
    // The same chip shows another application over contactless: the interface is part of the key.
    let cache_key = format!("{}-{}", sn.serial, if interface == Interface::Contact { "contact" } else { "contactless" });
    let layout = match cache.get(&cache_key, actua.as_deref()) {
        Some(layout) => layout,
        None => {
            let layout = read_layout(t, entry.map(|e| e.generation), interface)?;
            cache.put(&cache_key, actua.as_deref(), &layout);
            layout
        }
    };
    let info = CardInfo {
        generation: layout.generation,
        interface,
        atr: atr.to_vec(),
        recognition: entry.map_or(Recognition::IssuerOnly, |e| Recognition::AtrTable { label: e.label }),
        serial: sn.serial,
        application: layout.app_label.clone(),
    };
    Ok((info, layout))
}

/// EF_ACTUA (3F00/D010): absent until the card's first online update.
fn read_actua(t: &mut dyn Transport) -> Result<Option<Vec<u8>>, CardError> {
    let r = iso::select_path(t, 0x00, &[0x3F, 0x00, 0xD0, 0x10])?;
    match r.sw {
        sw if sw.is_ok() => Ok(Some(iso::read_selected(t, 0x00, &r.data)?)),
        iso::FILE_NOT_FOUND => Ok(None),
        sw => Err(CardError::status("SELECT EF_ACTUA", sw)),
    }
}

/// Reads EF.DIR, picks the CPx application and reads its PKCS#15 objects: the authentication key, its
/// certificate and the code porteur guarding it.
fn read_layout(t: &mut dyn Transport, generation: Option<Generation>, interface: Interface) -> Result<Layout, CardError> {
    let dir = pkcs15::parse_dir(&iso::read_file(t, 0x00, &[0x3F, 0x00, 0x2F, 0x00])?)?;
    let find = |aid: &[u8]| dir.iter().find(|a| a.aid == aid);
    let (generation, app): (Generation, &DirApp) = match (generation, interface) {
        (Some(Generation::Cps4), _) => (Generation::Cps4, find(AID_CHIPDOC).ok_or(CardError::Missing { what: "ChipDoc application" })?),
        (_, Interface::Contactless) => (Generation::Cps3, find(AID_CPX_IAS_CL).ok_or(CardError::Missing { what: "contactless CPx application" })?),
        (Some(Generation::Cps3), _) => (Generation::Cps3, find(AID_CPX_IAS).ok_or(CardError::Missing { what: "CPx IAS application" })?),
        // A variant: the applications it lists say which generation it is.
        (None, _) => match (find(AID_CPX_IAS), find(AID_CHIPDOC)) {
            (Some(app), _) => (Generation::Cps3, app),
            (None, Some(app)) => (Generation::Cps4, app),
            (None, None) => return Err(CardError::Missing { what: "CPx application in EF.DIR" }),
        },
    };
    let cla = match generation {
        Generation::Cps3 => 0x00,
        Generation::Cps4 => crate::cps4::open_channel(t)?,
    };
    iso::select_aid(t, cla, &app.aid)?;
    let odf_fcp = iso::send(t, &Command::new(cla, 0xA4, 0x02, 0x04).with_data([0x50, 0x31]))?;
    if !odf_fcp.sw.is_ok() {
        return Err(CardError::status("SELECT EF.ODF", odf_fcp.sw));
    }
    let odf = pkcs15::parse_odf(&iso::read_selected(t, cla, &odf_fcp.data)?)?;
    let mut keys = Vec::new();
    for path in &odf.prkdf {
        keys.extend(pkcs15::parse_prkdf(&iso::read_file(t, cla, path)?)?);
    }
    let key = keys.into_iter().find(|k| k.is_authentication()).ok_or(CardError::Missing { what: "authentication key" })?;
    let mut certs = Vec::new();
    for path in &odf.cdf {
        certs.extend(pkcs15::parse_cdf(&iso::read_file(t, cla, path)?)?);
    }
    let cert = certs.into_iter().find(|c| c.id == key.id).ok_or(CardError::Missing { what: "authentication certificate" })?;
    let pin = match &key.auth_id {
        None => None,
        Some(auth_id) => {
            let mut pins = Vec::new();
            for path in &odf.aodf {
                pins.extend(pkcs15::parse_aodf(&iso::read_file(t, cla, path)?)?);
            }
            Some(pins.into_iter().find(|p| &p.auth_id == auth_id).ok_or(CardError::Missing { what: "code porteur" })?)
        }
    };
    let cert_der = iso::read_file(t, cla, &cert.path)?;
    if cla != 0 {
        crate::cps4::close_channel(t, cla)?;
    }
    Ok(Layout { generation, app_aid: app.aid.clone(), app_label: app.label.clone(), pin, key, cert_label: cert.label, cert_der })
}

/// Maps the status word of a VERIFY (with data) to its meaning.
pub(crate) fn verify_outcome(sw: cpx_pcsc::StatusWord) -> Result<(), CardError> {
    match sw.0 {
        0x9000 => Ok(()),
        0x6983 | 0x63C0 => Err(CardError::PinBlocked),
        s if s & 0xFFF0 == 0x63C0 => Err(CardError::WrongPin { tries_left: (s & 0x0F) as u8 }),
        0x6700 => Err(CardError::PinFormat),
        _ => Err(CardError::status("VERIFY", sw)),
    }
}

/// Maps the status word of a signing command.
pub(crate) fn signature_outcome(name: &'static str, r: cpx_pcsc::Response, modulus_bytes: usize) -> Result<Vec<u8>, CardError> {
    match r.sw.0 {
        0x9000 if r.data.len() == modulus_bytes => Ok(r.data),
        0x9000 => Err(CardError::malformed("signature", format!("{} bytes for a {}-byte modulus", r.data.len(), modulus_bytes))),
        0x6982 => Err(CardError::PinRequired),
        _ => Err(CardError::status(name, r.sw)),
    }
}
