//! The machine's folders as the OS gives them, never from the user's environment: on Windows
//! `SHGetKnownFolderPath(FOLDERID_ProgramData)` (a user can set `ProgramData` in their own environment
//! and move the machine policy away from their own agent), and `FOLDERID_System` for the system's own
//! programs. `CPX_AGENT_MACHINE_DIR` names another machine
//! folder for the tests, in debug builds only, as `CPX_AGENT_POLICY` names another policy file.

use std::ffi::OsString;
use std::path::PathBuf;

/// The machine folder the tests ask for: `CPX_AGENT_MACHINE_DIR` when it is an absolute path and this is
/// a debug build (`debug`); release builds ignore it.
pub fn machine_dir_override(value: Option<OsString>, debug: bool) -> Option<PathBuf> {
    value.filter(|_| debug).map(PathBuf::from).filter(|d| d.is_absolute())
}

/// Windows: `%ProgramData%` as the system knows it (`C:\ProgramData`), whatever the environment says.
#[cfg(windows)]
pub fn program_data() -> std::io::Result<PathBuf> {
    known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_ProgramData, "ProgramData")
}

/// Windows: the system folder (`C:\Windows\System32`), where the system's own programs are
/// (`schtasks.exe`), whatever `PATH` or `SystemRoot` say.
#[cfg(windows)]
pub fn system() -> std::io::Result<PathBuf> {
    known_folder(&windows_sys::Win32::UI::Shell::FOLDERID_System, "System")
}

#[cfg(windows)]
#[allow(unsafe_code)] // Win32: SHGetKnownFolderPath
fn known_folder(id: &windows_sys::core::GUID, name: &str) -> std::io::Result<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Com::CoTaskMemFree;
    use windows_sys::Win32::UI::Shell::SHGetKnownFolderPath;
    let mut path: *mut u16 = std::ptr::null_mut();
    // SAFETY: `id` is a valid GUID; `path` receives a CoTaskMemAlloc'd string, freed below.
    let hr = unsafe { SHGetKnownFolderPath(id, 0, std::ptr::null_mut(), &mut path) };
    if hr < 0 || path.is_null() {
        if !path.is_null() {
            // SAFETY: allocated by the call above (the API may allocate even when it fails).
            unsafe { CoTaskMemFree(path.cast()) };
        }
        return Err(std::io::Error::other(format!("SHGetKnownFolderPath({name}): HRESULT {hr:#x}")));
    }
    // SAFETY: `path` is a NUL-terminated UTF-16 string from the call above.
    let len = (0..).take_while(|&i| unsafe { *path.add(i) } != 0).count();
    // SAFETY: `len` u16s lie before the NUL.
    let folder = OsString::from_wide(unsafe { std::slice::from_raw_parts(path, len) });
    // SAFETY: allocated by the call above; freed once.
    unsafe { CoTaskMemFree(path.cast()) };
    Ok(PathBuf::from(folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_override_is_for_debug_builds_and_absolute_paths() {
        let abs = if cfg!(windows) { r"C:\t\machine" } else { "/tmp/machine" };
        assert_eq!(machine_dir_override(Some(abs.into()), true), Some(PathBuf::from(abs)));
        assert_eq!(machine_dir_override(Some(abs.into()), false), None, "release builds ignore it");
        assert_eq!(machine_dir_override(Some("relative".into()), true), None);
        assert_eq!(machine_dir_override(None, true), None);
    }

    #[cfg(windows)]
    #[test]
    fn program_data_comes_from_the_system() {
        let pd = program_data().unwrap();
        assert!(pd.is_absolute(), "{pd:?}");
        assert!(pd.ends_with("ProgramData"), "{pd:?}");
    }
}
