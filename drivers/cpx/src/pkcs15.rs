//! PKCS#15 structures read from the card: EF.DIR, ODF, AODF (PINs), PrKDF (private keys) and CDF
//! (certificates). Only the fields the agent uses are kept. Parsers take card bytes and never panic.

use serde::{Deserialize, Serialize};

use crate::error::CardError;
use crate::path::Pkcs15Path;
use crate::tlv::{self, Tlv};

/// An application listed in EF.DIR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirApp {
    /// The application identifier.
    pub aid: Vec<u8>,
    /// The application's label.
    pub label: String,
    /// Path of the application DF, when EF.DIR gives it.
    pub path: Option<Vec<u8>>,
}

/// The application AIDs of CPx cards (docs/card-facts.md#applications-efdir).
pub const AID_CPX_IAS: &[u8] =
    &[0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x10];
/// The contactless CPx application of the CPS3.
pub const AID_CPX_IAS_CL: &[u8] =
    &[0xE8, 0x28, 0xBD, 0x08, 0x0F, 0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x00, 0x20];
/// ChipDoc applet of the CPS4 (also the DF name of the CPS3's MF).
pub const AID_CHIPDOC: &[u8] = &[0x80, 0x25, 0x00, 0x00, 0x01, 0xFF, 0x01, 0x00];

fn bad(what: &'static str, detail: &str) -> CardError {
    CardError::malformed(what, detail)
}

fn utf8(t: &Tlv) -> String {
    String::from_utf8_lossy(t.value).into_owned()
}

/// EF.DIR: the `61` application templates.
pub fn parse_dir(bytes: &[u8]) -> Result<Vec<DirApp>, CardError> {
    let mut apps = Vec::new();
    for rec in tlv::parse_all(bytes)? {
        if rec.tag != 0x61 {
            continue;
        }
        let mut app = DirApp { aid: Vec::new(), label: String::new(), path: None };
        for t in rec.children()? {
            match t.tag {
                0x4F => app.aid = t.value.to_vec(),
                0x50 => app.label = utf8(&t),
                0x51 => app.path = Some(t.value.to_vec()),
                _ => {}
            }
        }
        if app.aid.is_empty() {
            return Err(bad("EF.DIR", "application without AID"));
        }
        apps.push(app);
    }
    Ok(apps)
}

/// The application with this AID, wherever EF.DIR lists it.
pub fn find_app<'a>(dir: &'a [DirApp], aid: &[u8]) -> Option<&'a DirApp> {
    dir.iter().find(|a| a.aid == aid)
}

/// Where the ODF says the directory files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Odf {
    /// Where the private key directories (PrKDF) are.
    pub prkdf: Vec<Pkcs15Path>,
    /// Where the certificate directories (CDF) are.
    pub cdf: Vec<Pkcs15Path>,
    /// Where the authentication object directories (AODF, the PINs) are.
    pub aodf: Vec<Pkcs15Path>,
    /// Where the data object directories (DODF) are.
    pub dodf: Vec<Pkcs15Path>,
}

fn path_of(t: &Tlv) -> Result<Pkcs15Path, CardError> {
    Pkcs15Path::find_in(t)
}

/// Parses EF.ODF: where the PrKDF, CDF and AODF files are.
pub fn parse_odf(bytes: &[u8]) -> Result<Odf, CardError> {
    let mut odf = Odf::default();
    for t in tlv::parse_all(bytes)? {
        let slot = match t.tag {
            0xA0 => &mut odf.prkdf,
            0xA4 => &mut odf.cdf,
            0xA8 => &mut odf.aodf,
            0xA7 => &mut odf.dodf,
            _ => continue,
        };
        slot.push(path_of(&t)?);
    }
    Ok(odf)
}

