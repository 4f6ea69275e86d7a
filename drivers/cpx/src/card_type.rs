//! The card type (CPS, CPE, CPA, CPF… of the national nomenclature TRE_R87-TypeCarte), apart from the
//! platform generation (CPS3/CPS4), and the identifiant national's kinds (docs/card-facts.md#card-types).
//!
//! The type is taken from what the card itself says when it carries it (the `CPS_ID_CARD` data object),
//! else from the first character of the identifiant national (the certificate's CN), else it is unknown
//! (« Carte CPx »).

use serde::{Deserialize, Serialize};

/// The card type, as the nomenclature TRE_R87-TypeCarte names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CardType {
    /// Carte de Professionnel de Santé: a health professional.
    Cps,
    /// Carte de Professionnel en Formation: a student or an intern.
    Cpf,
    /// Carte de Personnel d'Établissement (or of its director): staff of a health structure.
    Cpe,
    /// Carte de Personnel Autorisé: staff a professional authorises (a practice's secretary…).
    Cpa,
    /// Carte de Serveur Applicatif.
    Csa,
    /// Not known: « Carte CPx ».
    Cpx,
}

impl CardType {
    /// The card's short name: « CPS », « CPE »… (« CPx » when unknown).
    pub fn code(self) -> &'static str {
        match self {
            Self::Cps => "CPS",
            Self::Cpf => "CPF",
            Self::Cpe => "CPE",
            Self::Cpa => "CPA",
            Self::Csa => "CSA",
            Self::Cpx => "CPx",
        }
    }

    /// The type code of the CPS2ter-compatible data (group 1, field 1): 0 CPS, 1 CPF, 2 CPE/CDE, 3 CPA,
    /// 4 CSA; given as a byte or as its ASCII digit.
    pub fn from_card_code(code: u8) -> Option<Self> {
        match code {
            0 | b'0' => Some(Self::Cps),
            1 | b'1' => Some(Self::Cpf),
            2 | b'2' => Some(Self::Cpe),
            3 | b'3' => Some(Self::Cpa),
            4 | b'4' => Some(Self::Csa),
            _ => None,
        }
    }

    /// Only a health professional's own card may open a liberal practitioner's space.
    pub fn is_health_professional(self) -> bool {
        self == Self::Cps
    }
}

/// Where the card type was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeSource {
    /// The card's own data (`CPS_ID_CARD`).
    Card,
    /// The identifiant national's first character.
    Certificate,
    /// Neither says: « Carte CPx ».
    Unknown,
}

/// The kind of an identifiant national (PS_IdNat), from its first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdNatKind {
    /// `0` + ADELI number.
    Adeli,
    /// `1` + ADELI number of a practice + `/` + internal id.
    AdeliInternal,
    /// `3` + FINESS number + `/` + internal id.
    FinessInternal,
    /// `4` + SIREN number + `/` + internal id.
    SirenInternal,
    /// `5` + SIRET number + `/` + internal id.
    SiretInternal,
    /// `6` + RPPS number of a practice + `/` + internal id.
    RppsInternal,
    /// `8` + RPPS number.
    Rpps,
    /// Any other form.
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

    /// The register the number comes from: « RPPS », « ADELI », « FINESS », « SIREN », « SIRET ».
    pub fn register(self) -> Option<&'static str> {
        match self {
            Self::Adeli | Self::AdeliInternal => Some("ADELI"),
            Self::FinessInternal => Some("FINESS"),
            Self::SirenInternal => Some("SIREN"),
            Self::SiretInternal => Some("SIRET"),
            Self::Rpps | Self::RppsInternal => Some("RPPS"),
            Self::Unknown => None,
        }
    }

    /// A structure's (or a practice's) number followed by an internal id: the card is not a person's own
    /// registration.
    pub fn with_internal_id(self) -> bool {
        matches!(
            self,
            Self::AdeliInternal
                | Self::FinessInternal
                | Self::SirenInternal
                | Self::SiretInternal
                | Self::RppsInternal
        )
    }

    /// The kind's name, in French as the portals print it: « RPPS », « FINESS/identifiant interne ».
    pub fn name_fr(self) -> &'static str {
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

    /// The same in English: « FINESS/internal id ».
    pub fn name_en(self) -> &'static str {
        match self {
            Self::Adeli => "ADELI",
            Self::AdeliInternal => "ADELI/internal id",
            Self::FinessInternal => "FINESS/internal id",
            Self::SirenInternal => "SIREN/internal id",
            Self::SiretInternal => "SIRET/internal id",
            Self::RppsInternal => "RPPS/internal id",
            Self::Rpps => "RPPS",
            Self::Unknown => "National identifier",
        }
    }

    /// The card type a certificate with this kind of identifiant national implies: a person's own RPPS
    /// or ADELI number is a CPS (a CPF carries an RPPS too: only the card's data tells it apart); a
    /// structure's number with an internal id is a structure's staff card, a CPE; a practice's number
    /// (ADELI or RPPS) with an internal id is staff a professional authorised, a CPA.
    pub fn implied_card_type(self) -> CardType {
        match self {
            Self::Adeli | Self::Rpps => CardType::Cps,
            Self::FinessInternal | Self::SirenInternal | Self::SiretInternal => CardType::Cpe,
            Self::AdeliInternal | Self::RppsInternal => CardType::Cpa,
            Self::Unknown => CardType::Cpx,
        }
    }
}

