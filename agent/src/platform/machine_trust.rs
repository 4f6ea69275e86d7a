//! The machine's loopback identity and its machine-wide trust, for `cpx-agent install-trust` and
//! `uninstall-trust` (run as root/Administrator by the installers).
//!
//! `install-trust` creates, in the machine data folder ([`crate::platform::paths::machine_data_dir`]), a local CA
//! and its `127.0.0.1`/`localhost` certificate exactly as [`crate::platform::localca`] does for one user (the CA is
//! name-constrained to the loopback names and its key is destroyed once the leaf is signed), then trusts
//! the CA machine-wide:
//! - Linux: the system store (`/usr/local/share/ca-certificates/agent-cpx-local-ca.crt`, then
//!   `update-ca-certificates`), Chromium/Chrome/Edge through their managed policy `CACertificates`
//!   (`/etc/chromium/policies/managed`, `/etc/opt/chrome/…`, `/etc/opt/edge/…`: a JSON file of ours), and
//!   Firefox through `Certificates.Install` in its enterprise `policies.json` (`/etc/firefox/policies`,
//!   `/etc/firefox-esr/policies`), merged into what is already there;
//! - macOS: the System keychain (`security add-trusted-cert -d -r trustRoot`);
//! - Windows: the LocalMachine Root store ([`crate::platform::root_store`]).
//!
//! `uninstall-trust` takes all of it away. The leaf's key is readable by every local account, so that
//! each user's agent can present the machine's certificate (the trade-off: docs/security.md, « The
//! machine's loopback identity »). An agent uses this identity when it exists ([`identity`]), else its
//! per-user one.

use std::path::{Path, PathBuf};

use crate::platform::localca::{self, LocalCaError, LoopbackIdentity};
use crate::platform::secrets::FileStore;

/// The file name of the CA in the stores that take files.
pub const STORE_FILE_NAME: &str = "agent-cpx-local-ca";
/// Our file in the Chromium-family managed policy folders.
pub const CHROMIUM_POLICY_FILE: &str = "agent-cpx-local-ca.json";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    LocalCa(#[from] LocalCaError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a JSON object ({detail}); fix or remove it, then run again")]
    Json { path: PathBuf, detail: String },
    #[error("{command}: {detail}")]
    Command { command: String, detail: String },
    #[error("{0}: no certificate in it")]
    NoCertificate(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrustError + '_ {
    move |source| TrustError::Io { path: path.to_path_buf(), source }
}

/// The machine data folder: `CPX_AGENT_MACHINE_DIR` when set to an absolute path (tests), else the OS's
/// (Linux `/var/lib/cpx-agent`).
pub fn machine_dir() -> PathBuf {
    std::env::var_os("CPX_AGENT_MACHINE_DIR").map(PathBuf::from).filter(|d| d.is_absolute()).unwrap_or_else(
        || {
            crate::platform::paths::machine_data_dir(crate::platform::paths::Os::current(), |n| {
                std::env::var_os(n)
            })
        },
    )
}

/// Where the leaf's key lives: the layout of [`FileStore`] in `dir/secrets`, so that `cpx-agent broker
/// --data-dir DIR` presents the same certificate.
fn key_store(dir: &Path) -> FileStore {
    FileStore { dir: dir.join("secrets") }
}

/// The machine's loopback identity in `dir`: `None` when there is none (no `install-trust` was run),
/// an error when it is there but cannot be read (a damaged install, a key this account cannot read).
pub fn identity(dir: &Path) -> Option<Result<LoopbackIdentity, LocalCaError>> {
    let ca_path = dir.join(localca::CA_FILE);
    if !ca_path.exists() {
        return None;
    }
    let cert_path = dir.join(localca::CERT_FILE);
    let read = || -> Result<LoopbackIdentity, LocalCaError> {
        let cert_pem = std::fs::read_to_string(&cert_path)
            .map_err(|source| LocalCaError::Io { path: cert_path.clone(), source })?;
        let key_pem = crate::platform::secrets::SecretStore::get(&key_store(dir), localca::KEY_NAME)?
            .ok_or_else(|| LocalCaError::Io {
                path: key_store(dir).dir.join(localca::KEY_NAME),
                source: std::io::ErrorKind::NotFound.into(),
            })?;
        Ok(LoopbackIdentity { cert_pem, key_pem, ca_path: ca_path.clone() })
    };
    Some(read())
}

/// One place where the CA is (or should be) trusted, and whether it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub store: String,
    pub trusted: bool,
}

