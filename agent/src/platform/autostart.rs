//! The per-user autostart entry of the tray app: `cpx-agent autostart on|off|status`, and the tray app
//! following the configuration's `autostart` at each start. One entry per user and OS:
//!
//! | | per user (this module) | machine-wide (the installers) |
//! |---|---|---|
//! | Windows | `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, value `Agent CPx` | the same under HKLM (the MSI) |
//! | Linux | `$XDG_CONFIG_HOME/autostart/agent-cpx.desktop` (`~/.config`) | `/etc/xdg/autostart/agent-cpx.desktop` (the .deb) |
//! | macOS | `~/Library/LaunchAgents/fr.agentcpx.tray.plist` | `/Library/LaunchAgents/fr.agentcpx.tray.plist` (the pkg) |
//!
//! Each entry starts the tray app with `--autostart`. Where the machine-wide entry exists the tray starts
//! in every session already, so the tray app removes its per-user entry rather than start twice
//! ([`plan`]). The entries' text is plain code tested on every OS; only the registry is Windows-only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::platform::paths::Os;

/// The Run value's name, the desktop entry's and the launch agent's display name.
pub const NAME: &str = "Agent CPx";
/// The desktop entry's file name (per user and in /etc/xdg/autostart).
pub const DESKTOP_FILE: &str = "agent-cpx.desktop";
/// The launch agent's label; its file is `<label>.plist`.
pub const LAUNCH_AGENT_LABEL: &str = "fr.agentcpx.tray";
/// The Run key, under HKCU (per user) and HKLM (machine-wide).
pub const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";
/// The argument the entries give the tray app (it then opens no window).
pub const ARG: &str = "--autostart";

/// Files that earlier versions of the tray app wrote (through `tauri-plugin-autostart`), removed on the
/// way (on Windows the Run value had the same name as now).
const LEGACY_LINUX: &str = "Agent CPx.desktop";
const LEGACY_MACOS: &str = "Agent CPx.plist";

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error(r"HKCU\{RUN_KEY}\{NAME}: {0}")]
    Registry(std::io::Error),
    #[error("no home folder (HOME is not set): the per-user autostart entry has no place")]
    NoHome,
    #[error("{}: the tray app is not there (give its path with --program)", .0.display())]
    NoProgram(PathBuf),
    #[error("the Windows registry can only be written on Windows")]
    NotThisOs,
}

/// Where an autostart entry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File(PathBuf),
    /// The `Agent CPx` value of the Run key, under HKLM when `machine`, else HKCU.
    RunValue {
        machine: bool,
    },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File(p) => write!(f, "{}", p.display()),
            Place::RunValue { machine } => {
                write!(f, r"{}\{RUN_KEY}\{NAME}", if *machine { "HKLM" } else { "HKCU" })
            }
        }
    }
}

/// The per-user entry's place on `os` for the environment `env`.
pub fn user_place(os: Os, env: impl Fn(&str) -> Option<OsString>) -> Result<Place, AutostartError> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    match os {
        Os::Windows => Ok(Place::RunValue { machine: false }),
        Os::Linux => {
            let config = match var("XDG_CONFIG_HOME").filter(|p| p.has_root()) {
                Some(dir) => dir,
                None => var("HOME").filter(|p| p.has_root()).ok_or(AutostartError::NoHome)?.join(".config"),
            };
            Ok(Place::File(config.join("autostart").join(DESKTOP_FILE)))
        }
        Os::MacOs => Ok(Place::File(
            var("HOME")
                .filter(|p| p.has_root())
                .ok_or(AutostartError::NoHome)?
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCH_AGENT_LABEL}.plist")),
        )),
    }
}

/// The machine-wide entry's place on `os` (written by the installers, only read here).
pub fn machine_place(os: Os) -> Place {
    match os {
        Os::Windows => Place::RunValue { machine: true },
        Os::Linux => Place::File(Path::new("/etc/xdg/autostart").join(DESKTOP_FILE)),
        Os::MacOs => {
            Place::File(Path::new("/Library/LaunchAgents").join(format!("{LAUNCH_AGENT_LABEL}.plist")))
        }
    }
}

