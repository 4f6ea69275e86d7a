//! Test CRLs (RFC 5280, version 2) signed by a CA of the test IGC-Santé PKI, with the revoked serials,
//! thisUpdate and nextUpdate a test needs (a current CRL, an out-of-date one, one from another issuer).
//! The DER is written by hand: a CRL is a short structure, and the test CAs' keys are RSA (PKCS#1 v1.5,
//! SHA-256). Shared by the verifier's tests and the end-to-end tests (tests/src/lib.rs includes it).

use rsa::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn integer(be: &[u8]) -> Vec<u8> {
    let skip = be.iter().take_while(|b| **b == 0).count().min(be.len().saturating_sub(1));
    let mut v = be[skip..].to_vec();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    tlv(0x02, &v)
}

/// UTCTime before 2050, GeneralizedTime after (RFC 5280 §5.1.2.4).
fn time(unix: i64) -> Vec<u8> {
    let t = x509_parser::time::ASN1Time::from_timestamp(unix).expect("a representable date").to_datetime();
    let (y, mo, d, h, mi, s) = (t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&y) {
        tlv(0x17, format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100).as_bytes())
    } else {
        tlv(0x18, format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z").as_bytes())
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM").1.contents
}

/// The serial number (big-endian bytes) of a certificate in PEM.
pub fn serial_of(cert_pem: &str) -> Vec<u8> {
    let der = pem_der(cert_pem);
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der).expect("certificate");
    cert.raw_serial().to_vec()
}

/// A CRL (DER) of the CA `issuer_cert_pem`, signed with its key, listing `revoked` serials.
pub fn crl_der(
    issuer_cert_pem: &str,
    issuer_key_pem: &str,
    revoked: &[Vec<u8>],
    this_update: i64,
    next_update: i64,
) -> Vec<u8> {
    let issuer_der = pem_der(issuer_cert_pem);
    let (_, issuer) =
        x509_parser::certificate::X509Certificate::from_der(&issuer_der).expect("issuer certificate");
    // sha256WithRSAEncryption, NULL parameters.
    let algorithm =
        seq(&[tlv(0x06, &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B]), vec![0x05, 0x00]]);
    let mut tbs = vec![
        integer(&[1]),
        algorithm.clone(),
        issuer.subject().as_raw().to_vec(),
        time(this_update),
        time(next_update),
    ];
    if !revoked.is_empty() {
        tbs.push(seq(&revoked
            .iter()
            .map(|serial| seq(&[integer(serial), time(this_update)]))
            .collect::<Vec<_>>()));
    }
    // crlExtensions [0]: the CRL number (2.5.29.20), required by RFC 5280 and by rustls-webpki.
    let crl_number = seq(&[tlv(0x06, &[0x55, 0x1D, 0x14]), tlv(0x04, &integer(&this_update.to_be_bytes()))]);
    tbs.push(tlv(0xA0, &seq(&[crl_number])));
    let tbs = seq(&tbs);
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(issuer_key_pem).expect("issuer key (PKCS#8)");
    let signature = key.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs)).expect("signature");
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    seq(&[tbs, algorithm, tlv(0x03, &bits)])
}

/// Now, in seconds since 1970.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
