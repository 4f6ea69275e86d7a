//! The Windows machine Root store (`Cert:\LocalMachine\Root`), where the installer puts the agent's local
//! CA so that Chrome, Edge and Firefox (enterprise roots) trust the loopback certificate for every user
//! without a prompt: add, find, remove one certificate through crypt32. Writing needs an administrator
//! (the MSI's elevated custom action runs `cpx-agent install-trust`). The per-user Root store is not used:
//! Windows asks the user to confirm each certificate added there.

#![cfg(windows)]
#![allow(unsafe_code)] // crypt32

use windows_sys::Win32::Security::Cryptography::{
    CertAddEncodedCertificateToStore, CertCloseStore, CertDeleteCertificateFromStore,
    CertDuplicateCertificateContext, CertEnumCertificatesInStore, CertFreeCertificateContext, CertOpenStore,
    CERT_CONTEXT, CERT_STORE_ADD_REPLACE_EXISTING, CERT_STORE_OPEN_EXISTING_FLAG,
    CERT_STORE_PROV_SYSTEM_REGISTRY_W, CERT_STORE_READONLY_FLAG, CERT_SYSTEM_STORE_LOCAL_MACHINE, HCERTSTORE,
    PKCS_7_ASN_ENCODING, X509_ASN_ENCODING,
};

/// What failed, with the system's error.
#[derive(Debug, thiserror::Error)]
pub enum RootStoreError {
    #[error(r"the machine Root store (LocalMachine\Root) cannot be opened{}: {source}", if *.write { " for writing (administrator needed)" } else { "" })]
    Open { write: bool, source: std::io::Error },
    #[error(r"the certificate cannot be added to the machine Root store: {0}")]
    Add(std::io::Error),
    #[error(r"the certificate cannot be removed from the machine Root store: {0}")]
    Remove(std::io::Error),
    #[error("not a PEM certificate: {0}")]
    Pem(String),
}

/// The DER of the first certificate of a PEM text.
pub fn der_from_pem(pem: &[u8]) -> Result<Vec<u8>, RootStoreError> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .map(|c| c.to_vec())
        .map_err(|e| RootStoreError::Pem(format!("{e:?}")))
}

/// The open store, closed on drop.
struct Store(HCERTSTORE);

impl Store {
    /// The registry store of `LocalMachine\Root` (`HKLM\Software\Microsoft\SystemCertificates\Root`, where
    /// `certutil -addstore Root` writes), not the system store that also gathers the Group Policy and
    /// enterprise stores: what the installer adds is what it removes.
    fn open(write: bool) -> Result<Self, RootStoreError> {
        let name: Vec<u16> = "Root\0".encode_utf16().collect();
        let flags = CERT_SYSTEM_STORE_LOCAL_MACHINE
            | CERT_STORE_OPEN_EXISTING_FLAG
            | if write { 0 } else { CERT_STORE_READONLY_FLAG };
        // SAFETY: a system store by name (a NUL-terminated UTF-16 string that outlives the call).
        let handle =
            unsafe { CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_W, 0, 0, flags, name.as_ptr().cast()) };
        if handle.is_null() {
            return Err(RootStoreError::Open { write, source: std::io::Error::last_os_error() });
        }
        Ok(Self(handle))
    }

    /// The store's own context of the certificate whose DER is `der` (to free), if there is one.
    fn find(&self, der: &[u8]) -> Option<*mut CERT_CONTEXT> {
        let mut ctx: *mut CERT_CONTEXT = std::ptr::null_mut();
        loop {
            // SAFETY: enumeration frees the previous context it is given and returns the next (or null).
            ctx = unsafe { CertEnumCertificatesInStore(self.0, ctx) };
            if ctx.is_null() {
                return None;
            }
            // SAFETY: a context from the store; its encoded bytes live as long as the context.
            let encoded =
                unsafe { std::slice::from_raw_parts((*ctx).pbCertEncoded, (*ctx).cbCertEncoded as usize) };
            if encoded == der {
                // SAFETY: a second reference for the caller, then the enumeration's one is freed.
                let found = unsafe { CertDuplicateCertificateContext(ctx) };
                // SAFETY: the enumeration's reference, freed once (the duplicate stays valid).
                unsafe { CertFreeCertificateContext(ctx) };
                return Some(found);
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the handle CertOpenStore gave; contexts still held keep the store alive themselves.
        unsafe { CertCloseStore(self.0, 0) };
    }
}

/// Whether the certificate `der` is in the machine Root store.
pub fn contains(der: &[u8]) -> Result<bool, RootStoreError> {
    let store = Store::open(false)?;
    // SAFETY: the context `find` returned, freed once.
    Ok(store.find(der).map(|ctx| unsafe { CertFreeCertificateContext(ctx) }).is_some())
}

/// Adds the certificate `der` to the machine Root store (replacing the same certificate if there).
pub fn add(der: &[u8]) -> Result<(), RootStoreError> {
    let store = Store::open(true)?;
    let len = u32::try_from(der.len())
        .map_err(|_| RootStoreError::Add(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    // SAFETY: `der` is read during the call only; no context is asked back.
    let ok = unsafe {
        CertAddEncodedCertificateToStore(
            store.0,
            X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
            der.as_ptr(),
            len,
            CERT_STORE_ADD_REPLACE_EXISTING,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(RootStoreError::Add(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes the certificate `der` from the machine Root store, every copy of it (another tool may have
/// added it again); whether it was there.
pub fn remove(der: &[u8]) -> Result<bool, RootStoreError> {
    let store = Store::open(true)?;
    let mut removed = 0;
    while let Some(ctx) = store.find(der) {
        // SAFETY: deleting frees the context it is given, whatever the outcome.
        if unsafe { CertDeleteCertificateFromStore(ctx) } == 0 {
            return Err(RootStoreError::Remove(std::io::Error::last_os_error()));
        }
        removed += 1;
        if removed > 64 {
            return Err(RootStoreError::Remove(std::io::Error::other("still there after 64 removals")));
        }
    }
    Ok(removed > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway CA certificate in the real machine Root store (Wine's under tests/windows/run.sh, the
    /// runner's on the native Windows CI): added, found, removed.
    #[test]
    fn add_find_remove_a_throwaway_ca() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("Agent CPx root_store test {}", std::process::id()));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = der_from_pem(cert.pem().as_bytes()).unwrap();
        assert_eq!(der, cert.der().to_vec());

        assert!(!contains(&der).unwrap(), "a fresh certificate is not there yet");
        add(&der).unwrap();
        assert!(contains(&der).unwrap(), "found after add");
        add(&der).unwrap();
        assert!(remove(&der).unwrap(), "removed");
        assert!(!contains(&der).unwrap(), "gone after remove");
        assert!(!remove(&der).unwrap(), "nothing left to remove");
        assert!(matches!(der_from_pem(b"not pem"), Err(RootStoreError::Pem(_))));
    }
}