/// A PIN of the AODF, with what is needed to build a VERIFY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinInfo {
    /// The PIN's label (« Code porteur »…).
    pub label: String,
    /// The authId keys name to say this PIN guards them.
    pub auth_id: Vec<u8>,
    /// 0 BCD, 1 ASCII digits, 2 UTF-8.
    pub pin_type: u8,
    /// Fewest digits accepted.
    pub min_length: usize,
    /// Bytes the VERIFY data takes (the code porteur padded).
    pub stored_length: usize,
    /// The PIN reference in VERIFY's P2.
    pub reference: u8,
    /// The padding byte, when the card gives one.
    pub pad_char: Option<u8>,
    /// The code porteur is padded to `stored_length`.
    pub needs_padding: bool,
    /// A PIN of the application DF rather than a global one (P2 bit 8).
    pub local: bool,
    /// The DF to select before presenting it (3F00 for the CPx global CHV).
    pub path: Option<Pkcs15Path>,
}

/// A private key of the PrKDF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's label.
    pub label: String,
    /// The PKCS#15 identifier linking the key to its certificate.
    pub id: Vec<u8>,
    /// KeyUsageFlags bit numbers (1 decrypt, 2 sign, 9 nonRepudiation…).
    pub usage: Vec<u32>,
    /// The key reference for MSE SET.
    pub reference: u8,
    /// authId of the PIN guarding it.
    pub auth_id: Option<Vec<u8>>,
    /// Usually empty or only the application's AID: keys are used by reference.
    pub path: Option<Pkcs15Path>,
    /// The RSA modulus size, when the PrKDF gives it.
    pub modulus_bits: Option<u32>,
}

impl KeyInfo {
    /// KeyUsageFlags bit: sign.
    pub const SIGN: u32 = 2;
    /// KeyUsageFlags bit: non-repudiation (the qualified signature key).
    pub const NON_REPUDIATION: u32 = 9;
    /// The authentication key: signs, but is not the non-repudiation (qualified signature) key.
    pub fn is_authentication(&self) -> bool {
        self.usage.contains(&Self::SIGN) && !self.usage.contains(&Self::NON_REPUDIATION)
    }
}

/// A certificate of the CDF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// The certificate's label.
    pub label: String,
    /// The identifier of the key it certifies.
    pub id: Vec<u8>,
    /// Where the certificate file is.
    pub path: Pkcs15Path,
}

/// `SEQUENCE { common SEQ, class SEQ, [0] subclass?, [1] type }` → (common, class, type).
fn object<'a>(obj: &Tlv<'a>, what: &'static str) -> Result<(Tlv<'a>, Tlv<'a>, Tlv<'a>), CardError> {
    let parts = obj.children()?;
    let common = *parts.first().filter(|t| t.tag == 0x30).ok_or_else(|| bad(what, "no common attributes"))?;
    let class = *parts.get(1).filter(|t| t.tag == 0x30).ok_or_else(|| bad(what, "no class attributes"))?;
    let typed = *parts.iter().find(|t| t.tag == 0xA1).ok_or_else(|| bad(what, "no type attributes"))?;
    let inner = typed.children()?.into_iter().next().ok_or_else(|| bad(what, "empty type attributes"))?;
    Ok((common, class, inner))
}

fn label_and_auth(common: &Tlv) -> Result<(String, Option<Vec<u8>>), CardError> {
    let mut label = String::new();
    let mut auth = None;
    for t in common.children()? {
        match t.tag {
            0x0C => label = utf8(&t),
            0x04 => auth = Some(t.value.to_vec()),
            _ => {}
        }
    }
    Ok((label, auth))
}