/// One argument of a desktop entry's `Exec` key, quoted as the Desktop Entry specification asks, then
/// escaped as a string value (a backslash doubled) and `%` doubled (field codes).
fn desktop_exec_arg(arg: &str) -> String {
    const RESERVED: &[char] =
        &[' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`'];
    let quoted = if arg.is_empty() || arg.contains(RESERVED) {
        let mut q = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    } else {
        arg.to_owned()
    };
    quoted.replace('\\', "\\\\").replace('%', "%%")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The entry that starts `program` on `os`: the file's text, or the Run value's data.
pub fn entry_text(os: Os, program: &Path) -> String {
    let program = program.to_string_lossy();
    match os {
        Os::Windows => format!("\"{program}\" {ARG}"),
        Os::Linux => format!(
            "[Desktop Entry]\nType=Application\nName={NAME}\nComment={}\nExec={} {ARG}\nTerminal=false\nNoDisplay=true\nX-GNOME-Autostart-enabled=true\n",
            crate::messages::names::AUTOSTART_COMMENT.fr,
            desktop_exec_arg(&program)
        ),
        Os::MacOs => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  <key>Label</key>\n  <string>{LAUNCH_AGENT_LABEL}</string>\n  <key>ProgramArguments</key>\n  <array>\n    <string>{}</string>\n    <string>{ARG}</string>\n  </array>\n  <key>RunAtLoad</key>\n  <true/>\n  <key>ProcessType</key>\n  <string>Interactive</string>\n</dict>\n</plist>\n",
            xml_escape(&program)
        ),
    }
}

/// The tray app next to this program (`cpx-tray`, `cpx-tray.exe`): what the entry starts by default.
pub fn default_program() -> Result<PathBuf, AutostartError> {
    let me =
        std::env::current_exe().map_err(|e| AutostartError::File { path: "cpx-agent".into(), source: e })?;
    Ok(me.with_file_name(format!("cpx-tray{}", std::env::consts::EXE_SUFFIX)))
}

/// The per-user and machine-wide entries as they are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Where the per-user entry lives.
    pub user_place: String,
    /// The per-user entry's text (the Run value's data, the file's text), when there is one.
    pub user_entry: Option<String>,
    pub machine_place: String,
    /// Whether the installer's machine-wide entry exists.
    pub machine: bool,
}

/// What the tray app does to its per-user entry when the configuration's `autostart` is `wanted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Write,
    Remove,
    Nothing,
}

/// Writes the entry when wanted and absent or not the one `expected`; removes it when not wanted, or
/// when the machine-wide entry already starts the tray in every session.
pub fn plan(wanted: bool, status: &Status, expected: &str) -> Plan {
    let present = status.user_entry.is_some();
    if !wanted || status.machine {
        return if present { Plan::Remove } else { Plan::Nothing };
    }
    if status.user_entry.as_deref() == Some(expected) {
        Plan::Nothing
    } else {
        Plan::Write
    }
}

/// One user's autostart entries on one OS.
#[derive(Debug, Clone)]
pub struct Autostart {
    os: Os,
    user: Place,
    machine: Place,
    legacy: Option<PathBuf>,
}

impl Autostart {
    /// The entries of the user whose environment is `env`, on `os`.
    pub fn for_user(os: Os, env: impl Fn(&str) -> Option<OsString>) -> Result<Self, AutostartError> {
        let user = user_place(os, env)?;
        let legacy = match (&user, os) {
            (Place::File(p), Os::Linux) => p.parent().map(|d| d.join(LEGACY_LINUX)),
            (Place::File(p), Os::MacOs) => p.parent().map(|d| d.join(LEGACY_MACOS)),
            _ => None,
        };
        Ok(Self { os, user, machine: machine_place(os), legacy })
    }

