//! The holder's identity, read from the authentication certificate
//! (docs/card-facts.md#certificates-and-the-holders-identity): national id and its kind (RPPS `8…` /
//! ADELI `0…`), nom, prénom, profession, validity, issuer, test or production IGC-Santé.

use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

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
    /// Which register the identifiant national comes from.
    pub id_kind: IdKind,
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

    /// "Jean DUPONT".
    pub fn display_name(&self) -> String {
        format!("{} {}", self.prenom, self.nom).trim().to_owned()
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
