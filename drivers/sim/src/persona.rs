//! The personas: ready-made virtual cards, each a real CPx card generation or a fault to reproduce.

use crate::card::{CardKey, CardOs, CardSpec, Generation, Pin};
use crate::fault::{Fault, Garble, Garbler};
use crate::fs::{FileSystem, ReadAccess, MF};
use crate::latency::Latency;
use crate::pkcs15::{Application, DataObject, KeyObject, Layout, PinObject};
use crate::pki::{self, Holder};

/// ATR of a CPS3 over the contact interface (T=0).
pub const ATR_CPS3: &str = "3BAC00402A001225006480000310009000";
/// Pseudo-ATR of a CPS3 read over contactless.
pub const ATR_CPS3_CL: &str = "3B8F80010031B86404B0ECC173940180829000 0E";
/// ATR of a CPS4 (offers T=0 and T=1).
pub const ATR_CPS4: &str = "3B9B188001001225006480040100009044";
/// A CPS3-like ATR that is in no recognition table (historical bytes changed).
pub const ATR_VARIANT: &str = "3BAC00402A001225009980000310009000";
/// A contactless Mifare Classic 1K (PC/SC part 3 pseudo-ATR): a card, but not a CPx.
pub const ATR_NOT_CPX: &str = "3B8F8001804F0CA000000306030001000000006A";

/// EF.ATR of a real CPS3 (OpenSC #2223; docs/simulator.md), 57 bytes.
const EF_ATR: &str = "804301B846 0404B0ECC1 4703940180 4F088025000001FF0100 E010020201040202010402020100020201 00 7808 06062B8122F87802 82029000";
/// AID of the CPS3's contact application « CPx IAS ».
pub const AID_CPX_IAS: &str = "E828BD080F8025000001FF0010";
/// AID of the CPS3's contactless application « CPx IAS CL ».
pub const AID_CPX_IAS_CL: &str = "E828BD080F8025000001FF0020";
/// AID of the CPS4's ChipDoc application.
pub const AID_ECC_ROOT: &str = "8025000001FF0100";
/// AID of the CPS2ter application (a step of the ChipDoc `69 85` recovery).
pub const AID_CPS2TER: &str = "8025000001FF0002";
/// AID of the IDS application (a step of the ChipDoc `69 85` recovery).
pub const AID_IDS: &str = "A0000001510000";
/// The code de déblocage of every persona unless `--unblock` says otherwise.
pub const UNBLOCK_CODE: &str = "12345678";
/// Length of the code de déblocage: 8 digits (what CPS Gestion asked for; not in any public trace).
pub const UNBLOCK_LEN: usize = 8;
/// Tries of the code de déblocage (not in any public trace: the code porteur's 3).
pub const UNBLOCK_TRIES: u8 = 3;
/// Reference of the code de déblocage: the CHV after the code porteur's, global on a CPS3 (`02`), local
/// on a CPS4 (`82`) like its code porteur (`81`). Not in any public trace: docs/simulator.md.
pub const UNBLOCK_REF_CPS3: u8 = 0x02;
/// See [`UNBLOCK_REF_CPS3`].
pub const UNBLOCK_REF_CPS4: u8 = 0x82;

/// Size of the real CPS3's EF.DIR (its FCP says `80 02 00 65`).
pub const EF_DIR_REAL_SIZE: usize = 101;

/// What the command line may change in a persona.
#[derive(Clone, Debug)]
pub struct Options {
    /// The code porteur (4 digits).
    pub pin: String,
    /// Tries left (default: the persona's).
    pub tries: Option<u8>,
    /// The code de déblocage (8 digits).
    pub unblock: String,
    /// Tries left on the code de déblocage (default: the persona's).
    pub unblock_tries: Option<u8>,
    /// Content of EF_ACTUA (3F00/D010); absent (`6A82`) when None, as on a card never updated online.
    pub actua: Option<Vec<u8>>,
    /// Spoil answers: kind, share of answers spoilt, seed.
    pub garble: Option<(Garble, f64, u64)>,
    /// Leave the reader on the first command with this INS (`pull-mid-sign` is `cps3` with 0x88).
    pub pull_on: Option<u8>,
    /// PKCS#15 layout (default: the persona's).
    pub layout: Option<Layout>,
    /// Card number in EF.SN.ICC and TokenInfo, 9 digits (default: the persona's).
    pub serial: Option<String>,
    /// The test holder whose keys and certificates the card carries (default: the persona's); with
    /// `serial` unchanged, `pki::DUPONT_RENEWED` on `cps3` is a card whose certificate changed under the
    /// same serial.
    pub holder: Option<Holder>,
    /// How long the card takes to answer (off by default).
    pub latency: Latency,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pin: "1234".into(),
            tries: None,
            unblock: UNBLOCK_CODE.into(),
            unblock_tries: None,
            actua: None,
            garble: None,
            pull_on: None,
            layout: None,
            serial: None,
            holder: None,
            latency: Latency::OFF,
        }
    }
}

