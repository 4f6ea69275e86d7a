//! Where per-user secrets live: the OS keyring (Secret Service on Linux, Keychain, Credential Manager)
//! through keyring-core, or files of this user only ([`PrivateFileStore`]: `key_store = "file"`, and the
//! fallback when no keyring is usable, e.g. a desktop session without a Secret Service). Never the PIN:
//! the agent stores it nowhere. [`FileStore`] is the machine identity's shared folder.
//!
//! When a keyring is usable again, the secrets of the fallback files move into it at the next start
//! ([`move_into`]): the files are the newest copies (the loopback certificate on disk was made with them).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

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
    #[error("{path}: refused, {reason}")]
    Unsafe { path: PathBuf, reason: UnsafeFile },
    #[error("{0:?} is not a secret's name")]
    BadName(String),
}

/// Why a secret's file or folder is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeFile {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("it belongs to user {owner}, not to this user ({me})")]
    NotOwned { owner: u32, me: u32 },
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is not a folder")]
    NotAFolder,
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
    /// The platform's keyring ([`KeyringStore::native`]) if it answers: reading `probe` (absent or not)
    /// must work. A session bus without a Secret Service, or a keyring that stays locked, is no keyring.
    pub fn usable(probe: &str) -> Result<Self, SecretError> {
        let store = Self::native()?;
        store.get(probe).map_err(|e| match e {
            SecretError::Keyring(e) => SecretError::NoKeyring(e),
            e => e,
        })?;
        Ok(store)
    }

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

/// Secrets in a folder shared on purpose: the machine identity's (`machine_trust`, written as root,
/// readable by every user) and the broker's. A user's own secrets are in a [`PrivateFileStore`].
pub struct FileStore {
    /// The folder of the secrets.
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

/// The folder of a user's secret files in the agent's data folder.
pub const PRIVATE_DIR: &str = "secrets";

/// This user's secrets in files (`<data folder>/secrets/<name>`): the folder is 0700, each file 0600 from
/// its creation (written to a new file, then renamed: never a mode changed after the content is there),
/// both owned by this user; a symbolic link, or a file or folder of another user, is refused. A folder or
/// file of this user open to others is closed (0700, 0600) before use.
pub struct PrivateFileStore {
    dir: PathBuf,
}

impl PrivateFileStore {
    /// The store in `data_dir`'s [`PRIVATE_DIR`].
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::at(data_dir.join(PRIVATE_DIR))
    }

    /// The store in `dir` itself.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The names of the secrets held (none when the folder does not exist).
    pub fn names(&self) -> Result<Vec<String>, SecretError> {
        if !self.folder(false)? {
            return Ok(Vec::new());
        }
        let err = |source| SecretError::File { path: self.dir.clone(), source };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(err)? {
            let name = entry.map_err(err)?.file_name().to_string_lossy().into_owned();
            if check_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes the secret `name` (nothing when absent).
    pub fn remove(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let path = self.dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SecretError::File { path, source: e }),
            _ => Ok(()),
        }
    }

    /// Checks the folder (created 0700 when `create` and absent); whether it exists.
    fn folder(&self, create: bool) -> Result<bool, SecretError> {
        if private::folder(&self.dir)? {
            return Ok(true);
        } else if !create {
            return Ok(false);
        }
        let err = |source| SecretError::File { path: self.dir.clone(), source };
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        #[cfg(unix)]
        let builder = {
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b
        };
        #[cfg(not(unix))]
        let builder = std::fs::DirBuilder::new();
        match builder.create(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(err(e)),
            _ => private::folder(&self.dir),
        }
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    let fine = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_owned()))
    }
}