/// What `install-trust` did.
#[derive(Debug, Default)]
pub struct Done {
    /// A new identity was made (else the one in place was kept).
    pub created: bool,
    /// The stores the CA was put in (or taken out of, for `uninstall-trust`).
    pub stores: Vec<String>,
}

/// The CA certificate's DER in a PEM file.
fn ca_der(path: &Path) -> Result<Vec<u8>, TrustError> {
    let pem = std::fs::read_to_string(path).map_err(io(path))?;
    crate::platform::browser_trust::ders(&pem)
        .into_iter()
        .next()
        .ok_or_else(|| TrustError::NoCertificate(path.to_path_buf()))
}

/// Makes the identity in `dir` when absent, then trusts its CA machine-wide. Run again, it keeps the
/// identity and writes the trust again (idempotent).
pub fn install(dir: &Path) -> Result<Done, TrustError> {
    install_in(dir, &System::here())
}

/// Takes the CA of `dir` out of every machine-wide store, then removes the identity.
pub fn uninstall(dir: &Path) -> Result<Done, TrustError> {
    uninstall_in(dir, &System::here())
}

/// What each machine-wide store says of the CA of `dir`.
pub fn check(dir: &Path) -> Result<Vec<Verdict>, TrustError> {
    let ca_path = dir.join(localca::CA_FILE);
    let der = ca_der(&ca_path)?;
    System::here().check(&der, &ca_path)
}

fn install_in(dir: &Path, system: &System) -> Result<Done, TrustError> {
    let ca_path = dir.join(localca::CA_FILE);
    let before = ca_der(&ca_path).ok();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let identity = localca::load_or_create(dir, &key_store(dir))?;
    share_key(dir)?;
    let der = ca_der(&identity.ca_path)?;
    let mut done = Done { created: before.as_ref() != Some(&der), stores: Vec::new() };
    // A CA that was made again (its leaf or key had gone): the old one is trusted no more.
    if let Some(old) = before.filter(|old| *old != der) {
        system.untrust(&old, &ca_path)?;
    }
    done.stores = system.trust(&der, &identity.ca_path)?;
    Ok(done)
}

fn uninstall_in(dir: &Path, system: &System) -> Result<Done, TrustError> {
    let ca_path = dir.join(localca::CA_FILE);
    let mut done = Done::default();
    match ca_der(&ca_path) {
        Ok(der) => done.stores = system.untrust(&der, &ca_path)?,
        // No identity: still take away the files of ours a broken install may have left.
        Err(_) => done.stores = system.untrust(&[], &ca_path)?,
    }
    for file in [dir.join(localca::CERT_FILE), key_store(dir).dir.join(localca::KEY_NAME), ca_path] {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrustError::Io { path: file, source: e }),
        }
    }
    // The folders go when nothing else is in them (the policy file may share the macOS folder).
    let _ = std::fs::remove_dir(key_store(dir).dir);
    let _ = std::fs::remove_dir(dir);
    Ok(done)
}