impl Options {
    /// Checks what the command line gave: a 4-digit PIN, a 9-digit serial.
    pub fn check(&self) -> Result<(), String> {
        if self.pin.len() != 4 || !self.pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err("--pin takes 4 digits".into());
        }
        if self.unblock.len() != UNBLOCK_LEN || !self.unblock.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("--unblock takes {UNBLOCK_LEN} digits"));
        }
        if let Some(serial) = &self.serial {
            if serial.len() != 9 || !serial.bytes().all(|b| b.is_ascii_digit()) {
                return Err(
                    "--serial takes 9 digits (the card number after the ANS issuer 80 25 00 00 01)".into()
                );
            }
        }
        Ok(())
    }
}

/// A ready-made virtual card: a name for the command line and the tests, and how to build it.
pub struct Persona {
    /// Name given to `cpx-sim insert`.
    pub name: &'static str,
    /// What the card is for (`cpx-sim personas`).
    pub description: &'static str,
    /// The PKCS#15 layout the persona has unless `Options::layout` says otherwise.
    pub layout: Layout,
    build: fn(&Options, Layout) -> CardOs,
}

impl Persona {
    /// Builds the card with the command line's changes applied.
    pub fn card(&self, options: &Options) -> CardOs {
        let mut card = (self.build)(options, options.layout.unwrap_or(self.layout));
        card.garbler = options.garble.map(|(kind, rate, seed)| Garbler::new(kind, rate, seed));
        if let Some(ins) = options.pull_on {
            card.spec.fault = Fault::PullOn(ins);
        }
        card.latency = options.latency;
        card
    }
}

const REAL: Layout = Layout::Real;
const ABSOLUTE: Layout = Layout::Absolute;

/// Every persona, in the order `cpx-sim personas` lists them.
pub const PERSONAS: &[Persona] = &[
    Persona { name: "cps3", description: "CPS3 contact (IAS-ECC, T=0), Dr Jean DUPONT, Médecin, RPPS; the real cards' layout (relative paths)", layout: REAL, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 3, Fault::None, "992138450", None) },
    Persona { name: "cps3-abs", description: "the same CPS3 with every PKCS#15 path absolute from 3F00 (the older layout)", layout: ABSOLUTE, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 3, Fault::None, "992138450", None) },
    Persona { name: "cps3-cl", description: "CPS3 over contactless: no code porteur, technical key only, no signature", layout: REAL, build: cps3_cl },
    Persona { name: "cps4", description: "CPS4 (NXP ChipDoc on logical channel 1, RSA-PSS), Claire MARTIN, Pharmacien; ATR offers T=0 and T=1", layout: ABSOLUTE, build: |o, l| cps4(o, l, false, Fault::None, 3) },
    Persona { name: "cps4-t0", description: "CPS4 whose ChipDoc answers as a T=0 card (61xx then GET RESPONSE, 6Cxx), same ATR", layout: ABSOLUTE, build: |o, l| cps4(o, l, true, Fault::None, 3) },
    Persona { name: "cps4-6985", description: "CPS4 that answers 69 85 to the first MSE after VERIFY until the ChipDoc recovery sequence", layout: ABSOLUTE, build: |o, l| cps4(o, l, false, Fault::ChipDoc6985, 3) },
    Persona { name: "cps3-blocked", description: "CPS3 whose code porteur is blocked (0 tries left); code de déblocage 12345678", layout: REAL, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 0, Fault::None, "992138450", None) },
    Persona { name: "cps3-dead", description: "CPS3 whose code porteur and code de déblocage are both blocked: the card must be replaced", layout: REAL, build: |o, l| unblock_blocked(cps3(o, l, pki::DUPONT, ATR_CPS3, 0, Fault::None, "992138450", None), o) },
    Persona { name: "cps4-blocked", description: "CPS4 whose code porteur is blocked (0 tries left); code de déblocage 12345678", layout: ABSOLUTE, build: |o, l| cps4(o, l, false, Fault::None, 0) },
    Persona { name: "cps3-one-try", description: "CPS3 with one try left", layout: REAL, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 1, Fault::None, "992138450", None) },
    Persona { name: "cps3-expired", description: "CPS3 whose certificates expired on 2023-01-01, Paul LEROY", layout: REAL, build: |o, l| cps3(o, l, pki::LEROY, ATR_CPS3, 3, Fault::None, "994100003", None) },
    Persona { name: "cps3-variant", description: "CPx card with an ATR in no table, ANS issuer in EF.SN.ICC, Anne ROUX (ADELI)", layout: REAL, build: |o, l| cps3(o, l, pki::ROUX, ATR_VARIANT, 3, Fault::None, "995100004", None) },
    Persona { name: "cpe", description: "CPE (carte de personnel d'établissement) on a CPS3, Sophie MOREAU, FINESS/identifiant interne 30B0238838/CPET00001, CENTRE HOSPITALIER DE TEST; type in CPS_ID_CARD", layout: REAL, build: |o, l| cps3(o, l, pki::MOREAU, ATR_CPS3, 3, Fault::None, "996100005", Some(2)) },
    Persona { name: "cpe-anonyme", description: "non-nominative CPE on a CPS3: no SN/GN, O = CLINIQUE DE TEST DU PARC, CN = 3990000011/ACCUEIL01; no CPS_ID_CARD (type from the certificate)", layout: REAL, build: |o, l| cps3(o, l, pki::ACCUEIL, ATR_CPS3, 3, Fault::None, "996100006", None) },
    Persona { name: "cpa", description: "CPA (carte de personnel autorisé) on a CPS4, Marie BERNARD, secretary of a practice, RPPS/identifiant interne 699700123456/SEC01; type in CPS_ID_CARD", layout: ABSOLUTE, build: cpa },
    Persona { name: "cpf", description: "CPF (carte de professionnel en formation) on a CPS3, Lucas PETIT, intern, RPPS 899700456789; type in CPS_ID_CARD only (its certificate looks like a CPS's)", layout: REAL, build: |o, l| cps3(o, l, pki::PETIT, ATR_CPS3, 3, Fault::None, "996100008", Some(1)) },
    Persona { name: "not-cpx", description: "another card (Mifare Classic 1K): not a CPx", layout: REAL, build: not_cpx },
    Persona { name: "mute", description: "a card that gives an ATR and then never answers", layout: REAL, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 3, Fault::Mute, "992138450", None) },
    Persona { name: "pull-mid-sign", description: "CPS3 that leaves the reader during INTERNAL AUTHENTICATE", layout: REAL, build: |o, l| cps3(o, l, pki::DUPONT, ATR_CPS3, 3, Fault::PullOn(0x88), "992138450", None) },
];