impl SecretStore for PrivateFileStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<String>>, SecretError> {
        use std::io::Read;
        check_name(name)?;
        if !self.folder(false)? {
            return Ok(None);
        }
        let path = self.dir.join(name);
        let mut file = match private::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(private::refused(&path, e)),
        };
        private::check(&file, &path, false)?;
        let mut value = Zeroizing::new(String::new());
        file.read_to_string(&mut value).map_err(|source| SecretError::File { path, source })?;
        Ok(Some(value))
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        use std::io::Write;
        check_name(name)?;
        self.folder(true)?;
        let path = self.dir.join(name);
        // A new file, 0600 from its creation (O_EXCL: never an existing file or a link), then renamed over
        // the old one (rename replaces a link itself, never what it points to).
        let fresh = self.dir.join(format!(".{name}.new"));
        let err = |source| SecretError::File { path: fresh.clone(), source };
        let _ = std::fs::remove_file(&fresh);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&fresh).map_err(err)?;
        file.write_all(value.as_bytes()).and_then(|()| file.sync_all()).map_err(err)?;
        std::fs::rename(&fresh, &path).map_err(|source| SecretError::File { path, source })
    }
}

/// Opening without following links and checking what was opened (the descriptor, not the name again).
mod private {
    use std::fs::File;
    use std::path::Path;

    use super::{SecretError, UnsafeFile};

    /// Opens the file `path` for reading; a symbolic link fails (ELOOP).
    pub fn open(path: &Path) -> std::io::Result<File> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        options.open(path)
    }

    /// Checks the folder `path`, not following a link; whether it exists.
    pub fn folder(path: &Path) -> Result<bool, SecretError> {
        #[cfg(unix)]
        {
            let mut options = std::fs::OpenOptions::new();
            options.read(true);
            std::os::unix::fs::OpenOptionsExt::custom_flags(
                &mut options,
                libc::O_NOFOLLOW | libc::O_DIRECTORY,
            );
            match options.open(path) {
                Ok(dir) => check(&dir, path, true).map(|()| true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(refused(path, e)),
            }
        }
        // Windows: the profile folder's ACL keeps others out; a link is still refused.
        #[cfg(not(unix))]
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                Err(SecretError::Unsafe { path: path.to_path_buf(), reason: UnsafeFile::Symlink })
            }
            Ok(m) if !m.is_dir() => {
                Err(SecretError::Unsafe { path: path.to_path_buf(), reason: UnsafeFile::NotAFolder })
            }
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SecretError::File { path: path.to_path_buf(), source: e }),
        }
    }

    /// An open error as a refusal when it says the name is a link (or a folder's name is a file).
    pub fn refused(path: &Path, e: std::io::Error) -> SecretError {
        #[cfg(unix)]
        {
            let reason = match e.raw_os_error() {
                Some(libc::ELOOP) => Some(UnsafeFile::Symlink),
                // O_DIRECTORY with O_NOFOLLOW on a link: ENOTDIR (Linux) rather than ELOOP.
                Some(libc::ENOTDIR) => {
                    Some(if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                        UnsafeFile::Symlink
                    } else {
                        UnsafeFile::NotAFolder
                    })
                }
                _ => None,
            };
            if let Some(reason) = reason {
                return SecretError::Unsafe { path: path.to_path_buf(), reason };
            }
        }
        SecretError::File { path: path.to_path_buf(), source: e }
    }

    /// The opened file or folder is of the right kind and this user's; open to others, it is closed.
    pub fn check(file: &File, path: &Path, folder: bool) -> Result<(), SecretError> {
        let err = |source| SecretError::File { path: path.to_path_buf(), source };
        let refuse = |reason| SecretError::Unsafe { path: path.to_path_buf(), reason };
        let meta = file.metadata().map_err(err)?;
        match (folder, meta.is_dir(), meta.is_file()) {
            (true, false, _) => return Err(refuse(UnsafeFile::NotAFolder)),
            (false, _, false) => return Err(refuse(UnsafeFile::NotAFile)),
            _ => {}
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let me = super::effective_uid();
            if meta.uid() != me {
                return Err(refuse(UnsafeFile::NotOwned { owner: meta.uid(), me }));
            }
            let private = if folder { 0o700 } else { 0o600 };
            if meta.mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.mode() & 0o777), "secret open to others: closed");
                file.set_permissions(std::fs::Permissions::from_mode(private)).map_err(err)?;
            }
        }
        Ok(())
    }
}

