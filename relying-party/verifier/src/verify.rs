//! Certificate and token verification: chain to the configured IGC-Santé anchors (rustls-webpki),
//! validity, client-authentication EKU when present, digitalSignature key usage, revocation.
//!
//! Revocation fails closed: a certificate whose issuer has no CRL, or whose CRL is past its nextUpdate,
//! is refused ([`VerifyError::RevocationUnknown`], [`VerifyError::CrlExpired`]); a revoked one is refused
//! ([`VerifyError::Revoked`]). A portal that knowingly accepts an unknown status (a test platform, an
//! outage of the CRL distribution point) says so with [`Verifier::allow_unknown_revocation`], and the
//! identity it gets back then carries [`Revocation::Unknown`] so that it can log each such login. The
//! CRLs can be replaced while the verifier is in use ([`Verifier::set_crls`]): portals reload them when
//! their files change.

use std::sync::RwLock;

use base64::Engine;
use rustls::pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use webpki::ring as algs;
use x509_parser::prelude::FromDer;

use crate::identity::{self, Identity};

/// Why a certificate or a signed token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The trust anchors could not be loaded.
    #[error("trust anchors: {0}")]
    Anchors(String),
    /// The certificate is not readable DER.
    #[error("certificate unreadable: {0}")]
    Malformed(String),
    /// Past the certificate's end date.
    #[error("certificate expired")]
    Expired,
    /// Before the certificate's start date.
    #[error("certificate not valid yet")]
    NotYetValid,
    /// On its issuer's CRL.
    #[error("certificate revoked")]
    Revoked,
    /// No CRL of the certificate's issuer is loaded: nothing says the card was not revoked.
    #[error("revocation status unknown: no CRL from {issuer} is loaded")]
    RevocationUnknown {
        /// The issuer named by the certificate.
        issuer: String,
    },
    /// The issuer's CRL is past its nextUpdate: a newer one may list the card.
    #[error(
        "revocation status unknown: the CRL of {issuer} is out of date (next update was due {next_update})"
    )]
    CrlExpired {
        /// The issuer of the CRL.
        issuer: String,
        /// When the next CRL was due.
        next_update: String,
    },
    /// A CRL could not be read.
    #[error("CRL unreadable: {0}")]
    Crl(String),
    /// Not issued under a trusted IGC-Santé authority.
    #[error("certificate not issued by a trusted IGC-Santé authority")]
    UnknownIssuer,
    /// Not a certificate for client authentication / digital signature.
    #[error("certificate not for client authentication / digital signature")]
    WrongUsage,
    /// The chain was refused (webpki says why).
    #[error("certificate rejected: {0}")]
    Rejected(String),
    /// The token is malformed.
    #[error("token: {0}")]
    Token(String),
    /// The token's signature does not verify.
    #[error("token signature invalid")]
    BadSignature,
}

/// A signed token as the page posts it (`cpx-token:1`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Token {
    /// `cpx-token:1`.
    pub format: String,
    /// The signature scheme (`RSA-PKCS1-SHA256`, `RSA-PSS-SHA256`).
    pub algorithm: String,
    /// base64 DER.
    pub certificate: String,
    /// base64.
    pub signature: String,
}

/// What the verifier could say about a certificate's revocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// The issuer's CRL, current, does not list the certificate.
    #[default]
    NotRevoked,
    /// No current CRL of the issuer, accepted because the portal allows an unknown status: why.
    Unknown {
        /// Why the status is unknown.
        reason: String,
    },
}

/// Verifies CPx card certificates and signed tokens against the IGC-Santé anchors and CRLs.
pub struct Verifier {
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    crls: RwLock<Vec<webpki::CertRevocationList<'static>>>,
    /// Accept certificates whose revocation status is unknown (no CRL, or an out-of-date one).
    allow_unknown_revocation: bool,
    /// The anchors as DER, for TLS servers that verify client certificates themselves.
    anchor_certs: Vec<CertificateDer<'static>>,
}

fn parse_crls(crls_der: &[Vec<u8>]) -> Result<Vec<webpki::CertRevocationList<'static>>, VerifyError> {
    crls_der
        .iter()
        .map(|d| {
            webpki::OwnedCertRevocationList::from_der(d)
                .map(webpki::CertRevocationList::from)
                .map_err(|e| VerifyError::Crl(format!("{e:?}")))
        })
        .collect()
}

