//! Whether the browsers trust the agent's local CA: without it a page cannot reach the loopback API over
//! HTTPS. On Linux, the NSS databases that Chromium/Chrome (`~/.pki/nssdb`) and Firefox (each profile)
//! read, through NSS's `certutil` (package libnss3-tools): the CA must be there with the « C » (TLS server
//! CA) trust flag. Other systems are not checked yet.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One browser store and what it says of the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreVerdict {
    pub store: String,
    /// `None` when the store could not be read.
    pub trusted: Option<bool>,
}

/// The DER of every certificate in a PEM text.
pub fn ders(pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect()
}

/// The NSS databases of the user's browsers.
fn nss_databases(home: &Path) -> Vec<(String, PathBuf)> {
    let mut dbs = vec![("Chromium/Chrome (~/.pki/nssdb)".to_owned(), home.join(".pki/nssdb"))];
    for profiles in [home.join(".mozilla/firefox"), home.join("snap/firefox/common/.mozilla/firefox")] {
        for entry in std::fs::read_dir(&profiles).into_iter().flatten().flatten() {
            if entry.path().join("cert9.db").exists() {
                dbs.push((format!("Firefox ({})", entry.file_name().to_string_lossy()), entry.path()));
            }
        }
    }
    dbs.into_iter().filter(|(_, p)| p.join("cert9.db").exists()).collect()
}

/// Whether `db` holds the CA `der` with the TLS server CA trust flag.
fn nss_trusts(db: &Path, der: &[u8]) -> Option<bool> {
    let db = format!("sql:{}", db.display());
    let list =
        Command::new("certutil").args(["-L", "-d", &db]).output().ok().filter(|o| o.status.success())?;
    let list = String::from_utf8_lossy(&list.stdout);
    // "Nickname                                  Trust Attributes": the flags are the last word.
    for line in list.lines().skip(3) {
        let Some((nickname, flags)) = line.trim_end().rsplit_once(char::is_whitespace) else { continue };
        let cert =
            Command::new("certutil").args(["-L", "-d", &db, "-a", "-n", nickname.trim()]).output().ok()?;
        if ders(&String::from_utf8_lossy(&cert.stdout)).iter().any(|d| d == der) {
            return Some(flags.split(',').next().is_some_and(|ssl| ssl.contains('C')));
        }
    }
    Some(false)
}

/// What each browser store of the user says of the CA in `ca_pem`.
pub fn check(ca_pem: &str, home: &Path) -> Vec<StoreVerdict> {
    let Some(der) = ders(ca_pem).into_iter().next() else { return Vec::new() };
    if !cfg!(target_os = "linux") {
        return Vec::new();
    }
    nss_databases(home)
        .into_iter()
        .map(|(store, db)| StoreVerdict { store, trusted: nss_trusts(&db, &der) })
        .collect()
}