/// The persona with this name.
pub fn find(name: &str) -> Option<&'static Persona> {
    PERSONAS.iter().find(|p| p.name == name)
}

/// Bytes of a hex constant (spaces allowed); panics on a bad constant (they are all in this crate).
pub fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("persona constant is hex")
}

/// EF.SN.ICC: tag 5A, the ANS issuer `80 25 00 00 01`, then the card number in BCD ending with F.
fn ef_sn_icc(serial: &str) -> Vec<u8> {
    let digits = format!("{serial}F");
    [vec![0x5A, 0x0A], hex("8025000001"), hex(&digits)].concat()
}

fn pin(options: &Options, reference: u8, tries: u8) -> Pin {
    let mut value = options.pin.as_bytes().to_vec();
    value.resize(8, 0xFF);
    Pin { reference, value, max_tries: 3, tries_left: options.tries.unwrap_or(tries) }
}

fn unblock(options: &Options, reference: u8) -> Pin {
    Pin {
        reference,
        value: options.unblock.as_bytes().to_vec(),
        max_tries: UNBLOCK_TRIES,
        tries_left: options.unblock_tries.unwrap_or(UNBLOCK_TRIES),
    }
}

/// The card with its code de déblocage blocked too (unless `--unblock-tries` says otherwise).
fn unblock_blocked(mut card: CardOs, options: &Options) -> CardOs {
    if let Some(code) = card.spec.unblock.as_mut() {
        code.tries_left = options.unblock_tries.unwrap_or(0);
    }
    card
}

/// The MF's own files, with the short file identifiers of the real FCPs: EF.SN.ICC `1C`, EF.ATR `1D`
/// (EF.DIR `1E` is added by the persona).
fn common_mf(options: &Options, mf_aid: Option<Vec<u8>>, serial: &str) -> FileSystem {
    let mut fs = FileSystem::new(mf_aid);
    fs.add_ef_with(MF, 0x2F01, hex(EF_ATR), Some(0x1D), ReadAccess::Always);
    fs.add_ef_with(MF, 0xD003, ef_sn_icc(serial), Some(0x1C), ReadAccess::Always);
    if let Some(actua) = &options.actua {
        fs.add_ef(MF, 0xD010, actua.clone());
    }
    fs
}

