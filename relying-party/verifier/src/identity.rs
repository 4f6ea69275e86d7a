//! The holder's identity from a CPx certificate subject (`SN=<nom>+CN=<identifiant national>+
//! GN=<prénom>, title=<profession>, C=FR`; a non-nominative card has no SN/GN and `O` = its structure):
//! the identifiant national's kind from its first character (0 ADELI, 1 ADELI + internal id, 3 FINESS +
//! internal id, 4 SIREN…, 5 SIRET…, 6 RPPS + internal id, 8 RPPS), the card type it implies, the
//! structure. A portal sees only the certificate: a CPF's (an intern's, with an RPPS) cannot be told from
//! a CPS's by public facts, so it reads as a CPS here.

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

/// Every kind of identifiant national (PS_IdNat), from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdNatKind {
    /// 0: ADELI.
    Adeli,
    /// 1: ADELI and a cabinet or internal id.
    AdeliInternal,
    /// 3: FINESS and an internal id.
    FinessInternal,
    /// 4: SIREN and an internal id.
    SirenInternal,
    /// 5: SIRET and an internal id.
    SiretInternal,
    /// 6: RPPS and a cabinet or internal id.
    RppsInternal,
    /// 8: RPPS.
    Rpps,
    /// Any other first character.
    #[default]
    Unknown,
}

impl IdNatKind {
    /// The kind of `national_id`, from its first character.
    pub fn of(national_id: &str) -> Self {
        match national_id.as_bytes().first() {
            Some(b'0') => Self::Adeli,
            Some(b'1') => Self::AdeliInternal,
            Some(b'3') => Self::FinessInternal,
            Some(b'4') => Self::SirenInternal,
            Some(b'5') => Self::SiretInternal,
            Some(b'6') => Self::RppsInternal,
            Some(b'8') => Self::Rpps,
            _ => Self::Unknown,
        }
    }

    /// As the portals print it: « RPPS », « FINESS/identifiant interne ».
    pub fn label(self) -> &'static str {
        match self {
            Self::Adeli => "ADELI",
            Self::AdeliInternal => "ADELI/identifiant interne",
            Self::FinessInternal => "FINESS/identifiant interne",
            Self::SirenInternal => "SIREN/identifiant interne",
            Self::SiretInternal => "SIRET/identifiant interne",
            Self::RppsInternal => "RPPS/identifiant interne",
            Self::Rpps => "RPPS",
            Self::Unknown => "Identifiant national",
        }
    }

    fn register(self) -> Option<&'static str> {
        match self {
            Self::Adeli | Self::AdeliInternal => Some("ADELI"),
            Self::FinessInternal => Some("FINESS"),
            Self::SirenInternal => Some("SIREN"),
            Self::SiretInternal => Some("SIRET"),
            Self::Rpps | Self::RppsInternal => Some("RPPS"),
            Self::Unknown => None,
        }
    }
}

/// The card type the certificate implies (nomenclature TRE_R87-TypeCarte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum CardType {
    /// A person's own RPPS or ADELI number (a CPF reads as a CPS: its certificate is alike).
    Cps,
    /// A structure's FINESS, SIREN or SIRET number with an internal id.
    Cpe,
    /// A practice's ADELI or RPPS number with an internal id.
    Cpa,
    /// Any other form.
    #[default]
    Cpx,
}

impl CardType {
    /// « CPS », « CPE », « CPA », « CPx ».
    pub fn code(self) -> &'static str {
        match self {
            Self::Cps => "CPS",
            Self::Cpe => "CPE",
            Self::Cpa => "CPA",
            Self::Cpx => "CPx",
        }
    }
}

/// The structure a card belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    /// Raison sociale (`O`).
    pub name: Option<String>,
    /// « FINESS », « SIREN », « SIRET », « RPPS », « ADELI ».
    pub register: Option<String>,
    /// The structure's number, from the identifiant national.
    pub number: Option<String>,
    /// The holder's internal id in the structure.
    pub internal_id: Option<String>,
}

/// The card holder, as the certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identifiant national (8 + RPPS, 0 + ADELI): the key a portal links accounts with, so that a
    /// renewed card keeps working.
    pub national_id: String,
    /// The register of the identifiant national.
    pub id_kind: IdKind,
    /// Every kind of identifiant national (`FINESS_INTERNAL`…).
    #[serde(default)]
    pub id_nat_kind: IdNatKind,
    /// The card type the certificate implies.
    #[serde(default)]
    pub card_type: CardType,
    /// The certificate names a person (SN or GN).
    #[serde(default)]
    pub nominative: bool,
    /// The structure (`O`, and the number in a structure-attached identifiant national).
    #[serde(default)]
    pub structure: Option<Structure>,
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

impl Identity {
    /// Only a CPS holder with a person's own RPPS or ADELI number may make an account from the card
    /// (« Espace médecin libéral »); any other CPx card links to an existing account.
    pub fn may_open_liberal_space(&self) -> bool {
        self.card_type == CardType::Cps && matches!(self.id_kind, IdKind::Rpps | IdKind::Adeli)
    }

    /// The holder, never empty: the person, or for a non-nominative card its structure.
    pub fn holder(&self) -> String {
        let person = format!("{} {}", self.prenom, self.nom).trim().to_owned();
        if !person.is_empty() {
            return person;
        }
        let s = self.structure.as_ref();
        s.and_then(|s| s.name.clone())
            .or_else(|| s.and_then(|s| Some(format!("{} {}", s.register.as_ref()?, s.number.as_ref()?))))
            .unwrap_or_else(|| self.national_id.clone())
    }

    /// « FINESS/identifiant interne 30B0238838/CPET00001 », as the portals print it.
    pub fn id_label(&self) -> String {
        format!("{} {}", self.id_nat_kind.label(), self.national_id)
    }
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
    let id_nat_kind = IdNatKind::of(&national_id);
    let card_type = match id_nat_kind {
        IdNatKind::Rpps | IdNatKind::Adeli => CardType::Cps,
        IdNatKind::FinessInternal | IdNatKind::SirenInternal | IdNatKind::SiretInternal => CardType::Cpe,
        IdNatKind::AdeliInternal | IdNatKind::RppsInternal => CardType::Cpa,
        IdNatKind::Unknown => CardType::Cpx,
    };
    let nom = attr(&oids::OID_X509_SURNAME).unwrap_or_default();
    let prenom = attr(&oids::OID_X509_GIVEN_NAME).unwrap_or_default();
    let name = attr(&oids::OID_X509_ORGANIZATION_NAME).filter(|o| !o.trim().is_empty());
    let attached = matches!(card_type, CardType::Cpe | CardType::Cpa);
    let (number, internal_id) = match national_id.get(1..).filter(|_| attached) {
        Some(rest) => match rest.split_once('/') {
            Some((n, i)) => (Some(n.to_owned()), Some(i.to_owned()).filter(|i| !i.is_empty())),
            None => (Some(rest.to_owned()), None),
        },
        None => (None, None),
    };
    let structure = (name.is_some() || number.is_some()).then(|| Structure {
        name,
        register: number.as_ref().and(id_nat_kind.register()).map(str::to_owned),
        number,
        internal_id,
    });
    Some(Identity {
        id_kind,
        id_nat_kind,
        card_type,
        nominative: !nom.trim().is_empty() || !prenom.trim().is_empty(),
        structure,
        id_number,
        nom,
        prenom,
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