/// Moves every secret of `files` into `keyring` (the files are the newest: the loopback certificate on
/// disk was made with them), deleting each file once the keyring holds it.
pub fn move_into(files: &PrivateFileStore, keyring: &dyn SecretStore) -> Result<Vec<String>, SecretError> {
    let names = files.names()?;
    for name in &names {
        if let Some(value) = files.get(name)? {
            keyring.set(name, &value)?;
        }
        files.remove(name)?;
    }
    Ok(names)
}

/// The folder holding this user's secrets because no keyring was usable: `key_store` asks for the
/// keyring, and files are there (they move into the keyring at the first start that finds one).
pub fn keyring_fallback(kind: crate::platform::config::KeyStoreKind, data_dir: &Path) -> Option<PathBuf> {
    let files = PrivateFileStore::in_data_dir(data_dir);
    let held = files.names().map(|n| !n.is_empty()).unwrap_or(true);
    (kind == crate::platform::config::KeyStoreKind::Keyring && held && files.dir().exists())
        .then(|| files.dir().to_path_buf())
}

/// This process's effective user id: the owner the private files must have.
#[cfg(unix)]
fn effective_uid() -> u32 {
    crate::platform::sys::effective_uid()
}

/// The agent's data folder is this user's only (Unix 0700; issue 19): another account of the machine
/// reads neither the sites the professional approved nor anything else kept there. Made when absent;
/// closed when open to others (a folder of another owner cannot be, and is left as it is, logged).
pub fn private_data_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                tracing::warn!(path = %dir.display(), mode = format!("{:o}", mode & 0o777), error = %e, "data folder open to others");
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` as a file of this user's only (Unix 0600, whatever the umask).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)
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

    /// A fresh folder of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cpx-secrets-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    #[cfg(unix)]
    fn private_files_are_0600_in_a_0700_folder() {
        use std::os::unix::fs::PermissionsExt;
        let data = scratch("modes");
        let store = PrivateFileStore::in_data_dir(&data);
        assert!(store.get(crate::platform::localca::KEY_NAME).unwrap().is_none(), "nothing yet");
        assert!(!store.dir().exists(), "reading creates nothing");
        store.set(crate::platform::localca::KEY_NAME, "-----BEGIN PRIVATE KEY-----").unwrap();
        assert_eq!(mode(store.dir()), 0o700);
        let file = store.dir().join(crate::platform::localca::KEY_NAME);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(
            store.get(crate::platform::localca::KEY_NAME).unwrap().as_deref().map(String::as_str),
            Some("-----BEGIN PRIVATE KEY-----")
        );
        assert_eq!(
            store.names().unwrap(),
            vec![crate::platform::localca::KEY_NAME.to_owned()],
            "no temporary file left"
        );
        // An old file open to others is replaced by a new one, 0600 from its creation.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.set(crate::platform::localca::KEY_NAME, "new").unwrap();
        assert_eq!(mode(&file), 0o600);
        // A folder or a file of this user open to others is closed before use.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            store.get(crate::platform::localca::KEY_NAME).unwrap().as_deref().map(String::as_str),
            Some("new")
        );
        assert_eq!((mode(store.dir()), mode(&file)), (0o700, 0o600));
        assert!(matches!(store.set("../escape", "x"), Err(SecretError::BadName(_))));
        std::fs::remove_dir_all(&data).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn private_files_refuse_symbolic_links() {
        let data = scratch("links");
        let elsewhere = data.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("target"), "not yours").unwrap();
        // The secret is a link: reading refuses it, writing replaces the link, never what it points to.
        let store = PrivateFileStore::at(data.join("secrets"));
        store.set("other", "x").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("target"), store.dir().join("k")).unwrap();
        let refused = store.get("k").unwrap_err();
        assert!(matches!(refused, SecretError::Unsafe { reason: UnsafeFile::Symlink, .. }), "{refused}");
        store.set("k", "mine").unwrap();
        assert_eq!(std::fs::read_to_string(elsewhere.join("target")).unwrap(), "not yours");
        assert!(!std::fs::symlink_metadata(store.dir().join("k")).unwrap().file_type().is_symlink());
        // The folder is a link: refused for reading and for writing.
        let linked = PrivateFileStore::at(data.join("linked"));
        std::os::unix::fs::symlink(&elsewhere, linked.dir()).unwrap();
        for result in [linked.get("target").map(|_| ()), linked.set("k", "v"), linked.names().map(|_| ())] {
            assert!(
                matches!(result, Err(SecretError::Unsafe { reason: UnsafeFile::Symlink, .. })),
                "{result:?}"
            );
        }
        assert!(!elsewhere.join("k").exists(), "nothing written through the link");
        std::fs::remove_dir_all(&data).unwrap();
    }

    #[test]
    #[cfg(unix)]
    fn private_files_refuse_another_users_folder_or_file() {
        let data = scratch("owner");
        let store = PrivateFileStore::in_data_dir(&data);
        store.set("k", "v").unwrap();
        let me = effective_uid();
        let (folder, file) = if me == 0 {
            // As root: hand the file, then the folder, to `nobody`.
            let file = PrivateFileStore::at(store.dir().to_path_buf());
            std::os::unix::fs::chown(store.dir().join("k"), Some(65534), None).unwrap();
            let file_refused = file.get("k").unwrap_err();
            std::os::unix::fs::chown(store.dir().join("k"), Some(0), None).unwrap();
            std::os::unix::fs::chown(store.dir(), Some(65534), None).unwrap();
            (store.get("k").unwrap_err(), file_refused)
        } else {
            // Not root: a folder of root's stands for another user's.
            (
                PrivateFileStore::at("/".into()).get("k").unwrap_err(),
                PrivateFileStore::at("/etc".into()).get("passwd").unwrap_err(),
            )
        };
        for refused in [folder, file] {
            assert!(
                matches!(refused, SecretError::Unsafe { reason: UnsafeFile::NotOwned { .. }, .. }),
                "{refused}"
            );
        }
        if me == 0 {
            assert!(store.set("k", "w").is_err(), "nothing written in another user's folder");
        }
        std::fs::remove_dir_all(&data).unwrap();
    }

    #[test]
    fn fallback_files_move_into_the_keyring_and_are_said_until_then() {
        use crate::platform::config::KeyStoreKind;
        let data = scratch("move");
        let files = PrivateFileStore::in_data_dir(&data);
        assert_eq!(keyring_fallback(KeyStoreKind::Keyring, &data), None, "no files, no fallback");
        files.set(crate::platform::localca::KEY_NAME, "newest key").unwrap();
        files.set("sites-integrity-key", "mac key").unwrap();
        assert_eq!(keyring_fallback(KeyStoreKind::Keyring, &data), Some(files.dir().to_path_buf()));
        assert_eq!(keyring_fallback(KeyStoreKind::File, &data), None, "files asked for: no warning");
        // The keyring's older copy is replaced by the file's (the one the certificate on disk matches).
        let keyring = PrivateFileStore::at(data.join("stand-in-keyring"));
        keyring.set(crate::platform::localca::KEY_NAME, "older key").unwrap();
        let moved = move_into(&files, &keyring).unwrap();
        assert_eq!(
            moved,
            vec![crate::platform::localca::KEY_NAME.to_owned(), "sites-integrity-key".to_owned()]
        );
        assert_eq!(
            keyring.get(crate::platform::localca::KEY_NAME).unwrap().as_deref().map(String::as_str),
            Some("newest key")
        );
        assert_eq!(
            keyring.get("sites-integrity-key").unwrap().as_deref().map(String::as_str),
            Some("mac key")
        );
        assert!(files.names().unwrap().is_empty(), "the files are gone");
        assert_eq!(keyring_fallback(KeyStoreKind::Keyring, &data), None, "and so is the warning");
        std::fs::remove_dir_all(&data).unwrap();
    }
}