/// The application with the code porteur, the signature key (non-repudiation) and the authentication
/// key, as on every contact CPx card; `refs` = (PIN, signature key, authentication key) references.
fn pin_application(
    label: &'static str,
    aid: &str,
    token_label: &'static str,
    serial: &str,
    holder: Holder,
    refs: (u8, u8, u8),
    card_code: Option<u8>,
) -> Application {
    let (pin, sign, auth) = refs;
    Application {
        label,
        aid: hex(aid),
        df_fid: 0x0001,
        token_label,
        serial: serial.as_bytes().to_vec(),
        pins: vec![PinObject {
            label: "Code porteur",
            auth_id: 1,
            reference: pin,
            min_len: 4,
            stored_len: 8,
            pad: 0xFF,
        }],
        keys: vec![
            KeyObject {
                key_label: "CPS_PRIV_SIG",
                cert_label: "Certificat de Signature CPS",
                id: 1,
                reference: sign,
                usage: &[9],
                pin: Some(1),
                cert_fid: 0xC001,
                cert_der: holder.sign.cert_der(),
            },
            KeyObject {
                key_label: "CPS_PRIV_AUT",
                cert_label: "Certificat d'Authentification CPS",
                id: 2,
                reference: auth,
                usage: &[1, 2],
                pin: Some(1),
                cert_fid: 0xC002,
                cert_der: holder.auth.cert_der(),
            },
        ],
        data: card_code.map(card_data).into_iter().collect(),
    }
}

/// The `CPS_ID_CARD` data object, whose first byte is the card type code of the CPS2ter-compatible data
/// (0 CPS, 1 CPF, 2 CPE, 3 CPA; docs/card-facts.md#card-types: the byte's place is inferred).
fn card_data(code: u8) -> DataObject {
    DataObject { label: "CPS_ID_CARD", fid: 0xD001, value: vec![code, 0x00] }
}

/// EF.DIR: in the real layout the contactless record comes first and the file is 101 bytes, the rest
/// after the records being 00 (what an ISO 7816-4 reader takes as the end); the absolute layout lists the
/// contact application first, with nothing after the records.
fn ef_dir(layout: Layout, contact: &Application, others: &[&Application]) -> Vec<u8> {
    match layout {
        Layout::Real => {
            let mut dir: Vec<u8> = others
                .iter()
                .map(|a| a.dir_record(layout))
                .chain([contact.dir_record(layout)])
                .collect::<Vec<_>>()
                .concat();
            if dir.len() < EF_DIR_REAL_SIZE {
                dir.resize(EF_DIR_REAL_SIZE, 0x00);
            }
            dir
        }
        Layout::Absolute => [contact.dir_record(layout)]
            .into_iter()
            .chain(others.iter().map(|a| a.dir_record(layout)))
            .collect::<Vec<_>>()
            .concat(),
    }
}

#[allow(clippy::too_many_arguments)] // one line per persona in PERSONAS reads better than a builder
fn cps3(
    options: &Options,
    layout: Layout,
    holder: Holder,
    atr: &str,
    tries: u8,
    fault: Fault,
    serial: &str,
    card_code: Option<u8>,
) -> CardOs {
    let holder = options.holder.unwrap_or(holder);
    let serial = options.serial.as_deref().unwrap_or(serial);
    let mut fs = common_mf(options, Some(hex(AID_ECC_ROOT)), serial);
    let contact = pin_application(
        "CPx IAS",
        AID_CPX_IAS,
        "CPS3 (code porteur)",
        serial,
        holder,
        (0x01, 0x81, 0x82),
        card_code,
    );
    let cl = cl_application(serial);
    fs.add_ef_with(MF, 0x2F00, ef_dir(layout, &contact, &[&cl]), Some(0x1E), ReadAccess::Always);
    let contact_df = contact.install(&mut fs, false, layout);
    fs.add_ef_with(contact_df, 0x7001, vec![0; 16], None, ReadAccess::ContactOnly);
    let cl_df = cl.install(&mut fs, false, layout);
    let keys = vec![
        CardKey {
            reference: 0x81,
            key: holder.sign.private_key(),
            internal_auth: false,
            cds: true,
            needs_pin: true,
            app_df: contact_df,
        },
        CardKey {
            reference: 0x82,
            key: holder.auth.private_key(),
            internal_auth: true,
            cds: false,
            needs_pin: true,
            app_df: contact_df,
        },
        CardKey {
            reference: 0x83,
            key: pki::DUPONT_TECH.private_key(),
            internal_auth: true,
            cds: false,
            needs_pin: false,
            app_df: cl_df,
        },
    ];
    CardOs::new(CardSpec {
        generation: Generation::Cps3,
        atr: hex(atr),
        t0: true,
        contactless: false,
        fs,
        keys,
        pin: Some(pin(options, 0x01, tries)),
        unblock: Some(unblock(options, UNBLOCK_REF_CPS3)),
        fault,
    })
}