    /// This user's entries on this OS.
    pub fn current() -> Result<Self, AutostartError> {
        Self::for_user(Os::current(), |name| std::env::var_os(name))
    }

    /// A copy whose machine-wide entry is looked for at `place` (tests).
    pub fn with_machine_place(mut self, place: Place) -> Self {
        self.machine = place;
        self
    }

    /// Where the user's entry lives.
    pub fn user_place(&self) -> &Place {
        &self.user
    }

    /// The entries as they are.
    pub fn status(&self) -> Result<Status, AutostartError> {
        Ok(Status {
            user_place: self.user.to_string(),
            user_entry: read(&self.user)?,
            machine_place: self.machine.to_string(),
            machine: read(&self.machine)?.is_some(),
        })
    }

    /// Writes the per-user entry that starts `program` (which must exist).
    pub fn enable(&self, program: &Path) -> Result<(), AutostartError> {
        if !program.is_file() {
            return Err(AutostartError::NoProgram(program.to_owned()));
        }
        self.remove_legacy()?;
        write(&self.user, &entry_text(self.os, program))
    }

    /// Removes the per-user entry; whether there was one.
    pub fn disable(&self) -> Result<bool, AutostartError> {
        self.remove_legacy()?;
        remove(&self.user)
    }

    /// The tray app's start: the per-user entry follows `wanted` (see [`plan`]); what was done.
    pub fn follow(&self, wanted: bool, program: &Path) -> Result<Plan, AutostartError> {
        let plan = plan(wanted, &self.status()?, &entry_text(self.os, program));
        match plan {
            Plan::Write => self.enable(program)?,
            Plan::Remove => {
                self.disable()?;
            }
            Plan::Nothing => {}
        }
        Ok(plan)
    }

    fn remove_legacy(&self) -> Result<(), AutostartError> {
        if let Some(path) = &self.legacy {
            remove(&Place::File(path.clone()))?;
        }
        Ok(())
    }
}

fn read(place: &Place) -> Result<Option<String>, AutostartError> {
    match place {
        Place::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AutostartError::File { path: path.clone(), source: e }),
        },
        Place::RunValue { machine } => run_value::read(*machine),
    }
}

fn write(place: &Place, text: &str) -> Result<(), AutostartError> {
    match place {
        Place::File(path) => {
            let err = |source| AutostartError::File { path: path.clone(), source };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            // Written whole or not at all: a session starting meanwhile never reads half an entry.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).map_err(err)?;
            std::fs::rename(&tmp, path).map_err(err)
        }
        Place::RunValue { machine: false } => run_value::write(text),
        Place::RunValue { machine: true } => Err(AutostartError::NotThisOs),
    }
}

fn remove(place: &Place) -> Result<bool, AutostartError> {
    match place {
        Place::File(path) => match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(AutostartError::File { path: path.clone(), source: e }),
        },
        Place::RunValue { machine: false } => run_value::remove(),
        Place::RunValue { machine: true } => Err(AutostartError::NotThisOs),
    }
}

#[cfg(windows)]
mod run_value {
    use super::{AutostartError, NAME, RUN_KEY};
    use winreg::enums::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, KEY_READ, KEY_SET_VALUE};

    fn not_found(e: &std::io::Error) -> bool {
        e.kind() == std::io::ErrorKind::NotFound
    }

    pub fn read(machine: bool) -> Result<Option<String>, AutostartError> {
        let hive = winreg::RegKey::predef(if machine { HKEY_LOCAL_MACHINE } else { HKEY_CURRENT_USER });
        let key = match hive.open_subkey_with_flags(RUN_KEY, KEY_READ) {
            Ok(k) => k,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(AutostartError::Registry(e)),
        };
        match key.get_value::<String, _>(NAME) {
            Ok(v) => Ok(Some(v)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(AutostartError::Registry(e)),
        }
    }

    pub fn write(data: &str) -> Result<(), AutostartError> {
        let (key, _) = winreg::RegKey::predef(HKEY_CURRENT_USER)
            .create_subkey(RUN_KEY)
            .map_err(AutostartError::Registry)?;
        key.set_value(NAME, &data).map_err(AutostartError::Registry)
    }

    pub fn remove() -> Result<bool, AutostartError> {
        let key =
            match winreg::RegKey::predef(HKEY_CURRENT_USER).open_subkey_with_flags(RUN_KEY, KEY_SET_VALUE) {
                Ok(k) => k,
                Err(e) if not_found(&e) => return Ok(false),
                Err(e) => return Err(AutostartError::Registry(e)),
            };
        match key.delete_value(NAME) {
            Ok(()) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(AutostartError::Registry(e)),
        }
    }
}

