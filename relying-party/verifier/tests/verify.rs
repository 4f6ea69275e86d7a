//! The verifier on the test IGC-Santé PKI of the virtual cards (drivers/sim/pki, read as plain files).

use base64::Engine;
use cpx_verifier::{IdKind, Token, VerifyError, Verifier};
use rsa::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

macro_rules! pki {
    ($f:literal) => {
        include_str!(concat!("../../../drivers/sim/pki/", $f))
    };
}

fn der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
}

fn anchors() -> String {
    format!("{}{}", pki!("root.pem"), pki!("ca.pem"))
}

#[test]
fn a_card_certificate_gives_the_identity() {
    let v = Verifier::from_pem(&anchors(), &[]).unwrap();
    let id = v.verify_certificate(&der(pki!("dupont-auth.pem"))).unwrap();
    assert_eq!((id.national_id.as_str(), id.id_kind, id.id_number.as_str()), ("899700123456", IdKind::Rpps, "99700123456"));
    assert_eq!((id.nom.as_str(), id.prenom.as_str(), id.profession.as_deref()), ("DUPONT", "JEAN", Some("Médecin")));
    let adeli = v.verify_certificate(&der(pki!("roux-auth.pem"))).unwrap();
    assert_eq!((adeli.id_kind, adeli.profession.as_deref()), (IdKind::Adeli, Some("Masseur-Kinésithérapeute")));
}

#[test]
fn refusals() {
    let v = Verifier::from_pem(&anchors(), &[]).unwrap();
    assert_eq!(v.verify_certificate(&der(pki!("leroy-auth.pem"))), Err(VerifyError::Expired));
    assert_eq!(v.verify_certificate(&der(pki!("dupont-sign.pem"))), Err(VerifyError::WrongUsage), "the signature certificate is not for login");
    // Trusting only the root: the card sends its leaf alone, so the issuing CA must be configured too.
    let root_only = Verifier::from_pem(pki!("root.pem"), &[]).unwrap();
    assert_eq!(root_only.verify_certificate(&der(pki!("dupont-auth.pem"))), Err(VerifyError::UnknownIssuer));
    // A CA certificate presented as a card certificate.
    assert!(v.verify_certificate(&der(pki!("ca.pem"))).is_err());
    assert!(matches!(v.verify_certificate(b"not a certificate"), Err(VerifyError::Malformed(_))));
    assert!(Verifier::from_pem("", &[]).is_err());
    // Revoked by the CRL of the issuing CA.
    let crl = der(pki!("crl-dupont-revoked.pem"));
    let with_crl = Verifier::from_pem(&anchors(), &[crl]).unwrap();
    assert_eq!(with_crl.verify_certificate(&der(pki!("dupont-auth.pem"))), Err(VerifyError::Revoked));
    assert!(with_crl.verify_certificate(&der(pki!("martin-auth.pem"))).is_ok(), "others are not revoked");
}

fn token(key_pem: &str, cert_pem: &str, origin: &str, challenge: &str, pss: bool) -> Token {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
    let digest = Sha256::digest([Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat());
    let sig = if pss {
        key.sign_with_rng(&mut rand::thread_rng(), rsa::Pss::new::<Sha256>(), &digest).unwrap()
    } else {
        key.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    Token { format: "cpx-token:1".into(), algorithm: if pss { "PS256" } else { "RS256" }.into(), certificate: b64.encode(der(cert_pem)), signature: b64.encode(sig) }
}

#[test]
fn signed_tokens_are_bound_to_origin_and_challenge() {
    let v = Verifier::from_pem(&anchors(), &[]).unwrap();
    for pss in [false, true] {
        let t = token(pki!("martin-auth.key.pem"), pki!("martin-auth.pem"), "https://a.fr", "challenge-1", pss);
        assert_eq!(v.verify_token(&t, "https://a.fr", "challenge-1").unwrap().nom, "MARTIN");
        assert_eq!(v.verify_token(&t, "https://b.fr", "challenge-1"), Err(VerifyError::BadSignature), "other origin");
        assert_eq!(v.verify_token(&t, "https://a.fr", "challenge-2"), Err(VerifyError::BadSignature), "other challenge");
    }
    let expired = token(pki!("leroy-auth.key.pem"), pki!("leroy-auth.pem"), "https://a.fr", "c", false);
    assert_eq!(v.verify_token(&expired, "https://a.fr", "c"), Err(VerifyError::Expired));
    let mut odd = token(pki!("martin-auth.key.pem"), pki!("martin-auth.pem"), "https://a.fr", "c", false);
    odd.algorithm = "none".into();
    assert!(matches!(v.verify_token(&odd, "https://a.fr", "c"), Err(VerifyError::Token(_))));
}
