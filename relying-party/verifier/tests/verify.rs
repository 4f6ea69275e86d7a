//! The verifier on the test IGC-Santé PKI of the virtual cards (drivers/sim/pki, read as plain files),
//! with CRLs of the issuing CA made for each test (support/crl.rs).

#[path = "support/crl.rs"]
mod crl;

use base64::Engine;
use cpx_verifier::{CardType, IdKind, IdNatKind, Revocation, Token, Verifier, VerifyError};
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

const DAY: i64 = 24 * 3600;

/// A current CRL of the issuing CA (TEST AC IGC-SANTE FORT PERSONNES) listing `revoked` certificates.
fn ca_crl(revoked: &[&str]) -> Vec<u8> {
    let serials: Vec<Vec<u8>> = revoked.iter().map(|pem| crl::serial_of(pem)).collect();
    crl::crl_der(pki!("ca.pem"), pki!("ca.key.pem"), &serials, crl::now() - DAY, crl::now() + 7 * DAY)
}

/// The verifier a portal runs: the test anchors and a current CRL of the issuing CA that revokes nobody.
fn verifier() -> Verifier {
    Verifier::from_pem(&anchors(), &[ca_crl(&[])]).unwrap()
}

#[test]
fn a_card_certificate_gives_the_identity() {
    let v = verifier();
    let id = v.verify_certificate(&der(pki!("dupont-auth.pem"))).unwrap();
    assert_eq!(
        (id.national_id.as_str(), id.id_kind, id.id_number.as_str()),
        ("899700123456", IdKind::Rpps, "99700123456")
    );
    assert_eq!(
        (id.nom.as_str(), id.prenom.as_str(), id.profession.as_deref()),
        ("DUPONT", "JEAN", Some("Médecin"))
    );
    let adeli = v.verify_certificate(&der(pki!("roux-auth.pem"))).unwrap();
    assert_eq!(
        (adeli.id_kind, adeli.profession.as_deref()),
        (IdKind::Adeli, Some("Masseur-Kinésithérapeute"))
    );
    assert_eq!(id.revocation, Revocation::NotRevoked);
}

#[test]
fn every_cpx_card_gives_its_type_kind_and_structure() {
    let v = verifier();
    let cps = v.verify_certificate(&der(pki!("dupont-auth.pem"))).unwrap();
    assert_eq!((cps.card_type, cps.id_nat_kind, cps.nominative), (CardType::Cps, IdNatKind::Rpps, true));
    assert!(cps.may_open_liberal_space() && cps.structure.is_none());
    assert_eq!(cps.id_label(), "RPPS 899700123456");

    let cpe = v.verify_certificate(&der(pki!("moreau-auth.pem"))).unwrap();
    assert_eq!(
        (cpe.card_type, cpe.id_nat_kind, cpe.id_kind),
        (CardType::Cpe, IdNatKind::FinessInternal, IdKind::Other)
    );
    assert_eq!(cpe.id_label(), "FINESS/identifiant interne 30B0238838/CPET00001");
    let structure = cpe.structure.clone().unwrap();
    assert_eq!(
        (
            structure.name.as_deref(),
            structure.register.as_deref(),
            structure.number.as_deref(),
            structure.internal_id.as_deref()
        ),
        (Some("CENTRE HOSPITALIER DE TEST"), Some("FINESS"), Some("0B0238838"), Some("CPET00001"))
    );
    assert_eq!(cpe.holder(), "SOPHIE MOREAU");
    assert!(!cpe.may_open_liberal_space());

    let anonymous = v.verify_certificate(&der(pki!("accueil-auth.pem"))).unwrap();
    assert!(!anonymous.nominative && anonymous.nom.is_empty() && anonymous.prenom.is_empty());
    assert_eq!((anonymous.card_type, anonymous.holder()), (CardType::Cpe, "CLINIQUE DE TEST DU PARC".into()));
    assert!(!anonymous.may_open_liberal_space());

    let cpa = v.verify_certificate(&der(pki!("bernard-auth.pem"))).unwrap();
    assert_eq!((cpa.card_type, cpa.id_nat_kind), (CardType::Cpa, IdNatKind::RppsInternal));
    assert!(!cpa.may_open_liberal_space());

    // A CPF's certificate is a CPS's (RPPS, person): the portal cannot tell them apart.
    let cpf = v.verify_certificate(&der(pki!("petit-auth.pem"))).unwrap();
    assert_eq!((cpf.card_type, cpf.id_kind), (CardType::Cps, IdKind::Rpps));
}

#[test]
fn refusals() {
    let v = verifier();
    assert_eq!(v.verify_certificate(&der(pki!("leroy-auth.pem"))), Err(VerifyError::Expired));
    assert_eq!(
        v.verify_certificate(&der(pki!("dupont-sign.pem"))),
        Err(VerifyError::WrongUsage),
        "the signature certificate is not for login"
    );
    // Trusting only the root: the card sends its leaf alone, so the issuing CA must be configured too.
    let root_only = Verifier::from_pem(pki!("root.pem"), &[ca_crl(&[])]).unwrap();
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
    let fresh = Verifier::from_pem(&anchors(), &[ca_crl(&[pki!("martin-auth.pem")])]).unwrap();
    assert_eq!(fresh.verify_certificate(&der(pki!("martin-auth.pem"))), Err(VerifyError::Revoked));
    assert!(matches!(Verifier::from_pem(&anchors(), &[b"not a CRL".to_vec()]), Err(VerifyError::Crl(_))));
}