#[cfg(not(windows))]
mod run_value {
    use super::AutostartError;

    pub fn read(_machine: bool) -> Result<Option<String>, AutostartError> {
        Err(AutostartError::NotThisOs)
    }
    pub fn write(_data: &str) -> Result<(), AutostartError> {
        Err(AutostartError::NotThisOs)
    }
    pub fn remove() -> Result<bool, AutostartError> {
        Err(AutostartError::NotThisOs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cpx-autostart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn places_per_os() {
        assert_eq!(
            user_place(Os::Linux, env(&[("HOME", "/home/a")])).unwrap(),
            Place::File("/home/a/.config/autostart/agent-cpx.desktop".into())
        );
        assert_eq!(
            user_place(Os::Linux, env(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "/x")])).unwrap(),
            Place::File("/x/autostart/agent-cpx.desktop".into())
        );
        assert_eq!(
            user_place(Os::Linux, env(&[("HOME", "/home/a"), ("XDG_CONFIG_HOME", "rel")])).unwrap(),
            Place::File("/home/a/.config/autostart/agent-cpx.desktop".into()),
            "a relative XDG_CONFIG_HOME is ignored"
        );
        assert!(matches!(user_place(Os::Linux, env(&[])), Err(AutostartError::NoHome)));
        assert_eq!(
            user_place(Os::MacOs, env(&[("HOME", "/Users/a")])).unwrap(),
            Place::File("/Users/a/Library/LaunchAgents/fr.agentcpx.tray.plist".into())
        );
        assert_eq!(
            user_place(Os::Windows, env(&[])).unwrap().to_string(),
            r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\Agent CPx"
        );
        assert_eq!(
            machine_place(Os::Windows).to_string(),
            r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run\Agent CPx"
        );
        assert_eq!(machine_place(Os::Linux), Place::File("/etc/xdg/autostart/agent-cpx.desktop".into()));
        assert_eq!(
            machine_place(Os::MacOs),
            Place::File("/Library/LaunchAgents/fr.agentcpx.tray.plist".into())
        );
    }

