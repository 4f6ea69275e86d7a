//! Signature schemes a CPx card can produce on a digest computed by the host.

use serde::Serialize;

/// How the authentication key signs a digest computed by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SignScheme {
    /// RSA PKCS#1 v1.5 over SHA-256.
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 over SHA-384.
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 over SHA-512.
    RsaPkcs1Sha512,
    /// RSA-PSS, MGF1 with SHA-256, salt of 32 bytes (TLS 1.3 `rsa_pss_rsae_sha256`).
    RsaPssSha256,
}

impl SignScheme {
    /// The length of the digest the scheme signs.
    pub fn digest_len(self) -> usize {
        match self {
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 => 32,
            Self::RsaPkcs1Sha384 => 48,
            Self::RsaPkcs1Sha512 => 64,
        }
    }

    /// The DER DigestInfo prefix of a PKCS#1 v1.5 signature (RFC 8017 §9.2 note 1).
    pub fn digest_info_prefix(self) -> Option<&'static [u8]> {
        match self {
            Self::RsaPkcs1Sha256 => Some(&[
                0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
                0x05, 0x00, 0x04, 0x20,
            ]),
            Self::RsaPkcs1Sha384 => Some(&[
                0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
                0x05, 0x00, 0x04, 0x30,
            ]),
            Self::RsaPkcs1Sha512 => Some(&[
                0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
                0x05, 0x00, 0x04, 0x40,
            ]),
            Self::RsaPssSha256 => None,
        }
    }
}