#[test]
fn an_issuer_without_a_crl_is_refused() {
    let card = der(pki!("dupont-auth.pem"));
    let none = Verifier::from_pem(&anchors(), &[]).unwrap();
    assert!(
        matches!(none.verify_certificate(&card), Err(VerifyError::RevocationUnknown { ref issuer }) if issuer == "TEST AC IGC-SANTE FORT PERSONNES"),
        "{:?}",
        none.verify_certificate(&card)
    );
    // A CRL of another authority (the root's) says nothing about a card of the issuing CA.
    let root_crl =
        crl::crl_der(pki!("root.pem"), pki!("root.key.pem"), &[], crl::now() - DAY, crl::now() + 7 * DAY);
    let other = Verifier::from_pem(&anchors(), &[root_crl]).unwrap();
    assert!(
        matches!(other.verify_certificate(&card), Err(VerifyError::RevocationUnknown { .. })),
        "{:?}",
        other.verify_certificate(&card)
    );
    // An untrusted or expired card is refused for that, not for its revocation status.
    assert_eq!(none.verify_certificate(&der(pki!("leroy-auth.pem"))), Err(VerifyError::Expired));
    let message = none.verify_certificate(&card).unwrap_err().to_string();
    assert!(
        message.contains("revocation status unknown") && message.contains("TEST AC IGC-SANTE FORT PERSONNES"),
        "{message}"
    );
}

#[test]
fn a_crl_past_its_next_update_is_refused() {
    let card = der(pki!("martin-auth.pem"));
    let stale =
        crl::crl_der(pki!("ca.pem"), pki!("ca.key.pem"), &[], crl::now() - 30 * DAY, crl::now() - DAY);
    let v = Verifier::from_pem(&anchors(), &[stale]).unwrap();
    let refused = v.verify_certificate(&card);
    assert!(
        matches!(refused, Err(VerifyError::CrlExpired { ref issuer, .. }) if issuer == "TEST AC IGC-SANTE FORT PERSONNES"),
        "{refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("out of date"));
}

#[test]
fn unknown_revocation_is_accepted_only_on_explicit_opt_in() {
    let card = der(pki!("martin-auth.pem"));
    let none = Verifier::from_pem(&anchors(), &[]).unwrap().allow_unknown_revocation(true);
    assert!(none.allows_unknown_revocation());
    let id = none.verify_certificate(&card).unwrap();
    assert!(
        matches!(&id.revocation, Revocation::Unknown { reason } if reason.contains("no CRL")),
        "{:?}",
        id.revocation
    );
    let stale = crl::crl_der(
        pki!("ca.pem"),
        pki!("ca.key.pem"),
        &[crl::serial_of(pki!("dupont-auth.pem"))],
        crl::now() - 30 * DAY,
        crl::now() - DAY,
    );
    let lax = Verifier::from_pem(&anchors(), &[stale]).unwrap().allow_unknown_revocation(true);
    assert!(matches!(lax.verify_certificate(&card).unwrap().revocation, Revocation::Unknown { .. }));
    // Listed in a CRL, even an out-of-date one: still refused.
    assert_eq!(lax.verify_certificate(&der(pki!("dupont-auth.pem"))), Err(VerifyError::Revoked));
    // The opt-in does not make the other checks lax.
    assert_eq!(none.verify_certificate(&der(pki!("leroy-auth.pem"))), Err(VerifyError::Expired));
}

#[test]
fn crls_are_replaced_while_in_use() {
    let card = der(pki!("martin-auth.pem"));
    let v = verifier();
    assert!(v.verify_certificate(&card).is_ok());
    v.set_crls(&[ca_crl(&[pki!("martin-auth.pem")])]).unwrap();
    assert_eq!(v.verify_certificate(&card), Err(VerifyError::Revoked), "the new CRL is in force");
    assert!(v.set_crls(&[b"garbage".to_vec()]).is_err());
    assert_eq!(
        v.verify_certificate(&card),
        Err(VerifyError::Revoked),
        "an unreadable CRL does not replace the one in force"
    );
    v.set_crls(&[]).unwrap();
    assert!(matches!(v.verify_certificate(&card), Err(VerifyError::RevocationUnknown { .. })));
}

fn token(key_pem: &str, cert_pem: &str, origin: &str, challenge: &str, pss: bool) -> Token {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
    let digest =
        Sha256::digest([Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat());
    let sig = if pss {
        key.sign_with_rng(&mut rand::thread_rng(), rsa::Pss::new::<Sha256>(), &digest).unwrap()
    } else {
        key.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    Token {
        format: "cpx-token:1".into(),
        algorithm: if pss { "PS256" } else { "RS256" }.into(),
        certificate: b64.encode(der(cert_pem)),
        signature: b64.encode(sig),
    }
}

#[test]
fn signed_tokens_are_bound_to_origin_and_challenge() {
    let v = verifier();
    for pss in [false, true] {
        let t =
            token(pki!("martin-auth.key.pem"), pki!("martin-auth.pem"), "https://a.fr", "challenge-1", pss);
        assert_eq!(v.verify_token(&t, "https://a.fr", "challenge-1").unwrap().nom, "MARTIN");
        assert_eq!(
            v.verify_token(&t, "https://b.fr", "challenge-1"),
            Err(VerifyError::BadSignature),
            "other origin"
        );
        assert_eq!(
            v.verify_token(&t, "https://a.fr", "challenge-2"),
            Err(VerifyError::BadSignature),
            "other challenge"
        );
    }
    let expired = token(pki!("leroy-auth.key.pem"), pki!("leroy-auth.pem"), "https://a.fr", "c", false);
    assert_eq!(v.verify_token(&expired, "https://a.fr", "c"), Err(VerifyError::Expired));
    let mut odd = token(pki!("martin-auth.key.pem"), pki!("martin-auth.pem"), "https://a.fr", "c", false);
    odd.algorithm = "none".into();
    assert!(matches!(v.verify_token(&odd, "https://a.fr", "c"), Err(VerifyError::Token(_))));
}
