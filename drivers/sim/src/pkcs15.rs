//! The PKCS#15 application of a virtual card: EF.DIR entry, ODF, TokenInfo, AODF, PrKDF, CDF and the
//! certificate files, laid out under the application DF. The driver must find everything from these
//! structures; nothing here is known to it in advance.
//!
//! Two layouts ([`Layout`]): the one of the real CPS3 cards (ISO 7816-15 paths relative to the
//! application DF, private keys without a file path), and the older absolute-path one (every path from
//! 3F00), kept so that drivers stay tested on both forms.

use crate::der::*;
use crate::fs::{FileSystem, ReadAccess};

/// File id of the ODF (object directory).
pub const ODF: u16 = 0x5031;
/// File id of TokenInfo.
pub const TOKEN_INFO: u16 = 0x5032;
/// File id of the PrKDF (private keys).
pub const PRKDF: u16 = 0x7002;
/// File id of the CDF (certificates).
pub const CDF: u16 = 0x7003;
/// File id of the AODF (authentication objects: the code porteur).
pub const AODF: u16 = 0x7004;
/// File id of the DODF (data objects: `CPS_ID_CARD`).
pub const DODF: u16 = 0x7005;

/// An opaque data object of the DODF, readable without the code porteur.
pub struct DataObject {
    /// Its label (`CPS_ID_CARD`, as Cryptolib names the PKCS#11 data object).
    pub label: &'static str,
    /// File id of its EF in the application DF.
    pub fid: u16,
    /// Its value.
    pub value: Vec<u8>,
}

/// A PIN object of the AODF.
pub struct PinObject {
    /// Label of the PIN object.
    pub label: &'static str,
    /// authId the keys it guards refer to.
    pub auth_id: u8,
    /// PIN reference on the card (VERIFY's P2).
    pub reference: u8,
    /// Shortest code porteur accepted.
    pub min_len: u32,
    /// Length of the stored, padded value.
    pub stored_len: u32,
    /// Padding byte.
    pub pad: u8,
}

/// A key with its certificate.
pub struct KeyObject {
    /// Label of the private key object.
    pub key_label: &'static str,
    /// Label of the certificate object.
    pub cert_label: &'static str,
    /// Last byte of the PKCS#15 ID (the rest is the application AID, as on real cards).
    pub id: u8,
    /// Key reference on the card.
    pub reference: u8,
    /// PKCS#15 KeyUsageFlags bit numbers.
    pub usage: &'static [u8],
    /// authId of the PIN that guards it, if any.
    pub pin: Option<u8>,
    /// File id of the certificate's EF in the application DF.
    pub cert_fid: u16,
    /// The certificate (DER).
    pub cert_der: Vec<u8>,
}

/// How the PKCS#15 structures name files (docs/simulator.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// As on real CPS3 cards: the EF.DIR record holds the AID and the label but no path (the application is
    /// selected by AID); ODF and CDF paths are bare 2-byte file ids, relative to the application DF; a
    /// private key's path is empty and carries only the application's AID (keys are used by reference).
    #[default]
    Real,
    /// Every path absolute from the MF (`3F00 0001 xxxx`), the EF.DIR record with a path, private keys
    /// pointing at the application DF.
    Absolute,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "real" => Ok(Self::Real),
            "absolute" | "abs" => Ok(Self::Absolute),
            _ => Err(format!("unknown layout {s:?}: real or absolute")),
        }
    }
}

/// A PKCS#15 application: its DF, its token and its objects.
pub struct Application {
    /// Label in EF.DIR.
    pub label: &'static str,
    /// AID of the application DF.
    pub aid: Vec<u8>,
    /// File id of the application DF under the MF.
    pub df_fid: u16,
    /// TokenInfo's label.
    pub token_label: &'static str,
    /// TokenInfo's serial number.
    pub serial: Vec<u8>,
    /// PIN objects of the AODF.
    pub pins: Vec<PinObject>,
    /// Keys (PrKDF) with their certificates (CDF).
    pub keys: Vec<KeyObject>,
    /// Data objects (DODF).
    pub data: Vec<DataObject>,
}

/// TokenInfo's supportedAlgorithms [2]: (PKCS#11 mechanism, PKCS#15 operation bits, IAS-ECC algorithm
/// reference). OpenSC's iasecc driver takes the MSE algorithm references from here.
fn supported_algorithms() -> Vec<u8> {
    const SIGN: u8 = 1;
    const DECIPHER: u8 = 5;
    const HASH: u8 = 6;
    let algos: [(u32, u8, u32); 6] = [
        (0x0001, SIGN, 0x02),     // CKM_RSA_PKCS, INTERNAL AUTHENTICATE
        (0x0001, DECIPHER, 0x1A), // CKM_RSA_PKCS, PSO DECIPHER
        (0x0006, SIGN, 0x12),     // CKM_SHA1_RSA_PKCS
        (0x0040, SIGN, 0x42),     // CKM_SHA256_RSA_PKCS
        (0x0220, HASH, 0x10),     // CKM_SHA_1
        (0x0250, HASH, 0x40),     // CKM_SHA256
    ];
    let infos: Vec<Vec<u8>> = algos
        .iter()
        .enumerate()
        .map(|(i, (mech, op, alg_ref))| {
            seq(&[integer(i as u32 + 1), integer(*mech), tlv(&[0x05], &[]), bits(&[*op]), integer(*alg_ref)])
        })
        .collect();
    ctx(2, &infos)
}