fn objects(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, CardError> {
    Ok(tlv::parse_all(bytes)?.into_iter().filter(|t| t.tag == 0x30).collect())
}

fn small(v: &[u8], what: &'static str) -> Result<usize, CardError> {
    let n = tlv::unsigned(v)?;
    if n > 4096 {
        return Err(bad(what, "value out of range"));
    }
    Ok(n as usize)
}

/// Parses an AODF: the PINs (code porteur) of the application.
pub fn parse_aodf(bytes: &[u8]) -> Result<Vec<PinInfo>, CardError> {
    const W: &str = "AODF";
    objects(bytes)?
        .iter()
        .map(|obj| {
            let (common, class, attrs) = object(obj, W)?;
            let (label, _) = label_and_auth(&common)?;
            let auth_id = class.child(0x04)?.ok_or_else(|| bad(W, "no authId"))?.value.to_vec();
            let fields = attrs.children()?;
            let flags = fields
                .iter()
                .find(|t| t.tag == 0x03)
                .map(|t| tlv::bit_string(t.value))
                .transpose()?
                .unwrap_or_default();
            let ints: Vec<&Tlv> = fields.iter().filter(|t| t.tag == 0x02).collect();
            let pin_type =
                fields.iter().find(|t| t.tag == 0x0A).and_then(|t| t.value.first().copied()).unwrap_or(1);
            let min_length =
                ints.first().map(|t| small(t.value, W)).transpose()?.ok_or_else(|| bad(W, "no minLength"))?;
            let stored_length = ints
                .get(1)
                .map(|t| small(t.value, W))
                .transpose()?
                .ok_or_else(|| bad(W, "no storedLength"))?;
            let reference = match fields.iter().find(|t| t.tag == 0x80) {
                Some(t) => tlv::unsigned(t.value)? as u8,
                None => 0,
            };
            let pad_char = fields.iter().find(|t| t.tag == 0x04).and_then(|t| t.value.first().copied());
            let path = fields.iter().find(|t| t.tag == 0x30).map(path_of).transpose()?;
            if stored_length < min_length || stored_length > 64 {
                return Err(bad(W, "PIN lengths inconsistent"));
            }
            Ok(PinInfo {
                label,
                auth_id,
                pin_type,
                min_length,
                stored_length,
                reference,
                pad_char,
                needs_padding: flags.contains(&5),
                local: flags.contains(&1),
                path,
            })
        })
        .collect()
}

/// Parses a PrKDF: the private keys of the application.
pub fn parse_prkdf(bytes: &[u8]) -> Result<Vec<KeyInfo>, CardError> {
    const W: &str = "PrKDF";
    objects(bytes)?
        .iter()
        .map(|obj| {
            let (common, class, attrs) = object(obj, W)?;
            let (label, auth_id) = label_and_auth(&common)?;
            let fields = class.children()?;
            let id = fields.iter().find(|t| t.tag == 0x04).ok_or_else(|| bad(W, "no key ID"))?.value.to_vec();
            // usage is the first BIT STRING, accessFlags the second.
            let usage = fields
                .iter()
                .find(|t| t.tag == 0x03)
                .map(|t| tlv::bit_string(t.value))
                .transpose()?
                .unwrap_or_default();
            let reference = fields
                .iter()
                .find(|t| t.tag == 0x02)
                .map(|t| tlv::unsigned(t.value))
                .transpose()?
                .ok_or_else(|| bad(W, "no key reference"))?;
            let reference = u8::try_from(reference).map_err(|_| bad(W, "key reference out of range"))?;
            let rsa = attrs.children()?;
            let path = rsa.iter().find(|t| t.tag == 0x30).map(path_of).transpose()?;
            let modulus_bits = rsa
                .iter()
                .find(|t| t.tag == 0x02)
                .map(|t| small(t.value, W).map(|v| v as u32))
                .transpose()?;
            Ok(KeyInfo { label, id, usage, reference, auth_id, path, modulus_bits })
        })
        .collect()
}

/// A data object of the DODF (`CPS_ID_CARD`…): its label and where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataInfo {
    /// The object's label.
    pub label: String,
    /// Where its value is.
    pub path: Pkcs15Path,
}

