//! The holder's identity, read from the authentication certificate
//! (docs/card-facts.md#certificates-and-the-holders-identity): national id and its kind (RPPS `8…` /
//! ADELI `0…`, and every other kind: [`IdNatKind`]), nom, prénom (none on a non-nominative card), the
//! structure (`O` and the number in the identifiant national), profession, validity, issuer, test or
//! production IGC-Santé.

use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use crate::card_type::{split_structure_id, IdNatKind, Structure};
use crate::error::CardError;
use crate::scheme::SignScheme;

/// The kind of national identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IdKind {
    /// "8" + 11-digit RPPS number.
    Rpps,
    /// "0" + 9-character ADELI number.
    Adeli,
    /// Any other form (CPE/CPA structure cards, future schemes).
    Other,
}

/// The holder as the authentication certificate names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identifiant national exactly as in the certificate (CN).
    pub national_id: String,
    /// Which register the identifiant national comes from (RPPS, ADELI, or another form).
    pub id_kind: IdKind,
    /// Every kind of identifiant national, from its first character (« FINESS/identifiant interne »…).
    pub id_nat_kind: IdNatKind,
    /// The certificate names a person (it has SN or GN); a non-nominative card names only its structure.
    pub nominative: bool,
    /// The structure the card belongs to: `O`, and the number the identifiant national carries.
    pub structure: Option<Structure>,
    /// The RPPS or ADELI number without its one-digit prefix.
    pub id_number: String,
    /// Family name.
    pub nom: String,
    /// Given name.
    pub prenom: String,
    /// Profession label (`title`, or `OU` on ADELI-era certificates).
    pub profession: Option<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Issuer common name (e.g. "TEST AC IGC-SANTE FORT PERSONNES").
    pub issuer: String,
    /// True for certificates of the test IGC-Santé ("TEST " CA names, `OU=IGC-SANTE TEST`).
    pub test_pki: bool,
    /// Certificate serial number, hex.
    pub serial: String,
    /// The key usage allows digital signatures (needed for TLS client authentication).
    pub signature_allowed: bool,
    /// Size of the RSA modulus in bits, when the key is RSA.
    pub rsa_bits: Option<usize>,
}

/// Validity of a certificate at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// Its validity has not started.
    NotYetValid,
    /// Valid now.
    Valid,
    /// Expired.
    Expired,
}

impl Identity {
    /// The certificate's validity at `unix` (seconds since the epoch).
    pub fn validity_at(&self, unix: i64) -> Validity {
        if unix < self.not_before {
            Validity::NotYetValid
        } else if unix > self.not_after {
            Validity::Expired
        } else {
            Validity::Valid
        }
    }

    /// The holder, never empty: the person (« JEAN DUPONT »), or on a non-nominative card the structure
    /// (its name, else its number), else the identifiant national.
    pub fn display_name(&self) -> String {
        let person = format!("{} {}", self.prenom, self.nom).trim().to_owned();
        if !person.is_empty() {
            return person;
        }
        let structure = self.structure.as_ref();
        structure
            .and_then(|s| s.name.clone())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| {
                structure.and_then(|s| Some(format!("{} {}", s.register.as_ref()?, s.number.as_ref()?)))
            })
            .unwrap_or_else(|| self.national_id.clone())
    }

    /// The identifiant national as the portals print it: « FINESS/identifiant interne 30B0238838/CPET00001 »,
    /// « RPPS 899700123456 ».
    pub fn id_display_fr(&self) -> String {
        format!("{} {}", self.id_nat_kind.name_fr(), self.national_id)
    }

    /// The same in English.
    pub fn id_display_en(&self) -> String {
        format!("{} {}", self.id_nat_kind.name_en(), self.national_id)
    }
}

/// Checks that `signature` is the signature of `digest` under `scheme` by the key of the certificate
/// `der` (its RSA public key): what the card signed is what the certificate the agent sends vouches for.
pub fn verify_signature(
    der: &[u8],
    scheme: SignScheme,
    digest: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    use rsa::pkcs8::DecodePublicKey;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let key = rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).map_err(|e| e.to_string())?;
    let verified = match scheme {
        SignScheme::RsaPkcs1Sha256 => key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), digest, signature),
        SignScheme::RsaPkcs1Sha384 => key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), digest, signature),
        SignScheme::RsaPkcs1Sha512 => key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), digest, signature),
        SignScheme::RsaPssSha256 => key.verify(rsa::Pss::new::<sha2::Sha256>(), digest, signature),
    };
    verified.map_err(|e| e.to_string())
}

