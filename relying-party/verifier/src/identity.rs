//! The professional's identity from a CPx certificate subject (`SN=<nom>+CN=<identifiant national>+
//! GN=<prénom>, title=<profession>, C=FR`).

use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

/// Which register the identifiant national comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdKind {
    /// RPPS (identifiant national 8 + RPPS).
    Rpps,
    /// ADELI (identifiant national 0 + ADELI).
    Adeli,
    /// Another register.
    Other,
}

/// The card holder, as the certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identifiant national (8 + RPPS, 0 + ADELI): the key a portal links accounts with, so that a
    /// renewed card keeps working.
    pub national_id: String,
    /// The register of the identifiant national.
    pub id_kind: IdKind,
    /// The number in that register.
    pub id_number: String,
    /// Family name.
    pub nom: String,
    /// Given name.
    pub prenom: String,
    /// The profession, when the certificate names it.
    pub profession: Option<String>,
    /// Certificate serial (changes with each card), hex.
    pub certificate_serial: String,
    /// The issuing authority's name.
    pub issuer: String,
    /// What the CRLs said (an unknown status only where the portal allows it).
    #[serde(default)]
    pub revocation: crate::verify::Revocation,
}

pub(crate) fn from_cert(cert: &X509Certificate<'_>) -> Option<Identity> {
    let subject = cert.subject();
    let attr = |oid: &x509_parser::der_parser::Oid| {
        subject
            .iter_attributes()
            .find(|a| a.attr_type() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
    };
    use x509_parser::oid_registry as oids;
    let national_id = attr(&oids::OID_X509_COMMON_NAME)?;
    let (id_kind, id_number) = match national_id.split_at_checked(1) {
        Some(("8", n)) if n.len() == 11 && n.bytes().all(|b| b.is_ascii_digit()) => {
            (IdKind::Rpps, n.to_owned())
        }
        Some(("0", n)) if n.len() == 9 && n.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            (IdKind::Adeli, n.to_owned())
        }
        _ => (IdKind::Other, national_id.clone()),
    };
    Some(Identity {
        id_kind,
        id_number,
        nom: attr(&oids::OID_X509_SURNAME).unwrap_or_default(),
        prenom: attr(&oids::OID_X509_GIVEN_NAME).unwrap_or_default(),
        profession: attr(&oids::OID_X509_TITLE).or_else(|| attr(&oids::OID_X509_ORGANIZATIONAL_UNIT)),
        certificate_serial: cert.raw_serial_as_string().replace(':', ""),
        issuer: cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_owned(),
        national_id,
        revocation: crate::verify::Revocation::NotRevoked,
    })
}
