//! Where per-user secrets live: the OS keyring (Secret Service on Linux, Keychain, Credential Manager)
//! through keyring-core, or a 0600 file for headless machines without a keyring. Never the PIN.

use std::path::PathBuf;

use zeroize::Zeroizing;

const SERVICE: &str = "cpx-agent";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no usable keyring ({0}); start a Secret Service (gnome-keyring) or use key_store = \"file\"")]
    NoKeyring(String),
    #[error("keyring: {0}")]
    Keyring(String),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
}

pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, SecretError>;
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError>;
}

fn no_keyring(e: impl std::fmt::Display) -> SecretError {
    SecretError::NoKeyring(e.to_string())
}

/// The OS keyring, as installed by [`KeyringStore::native`] (or any keyring-core store set as default).
pub struct KeyringStore;

impl KeyringStore {
    /// Installs the platform's keyring as keyring-core's default store. Call before any async runtime
    /// starts (the Secret Service client runs its own executor).
    pub fn native() -> Result<Self, SecretError> {
        #[cfg(target_os = "linux")]
        keyring_core::set_default_store(zbus_secret_service_keyring_store::Store::new().map_err(no_keyring)?);
        // macOS and Windows: written to the stores' documented APIs, not built here (Linux only).
        #[cfg(target_os = "macos")]
        keyring_core::set_default_store(
            apple_native_keyring_store::keychain::Store::new().map_err(no_keyring)?,
        );
        #[cfg(windows)]
        keyring_core::set_default_store(windows_native_keyring_store::Store::new().map_err(no_keyring)?);
        #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
        return Err(no_keyring("no keyring store for this platform"));
        #[allow(unreachable_code)]
        Ok(Self)
    }

    fn entry(name: &str) -> Result<keyring_core::Entry, SecretError> {
        keyring_core::Entry::new(SERVICE, name).map_err(|e| SecretError::Keyring(e.to_string()))
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, SecretError> {
        match Self::entry(name)?.get_password() {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(SecretError::Keyring(e.to_string())),
        }
    }
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        Self::entry(name)?.set_password(value).map_err(|e| SecretError::Keyring(e.to_string()))
    }
}

/// Secrets in files readable by the user only (headless fallback).
pub struct FileStore {
    pub dir: PathBuf,
}

impl SecretStore for FileStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, SecretError> {
        let path = self.dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SecretError::File { path, source }),
        }
    }
    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        use std::io::Write;
        let path = self.dir.join(name);
        let err = |source| SecretError::File { path: path.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // Readable by the user only (on Windows the profile folder's ACL does that).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&path).map_err(err)?;
        f.write_all(value.as_bytes()).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_store_round_trip_on_the_mock() {
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let store = KeyringStore;
        assert!(store.get("absent").unwrap().is_none());
        store.set("k", "v").unwrap();
        assert_eq!(store.get("k").unwrap().as_deref().map(String::as_str), Some("v"));
    }
}