impl Application {
    /// The EF.DIR record (tag 61) that names this application.
    pub fn dir_record(&self, layout: Layout) -> Vec<u8> {
        let mut record = [tlv(&[0x4F], &self.aid), tlv(&[0x50], self.label.as_bytes())].concat();
        if layout == Layout::Absolute {
            record.extend(tlv(&[0x51], &self.path(&[])));
        }
        tlv(&[0x61], &record)
    }

    fn path(&self, fid: &[u8]) -> Vec<u8> {
        [&[0x3F, 0x00][..], &self.df_fid.to_be_bytes(), fid].concat()
    }

    /// A file of this application as a PKCS#15 Path in `layout`.
    fn file_path(&self, fid: u16, layout: Layout) -> Vec<u8> {
        match layout {
            Layout::Real => path(&fid.to_be_bytes()),
            Layout::Absolute => path(&self.path(&fid.to_be_bytes())),
        }
    }

    /// The Path of a private key: `aid::` (empty file path, the application's AID, ISO 7816-15's
    /// `[APPLICATION 15]`) as pkcs15-tool prints it for a real CPS3; the application DF when absolute.
    fn key_path(&self, layout: Layout) -> Vec<u8> {
        match layout {
            Layout::Real => seq(&[octets(&[]), tlv(&[0x4F], &self.aid)]),
            Layout::Absolute => path(&self.path(&[])),
        }
    }

    /// Creates the application DF and its files under the MF; returns the DF's node.
    pub fn install(&self, fs: &mut FileSystem, contact_only: bool, layout: Layout) -> usize {
        let df = fs.add_df(crate::fs::MF, self.df_fid, Some(self.aid.clone()));
        let read = if contact_only { ReadAccess::ContactOnly } else { ReadAccess::Always };
        let p = |fid: u16| self.file_path(fid, layout);
        let mut odf = Vec::new();
        if !self.keys.is_empty() {
            odf.extend(ctx(0, &[p(PRKDF)]));
            odf.extend(ctx(4, &[p(CDF)]));
        }
        if !self.data.is_empty() {
            odf.extend(ctx(7, &[p(DODF)]));
        }
        if !self.pins.is_empty() {
            odf.extend(ctx(8, &[p(AODF)]));
        }
        fs.add_ef_with(df, ODF, odf, None, read);
        if !self.data.is_empty() {
            let dodf: Vec<u8> = self
                .data
                .iter()
                .map(|d| seq(&[seq(&[utf8(d.label), bits(&[])]), seq(&[]), ctx(1, &[p(d.fid)])]))
                .collect::<Vec<_>>()
                .concat();
            fs.add_ef_with(df, DODF, dodf, None, read);
            for d in &self.data {
                fs.add_ef_with(df, d.fid, d.value.clone(), None, read);
            }
        }
        let token_info = seq(&[
            integer(0),
            octets(&self.serial),
            utf8("ANS"),
            tlv(&[0x80], self.token_label.as_bytes()),
            bits(&[1]),
            supported_algorithms(),
        ]);
        fs.add_ef_with(df, TOKEN_INFO, token_info, None, read);

        let aodf: Vec<u8> = self
            .pins
            .iter()
            .map(|pin| {
                let common = seq(&[utf8(pin.label), bits(&[0])]);
                let auth = seq(&[octets(&[pin.auth_id])]);
                // pinFlags: initialized(4), needs-padding(5); local(1) off: the CHV is global, in the MF.
                let attrs = seq(&[
                    bits(&[4, 5]),
                    enumerated(1), // ascii-numeric
                    integer(pin.min_len),
                    integer(pin.stored_len),
                    integer(pin.stored_len),
                    tlv(&[0x80], &[pin.reference]),
                    octets(&[pin.pad]),
                    path(&[0x3F, 0x00]),
                ]);
                seq(&[common, auth, ctx(1, &[attrs])])
            })
            .collect::<Vec<_>>()
            .concat();
        let mut prkdf = Vec::new();
        let mut cdf = Vec::new();
        for key in &self.keys {
            let id = [&self.aid[..], &[key.id]].concat();
            let mut common = vec![utf8(key.key_label), bits(&[0])];
            if let Some(auth) = key.pin {
                common.push(octets(&[auth]));
            }
            let key_attrs =
                seq(&[octets(&id), bits(key.usage), bits(&[0, 2]), integer(key.reference as u32)]);
            let rsa = seq(&[self.key_path(layout), integer(2048)]);
            prkdf.extend(seq(&[seq(&common), key_attrs, ctx(1, &[rsa])]));
            let cert = seq(&[
                seq(&[utf8(key.cert_label), bits(&[])]),
                seq(&[octets(&id)]),
                ctx(1, &[seq(&[p(key.cert_fid)])]),
            ]);
            cdf.extend(cert);
            fs.add_ef_with(df, key.cert_fid, key.cert_der.clone(), None, read);
        }
        if !self.pins.is_empty() {
            fs.add_ef_with(df, AODF, aodf, None, read);
        }
        if !self.keys.is_empty() {
            fs.add_ef_with(df, PRKDF, prkdf, None, read);
            fs.add_ef_with(df, CDF, cdf, None, read);
        }
        df
    }
}