fn unix_date(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    x509_parser::time::ASN1Time::from_timestamp(secs)
        .map_or_else(|_| format!("{secs} (unix)"), |d| d.to_string())
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
    /// the bundle is an anchor, so an issuing CA alone may be trusted), and the CRLs (DER) of the issuing
    /// CAs. A card whose issuer has no CRL here is refused, unless [`Self::allow_unknown_revocation`].
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
            .map(|c| {
                webpki::anchor_from_trusted_cert(c)
                    .map(|a| a.to_owned())
                    .map_err(|e| VerifyError::Anchors(format!("{e:?}")))
            })
            .collect::<Result<_, _>>()?;
        let crls = RwLock::new(parse_crls(crls_der)?);
        Ok(Self { anchors, intermediates: Vec::new(), crls, allow_unknown_revocation: false, anchor_certs })
    }

    /// Accepts certificates whose revocation status is unknown (no CRL of their issuer, or a CRL past its
    /// nextUpdate) instead of refusing them. A revoked certificate listed in a CRL is still refused. The
    /// identities verified this way carry [`Revocation::Unknown`]: log them.
    pub fn allow_unknown_revocation(mut self, allow: bool) -> Self {
        self.allow_unknown_revocation = allow;
        self
    }

    /// Whether a certificate whose revocation status is unknown is accepted.
    pub fn allows_unknown_revocation(&self) -> bool {
        self.allow_unknown_revocation
    }

    /// Replaces the CRLs (a portal reloading its files). On an unreadable CRL nothing is replaced.
    pub fn set_crls(&self, crls_der: &[Vec<u8>]) -> Result<(), VerifyError> {
        let crls = parse_crls(crls_der)?;
        *self.crls.write().unwrap_or_else(|e| e.into_inner()) = crls;
        Ok(())
    }

    /// The trust anchors, as certificates.
    pub fn anchor_certs(&self) -> &[CertificateDer<'static>] {
        &self.anchor_certs
    }

    /// Verifies a card certificate now and returns the holder's identity.
    pub fn verify_certificate(&self, cert_der: &[u8]) -> Result<Identity, VerifyError> {
        self.verify_certificate_at(cert_der, UnixTime::now())
    }

    /// Verifies a card certificate at `now` and returns the holder's identity.
    pub fn verify_certificate_at(&self, cert_der: &[u8], now: UnixTime) -> Result<Identity, VerifyError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(cert_der)
            .map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let issuer = cert
            .issuer()
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .map_or_else(|| cert.issuer().to_string(), str::to_owned);
        let der = CertificateDer::from(cert_der.to_vec());
        let ee =
            webpki::EndEntityCert::try_from(&der).map_err(|e| VerifyError::Malformed(format!("{e:?}")))?;
        let map = |e: webpki::Error| match e {
            webpki::Error::CertExpired { .. } => VerifyError::Expired,
            webpki::Error::CertNotValidYet { .. } => VerifyError::NotYetValid,
            webpki::Error::CertRevoked => VerifyError::Revoked,
            webpki::Error::UnknownIssuer => VerifyError::UnknownIssuer,
            webpki::Error::RequiredEkuNotFoundContext(_) => VerifyError::WrongUsage,
            webpki::Error::UnknownRevocationStatus => {
                VerifyError::RevocationUnknown { issuer: issuer.clone() }
            }
            webpki::Error::CrlExpired { next_update, .. } => {
                VerifyError::CrlExpired { issuer: issuer.clone(), next_update: unix_date(next_update) }
            }
            other => VerifyError::Rejected(format!("{other:?}")),
        };
        let verify = |status: webpki::UnknownStatusPolicy,
                      expiration: webpki::ExpirationPolicy|
         -> Result<(), VerifyError> {
            let crls = self.crls.read().unwrap_or_else(|e| e.into_inner());
            let crl_refs: Vec<&webpki::CertRevocationList> = crls.iter().collect();
            // No CRL at all: every status is unknown, refused unless the policy allows it.
            let (revocation, unknown_refused) = match webpki::RevocationOptionsBuilder::new(&crl_refs) {
                Ok(b) => {
                    (Some(b.with_status_policy(status).with_expiration_policy(expiration).build()), false)
                }
                Err(_) => (None, status != webpki::UnknownStatusPolicy::Allow),
            };
            // The chain first: an untrusted or expired card is refused for that reason.
            ee.verify_for_usage(
                ALGS,
                &self.anchors,
                &self.intermediates,
                now,
                webpki::KeyUsage::client_auth(),
                revocation,
                None,
            )
            .map_err(&map)?;
            if unknown_refused {
                return Err(VerifyError::RevocationUnknown { issuer: issuer.clone() });
            }
            Ok(())
        };
        let revocation = match verify(webpki::UnknownStatusPolicy::Deny, webpki::ExpirationPolicy::Enforce) {
            Ok(()) => Revocation::NotRevoked,
            Err(e @ (VerifyError::RevocationUnknown { .. } | VerifyError::CrlExpired { .. }))
                if self.allow_unknown_revocation =>
            {
                // Still refused when a CRL lists it, even an out-of-date one.
                verify(webpki::UnknownStatusPolicy::Allow, webpki::ExpirationPolicy::Ignore)?;
                Revocation::Unknown { reason: e.to_string() }
            }
            Err(e) => return Err(e),
        };
        match cert.key_usage() {
            Ok(Some(ku)) if !ku.value.digital_signature() => return Err(VerifyError::WrongUsage),
            Err(e) => return Err(VerifyError::Malformed(e.to_string())),
            _ => {}
        }
        let mut identity = identity::from_cert(&cert)
            .ok_or_else(|| VerifyError::Malformed("no identifiant national (CN) in the subject".into()))?;
        identity.revocation = revocation;
        Ok(identity)
    }

    /// Verifies a signed token for the challenge the portal issued to this session and its own origin.
    pub fn verify_token(
        &self,
        token: &Token,
        origin: &str,
        challenge: &str,
    ) -> Result<Identity, VerifyError> {
        if token.format != "cpx-token:1" {
            return Err(VerifyError::Token(format!("format {:?}", token.format)));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let cert = b64
            .decode(&token.certificate)
            .map_err(|_| VerifyError::Token("certificate is not base64".into()))?;
        let signature =
            b64.decode(&token.signature).map_err(|_| VerifyError::Token("signature is not base64".into()))?;
        let identity = self.verify_certificate(&cert)?;
        let alg = match token.algorithm.as_str() {
            "RS256" => algs::RSA_PKCS1_2048_8192_SHA256,
            "PS256" => algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            other => return Err(VerifyError::Token(format!("algorithm {other:?}"))),
        };
        let signed = [Sha256::digest(origin.as_bytes()), Sha256::digest(challenge.as_bytes())].concat();
        let der = CertificateDer::from(cert);
        let ee =
            webpki::EndEntityCert::try_from(&der).map_err(|e| VerifyError::Malformed(format!("{e:?}")))?;
        ee.verify_signature(alg, &signed, &signature).map_err(|_| VerifyError::BadSignature)?;
        Ok(identity)
    }
}