/// The folder, the certificates and the leaf's key readable by every local account (see the module's
/// documentation); only root can write them.
fn share_key(dir: &Path) -> Result<(), TrustError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let store = key_store(dir).dir;
        for (path, mode) in [
            (dir.to_path_buf(), 0o755),
            (store.clone(), 0o755),
            (store.join(localca::KEY_NAME), 0o644),
            (dir.join(localca::CA_FILE), 0o644),
            (dir.join(localca::CERT_FILE), 0o644),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io(&path))?;
        }
    }
    // Windows: %ProgramData%'s inherited ACL lets Users read and only Administrators write.
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The machine-wide stores of this OS. On Linux their files are under `root` (`/`, or a scratch folder in
/// the unit tests, where `update-ca-certificates` is not run).
struct System {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    root: PathBuf,
}

impl System {
    fn here() -> Self {
        Self { root: PathBuf::from("/") }
    }
}

#[cfg(target_os = "linux")]
impl System {
    fn system_store_file(&self) -> PathBuf {
        self.root.join("usr/local/share/ca-certificates").join(format!("{STORE_FILE_NAME}.crt"))
    }

    /// The bundle `update-ca-certificates` writes.
    fn system_bundle(&self) -> PathBuf {
        self.root.join("etc/ssl/certs/ca-certificates.crt")
    }

    fn chromium_policy_dirs(&self) -> Vec<(&'static str, PathBuf)> {
        [
            ("Chromium", "etc/chromium/policies/managed"),
            ("Google Chrome", "etc/opt/chrome/policies/managed"),
            ("Microsoft Edge", "etc/opt/edge/policies/managed"),
        ]
        .into_iter()
        .map(|(name, dir)| (name, self.root.join(dir)))
        .collect()
    }

    fn firefox_policy_files(&self) -> Vec<(&'static str, PathBuf)> {
        [
            ("Firefox", "etc/firefox/policies/policies.json"),
            ("Firefox ESR", "etc/firefox-esr/policies/policies.json"),
        ]
        .into_iter()
        .map(|(name, file)| (name, self.root.join(file)))
        .collect()
    }

    fn update_ca_certificates(&self) -> Result<(), TrustError> {
        if self.root != Path::new("/") {
            return Ok(());
        }
        run("update-ca-certificates", &[])
    }

    fn trust(&self, der: &[u8], ca_path: &Path) -> Result<Vec<String>, TrustError> {
        use base64::Engine;
        let mut stores = Vec::new();
        let file = self.system_store_file();
        create_dir(file.parent().unwrap_or(&self.root))?;
        write_public(&file, &pem(der))?;
        self.update_ca_certificates()?;
        stores.push(format!("system ({})", file.display()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for (name, dir) in self.chromium_policy_dirs() {
            create_dir(&dir)?;
            let path = dir.join(CHROMIUM_POLICY_FILE);
            let policy = serde_json::json!({ "CACertificates": [b64] });
            write_public(&path, &format!("{policy:#}\n"))?;
            stores.push(format!("{name} ({})", path.display()));
        }
        let ca = ca_path.to_string_lossy().into_owned();
        for (name, path) in self.firefox_policy_files() {
            edit_firefox(&path, |list| {
                if !list.iter().any(|v| v.as_str() == Some(&ca)) {
                    list.push(ca.clone().into());
                }
            })?;
            stores.push(format!("{name} ({})", path.display()));
        }
        Ok(stores)
    }

    /// Removes what [`System::trust`] wrote (only ours: other entries of policies.json stay).
    fn untrust(&self, _der: &[u8], ca_path: &Path) -> Result<Vec<String>, TrustError> {
        let mut stores = Vec::new();
        let file = self.system_store_file();
        if remove_file(&file)? {
            stores.push(format!("system ({})", file.display()));
        }
        // Run it anyway: the bundle may still hold a CA whose file is gone.
        self.update_ca_certificates()?;
        for (name, dir) in self.chromium_policy_dirs() {
            let path = dir.join(CHROMIUM_POLICY_FILE);
            if remove_file(&path)? {
                stores.push(format!("{name} ({})", path.display()));
            }
            // Up to the browser's own folder: /etc/opt belongs to the system (base-files).
            let stop = if dir.starts_with(self.root.join("etc/opt")) {
                self.root.join("etc/opt")
            } else {
                self.root.join("etc")
            };
            remove_empty_dirs(&dir, &stop);
        }
        let ca = ca_path.to_string_lossy().into_owned();
        for (name, path) in self.firefox_policy_files() {
            if path.exists() && edit_firefox(&path, |list| list.retain(|v| v.as_str() != Some(&ca)))? {
                stores.push(format!("{name} ({})", path.display()));
            }
        }
        Ok(stores)
    }

    fn check(&self, der: &[u8], ca_path: &Path) -> Result<Vec<Verdict>, TrustError> {
        use base64::Engine;
        let mut verdicts = Vec::new();
        let bundle = std::fs::read_to_string(self.system_bundle()).unwrap_or_default();
        let in_bundle = crate::platform::browser_trust::ders(&bundle).iter().any(|d| d == der);
        verdicts.push(Verdict {
            store: format!("system ({})", self.system_bundle().display()),
            trusted: in_bundle,
        });
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for (name, dir) in self.chromium_policy_dirs() {
            let path = dir.join(CHROMIUM_POLICY_FILE);
            let policy: Option<serde_json::Value> =
                std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
            let listed = policy
                .as_ref()
                .and_then(|p| p["CACertificates"].as_array())
                .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(&b64)));
            verdicts.push(Verdict { store: format!("{name} policy ({})", path.display()), trusted: listed });
        }
        let ca = ca_path.to_string_lossy();
        for (name, path) in self.firefox_policy_files() {
            let policy: Option<serde_json::Value> =
                std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
            let listed = policy
                .as_ref()
                .and_then(|p| p["policies"]["Certificates"]["Install"].as_array())
                .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(&ca)));
            verdicts.push(Verdict { store: format!("{name} policy ({})", path.display()), trusted: listed });
        }
        Ok(verdicts)
    }
}

