//! The agent's per-user folders on each OS: the user's configuration file, the data folder (local CA,
//! loopback certificate, approvals), the certificate cache, and the machine's managed policy file.
//!
//! | | Linux | macOS | Windows |
//! |---|---|---|---|
//! | configuration | `$XDG_CONFIG_HOME/cpx-agent/config.toml` (`~/.config`) | `~/Library/Application Support/Agent CPx/config.toml` | `%APPDATA%\Agent CPx\config.toml` |
//! | data | `$XDG_DATA_HOME/cpx-agent` (`~/.local/share`) | `~/Library/Application Support/Agent CPx` | `%LOCALAPPDATA%\Agent CPx` |
//! | cache | `$XDG_CACHE_HOME/cpx-agent` (`~/.cache`) | `~/Library/Caches/Agent CPx` | `%LOCALAPPDATA%\Agent CPx\cache` |
//! | policy file | `/etc/cpx-agent/policy.toml` | `/Library/Application Support/Agent CPx/policy.toml` | `%ProgramData%\Agent CPx\policy.toml` |
//! | machine data ([`machine_data_dir`]) | `/var/lib/cpx-agent` | `/Library/Application Support/Agent CPx` | `%ProgramData%\Agent CPx` |
//!
//! The layout is computed from an environment lookup for any OS, so that each OS's layout is tested on
//! every OS.

use std::ffi::OsString;
use std::path::PathBuf;

/// The operating systems the agent knows the folders of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // `MacOs`: the system's name, not the enum's
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