fn cl_application(serial: &str) -> Application {
    Application {
        label: "CPx IAS CL",
        aid: hex(AID_CPX_IAS_CL),
        df_fid: 0x0002,
        token_label: "CPS3 (sans contact)",
        serial: serial.as_bytes().to_vec(),
        pins: vec![],
        data: vec![],
        keys: vec![KeyObject {
            key_label: "CPS_PRIV_TECH_AUT",
            cert_label: "Certificat Technique CPS",
            id: 3,
            reference: 0x83,
            usage: &[2],
            pin: None,
            cert_fid: 0xC003,
            cert_der: pki::DUPONT_TECH.cert_der(),
        }],
    }
}

/// The same chip read through the contactless interface: the contact application's files are closed,
/// there is no code porteur to present and signing is refused.
fn cps3_cl(options: &Options, layout: Layout) -> CardOs {
    let mut card = cps3(options, layout, pki::DUPONT, ATR_CPS3_CL, 3, Fault::None, "992138450", None);
    card.spec.contactless = true;
    card.spec.pin = None;
    card.spec.unblock = None;
    for node in card.spec.fs.nodes.iter_mut() {
        if let crate::fs::Body::Ef { read, .. } = &mut node.body {
            if node.parent == Some(1) || node.fid == 0x7001 {
                *read = ReadAccess::ContactOnly;
            }
        }
    }
    card
}

/// A CPS4. `t0`: the ChipDoc answers case-4 commands the T=0 way (`61xx`, then GET RESPONSE).
fn cps4(options: &Options, layout: Layout, t0: bool, fault: Fault, tries: u8) -> CardOs {
    cps4_of(options, layout, t0, fault, (pki::MARTIN, "993100002"), None, tries)
}

/// The CPA: a CPS4 platform whose `CPS_ID_CARD` says CPA.
fn cpa(options: &Options, layout: Layout) -> CardOs {
    cps4_of(options, layout, false, Fault::None, (pki::BERNARD, "996100007"), Some(3), 3)
}

fn cps4_of(
    options: &Options,
    layout: Layout,
    t0: bool,
    fault: Fault,
    (holder, serial): (Holder, &str),
    card_code: Option<u8>,
    tries: u8,
) -> CardOs {
    let serial = options.serial.as_deref().unwrap_or(serial);
    let holder = options.holder.unwrap_or(holder);
    let mut fs = common_mf(options, None, serial);
    // ChipDoc: keys 0x10 (signature) and 0x20 (authentication); a local PIN reference (b8 set).
    let chipdoc = pin_application(
        "CPx ChipDoc",
        AID_ECC_ROOT,
        "CPS4 (code porteur)",
        serial,
        holder,
        (0x81, 0x10, 0x20),
        card_code,
    );
    fs.add_ef_with(MF, 0x2F00, ef_dir(layout, &chipdoc, &[]), Some(0x1E), ReadAccess::Always);
    let app = chipdoc.install(&mut fs, false, layout);
    fs.add_df(MF, 0x0010, Some(hex(AID_CPS2TER)));
    fs.add_df(MF, 0x0011, Some(hex(AID_IDS)));
    let keys = vec![
        CardKey {
            reference: 0x10,
            key: holder.sign.private_key(),
            internal_auth: false,
            cds: true,
            needs_pin: true,
            app_df: app,
        },
        CardKey {
            reference: 0x20,
            key: holder.auth.private_key(),
            internal_auth: false,
            cds: true,
            needs_pin: true,
            app_df: app,
        },
    ];
    CardOs::new(CardSpec {
        generation: Generation::Cps4,
        atr: hex(ATR_CPS4),
        t0,
        contactless: false,
        fs,
        keys,
        pin: Some(pin(options, 0x81, tries)),
        unblock: Some(unblock(options, UNBLOCK_REF_CPS4)),
        fault,
    })
}

fn not_cpx(_: &Options, _: Layout) -> CardOs {
    let fs = FileSystem::new(None);
    CardOs::new(CardSpec {
        generation: Generation::Cps3,
        atr: hex(ATR_NOT_CPX),
        t0: false,
        contactless: true,
        fs,
        keys: vec![],
        pin: None,
        unblock: None,
        fault: Fault::None,
    })
}