#[cfg(target_os = "macos")]
impl System {
    const KEYCHAIN: &'static str = "/Library/Keychains/System.keychain";

    fn trust(&self, _der: &[u8], ca_path: &Path) -> Result<Vec<String>, TrustError> {
        let ca = ca_path.to_string_lossy();
        run("security", &["add-trusted-cert", "-d", "-r", "trustRoot", "-k", Self::KEYCHAIN, &ca])?;
        Ok(vec![format!("System keychain ({})", Self::KEYCHAIN)])
    }

    fn untrust(&self, der: &[u8], ca_path: &Path) -> Result<Vec<String>, TrustError> {
        if der.is_empty() {
            return Ok(Vec::new());
        }
        let ca = ca_path.to_string_lossy();
        // The trust settings, then the certificate (by its SHA-1, as `security` names certificates).
        let _ = run("security", &["remove-trusted-cert", "-d", &ca]);
        let sha1 = sha1_hex(der);
        run("security", &["delete-certificate", "-Z", &sha1, Self::KEYCHAIN])?;
        Ok(vec![format!("System keychain ({})", Self::KEYCHAIN)])
    }

    fn check(&self, _der: &[u8], ca_path: &Path) -> Result<Vec<Verdict>, TrustError> {
        let ca = ca_path.to_string_lossy();
        let trusted = std::process::Command::new("security")
            .args(["verify-cert", "-c", &ca, "-p", "ssl"])
            .output()
            .is_ok_and(|o| o.status.success());
        Ok(vec![Verdict { store: format!("System keychain ({})", Self::KEYCHAIN), trusted }])
    }
}

/// The SHA-1 of a certificate in upper-case hex, the name `security delete-certificate -Z` takes.
#[cfg(target_os = "macos")]
fn sha1_hex(der: &[u8]) -> String {
    hex::encode_upper(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der))
}

#[cfg(windows)]
impl System {
    fn trust(&self, der: &[u8], _ca_path: &Path) -> Result<Vec<String>, TrustError> {
        crate::platform::root_store::add(der).map_err(|e| TrustError::Command {
            command: "LocalMachine Root store".into(),
            detail: e.to_string(),
        })?;
        Ok(vec!["LocalMachine Root store".into()])
    }

    fn untrust(&self, der: &[u8], _ca_path: &Path) -> Result<Vec<String>, TrustError> {
        if der.is_empty() {
            return Ok(Vec::new());
        }
        crate::platform::root_store::remove(der).map_err(|e| TrustError::Command {
            command: "LocalMachine Root store".into(),
            detail: e.to_string(),
        })?;
        Ok(vec!["LocalMachine Root store".into()])
    }