impl Os {
    /// The OS this agent was built for (other Unixes use the Linux layout).
    pub const fn current() -> Self {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// The folders of one user on one OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub policy_file: PathBuf,
}

const APP: &str = "Agent CPx";
const UNIX_APP: &str = "cpx-agent";

/// The folders on `os` for the environment `env` (a variable's value, or `None` when unset or empty).
pub fn folders(os: Os, env: impl Fn(&str) -> Option<OsString>) -> Folders {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match os {
        Os::Linux => {
            let home = var("HOME").unwrap_or_else(|| ".".into());
            // The XDG Base Directory specification: a relative value is invalid and is ignored.
            let xdg = |name: &str, default: &str| {
                var(name).filter(|p| p.has_root()).unwrap_or_else(|| home.join(default)).join(UNIX_APP)
            };
            Folders {
                config_file: xdg("XDG_CONFIG_HOME", ".config").join("config.toml"),
                data_dir: xdg("XDG_DATA_HOME", ".local/share"),
                cache_dir: xdg("XDG_CACHE_HOME", ".cache"),
                policy_file: "/etc/cpx-agent/policy.toml".into(),
            }
        }
        Os::MacOs => {
            let home = var("HOME").unwrap_or_else(|| ".".into());
            let support = home.join("Library/Application Support").join(APP);
            Folders {
                config_file: support.join("config.toml"),
                data_dir: support,
                cache_dir: home.join("Library/Caches").join(APP),
                policy_file: PathBuf::from("/Library/Application Support").join(APP).join("policy.toml"),
            }
        }
        Os::Windows => {
            // Without the usual variables (a service account, a bare environment): the profile folder.
            let profile = var("USERPROFILE").unwrap_or_else(|| ".".into());
            let roaming = var("APPDATA").unwrap_or_else(|| profile.join("AppData").join("Roaming"));
            let local = var("LOCALAPPDATA").unwrap_or_else(|| profile.join("AppData").join("Local"));
            let machine = var("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
            Folders {
                config_file: roaming.join(APP).join("config.toml"),
                data_dir: local.join(APP),
                cache_dir: local.join(APP).join("cache"),
                policy_file: machine.join(APP).join("policy.toml"),
            }
        }
    }
}

/// The machine-wide data folder: the machine's loopback identity, written as root by `cpx-agent
/// install-trust` (Linux `/var/lib/cpx-agent`, macOS `/Library/Application Support/Agent CPx`, Windows
/// `%ProgramData%\Agent CPx`).
pub fn machine_data_dir(os: Os, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    match os {
        Os::Linux => PathBuf::from("/var/lib").join(UNIX_APP),
        Os::MacOs => PathBuf::from("/Library/Application Support").join(APP),
        Os::Windows => env("ProgramData")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from)
            .join(APP),
    }
}

/// This user's folders on this OS.
pub fn current() -> Folders {
    folders(Os::current(), |name| std::env::var_os(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn linux_follows_xdg() {
        let f = folders(Os::Linux, env(&[("HOME", "/home/a")]));
        assert_eq!(f.config_file, PathBuf::from("/home/a/.config/cpx-agent/config.toml"));
        assert_eq!(f.data_dir, PathBuf::from("/home/a/.local/share/cpx-agent"));
        assert_eq!(f.cache_dir, PathBuf::from("/home/a/.cache/cpx-agent"));
        let f = folders(
            Os::Linux,
            env(&[("HOME", "/home/a"), ("XDG_CACHE_HOME", "/tmp/c"), ("XDG_CONFIG_HOME", "")]),
        );
        assert_eq!(f.cache_dir, PathBuf::from("/tmp/c/cpx-agent"));
        assert_eq!(
            f.config_file,
            PathBuf::from("/home/a/.config/cpx-agent/config.toml"),
            "an empty variable counts as unset"
        );
        assert_eq!(f.policy_file, PathBuf::from("/etc/cpx-agent/policy.toml"));
        // A relative XDG_CACHE_HOME is invalid (XDG specification): the default under HOME.
        let f = folders(Os::Linux, env(&[("HOME", "/home/a"), ("XDG_CACHE_HOME", "cache")]));
        assert_eq!(f.cache_dir, PathBuf::from("/home/a/.cache/cpx-agent"));
        // No usable HOME: a relative folder, which the cache refuses (it stays in memory).
        assert!(!folders(Os::Linux, env(&[("HOME", ""), ("XDG_CACHE_HOME", "")])).cache_dir.has_root());
    }

    #[test]
    fn macos_uses_library() {
        let f = folders(Os::MacOs, env(&[("HOME", "/Users/a")]));
        assert_eq!(
            f.config_file,
            PathBuf::from("/Users/a/Library/Application Support/Agent CPx/config.toml")
        );
        assert_eq!(f.data_dir, PathBuf::from("/Users/a/Library/Application Support/Agent CPx"));
        assert_eq!(f.cache_dir, PathBuf::from("/Users/a/Library/Caches/Agent CPx"));
        assert_eq!(f.policy_file, PathBuf::from("/Library/Application Support/Agent CPx/policy.toml"));
    }

    #[test]
    fn windows_uses_appdata_localappdata_and_programdata() {
        let f = folders(
            Os::Windows,
            env(&[
                ("APPDATA", r"C:\Users\a\AppData\Roaming"),
                ("LOCALAPPDATA", r"C:\Users\a\AppData\Local"),
                ("ProgramData", r"D:\PD"),
            ]),
        );
        let (roaming, local) =
            (PathBuf::from(r"C:\Users\a\AppData\Roaming"), PathBuf::from(r"C:\Users\a\AppData\Local"));
        assert_eq!(f.config_file, roaming.join("Agent CPx").join("config.toml"));
        assert_eq!(f.data_dir, local.join("Agent CPx"));
        assert_eq!(f.cache_dir, local.join("Agent CPx").join("cache"));
        assert_eq!(f.policy_file, PathBuf::from(r"D:\PD").join("Agent CPx").join("policy.toml"));
        let bare = folders(Os::Windows, env(&[("USERPROFILE", r"C:\Users\b")]));
        assert_eq!(
            bare.data_dir,
            PathBuf::from(r"C:\Users\b").join("AppData").join("Local").join("Agent CPx")
        );
        assert_eq!(bare.policy_file, PathBuf::from(r"C:\ProgramData").join("Agent CPx").join("policy.toml"));
    }

    #[test]
    fn machine_folders() {
        assert_eq!(machine_data_dir(Os::Linux, env(&[])), PathBuf::from("/var/lib/cpx-agent"));
        assert_eq!(
            machine_data_dir(Os::MacOs, env(&[])),
            PathBuf::from("/Library/Application Support/Agent CPx")
        );
        assert_eq!(
            machine_data_dir(Os::Windows, env(&[("ProgramData", r"D:\PD")])),
            PathBuf::from(r"D:\PD").join("Agent CPx")
        );
        assert_eq!(
            machine_data_dir(Os::Windows, env(&[])),
            PathBuf::from(r"C:\ProgramData").join("Agent CPx")
        );
    }

    #[test]
    fn this_os_has_its_own_layout() {
        assert_eq!(current(), folders(Os::current(), |n| std::env::var_os(n)));
    }
}
