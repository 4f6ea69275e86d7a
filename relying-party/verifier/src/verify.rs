//! Certificate and token verification: chain to the configured IGC-Santé anchors (rustls-webpki),
//! validity, client-authentication EKU when present, digitalSignature key usage, optional CRL.

use base64::Engine;
use rustls::pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use webpki::ring as algs;
use x509_parser::prelude::FromDer;

use crate::identity::{self, Identity};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("trust anchors: {0}")]
    Anchors(String),
    #[error("certificate unreadable: {0}")]
    Malformed(String),
    #[error("certificate expired")]
    Expired,
    #[error("certificate not valid yet")]
    NotYetValid,
    #[error("certificate revoked")]
    Revoked,
    #[error("certificate not issued by a trusted IGC-Santé authority")]
    UnknownIssuer,
    #[error("certificate not for client authentication / digital signature")]
    WrongUsage,
    #[error("certificate rejected: {0}")]
    Rejected(String),
    #[error("token: {0}")]
    Token(String),
    #[error("token signature invalid")]
    BadSignature,
}

/// A signed token as the page posts it (`cpx-token:1`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Token {
    pub format: String,
    pub algorithm: String,
    /// base64 DER.
    pub certificate: String,
    /// base64.
    pub signature: String,
}

pub struct Verifier {
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: Vec<webpki::CertRevocationList<'static>>,
    /// The anchors as DER, for TLS servers that verify client certificates themselves.
    anchor_certs: Vec<CertificateDer<'static>>,
}

const ALGS: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] = &[
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P384_SHA384,
];

impl Verifier {
    /// Trust anchors from PEM: the IGC-Santé roots and issuing CAs a portal accepts (every certificate of
    /// the bundle is an anchor, so an issuing CA alone may be trusted), and optional CRLs (DER).
    pub fn from_pem(anchors_pem: &str, crls_der: &[Vec<u8>]) -> Result<Self, VerifyError> {
        use rustls::pki_types::pem::PemObject;
        let mut anchor_certs = Vec::new();
        for c in CertificateDer::pem_slice_iter(anchors_pem.as_bytes()) {
            anchor_certs.push(c.map_err(|e| VerifyError::Anchors(e.to_string()))?);
        }
        if anchor_certs.is_empty() {
            return Err(VerifyError::Anchors("no certificate".into()));
        }
        let anchors = anchor_certs
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()).map_err(|e| VerifyError::Anchors(format!("{e:?}"))))
            .collect::<Result<_, _>>()?;
        let crls = crls_der
            .iter()
            .map(|d| webpki::OwnedCertRevocationList::from_der(d).map(webpki::CertRevocationList::from).map_err(|e| VerifyError::Anchors(format!("CRL: {e:?}"))))
            .collect::<Result<_, _>>()?;
        Ok(Self { anchors, intermediates: Vec::new(), crls, anchor_certs })
    }

    pub fn anchor_certs(&self) -> &[CertificateDer<'static>] {
        &self.anchor_certs
    }

    /// Verifies a card certificate now and returns the holder's identity.
    pub fn verify_certificate(&self, cert_der: &[u8]) -> Result<Identity, VerifyError> {
        self.verify_certificate_at(cert_der, UnixTime::now())
    }

    pub fn verify_certificate_at(&self, cert_der: &[u8], now: UnixTime) -> Result<Identity, VerifyError> {
        let der = CertificateDer::from(cert_der.to_vec());
        let ee = webpki::EndEntityCert::try_from(&der).map_err(|e| VerifyError::Malformed(format!("{e:?}")))?;
        let crl_refs: Vec<&webpki::CertRevocationList> = self.crls.iter().collect();
        let revocation = if crl_refs.is_empty() {
            None
        } else {
            Some(
                webpki::RevocationOptionsBuilder::new(&crl_refs)
                    .map_err(|_| VerifyError::Anchors("CRL".into()))?
                    .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                    .build(),
            )
        };
        ee.verify_for_usage(ALGS, &self.anchors, &self.intermediates, now, webpki::KeyUsage::client_auth(), revocation, None).map_err(|e| match e {
            webpki::Error::CertExpired { .. } => VerifyError::Expired,
            webpki::Error::CertNotValidYet { .. } => VerifyError::NotYetValid,
            webpki::Error::CertRevoked => VerifyError::Revoked,
            webpki::Error::UnknownIssuer => VerifyError::UnknownIssuer,
            webpki::Error::RequiredEkuNotFoundContext(_) => VerifyError::WrongUsage,
            other => VerifyError::Rejected(format!("{other:?}")),
        })?;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        match cert.key_usage() {
            Ok(Some(ku)) if !ku.value.digital_signature() => return Err(VerifyError::WrongUsage),
            Err(e) => return Err(VerifyError::Malformed(e.to_string())),
            _ => {}
        }
        identity::from_cert(&cert).ok_or_else(|| VerifyError::Malformed("no identifiant national (CN) in the subject".into()))
    }

    /// Verifies a signed token for the challenge the portal issued to this session and its own origin.
    pub fn verify_token(&self, token: &Token, origin: &str, challenge: &str) -> Result<Identity, VerifyError> {
        if token.format != "cpx-token:1" {
            return Err(VerifyError::Token(format!("format {:?}", token.format)));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let cert = b64.decode(&token.certificate).map_err(|_| VerifyError::Token("certificate is not base64".into()))?;
        let signature = b64.decode(&token.signature).map_err(|_| VerifyError::Token("signature is not base64".into()))?;
        let identity = self.verify_certificate(&cert)?;
        let alg = match token.algorithm.as_str() {
            "RS256" => algs::RSA_PKCS1_2048_8192_SHA256,
            "PS256" => algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            other => return Err(VerifyError::Token(format!("algorithm {other:?}"))),
        };
        let signed = [Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat();
        let der = CertificateDer::from(cert);
        let ee = webpki::EndEntityCert::try_from(&der).map_err(|e| VerifyError::Malformed(format!("{e:?}")))?;
        ee.verify_signature(alg, &signed, &signature).map_err(|_| VerifyError::BadSignature)?;
        Ok(identity)
    }
}