    fn check(&self, der: &[u8], _ca_path: &Path) -> Result<Vec<Verdict>, TrustError> {
        let trusted = crate::platform::root_store::contains(der).unwrap_or(false);
        Ok(vec![Verdict { store: "LocalMachine Root store".into(), trusted }])
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
impl System {
    fn trust(&self, _der: &[u8], _ca_path: &Path) -> Result<Vec<String>, TrustError> {
        Err(TrustError::Command {
            command: "install-trust".into(),
            detail: "no machine-wide store known on this system".into(),
        })
    }
    fn untrust(&self, _der: &[u8], _ca_path: &Path) -> Result<Vec<String>, TrustError> {
        Ok(Vec::new())
    }
    fn check(&self, _der: &[u8], _ca_path: &Path) -> Result<Vec<Verdict>, TrustError> {
        Ok(Vec::new())
    }
}

/// Runs a program; its output on failure.
#[cfg_attr(windows, allow(dead_code))]
fn run(program: &str, args: &[&str]) -> Result<(), TrustError> {
    let command = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| TrustError::Command { command: command.clone(), detail: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let detail = format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    Err(TrustError::Command { command, detail })
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn create_dir(dir: &Path) -> Result<(), TrustError> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// Writes a file every account may read (mode 0644 whatever the umask).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn write_public(path: &Path, text: &str) -> Result<(), TrustError> {
    std::fs::write(path, text).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(io(path))?;
    }
    Ok(())
}

/// Removes a file; whether it was there.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn remove_file(path: &Path) -> Result<bool, TrustError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(TrustError::Io { path: path.to_path_buf(), source: e }),
    }
}