    #[test]
    fn entry_texts() {
        assert_eq!(
            entry_text(Os::Windows, Path::new(r"C:\Program Files\Agent CPx\cpx-tray.exe")),
            r#""C:\Program Files\Agent CPx\cpx-tray.exe" --autostart"#
        );
        let desktop = entry_text(Os::Linux, Path::new("/usr/bin/cpx-tray"));
        assert!(desktop.starts_with("[Desktop Entry]\nType=Application\nName=Agent CPx\n"), "{desktop}");
        assert!(desktop.contains("\nExec=/usr/bin/cpx-tray --autostart\n"), "{desktop}");
        // A path with a space, a quote, a dollar, a backslash and a percent sign.
        let odd = entry_text(Os::Linux, Path::new("/opt/Agent CPx/a\"b$c\\d%e/cpx-tray"));
        assert!(odd.contains(r#"Exec="/opt/Agent CPx/a\\"b\\$c\\\\d%%e/cpx-tray" --autostart"#), "{odd}");
        let plist = entry_text(Os::MacOs, Path::new("/Applications/Agent CPx.app/Contents/MacOS/cpx-tray"));
        assert!(
            plist.contains("<string>fr.agentcpx.tray</string>")
                && plist.contains("<key>RunAtLoad</key>\n  <true/>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/Applications/Agent CPx.app/Contents/MacOS/cpx-tray</string>\n    <string>--autostart</string>"), "{plist}");
        assert!(entry_text(Os::MacOs, Path::new("/a&b<c")).contains("<string>/a&amp;b&lt;c</string>"));
    }

    #[test]
    fn on_off_status_with_files() {
        for os in [Os::Linux, Os::MacOs] {
            let dir = scratch(&format!("{os:?}"));
            let home = dir.join("home");
            let home_str = home.to_str().unwrap();
            let a = Autostart::for_user(os, env(&[("HOME", home_str)]))
                .unwrap()
                .with_machine_place(Place::File(dir.join("machine-entry")));
            let program = dir.join("cpx-tray");
            assert!(
                matches!(a.enable(&program), Err(AutostartError::NoProgram(_))),
                "no entry for a program that is not there"
            );
            std::fs::write(&program, "").unwrap();
            // An entry the plugin of earlier versions wrote goes away.
            let Place::File(entry) = a.user_place().clone() else { panic!("a file on {os:?}") };
            let legacy = entry.with_file_name(if os == Os::Linux { LEGACY_LINUX } else { LEGACY_MACOS });
            std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
            std::fs::write(&legacy, "old").unwrap();

            let off = a.status().unwrap();
            assert_eq!((off.user_entry.as_deref(), off.machine), (None, false));
            a.enable(&program).unwrap();
            assert!(!legacy.exists(), "{os:?}: the legacy entry is removed");
            let on = a.status().unwrap();
            assert_eq!(on.user_entry.as_deref(), Some(entry_text(os, &program).as_str()));
            assert_eq!(std::fs::read_to_string(&entry).unwrap(), entry_text(os, &program));
            assert!(a.disable().unwrap(), "{os:?}: there was an entry");
            assert!(!entry.exists());
            assert!(!a.disable().unwrap(), "{os:?}: nothing left to remove");

            // The tray app's start: written when wanted, left alone when right, removed when not wanted.
            assert_eq!(a.follow(true, &program).unwrap(), Plan::Write);
            assert_eq!(a.follow(true, &program).unwrap(), Plan::Nothing);
            assert_eq!(a.follow(false, &program).unwrap(), Plan::Remove);
            assert!(!entry.exists());
            // With the installer's machine-wide entry the per-user one would start a second tray.
            a.enable(&program).unwrap();
            std::fs::write(dir.join("machine-entry"), "x").unwrap();
            assert!(a.status().unwrap().machine);
            assert_eq!(a.follow(true, &program).unwrap(), Plan::Remove);
            assert!(!entry.exists());
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn plan_rewrites_an_entry_for_another_program() {
        let status = |user: Option<&str>, machine| Status {
            user_place: String::new(),
            user_entry: user.map(Into::into),
            machine_place: String::new(),
            machine,
        };
        assert_eq!(plan(true, &status(Some("old"), false), "new"), Plan::Write);
        assert_eq!(plan(true, &status(None, false), "new"), Plan::Write);
        assert_eq!(plan(false, &status(None, false), "new"), Plan::Nothing);
        assert_eq!(plan(true, &status(None, true), "new"), Plan::Nothing);
    }

    /// The registry under Wine (tests/windows/run.sh) or Windows: HKCU's Run value written, read, removed.
    #[cfg(windows)]
    #[test]
    fn run_value_in_the_registry() {
        let a = Autostart::current().unwrap();
        let program = std::env::current_exe().unwrap();
        let had = a.status().unwrap().user_entry;
        a.enable(&program).unwrap();
        assert_eq!(a.status().unwrap().user_entry, Some(entry_text(Os::Windows, &program)));
        assert!(a.disable().unwrap());
        assert_eq!(a.status().unwrap().user_entry, None);
        assert!(!a.disable().unwrap());
        if let Some(data) = had {
            run_value::write(&data).unwrap();
        }
    }
}
