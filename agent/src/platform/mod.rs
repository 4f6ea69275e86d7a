//! The platform: what the agent finds on, and writes to, the machine. The per-OS folders (paths), the
//! configuration under the machine's managed policy (config; policy keys, the Windows registry's and a
//! macOS configuration profile's policy), where secrets live (secrets: keyring or private files), the
//! loopback certificate (localca) and its machine-wide trust (machine trust, the Windows Root store,
//! the browsers' stores), the browsers' policy files, the tray app's per-user autostart entry, and the way out to the portals
//! through the proxy the browsers use (proxy: the OS's proxy settings, the `CONNECT` tunnel, proxy
//! authentication).

#[cfg_attr(not(windows), allow(dead_code))] // the descriptor rules are Windows'
pub(crate) mod admin_owned;
pub(crate) mod autostart;
// The policy files are Linux's; Windows writes the registry, macOS a configuration profile.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) mod browser_policies;
pub(crate) mod browser_trust;
pub(crate) mod ca_check;
pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod firefox_policies;
pub(crate) mod known_folders;
pub(crate) mod layers;
pub(crate) mod localca;
pub(crate) mod machine_trust;
pub(crate) mod paths;
pub(crate) mod policy_keys;
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) mod policy_macos;
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) mod policy_registry;
pub mod policy_task;
pub mod proxy;
pub(crate) mod root_store;
pub(crate) mod secrets;
pub(crate) mod sys;

pub use autostart::{default_program, Autostart, ARG as AUTOSTART_ARG};
pub use browser_policies::{
    apply as apply_browser_policies, machine_config as browser_policies_config,
    remove as remove_browser_policies, Wanted as BrowserPolicies,
};
pub use config::{Config, PinPromptConfig, Site};
pub use endpoint::Endpoint;
pub use localca::load_or_create as load_or_create_identity;
pub use machine_trust::{install as install_trust, machine_dir, uninstall as uninstall_trust};
pub use secrets::{keyring_fallback, FileStore};