/// Parses a DODF: the application's opaque data objects (`SEQUENCE { common, commonData, [1] Path }`).
pub fn parse_dodf(bytes: &[u8]) -> Result<Vec<DataInfo>, CardError> {
    const W: &str = "DODF";
    objects(bytes)?
        .iter()
        .map(|obj| {
            let (common, _, value) = object(obj, W)?;
            let (label, _) = label_and_auth(&common)?;
            Ok(DataInfo { label, path: path_of(&value)? })
        })
        .collect()
}

/// Parses a CDF: the certificates of the application.
pub fn parse_cdf(bytes: &[u8]) -> Result<Vec<CertInfo>, CardError> {
    const W: &str = "CDF";
    objects(bytes)?
        .iter()
        .map(|obj| {
            let (common, class, attrs) = object(obj, W)?;
            let (label, _) = label_and_auth(&common)?;
            let id = class.child(0x04)?.ok_or_else(|| bad(W, "no certificate ID"))?.value.to_vec();
            Ok(CertInfo { label, id, path: path_of(&attrs)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ObjectPath;
    use proptest::prelude::*;

    // Bytes as the virtual CPS3 serves them (captured from its APDU log), which OpenSC's pkcs15-tool also reads.
    const DIR: &str = "611E4F0DE828BD080F8025000001FF001050074350782049415351043F00000161214F0DE828BD080F8025000001FF0020500A4350782049415320434C51043F000002";
    const ODF: &str = "A00A300804063F0000027002A40A300804063F0000027003";
    const PRKDF: &str = "304730170C114350535F505249565F544543485F41555403020780301C040EE828BD080F8025000001FF00200303020520030205A002020083A10E300C300604043F00000202020800";

    /// A DODF listing `CPS_ID_CARD` in file `D001` of the application, as the virtual CPE serves it.
    const DODF: &str = "301C30100C0B4350535F49445F43415244030100 3000A10630040402D001";

    #[test]
    fn data_objects_of_the_dodf() {
        let odf =
            parse_odf(&hex::decode("A00630040402 7002A70630040402 7005".replace(' ', "")).unwrap()).unwrap();
        assert_eq!(odf.dodf[0].file, ObjectPath::Relative(vec![0x7005]));
        let objects = parse_dodf(&hex::decode(DODF.replace(' ', "")).unwrap()).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].label, "CPS_ID_CARD");
        assert_eq!(objects[0].path.file, ObjectPath::Relative(vec![0xD001]));
        assert!(parse_dodf(&hex::decode("30033001 00".replace(' ', "")).unwrap()).is_err());
    }

    #[test]
    fn parses_the_structures_of_a_cps3() {
        let apps = parse_dir(&hex::decode(DIR).unwrap()).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].aid, AID_CPX_IAS);
        assert_eq!(apps[1].label, "CPx IAS CL");
        assert_eq!(apps[1].path.as_deref(), Some(&[0x3F, 0, 0, 2][..]));
        let odf = parse_odf(&hex::decode(ODF).unwrap()).unwrap();
        assert_eq!(
            odf.prkdf,
            vec![Pkcs15Path { aid: None, file: ObjectPath::Absolute(vec![0x0002, 0x7002]), slice: None }]
        );
        let keys = parse_prkdf(&hex::decode(PRKDF).unwrap()).unwrap();
        assert_eq!(keys[0].reference, 0x83);
        assert_eq!(keys[0].usage, vec![2]);
        assert_eq!(keys[0].modulus_bits, Some(2048));
        assert!(keys[0].is_authentication());
    }

    /// A PrKDF entry as a real CPS3 writes it: the authentication key, reference 0x82, its path only
    /// the application's AID (docs/card-facts.md#pkcs15-paths-isoiec-7816-15), and an ODF with paths
    /// relative to the application DF.
    #[test]
    fn reads_a_real_layout_relative_paths_and_a_key_path_holding_only_the_aid() {
        let odf = parse_odf(
            &hex::decode("A0063004040260 01A4063004040260 02A806300404026003".replace(' ', "")).unwrap(),
        )
        .unwrap();
        assert_eq!(odf.prkdf[0].file, ObjectPath::Relative(vec![0x6001]));
        assert_eq!(odf.cdf[0].file, ObjectPath::Relative(vec![0x6002]));
        let tlv = |tag: &str, v: &str| format!("{tag}{:02X}{v}", v.len() / 2);
        let key = |path: &str| {
            let common = tlv("30", &(tlv("0C", &hex::encode_upper("CPS_PRIV_AUT")) + &tlv("04", "01")));
            let class =
                tlv("30", &(tlv("04", "02") + &tlv("03", "0560") + &tlv("03", "03B8") + &tlv("02", "82")));
            let rsa = tlv("A1", &tlv("30", &(path.to_owned() + &tlv("02", "0800"))));
            hex::decode(tlv("30", &(common + &class + &rsa))).unwrap()
        };
        let aid_only = tlv("30", &tlv("A1", &tlv("4F", "E828BD080F8025000001FF0010")));
        let keys = parse_prkdf(&key(&aid_only)).unwrap();
        assert_eq!(keys[0].reference, 0x82);
        assert!(keys[0].is_authentication());
        let path = keys[0].path.clone().unwrap();
        assert!(path.is_none());
        assert_eq!(path.aid.as_deref(), Some(AID_CPX_IAS));
        assert_eq!(keys[0].modulus_bits, Some(2048));
        for empty in ["3000", "30020400"] {
            assert!(parse_prkdf(&key(empty)).unwrap()[0].path.as_ref().unwrap().is_none(), "{empty}");
        }
        assert!(parse_prkdf(&key("30030401AA")).is_err(), "odd length");
    }

    fn dir_record(aid: &[u8], label: &str) -> Vec<u8> {
        let inner =
            [&[0x4F, aid.len() as u8][..], aid, &[0x50, label.len() as u8], label.as_bytes()].concat();
        [&[0x61, inner.len() as u8][..], &inner].concat()
    }

    proptest! {
        /// Whatever the order of the records (the real EF.DIR lists the contactless application first),
        /// and whatever padding ends the file, the contact application is found by its AID.
        #[test]
        fn ef_dir_finds_the_application_by_aid_in_any_order(order in Just(vec![0usize, 1, 2]).prop_shuffle(), pad in 0usize..40, pad_byte in prop_oneof![Just(0u8), Just(0xFF)]) {
            let records = [dir_record(AID_CPX_IAS, "CPx IAS"), dir_record(AID_CPX_IAS_CL, "CPx IAS CL"), dir_record(AID_CHIPDOC, "ECC")];
            let mut bytes: Vec<u8> = order.iter().flat_map(|i| records[*i].clone()).collect();
            bytes.extend(std::iter::repeat_n(pad_byte, pad));
            let apps = parse_dir(&bytes).unwrap();
            prop_assert_eq!(apps.len(), 3);
            prop_assert_eq!(&find_app(&apps, AID_CPX_IAS).unwrap().label, "CPx IAS");
            prop_assert_eq!(&find_app(&apps, AID_CPX_IAS_CL).unwrap().label, "CPx IAS CL");
        }

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_dir(&bytes);
            let _ = parse_odf(&bytes);
            let _ = parse_aodf(&bytes);
            let _ = parse_prkdf(&bytes);
            let _ = parse_cdf(&bytes);
            let _ = parse_dodf(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_structures(which in 0usize..4, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut bytes = hex::decode([DIR, ODF, PRKDF, &DODF.replace(' ', "")][which]).unwrap();
            let i = pos.index(bytes.len());
            bytes[i] = byte;
            bytes.truncate(cut.index(bytes.len()) + 1);
            let _ = parse_dir(&bytes);
            let _ = parse_odf(&bytes);
            let _ = parse_prkdf(&bytes);
            let _ = parse_aodf(&bytes);
            let _ = parse_cdf(&bytes);
            let _ = parse_dodf(&bytes);
        }
    }
}
