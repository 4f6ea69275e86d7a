//! Certificate cache keyed by the card serial (EF.SN.ICC) and interface, so that a card seen before is ready
//! without reading its PKCS#15 structure again. An entry is used only when EF_ACTUA is unchanged (the card
//! was not updated online) and the card still holds the cached certificate (checked on every use by
//! `open.rs`: the certificate file's size and first bytes, since a real CPS3 never updated online has no
//! EF_ACTUA at all); an entry that does not match is forgotten. In memory, and optionally in a folder
//! (public data only: PKCS#15 layout and certificate), whose files are readable by their owner only.
//!
//! Beside it, in memory, the cards seen in each reader ([`Seen`]): the reader's event counter when the
//! card was read. The same count later (through the same PC/SC context, [`cpx_pcsc::EventCounter`]) and
//! the same ATR say the card never left the reader: `open.rs` then knows it without a single APDU. What
//! still guards the cached certificate then is the signature: checked with the certificate's public key
//! before it leaves the driver ([`crate::card::CpxCard::authenticate`]); a mismatch (a certificate
//! renewed on the card in place) drops the entry, and the next opening checks the card again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::atr::Generation;
use crate::card::CardInfo;
use crate::path::Pkcs15Path;
use crate::pkcs15::{KeyInfo, PinInfo};

/// What the driver needs of a card once its PKCS#15 structure has been read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The card generation.
    pub generation: Generation,
    /// The AID of the CPx application read.
    pub app_aid: Vec<u8>,
    /// The application's label.
    pub app_label: String,
    /// The code porteur guarding the authentication key (none on the contactless interface).
    pub pin: Option<PinInfo>,
    /// The authentication key.
    pub key: KeyInfo,
    /// The certificate's label.
    pub cert_label: String,
    /// Where the certificate is (checked again on every use of a cached entry).
    pub cert_path: Pkcs15Path,
    /// The certificate file's size, from its FCP.
    pub cert_file_size: Option<usize>,
    /// The authentication certificate (DER).
    pub cert_der: Vec<u8>,
    /// The card type code of the card's `CPS_ID_CARD` data object, when the card has one
    /// ([`crate::card_type::CardType::from_card_code`]).
    #[serde(default)]
    pub card_type_code: Option<u8>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Entry {
    actua: Option<Vec<u8>>,
    layout: Layout,
}

/// What was read from the cards already seen (layout and certificate), keyed by card number, so that a card
/// seen before opens with a few APDUs; in memory, and optionally in a folder shared between runs.
#[derive(Default)]
pub struct CertCache {
    mem: Mutex<HashMap<String, Entry>>,
    dir: Option<PathBuf>,
    seen: Mutex<Seen>,
}

/// The cards read in each reader, with the reader's event counter at the time, through one PC/SC
/// context kept open (see the module documentation).
#[derive(Default)]
struct Seen {
    counter: Option<cpx_pcsc::EventCounter>,
    readers: HashMap<String, SeenCard>,
}

/// A card read in a reader: what was learnt, and when (the reader's event count).
struct SeenCard {
    events: u32,
    info: CardInfo,
    layout: Layout,
    /// Cleared when a signature did not verify with the certificate: the entry is no longer vouched for.
    vouched: Arc<AtomicBool>,
}

/// A card known without reading it: what was learnt when it was read, and the flag a signature that does
/// not verify with its certificate clears.
pub(crate) struct Known {
    pub(crate) info: CardInfo,
    pub(crate) layout: Layout,
    pub(crate) vouched: Arc<AtomicBool>,
}

impl CertCache {
    /// A cache in memory only.
    pub fn memory() -> Self {
        Self::default()
    }

