//! The loopback HTTPS identity: a per-install local CA, created once, that issues the certificate of
//! `127.0.0.1`/`localhost` and is then thrown away (its private key never touches the disk), so that the
//! CA an installer trusts can sign nothing else. The CA is also name-constrained to the loopback names.
//! The leaf's private key is kept in the secret store; the certificates are public files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair,
    KeyUsagePurpose, NameConstraints, SanType,
};

use crate::messages::names;
use crate::platform::secrets::{SecretError, SecretStore};

/// The leaf key's name in the secret store (a file of this name in `secrets/` for the machine identity).
pub const KEY_NAME: &str = "loopback-tls-key";
pub const CA_FILE: &str = "local-ca.pem";
pub const CERT_FILE: &str = "loopback-cert.pem";

#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}: not a PEM certificate")]
    BadPem(PathBuf),
}

/// The certificate chain and key the loopback server presents.
pub struct LoopbackIdentity {
    pub cert_pem: String,
    pub key_pem: zeroize::Zeroizing<String>,
    pub ca_path: PathBuf,
}

/// How long the local CA and the loopback certificate are valid: 825 days, Apple's limit for a TLS server
/// certificate even under a locally trusted root (Safari refuses a longer one; docs/macos.md).
pub const VALIDITY_DAYS: i64 = 825;

/// A loopback certificate with less than this left is made again, with a new CA, when the identity is
/// loaded (`install-trust`, run again by every upgrade, then trusts the new CA and drops the old one).
pub const RENEW_BEFORE_DAYS: i64 = 90;

/// Whether the certificate in `cert_pem` ends within [`RENEW_BEFORE_DAYS`] (or cannot be read).
pub fn due_for_renewal(cert_pem: &str, now: time::OffsetDateTime) -> bool {
    use rustls::pki_types::pem::PemObject;
    let Ok(der) = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()) else { return true };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return true };
    cert.validity().not_after.timestamp() < (now + time::Duration::days(RENEW_BEFORE_DAYS)).unix_timestamp()
}

/// Loads the loopback identity from `dir` and the store, creating it (and a new local CA) when absent or
/// due for renewal.
pub fn load_or_create(dir: &Path, store: &dyn SecretStore) -> Result<LoopbackIdentity, LocalCaError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalCaError::Io { path, source }
    };
    let cert_path = dir.join(CERT_FILE);
    let ca_path = dir.join(CA_FILE);
    if let (Ok(cert_pem), Some(key_pem)) = (std::fs::read_to_string(&cert_path), store.get(KEY_NAME)?) {
        if ca_path.exists() && !due_for_renewal(&cert_pem, time::OffsetDateTime::now_utc()) {
            return Ok(LoopbackIdentity { cert_pem, key_pem, ca_path });
        }
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (ca_pem, cert_pem, key_pem) = generate()?;
    store.set(KEY_NAME, &key_pem)?;
    std::fs::write(&ca_path, ca_pem).map_err(io(&ca_path))?;
    std::fs::write(&cert_path, &cert_pem).map_err(io(&cert_path))?;
    Ok(LoopbackIdentity { cert_pem, key_pem: zeroize::Zeroizing::new(key_pem), ca_path })
}

/// A new CA and loopback leaf: (CA certificate PEM, leaf certificate PEM, leaf key PEM). The CA's key is
/// dropped when this returns.
pub fn generate() -> Result<(String, String, String), rcgen::Error> {
    generate_until(time::OffsetDateTime::now_utc() + time::Duration::days(VALIDITY_DAYS))
}

fn generate_until(not_after: time::OffsetDateTime) -> Result<(String, String, String), rcgen::Error> {
    let now = time::OffsetDateTime::now_utc();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, format!("{} {}", names::LOCAL_CA.fr, now.date()));
    ca.distinguished_name.push(DnType::OrganizationName, names::LOCAL_CA_ORGANISATION.fr);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([127, 0, 0, 1], [255, 255, 255, 255])),
        ],
        excluded_subtrees: vec![],
    });
    let not_before = now - time::Duration::days(1);
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
    Ok((ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem()))
    // ca_key is dropped here: nothing can be signed by this CA any more.
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::secrets::FileStore;

    #[test]
    fn a_certificate_near_its_end_is_made_again_with_a_new_ca() {
        let dir = std::env::temp_dir().join(format!("cpx-localca-renew-{}", std::process::id()));
        let store = FileStore { dir: dir.join("secrets") };
        let now = time::OffsetDateTime::now_utc();
        let fresh = load_or_create(&dir, &store).unwrap();
        assert!(!due_for_renewal(&fresh.cert_pem, now), "a new certificate is not due");
        assert!(
            due_for_renewal(
                &fresh.cert_pem,
                now + time::Duration::days(VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1)
            ),
            "due {RENEW_BEFORE_DAYS} days before its end"
        );
        assert!(due_for_renewal("not a certificate", now), "an unreadable certificate is made again");
        let (ca, leaf, key) = generate_until(now + time::Duration::days(30)).unwrap();
        std::fs::write(dir.join(CA_FILE), &ca).unwrap();
        std::fs::write(dir.join(CERT_FILE), &leaf).unwrap();
        store.set(KEY_NAME, &key).unwrap();
        let renewed = load_or_create(&dir, &store).unwrap();
        assert_ne!(renewed.cert_pem, leaf, "30 days left: renewed");
        assert_ne!(std::fs::read_to_string(dir.join(CA_FILE)).unwrap(), ca, "with a new CA");
        assert!(!due_for_renewal(&renewed.cert_pem, now));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn creates_once_then_reuses() {
        let dir = std::env::temp_dir().join(format!("cpx-localca-{}", std::process::id()));
        let store = FileStore { dir: dir.join("secrets") };
        let a = load_or_create(&dir, &store).unwrap();
        let b = load_or_create(&dir, &store).unwrap();
        assert_eq!(a.cert_pem, b.cert_pem);
        assert!(a.key_pem.contains("PRIVATE KEY"));
        let ca = std::fs::read_to_string(&a.ca_path).unwrap();
        assert!(ca.contains("BEGIN CERTIFICATE") && !ca.contains("PRIVATE"));
        let files: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(files.iter().all(|f| !f.contains("ca-key")), "the CA key is never written: {files:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