/// Reads the identity from a DER certificate.
pub fn from_certificate(der: &[u8]) -> Result<Identity, CardError> {
    let bad = |d: String| CardError::malformed("certificate", d);
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate".into()));
    }
    let subject = cert.subject();
    let attr = |oid: &x509_parser::der_parser::Oid| -> Option<String> {
        subject
            .iter_attributes()
            .find(|a| a.attr_type() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
    };
    use x509_parser::oid_registry as oids;
    let national_id = attr(&oids::OID_X509_COMMON_NAME)
        .ok_or_else(|| bad("no CN (identifiant national) in the subject".into()))?;
    let nom = attr(&oids::OID_X509_SURNAME).unwrap_or_default();
    let prenom = attr(&oids::OID_X509_GIVEN_NAME).unwrap_or_default();
    let profession = attr(&oids::OID_X509_TITLE).or_else(|| attr(&oids::OID_X509_ORGANIZATIONAL_UNIT));
    let (id_kind, id_number) = classify(&national_id);
    let id_nat_kind = IdNatKind::of(&national_id);
    let organisation = attr(&oids::OID_X509_ORGANIZATION_NAME).filter(|o| !o.trim().is_empty());
    let numbers = split_structure_id(&national_id);
    let structure = (organisation.is_some() || numbers.is_some()).then(|| {
        let (number, internal_id) = numbers.map_or((None, None), |(n, i)| (Some(n), i));
        Structure {
            name: organisation,
            register: number.as_ref().and(id_nat_kind.register()).map(str::to_owned),
            number,
            internal_id,
        }
    });
    let nominative = !nom.trim().is_empty() || !prenom.trim().is_empty();
    let issuer =
        cert.issuer().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_owned();
    let test_pki = issuer.starts_with("TEST ")
        || cert.issuer().iter_organizational_unit().any(|a| a.as_str().is_ok_and(|s| s.contains("TEST")));
    let signature_allowed = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.digital_signature(),
        Ok(None) => true,
        Err(e) => return Err(bad(format!("key usage: {e}"))),
    };
    let rsa_bits = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    };
    Ok(Identity {
        national_id,
        id_kind,
        id_nat_kind,
        nominative,
        structure,
        id_number,
        nom,
        prenom,
        profession,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        issuer,
        test_pki,
        serial: cert.raw_serial_as_string().replace(':', ""),
        signature_allowed,
        rsa_bits,
    })
}

fn classify(national_id: &str) -> (IdKind, String) {
    let digits = national_id.chars().all(|c| c.is_ascii_alphanumeric());
    match national_id.split_at_checked(1) {
        Some(("8", rest)) if rest.len() == 11 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            (IdKind::Rpps, rest.to_owned())
        }
        Some(("0", rest)) if rest.len() == 9 && digits => (IdKind::Adeli, rest.to_owned()),
        _ => (IdKind::Other, national_id.to_owned()),
    }
}

/// "2035-12-31" for a Unix time (UTC).
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies_national_ids() {
        assert_eq!(classify("899700123456"), (IdKind::Rpps, "99700123456".into()));
        assert_eq!(classify("0751012345"), (IdKind::Adeli, "751012345".into()));
        assert_eq!(classify("00B7010446"), (IdKind::Adeli, "0B7010446".into()));
        assert_eq!(classify("1234/567").0, IdKind::Other);
        assert_eq!(classify("").0, IdKind::Other);
        assert_eq!(classify("é").0, IdKind::Other);
    }

    fn test_card(name: &str) -> Identity {
        let path = format!("{}/../sim/pki/{name}-auth.pem", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(path).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        from_certificate(&pem.contents).unwrap()
    }

    #[test]
    fn a_nominative_cpe_names_its_person_and_its_structure() {
        let id = test_card("moreau");
        assert!(id.nominative);
        assert_eq!((id.id_nat_kind, id.id_kind), (IdNatKind::FinessInternal, IdKind::Other));
        assert_eq!(id.display_name(), "SOPHIE MOREAU");
        assert_eq!(id.id_display_fr(), "FINESS/identifiant interne 30B0238838/CPET00001");
        assert_eq!(
            id.structure,
            Some(Structure {
                name: Some("CENTRE HOSPITALIER DE TEST".into()),
                register: Some("FINESS".into()),
                number: Some("0B0238838".into()),
                internal_id: Some("CPET00001".into()),
            })
        );
    }

    #[test]
    fn a_non_nominative_cpe_is_named_by_its_structure_never_empty() {
        let mut id = test_card("accueil");
        assert!(!id.nominative && id.nom.is_empty() && id.prenom.is_empty());
        assert_eq!(id.display_name(), "CLINIQUE DE TEST DU PARC");
        id.structure.as_mut().unwrap().name = None;
        assert_eq!(id.display_name(), "FINESS 990000011");
        id.structure = None;
        assert_eq!(id.display_name(), "3990000011/ACCUEIL01");
    }

    #[test]
    fn a_cps_has_no_structure() {
        let id = test_card("dupont");
        assert!(id.nominative && id.structure.is_none());
        assert_eq!((id.id_nat_kind, id.id_display_en()), (IdNatKind::Rpps, "RPPS 899700123456".into()));
        let cpa = test_card("bernard");
        assert_eq!(cpa.id_display_fr(), "RPPS/identifiant interne 699700123456/SEC01");
        assert_eq!(cpa.structure.unwrap().name, None);
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_672_531_200), "2023-01-01");
        assert_eq!(date(2_082_758_399), "2035-12-31");
    }

    proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(from_certificate(&bytes).is_err() || bytes.first() == Some(&0x30));
        }
    }
}