/// Removes `dir` and its parents while they are empty, stopping below `stop`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn remove_empty_dirs(dir: &Path, stop: &Path) {
    let mut dir = Some(dir);
    while let Some(d) = dir.filter(|d| d.starts_with(stop) && *d != stop) {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Edits `Certificates.Install` of a Firefox `policies.json` (agent/src/platform/firefox_policies.rs: created when
/// absent, other policies kept, removed when nothing is left); says whether the file changed.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn edit_firefox(path: &Path, edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> Result<bool, TrustError> {
    use crate::platform::firefox_policies::{edit_list, Next};
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(TrustError::Io { path: path.to_path_buf(), source: e }),
    };
    let next = edit_list(existing.as_deref(), "Certificates", "Install", edit)
        .map_err(|e| TrustError::Json { path: path.to_path_buf(), detail: e.to_string() })?;
    match next {
        Next::Unchanged => return Ok(false),
        Next::Write(text) => {
            create_dir(path.parent().unwrap_or(Path::new("/")))?;
            write_public(path, &text)?;
        }
        Next::Remove => {
            remove_file(path)?;
            if let Some(parent) = path.parent() {
                let stop = parent.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default();
                remove_empty_dirs(parent, &stop);
            }
        }
    }
    Ok(true)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cpx-machine-trust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn files(root: &Path) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn install_trusts_everywhere_keeps_the_identity_and_uninstall_leaves_only_what_was_there() {
        use std::os::unix::fs::PermissionsExt;
        let root = scratch("all");
        let system = System { root: root.join("fs") };
        // An administrator's own Firefox policy, which must survive both.
        let firefox = root.join("fs/etc/firefox/policies/policies.json");
        std::fs::create_dir_all(firefox.parent().unwrap()).unwrap();
        std::fs::write(
            &firefox,
            r#"{"policies": {"DisableTelemetry": true, "Certificates": {"Install": ["/etc/other-ca.pem"]}}}"#,
        )
        .unwrap();
        let dir = root.join("machine");

        let first = install_in(&dir, &system).unwrap();
        assert!(first.created);
        let id = identity(&dir).expect("identity present").unwrap();
        assert!(id.key_pem.contains("PRIVATE KEY") && id.cert_pem.contains("BEGIN CERTIFICATE"));
        let key = dir.join("secrets").join(localca::KEY_NAME);
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o644,
            "the users' agents read the leaf key"
        );
        assert!(!files(&dir).iter().any(|f| f.contains("ca-key")), "the CA key is never written");

        let der = ca_der(&dir.join(localca::CA_FILE)).unwrap();
        // As update-ca-certificates would (it is not run outside /).
        std::fs::create_dir_all(system.system_bundle().parent().unwrap()).unwrap();
        std::fs::copy(system.system_store_file(), system.system_bundle()).unwrap();
        let verdicts = system.check(&der, &dir.join(localca::CA_FILE)).unwrap();
        assert_eq!(verdicts.len(), 6, "{verdicts:?}");
        assert!(verdicts.iter().all(|v| v.trusted), "{verdicts:?}");
        let ff: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&firefox).unwrap()).unwrap();
        assert_eq!(ff["policies"]["DisableTelemetry"], true);
        assert_eq!(ff["policies"]["Certificates"]["Install"].as_array().unwrap().len(), 2);

        // Again: the same identity, nothing listed twice.
        let second = install_in(&dir, &system).unwrap();
        assert!(!second.created);
        assert_eq!(identity(&dir).unwrap().unwrap().cert_pem, id.cert_pem);
        let ff: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&firefox).unwrap()).unwrap();
        assert_eq!(ff["policies"]["Certificates"]["Install"].as_array().unwrap().len(), 2);

        // A damaged identity (the key gone) is made again, and the old CA is trusted no more.
        std::fs::remove_file(&key).unwrap();
        assert!(
            identity(&dir).unwrap().is_err(),
            "a key that cannot be read is an error, not « no identity »"
        );
        let third = install_in(&dir, &system).unwrap();
        assert!(third.created);
        let new_der = ca_der(&dir.join(localca::CA_FILE)).unwrap();
        assert_ne!(new_der, der);
        let chromium: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                root.join("fs/etc/chromium/policies/managed").join(CHROMIUM_POLICY_FILE),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(chromium["CACertificates"].as_array().unwrap().len(), 1);

        let gone = uninstall_in(&dir, &system).unwrap();
        assert!(gone.stores.len() >= 5, "{:?}", gone.stores);
        assert!(identity(&dir).is_none());
        assert!(!dir.exists());
        let ff: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&firefox).unwrap()).unwrap();
        assert_eq!(
            ff,
            serde_json::json!({"policies": {"DisableTelemetry": true, "Certificates": {"Install": ["/etc/other-ca.pem"]}}})
        );
        // Only the administrator's file and the bundle made above are left.
        assert_eq!(
            files(&root.join("fs")),
            vec![
                "etc/firefox/policies/policies.json".to_owned(),
                "etc/ssl/certs/ca-certificates.crt".to_owned()
            ]
        );
        for gone in ["etc/opt/chrome", "etc/opt/edge", "etc/chromium", "etc/firefox-esr"] {
            assert!(!root.join("fs").join(gone).exists(), "empty policy folders are removed: {gone}");
        }
        assert!(root.join("fs/etc/opt").is_dir(), "/etc/opt is the system's, not ours");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_policies_json_that_is_not_json_is_an_error_not_overwritten() {
        let root = scratch("badjson");
        let system = System { root: root.join("fs") };
        let firefox = root.join("fs/etc/firefox-esr/policies/policies.json");
        std::fs::create_dir_all(firefox.parent().unwrap()).unwrap();
        std::fs::write(&firefox, "{ not json").unwrap();
        let err = install_in(&root.join("machine"), &system).unwrap_err();
        assert!(matches!(err, TrustError::Json { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&firefox).unwrap(), "{ not json");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn pem_round_trips() {
        let (ca, _, _) = localca::generate().unwrap();
        let der = crate::platform::browser_trust::ders(&ca).remove(0);
        assert_eq!(crate::platform::browser_trust::ders(&pem(&der)), vec![der]);
    }
}