    /// A cache also kept in `dir` (created if needed), shared between runs.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self { mem: Mutex::default(), dir: Some(dir), seen: Mutex::default() }
    }

    /// The event count of `reader` now (`None`: not counted, no card, or PC/SC unreachable). A context
    /// that fails (the service stopped or restarted) is dropped with every count read through it.
    pub(crate) fn reader_events(&self, reader: &str) -> Option<u32> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.counter.is_none() {
            seen.readers.clear();
            seen.counter = cpx_pcsc::EventCounter::establish().ok();
        }
        match seen.counter.as_ref()?.events(reader) {
            Ok(count) => count,
            Err(_) => {
                *seen = Seen::default();
                None
            }
        }
    }

    /// The card read in `reader` when its event count was `events`, if it is the same count now, the ATR
    /// is the same and no signature has failed since.
    pub(crate) fn known(&self, reader: &str, events: u32, atr: &[u8]) -> Option<Known> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let card = seen.readers.get(reader)?;
        (card.events == events && card.info.atr == atr && card.vouched.load(Ordering::SeqCst)).then(|| {
            Known { info: card.info.clone(), layout: card.layout.clone(), vouched: card.vouched.clone() }
        })
    }

    /// Remembers the card just read in `reader` at event count `events`; returns its flag.
    pub(crate) fn saw(&self, reader: &str, events: u32, info: &CardInfo, layout: &Layout) -> Arc<AtomicBool> {
        let vouched = Arc::new(AtomicBool::new(true));
        let card = SeenCard { events, info: info.clone(), layout: layout.clone(), vouched: vouched.clone() };
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).readers.insert(reader.to_owned(), card);
        vouched
    }

    fn file(&self, serial: &str) -> Option<PathBuf> {
        let safe = serial.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        self.dir.as_ref().filter(|_| safe).map(|d| d.join(format!("{serial}.json")))
    }

    /// The layout of card `serial`, if known and EF_ACTUA is unchanged.
    pub fn get(&self, serial: &str, actua: Option<&[u8]>) -> Option<Layout> {
        let mut mem = self.mem.lock().unwrap_or_else(|e| e.into_inner());
        if !mem.contains_key(serial) {
            let from_disk = self
                .file(serial)
                .and_then(|f| std::fs::read(f).ok())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            mem.insert(serial.to_owned(), from_disk?);
        }
        mem.get(serial).filter(|e| e.actua.as_deref() == actua).map(|e| e.layout.clone())
    }

    /// Remembers the layout of card `serial`, with the EF.ACTUA content it was read with.
    pub fn put(&self, serial: &str, actua: Option<&[u8]>, layout: &Layout) {
        let entry = Entry { actua: actua.map(<[u8]>::to_vec), layout: layout.clone() };
        if let Some(f) = self.file(serial) {
            if let Ok(json) = serde_json::to_vec(&entry) {
                let _ = write_private(&f, &json);
            }
        }
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).insert(serial.to_owned(), entry);
    }

    /// Drops the entry of card `serial` (the card no longer holds the cached certificate).
    pub fn forget(&self, serial: &str) {
        self.mem.lock().unwrap_or_else(|e| e.into_inner()).remove(serial);
        if let Some(f) = self.file(serial) {
            let _ = std::fs::remove_file(f);
        }
    }

    /// The folder of the cache, if it has one.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }
}

/// Writes `bytes` to `file` (folder created if needed), readable and writable by the owner only (0600 on
/// Unix, the folder 0700), through a temporary file renamed over the old one.
fn write_private(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let parent = file.parent().ok_or_else(|| std::io::Error::other("no folder"))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(parent)?;
    let tmp = file.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&tmp)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{ObjectPath, Pkcs15Path};

    fn layout(cert: &[u8]) -> Layout {
        Layout {
            generation: Generation::Cps3,
            app_aid: vec![0xE8, 0x28],
            app_label: "CPx IAS".into(),
            pin: None,
            key: KeyInfo {
                label: "CPS_PRIV_AUT".into(),
                id: vec![2],
                usage: vec![1, 2],
                reference: 0x82,
                auth_id: None,
                path: Some(Pkcs15Path::none()),
                modulus_bits: Some(2048),
            },
            cert_label: "Certificat d'Authentification CPS".into(),
            cert_path: Pkcs15Path { aid: None, file: ObjectPath::Relative(vec![0xC002]), slice: None },
            cert_file_size: Some(cert.len()),
            cert_der: cert.to_vec(),
            card_type_code: None,
        }
    }

    #[test]
    fn files_are_private_survive_a_restart_and_can_be_forgotten() {
        let dir = std::env::temp_dir().join(format!("cpx-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CertCache::in_dir(dir.join("cards"));
        cache.put("992138450-contact", None, &layout(b"cert one"));
        let file = dir.join("cards/992138450-contact.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(dir.join("cards")).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // Another process (a restart) reads it from the folder.
        let again = CertCache::in_dir(dir.join("cards"));
        assert_eq!(again.get("992138450-contact", None).unwrap().cert_der, b"cert one");
        // A changed EF_ACTUA misses.
        assert!(again.get("992138450-contact", Some(&[1])).is_none());
        again.forget("992138450-contact");
        assert!(!file.exists());
        assert!(CertCache::in_dir(dir.join("cards")).get("992138450-contact", None).is_none());
        // A serial that is not a plain name never becomes a file name.
        cache.put("../x", None, &layout(b"c"));
        assert!(!dir.join("x.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
