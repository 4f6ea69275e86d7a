//! Certificate cache keyed by the card serial (EF.SN.ICC) and interface, invalidated when EF_ACTUA changes (the card
//! was updated online), so that a card seen before is ready without reading its certificate again.
//! In memory, and optionally in a folder (public data only: PKCS#15 layout and certificate).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::atr::Generation;
use crate::pkcs15::{KeyInfo, PinInfo};

/// What the driver needs of a card once its PKCS#15 structure has been read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub generation: Generation,
    pub app_aid: Vec<u8>,
    pub app_label: String,
    /// The code porteur guarding the authentication key (none on the contactless interface).
    pub pin: Option<PinInfo>,
    pub key: KeyInfo,
    pub cert_label: String,
    pub cert_der: Vec<u8>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    actua: Option<Vec<u8>>,
    layout: Layout,
}

#[derive(Default)]
pub struct CertCache {
    mem: Mutex<HashMap<String, Entry>>,
    dir: Option<PathBuf>,
}

impl CertCache {
    /// A cache in memory only.
    pub fn memory() -> Self {
        Self::default()
    }

    /// A cache also kept in `dir` (created if needed), shared between runs.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self { mem: Mutex::default(), dir: Some(dir) }
    }

    fn file(&self, serial: &str) -> Option<PathBuf> {
        let safe = serial.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        self.dir.as_ref().filter(|_| safe).map(|d| d.join(format!("{serial}.json")))
    }

    /// The layout of card `serial`, if known and EF_ACTUA is unchanged.
    pub fn get(&self, serial: &str, actua: Option<&[u8]>) -> Option<Layout> {
        let mut mem = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        if !mem.contains_key(serial) {
            let from_disk = self.file(serial).and_then(|f| std::fs::read(f).ok()).and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            mem.insert(serial.to_owned(), from_disk?);
        }
        mem.get(serial).filter(|e| e.actua.as_deref() == actua).map(|e| e.layout.clone())
    }

    pub fn put(&self, serial: &str, actua: Option<&[u8]>, layout: &Layout) {
        let entry = Entry { actua: actua.map(<[u8]>::to_vec), layout: layout.clone() };
        if let Some(f) = self.file(serial) {
            if let Some(parent) = f.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Ok(json) = serde_json::to_vec(&entry) {
                let _ = std::fs::write(f, json);
            }
        }
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).insert(serial.to_owned(), entry);
    }
}
