//! The portal's CRL files (PEM or DER; a PEM file may hold several CRLs): read at start, then read again
//! every `--crl-reload-seconds` (60 by default) and put in force when their content changed.
//!
//! Why polling the content and not watching the files: it behaves the same on every OS and on network
//! shares, it sees a CRL replaced by rename (how `curl -o tmp && mv` and cron jobs publish) as well as
//! rewritten in place, and reading a CRL once a minute costs nothing next to the hours between two
//! IGC-Santé publications. A file that cannot be read or parsed leaves the CRLs in force as they were
//! and is reported on standard error; when those pass their nextUpdate, logins are refused (the verifier
//! fails closed), which is what an operator must notice.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

use cpx_verifier::Verifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;

pub struct CrlFiles {
    paths: Vec<PathBuf>,
    /// A hash of the content in force.
    loaded: Mutex<Option<u64>>,
}

/// Every CRL (DER) of the files, and a hash of their content.
fn read(paths: &[PathBuf]) -> Result<(Vec<Vec<u8>>, u64), String> {
    let mut crls = Vec::new();
    let mut hasher = DefaultHasher::new();
    for path in paths {
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        raw.hash(&mut hasher);
        let pem: Vec<Vec<u8>> = CertificateRevocationListDer::pem_slice_iter(&raw)
            .filter_map(Result::ok)
            .map(|c| c.to_vec())
            .collect();
        if pem.is_empty() {
            crls.push(raw);
        } else {
            crls.extend(pem);
        }
    }
    Ok((crls, hasher.finish()))
}

impl CrlFiles {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self { paths, loaded: Mutex::new(None) }
    }

    /// The CRLs of the files now (at start: an unreadable file stops the portal).
    pub fn initial(&self) -> Result<Vec<Vec<u8>>, String> {
        let (crls, hash) = read(&self.paths)?;
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash);
        Ok(crls)
    }

    /// Reads the files again and puts their CRLs in force if they changed. `Ok(true)` when reloaded.
    pub fn reload_if_changed(&self, verifier: &Verifier) -> Result<bool, String> {
        let (crls, hash) = read(&self.paths)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if *loaded == Some(hash) {
            return Ok(false);
        }
        verifier.set_crls(&crls).map_err(|e| e.to_string())?;
        *loaded = Some(hash);
        Ok(true)
    }

    /// Reloads every `every`, for ever (run it as a task of the server's runtime).
    pub async fn watch(self, portal: std::sync::Arc<crate::state::Portal>, every: std::time::Duration) {
        if self.paths.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed(&portal.verifier) {
                Ok(true) => eprintln!("cpx-demo-portal: CRL reloaded from {}", self.describe()),
                Ok(false) => {}
                Err(e) => {
                    eprintln!("cpx-demo-portal: CRL not reloaded, the previous ones stay in force: {e}")
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    }
}