/// The structure a card belongs to: its name (the certificate's `O`) and its number, from the
/// identifiant national.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    /// Raison sociale (`O`), when the certificate gives it.
    pub name: Option<String>,
    /// The register of `number`: « FINESS », « SIREN », « SIRET », « RPPS », « ADELI ».
    pub register: Option<String>,
    /// The structure's (or practice's) number, without the kind's digit.
    pub number: Option<String>,
    /// The holder's internal id in the structure (after the `/`).
    pub internal_id: Option<String>,
}

/// Splits a structure-attached identifiant national (`3` + FINESS + `/` + internal id) into the
/// structure's number and the internal id; `None` for a person's own number.
pub fn split_structure_id(national_id: &str) -> Option<(String, Option<String>)> {
    let kind = IdNatKind::of(national_id);
    if !kind.with_internal_id() {
        return None;
    }
    let rest = national_id.get(1..)?;
    Some(match rest.split_once('/') {
        Some((number, internal)) => (number.to_owned(), Some(internal.to_owned()).filter(|s| !s.is_empty())),
        None => (rest.to_owned(), None),
    })
}

/// The card type: the card's own code when it gave one, else what the identifiant national implies.
pub fn decide(card_code: Option<u8>, kind: IdNatKind) -> (CardType, TypeSource) {
    if let Some(t) = card_code.and_then(CardType::from_card_code) {
        return (t, TypeSource::Card);
    }
    match kind.implied_card_type() {
        CardType::Cpx => (CardType::Cpx, TypeSource::Unknown),
        t => (t, TypeSource::Certificate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_identifiant_national() {
        let cases = [
            ("0751012345", IdNatKind::Adeli, CardType::Cps),
            ("1751012345/SEC01", IdNatKind::AdeliInternal, CardType::Cpa),
            ("30B0238838/CPET00001", IdNatKind::FinessInternal, CardType::Cpe),
            ("4123456789/A1", IdNatKind::SirenInternal, CardType::Cpe),
            ("512345678900012/CPA0001", IdNatKind::SiretInternal, CardType::Cpe),
            ("699700123456/SEC02", IdNatKind::RppsInternal, CardType::Cpa),
            ("899700123456", IdNatKind::Rpps, CardType::Cps),
            ("9XYZ", IdNatKind::Unknown, CardType::Cpx),
            ("", IdNatKind::Unknown, CardType::Cpx),
        ];
        for (id, kind, card_type) in cases {
            assert_eq!(IdNatKind::of(id), kind, "{id}");
            assert_eq!(kind.implied_card_type(), card_type, "{id}");
        }
        assert_eq!(IdNatKind::FinessInternal.name_fr(), "FINESS/identifiant interne");
        assert_eq!(IdNatKind::Rpps.register(), Some("RPPS"));
        assert_eq!(IdNatKind::Unknown.register(), None);
    }

    #[test]
    fn structure_numbers_and_internal_ids() {
        assert_eq!(
            split_structure_id("30B0238838/CPET00001"),
            Some(("0B0238838".into(), Some("CPET00001".into())))
        );
        assert_eq!(split_structure_id("512345678900012/"), Some(("12345678900012".into(), None)));
        assert_eq!(split_structure_id("4123456789"), Some(("123456789".into(), None)));
        assert_eq!(split_structure_id("899700123456"), None);
        assert_eq!(split_structure_id("é/x"), None);
    }

    #[test]
    fn the_cards_own_type_wins_over_the_certificate() {
        assert_eq!(decide(Some(1), IdNatKind::Rpps), (CardType::Cpf, TypeSource::Card));
        assert_eq!(decide(Some(b'2'), IdNatKind::FinessInternal), (CardType::Cpe, TypeSource::Card));
        assert_eq!(decide(Some(0x7F), IdNatKind::Rpps), (CardType::Cps, TypeSource::Certificate));
        assert_eq!(decide(None, IdNatKind::SiretInternal), (CardType::Cpe, TypeSource::Certificate));
        assert_eq!(decide(None, IdNatKind::Unknown), (CardType::Cpx, TypeSource::Unknown));
        assert_eq!(CardType::Cpx.code(), "CPx");
        assert!(CardType::Cps.is_health_professional() && !CardType::Cpf.is_health_professional());
    }
}
