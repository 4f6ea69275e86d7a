//! What `install-trust` requires of a loopback CA it did not just create before trusting it machine-wide
//! (issue 19, item 1: another account could plant `local-ca.pem`, a CA without name constraints whose key
//! it keeps, in the machine folder before the install): a CA certificate, name-constrained to the
//! loopback names only (`localhost`, `127.0.0.1/32`, `::1/128`), which signed the loopback leaf served
//! with it (checked by webpki as a browser would: signature, validity, server use, names). That the files
//! belong to root / the Administrators is [`crate::platform::admin_owned`]'s rule.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

/// Why a CA is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaRefused {
    #[error("{what} is not a PEM certificate: {why}")]
    Unreadable { what: &'static str, why: String },
    #[error("the CA certificate is not a CA")]
    NotCa,
    #[error("the CA has no name constraints: it could sign a certificate for any site")]
    NoNameConstraints,
    #[error("the CA's name constraints permit {0}, not only the loopback names")]
    PermitsMore(String),
    #[error("the loopback certificate was not issued by this CA for 127.0.0.1 and localhost: {0}")]
    LeafNotSigned(String),
}

fn der(pem: &str, what: &'static str) -> Result<CertificateDer<'static>, CaRefused> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| CaRefused::Unreadable { what, why: e.to_string() })
}

/// The one name a loopback CA may permit, written for the messages; None for any other.
fn loopback_subtree(name: &GeneralName) -> Option<&'static str> {
    const V4: [u8; 8] = [127, 0, 0, 1, 255, 255, 255, 255];
    let v6: [u8; 32] = {
        let mut b = [0u8; 32];
        b[15] = 1;
        b[16..].fill(0xff);
        b
    };
    match name {
        GeneralName::DNSName(d) if d.eq_ignore_ascii_case("localhost") => Some("localhost"),
        GeneralName::IPAddress(ip) if *ip == V4 => Some("127.0.0.1/32"),
        GeneralName::IPAddress(ip) if *ip == v6 => Some("::1/128"),
        _ => None,
    }
}

/// The CA's own checks: a CA, with permitted subtrees that are all loopback names.
pub fn check_ca(ca_pem: &str) -> Result<(), CaRefused> {
    let ca = der(ca_pem, "the CA")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&ca)
        .map_err(|e| CaRefused::Unreadable { what: "the CA", why: e.to_string() })?;
    if !cert.basic_constraints().ok().flatten().is_some_and(|b| b.value.ca) {
        return Err(CaRefused::NotCa);
    }
    let constraints = cert.name_constraints().ok().flatten().ok_or(CaRefused::NoNameConstraints)?;
    let permitted = constraints.value.permitted_subtrees.as_deref().unwrap_or_default();
    if permitted.is_empty() {
        return Err(CaRefused::NoNameConstraints);
    }
    for subtree in permitted {
        if loopback_subtree(&subtree.base).is_none() {
            return Err(CaRefused::PermitsMore(subtree.base.to_string()));
        }
    }
    Ok(())
}

/// A CA found on disk, with the leaf it is to be served with: trusted only when [`check_ca`] passes and
/// the leaf verifies under it for both loopback names.
pub fn check_loopback_pair(ca_pem: &str, leaf_pem: &str) -> Result<(), CaRefused> {
    check_ca(ca_pem)?;
    let (ca, leaf) = (der(ca_pem, "the CA")?, der(leaf_pem, "the loopback certificate")?);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(|e| CaRefused::LeafNotSigned(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| CaRefused::LeafNotSigned(e.to_string()))?;
    for name in ["127.0.0.1", "localhost"] {
        let name = ServerName::try_from(name).map_err(|e| CaRefused::LeafNotSigned(e.to_string()))?;
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .map_err(|e| CaRefused::LeafNotSigned(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, GeneralSubtree, IsCa, KeyPair, NameConstraints};

    /// A CA made by `permitted` (None: no name constraints) and a loopback leaf it signed.
    fn pair(permitted: Option<Vec<GeneralSubtree>>) -> (String, String) {
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.name_constraints =
            permitted.map(|p| NameConstraints { permitted_subtrees: p, excluded_subtrees: vec![] });
        let key = KeyPair::generate().unwrap();
        let ca = ca.self_signed(&key).unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.subject_alt_names.push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let leaf = leaf.signed_by(&KeyPair::generate().unwrap(), &ca, &key).unwrap();
        (ca.pem(), leaf.pem())
    }

    #[test]
    fn the_agents_own_ca_passes() {
        let (ca, leaf, _key) = crate::platform::localca::generate().unwrap();
        assert_eq!(check_loopback_pair(&ca, &leaf), Ok(()));
    }

    #[test]
    fn a_planted_ca_without_name_constraints_is_refused() {
        let (ca, leaf) = pair(None);
        assert_eq!(check_loopback_pair(&ca, &leaf), Err(CaRefused::NoNameConstraints));
    }

    #[test]
    fn a_ca_permitting_other_names_is_refused() {
        let (ca, leaf) = pair(Some(vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::DnsName("banque.example".into()),
        ]));
        assert!(
            matches!(check_loopback_pair(&ca, &leaf), Err(CaRefused::PermitsMore(p)) if p.contains("banque.example"))
        );
    }

    #[test]
    fn a_leaf_of_another_ca_is_refused() {
        let (ca, _, _) = crate::platform::localca::generate().unwrap();
        let (_, other_leaf, _) = crate::platform::localca::generate().unwrap();
        assert!(matches!(check_loopback_pair(&ca, &other_leaf), Err(CaRefused::LeafNotSigned(_))));
        let (_, leaf) = pair(None);
        assert!(matches!(check_loopback_pair(&leaf, &leaf), Err(CaRefused::NotCa)));
        assert!(matches!(check_ca("garbage"), Err(CaRefused::Unreadable { .. })));
    }
}
