//! What an installer or the agent trusts belongs to the administrators: the machine folder (the loopback
//! identity, the machine policy) and the machine policy file are used only when root / SYSTEM /
//! Administrators own them and nobody else can write them. Another account of a shared workstation that
//! could plant or change them would choose the sites every user's agent trusts, or the CA every browser
//! trusts.
//!
//! - Unix ([`check_unix_path`]): the file and every folder above it are owned by uid 0 and writable by
//!   neither group nor others.
//! - Windows ([`Descriptor`], [`check_descriptor`]): the owner is SYSTEM, Administrators or
//!   TrustedInstaller, and no ACE allows writing to anyone else (CREATOR OWNER included, whose ACE hands
//!   every file's creator full control of it). A descriptor is read as SDDL (a subset: owner, DACL, allow
//!   and deny ACEs), so that the rules are tested on descriptors written in the tests, on any OS: Wine
//!   does not keep a file's descriptor. The machine folder's own descriptor is [`MACHINE_FOLDER_SDDL`]:
//!   protected (nothing inherited from ProgramData, whose « Users may create files » is what made the
//!   folder plantable), SYSTEM and Administrators full control, Users read.

use std::path::Path;

/// The machine folder's descriptor: owner Administrators, DACL protected (`P`), SYSTEM and Administrators
/// full control, Users read and execute (0x1200a9: FILE_GENERIC_READ | FILE_GENERIC_EXECUTE), each for
/// the folder, its subfolders and files (`OICI`). No CREATOR OWNER.
pub const MACHINE_FOLDER_SDDL: &str = "O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)";

/// Why a file or folder is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untrusted {
    #[error("{path}: owned by {owner}, not by root or the administrators")]
    Owner { path: String, owner: String },
    #[error("{path}: {who} can change it")]
    Writable { path: String, who: String },
    #[error("{path}: no access control list (everyone can change it)")]
    NoDacl { path: String },
    #[error("{path}: {reason}")]
    Unreadable { path: String, reason: String },
}

/// The Unix rule for one file or folder: owned by root, no write bit for group or others.
#[cfg_attr(not(unix), allow(dead_code))]
pub fn unix_rule(path: &str, uid: u32, mode: u32) -> Result<(), Untrusted> {
    if uid != 0 {
        return Err(Untrusted::Owner { path: path.to_owned(), owner: format!("uid {uid}") });
    }
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => Err(Untrusted::Writable { path: path.to_owned(), who: "every account".into() }),
        (true, false) => Err(Untrusted::Writable { path: path.to_owned(), who: "its group".into() }),
        _ => Ok(()),
    }
}

/// Unix: `path` (symbolic links resolved) and each folder above it up to `/`, under [`unix_rule`].
#[cfg(unix)]
pub fn check_unix_path(path: &Path) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt;
    let unreadable = |p: &Path, e: std::io::Error| Untrusted::Unreadable {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let real = std::fs::canonicalize(path).map_err(|e| unreadable(path, e))?;
    for p in real.ancestors() {
        let m = std::fs::metadata(p).map_err(|e| unreadable(p, e))?;
        unix_rule(&p.display().to_string(), m.uid(), m.mode())?;
    }
    Ok(())
}

#[cfg_attr(windows, allow(dead_code))] // Windows: a new folder is protected, an old one reported
/// What [`ensure_machine_folder`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderState {
    /// The folder did not exist: made, with the administrators' rights.
    Created,
    /// It existed and passes the rule.
    Trusted,
    /// It existed with another owner, or writable by others: set aside (nothing in it is used) and made
    /// anew.
    Rebuilt { set_aside: std::path::PathBuf, why: Untrusted },
}

#[cfg_attr(windows, allow(dead_code))] // Windows: a new folder is protected, an old one reported
/// The machine folder, made or checked before anything in it is used: a folder that exists with another
/// owner, or that others can write, is renamed aside (`<name>.untrusted-<unix time>`, kept for the
/// helpdesk) and made anew. Run by the installers' `install-trust` as root / an administrator.
pub fn ensure_machine_folder(dir: &Path) -> std::io::Result<FolderState> {
    if !dir.exists() {
        make_machine_folder(dir)?;
        return Ok(FolderState::Created);
    }
    let Err(why) = check_folder_itself(dir) else { return Ok(FolderState::Trusted) };
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let aside = |n: u32| {
        let mut name = dir.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".untrusted-{stamp}"));
        if n > 0 {
            name.push(format!("-{n}"));
        }
        dir.with_file_name(name)
    };
    let set_aside = (0..1000).map(aside).find(|p| !p.exists()).unwrap_or_else(|| aside(1000));
    std::fs::rename(dir, &set_aside)?;
    make_machine_folder(dir)?;
    Ok(FolderState::Rebuilt { set_aside, why })
}

#[cfg(unix)]
fn check_folder_itself(dir: &Path) -> Result<(), Untrusted> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir)
        .map_err(|e| Untrusted::Unreadable { path: dir.display().to_string(), reason: e.to_string() })?;
    if m.file_type().is_symlink() {
        return Err(Untrusted::Writable {
            path: dir.display().to_string(),
            who: "a symbolic link's maker".into(),
        });
    }
    unix_rule(&dir.display().to_string(), m.uid(), m.mode())
}

#[cfg_attr(windows, allow(dead_code))] // Windows: a new folder is protected, an old one reported
#[cfg(windows)]
fn check_folder_itself(dir: &Path) -> Result<(), Untrusted> {
    win::check_path(dir)
}

#[cfg(not(any(unix, windows)))]
fn check_folder_itself(_: &Path) -> Result<(), Untrusted> {
    Ok(())
}

#[cfg(unix)]
fn make_machine_folder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    // The umask may have taken bits away, never added: set exactly.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

#[cfg_attr(windows, allow(dead_code))] // Windows: a new folder is protected, an old one reported
#[cfg(windows)]
fn make_machine_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    win::protect_folder(dir)
}

#[cfg(not(any(unix, windows)))]
fn make_machine_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Who an ACE names, as SDDL writes it: an abbreviation (`SY`, `BA`, `BU`, `CO`, `WD`…) or `S-1-…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sid(pub String);

/// The SIDs that may own and write what the machine trusts: SYSTEM, Administrators, TrustedInstaller.
const TRUSTED: [&str; 5] = [
    "SY",
    "BA",
    "S-1-5-18",
    "S-1-5-32-544",
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464",
];

impl Sid {
    fn trusted(&self) -> bool {
        TRUSTED.contains(&self.0.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    /// SDDL ACE flags: `OI`, `CI`, `IO`, `NP`, `ID`…
    pub flags: Vec<String>,
    pub mask: u32,
    pub sid: Sid,
}

/// A security descriptor's owner and DACL (None: no DACL, everyone has every right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub owner: Option<Sid>,
    pub protected: bool,
    pub dacl: Option<Vec<Ace>>,
}

/// The access rights that change a file or a folder's content, or who may: write data / add a file,
/// append / add a subfolder, write extended attributes, delete a child, write attributes, delete, write
/// the DACL, take ownership, and the generic all and write.
pub const WRITE_RIGHTS: u32 =
    0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000 | 0x4000_0000;

fn right(abbrev: &str) -> Option<u32> {
    Some(match abbrev {
        "GA" => 0x1000_0000,
        "GX" => 0x2000_0000,
        "GW" => 0x4000_0000,
        "GR" => 0x8000_0000,
        "FA" => 0x1f_01ff,
        "FR" => 0x12_0089,
        "FW" => 0x12_0116,
        "FX" => 0x12_00a0,
        "SD" => 0x1_0000,
        "RC" => 0x2_0000,
        "WD" => 0x4_0000,
        "WO" => 0x8_0000,
        "CC" => 0x1,
        "DC" => 0x2,
        "LC" => 0x4,
        "SW" => 0x8,
        "RP" => 0x10,
        "WP" => 0x20,
        "DT" => 0x40,
        "LO" => 0x80,
        "CR" => 0x100,
        _ => return None,
    })
}

fn parse_mask(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    let mut mask = 0;
    for i in (0..s.len()).step_by(2) {
        mask |= right(s.get(i..i + 2)?)?;
    }
    Some(mask)
}

impl Descriptor {
    /// Reads the owner and DACL of an SDDL string (the group and SACL are skipped).
    pub fn from_sddl(sddl: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("SDDL {sddl:?}: {why}");
        let mut d = Descriptor { owner: None, protected: false, dacl: None };
        // Sections `O:`, `G:`, `D:`, `S:`: a SID runs until the next section's tag (the letter before
        // the next `:`); a DACL or SACL is its flags, then its ACEs in parentheses.
        let next_tag = |body: &str| body.find(':').map_or(body.len(), |i| i.saturating_sub(1));
        let mut rest = sddl;
        while !rest.is_empty() {
            let (tag, body) = rest.split_at_checked(2).ok_or_else(|| bad("truncated"))?;
            match tag {
                "O:" | "G:" => {
                    let (sid, next) = body.split_at(next_tag(body));
                    if tag == "O:" {
                        d.owner = Some(Sid(sid.to_owned()));
                    }
                    rest = next;
                }
                "D:" | "S:" => {
                    let flags_end = body.find('(').unwrap_or(body.len()).min(next_tag(body));
                    let flags = &body[..flags_end];
                    let mut aces = Vec::new();
                    let mut list = &body[flags_end..];
                    while let Some(inner) = list.strip_prefix('(') {
                        let end = inner.find(')').ok_or_else(|| bad("an ACE without its `)`"))?;
                        aces.push(parse_ace(&inner[..end]).map_err(|e| bad(&e))?);
                        list = &inner[end + 1..];
                    }
                    rest = list;
                    if tag == "D:" {
                        d.protected = flags.contains('P');
                        d.dacl = (!flags.contains("NO_ACCESS_CONTROL")).then_some(aces);
                    }
                }
                other => return Err(bad(&format!("section {other}"))),
            }
        }
        Ok(d)
    }
}

/// One ACE's text (between its parentheses): type;flags;rights;object;inherited object;SID.
fn parse_ace(ace: &str) -> Result<Ace, String> {
    let fields: Vec<&str> = ace.split(';').collect();
    let [kind, flags, rights, _, _, sid] = fields[..] else {
        return Err("an ACE without its 6 fields".into());
    };
    let allow = match kind {
        "A" => true,
        "D" => false,
        other => return Err(format!("ACE type {other}")),
    };
    let flags = (0..flags.len()).step_by(2).filter_map(|i| flags.get(i..i + 2).map(str::to_owned)).collect();
    let mask = parse_mask(rights).ok_or_else(|| format!("rights {rights}"))?;
    Ok(Ace { allow, flags, mask, sid: Sid(sid.to_owned()) })
}

/// The Windows rule: owned by SYSTEM, Administrators or TrustedInstaller; a DACL; no ACE allowing any
/// write right to anyone else (deny ACEs only take rights away and are not needed for the verdict).
pub fn check_descriptor(path: &str, d: &Descriptor) -> Result<(), Untrusted> {
    match &d.owner {
        Some(o) if o.trusted() => {}
        o => {
            let owner = o.as_ref().map_or("nobody".to_owned(), |s| s.0.clone());
            return Err(Untrusted::Owner { path: path.to_owned(), owner });
        }
    }
    let Some(dacl) = &d.dacl else { return Err(Untrusted::NoDacl { path: path.to_owned() }) };
    for ace in dacl.iter().filter(|a| a.allow && !a.sid.trusted()) {
        if ace.mask & WRITE_RIGHTS != 0 || ace.sid.0 == "CO" || ace.sid.0 == "S-1-3-0" {
            return Err(Untrusted::Writable { path: path.to_owned(), who: ace.sid.0.clone() });
        }
    }
    Ok(())
}

#[cfg(windows)]
pub use win::protect_folder;

#[cfg(windows)]
#[allow(unsafe_code)] // Win32: security descriptors
mod win {
    //! The machine folder's descriptor built by Windows from [`super::MACHINE_FOLDER_SDDL`], set on the
    //! folder, and read back from a folder as SDDL.
    use super::*;
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW,
        ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, SetNamedSecurityInfoW,
        SDDL_REVISION_1, SE_FILE_OBJECT,
    };
    use windows_sys::Win32::Security::{
        GetSecurityDescriptorDacl, GetSecurityDescriptorOwner, ACL, DACL_SECURITY_INFORMATION,
        OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    };

    fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
        s.encode_wide().chain(Some(0)).collect()
    }

    /// A self-relative security descriptor Windows allocated; freed on drop.
    pub struct OwnedDescriptor(pub PSECURITY_DESCRIPTOR);

    impl Drop for OwnedDescriptor {
        fn drop(&mut self) {
            // SAFETY: the pointer came from a Win32 call that allocates with LocalAlloc; freed once, here.
            unsafe { LocalFree(self.0) };
        }
    }

    impl OwnedDescriptor {
        /// The descriptor written as SDDL (owner and DACL).
        pub fn to_sddl(&self) -> std::io::Result<String> {
            let mut text: *mut u16 = std::ptr::null_mut();
            // SAFETY: self.0 is a valid descriptor; `text` receives a LocalAlloc'd string, freed below.
            let ok = unsafe {
                ConvertSecurityDescriptorToStringSecurityDescriptorW(
                    self.0,
                    SDDL_REVISION_1,
                    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                    &mut text,
                    std::ptr::null_mut(),
                )
            };
            if ok == 0 || text.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: `text` is a NUL-terminated UTF-16 string from the call above.
            let len = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
            // SAFETY: `len` u16s lie before the NUL.
            let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, len) });
            // SAFETY: allocated by the call above; freed once.
            unsafe { LocalFree(text.cast()) };
            Ok(s)
        }

        /// The owner SID and the DACL pointer inside the descriptor (borrowed from it).
        pub fn owner_and_dacl(&self) -> std::io::Result<(PSID, *mut ACL, bool)> {
            let (mut owner, mut defaulted) = (std::ptr::null_mut(), 0);
            let (mut present, mut dacl, mut dacl_defaulted) = (0, std::ptr::null_mut(), 0);
            // SAFETY: self.0 is a valid descriptor; the out-pointers outlive the calls.
            let ok = unsafe {
                GetSecurityDescriptorOwner(self.0, &mut owner, &mut defaulted) != 0
                    && GetSecurityDescriptorDacl(self.0, &mut present, &mut dacl, &mut dacl_defaulted) != 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok((owner, dacl, present != 0))
        }
    }

    fn from_sddl(sddl: &str) -> std::io::Result<OwnedDescriptor> {
        let text = wide(std::ffi::OsStr::new(sddl));
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `text` is NUL-terminated and outlives the call; `sd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || sd.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedDescriptor(sd))
    }

    /// The machine folder's descriptor, as Windows builds it from [`MACHINE_FOLDER_SDDL`].
    pub fn machine_folder_descriptor() -> std::io::Result<OwnedDescriptor> {
        from_sddl(MACHINE_FOLDER_SDDL)
    }

    /// Gives `folder` the machine folder's owner and protected DACL (what it inherited is dropped).
    pub fn protect_folder(folder: &Path) -> std::io::Result<()> {
        let sd = machine_folder_descriptor()?;
        let (owner, dacl, _) = sd.owner_and_dacl()?;
        let path = wide(folder.as_os_str());
        // SAFETY: `path` is NUL-terminated; `owner` and `dacl` point into `sd`, alive for the call.
        let r = unsafe {
            SetNamedSecurityInfoW(
                path.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                owner,
                std::ptr::null_mut(),
                dacl,
                std::ptr::null_mut(),
            )
        };
        if r != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(r as i32));
        }
        Ok(())
    }

    /// The owner and DACL of a file or folder, read as SDDL.
    pub fn descriptor_of(path: &Path) -> std::io::Result<Descriptor> {
        let wpath = wide(path.as_os_str());
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `wpath` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor, owned below.
        let r = unsafe {
            GetNamedSecurityInfoW(
                wpath.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        if r != ERROR_SUCCESS {
            return Err(std::io::Error::from_raw_os_error(r as i32));
        }
        let sd = OwnedDescriptor(sd);
        Descriptor::from_sddl(&sd.to_sddl()?).map_err(std::io::Error::other)
    }

    /// Windows: `path`'s owner and DACL under [`check_descriptor`].
    pub fn check_path(path: &Path) -> Result<(), Untrusted> {
        let d = descriptor_of(path)
            .map_err(|e| Untrusted::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        check_descriptor(&path.display().to_string(), &d)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use windows_sys::Win32::Security::{
            CreateWellKnownSid, EqualSid, GetAce, GetSecurityDescriptorControl, WinBuiltinAdministratorsSid,
            WinBuiltinUsersSid, WinLocalSystemSid, ACCESS_ALLOWED_ACE, SE_DACL_PROTECTED,
            WELL_KNOWN_SID_TYPE,
        };

        fn well_known(kind: WELL_KNOWN_SID_TYPE) -> Vec<u8> {
            let mut sid = vec![0u8; 68];
            let mut size = sid.len() as u32;
            // SAFETY: `sid` holds `size` bytes and outlives the call.
            let ok =
                unsafe { CreateWellKnownSid(kind, std::ptr::null_mut(), sid.as_mut_ptr().cast(), &mut size) };
            assert_ne!(ok, 0, "CreateWellKnownSid");
            sid
        }

        /// A folder another account made (here: this test's account, with what it inherits) and filled
        /// is never trusted: set aside, and the folder made anew holds nothing of it. Under Wine, which
        /// does not keep descriptors, the owner read back is this account's, never the administrators'.
        #[test]
        fn a_planted_folder_is_never_trusted() {
            let base = std::env::temp_dir().join(format!("cpx-planted-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            let dir = base.join("Agent CPx");
            std::fs::create_dir_all(dir.join("secrets")).unwrap();
            std::fs::write(dir.join("local-ca.pem"), "planted").unwrap();
            let verdict = check_path(&dir);
            assert!(
                matches!(verdict, Err(Untrusted::Owner { .. } | Untrusted::Writable { .. })),
                "{verdict:?}"
            );
            let state = ensure_machine_folder(&dir).unwrap();
            let FolderState::Rebuilt { set_aside, .. } = state else { panic!("{state:?}") };
            assert_eq!(std::fs::read_to_string(set_aside.join("local-ca.pem")).unwrap(), "planted");
            assert!(dir.is_dir() && !dir.join("local-ca.pem").exists());
            let _ = std::fs::remove_dir_all(&base);
        }

        /// The descriptor Windows builds for the machine folder, read field by field (Wine does not keep
        /// a file's descriptor, so it is checked here rather than on a folder).
        #[test]
        fn the_machine_folder_descriptor_is_protected_admin_owned_and_read_only_for_users() {
            let sd = machine_folder_descriptor().unwrap();
            let (mut control, mut revision) = (0u16, 0u32);
            // SAFETY: sd.0 is a valid descriptor; the out-pointers outlive the call.
            assert_ne!(unsafe { GetSecurityDescriptorControl(sd.0, &mut control, &mut revision) }, 0);
            assert_ne!(control & SE_DACL_PROTECTED, 0, "the DACL inherits nothing from ProgramData");
            let (owner, dacl, present) = sd.owner_and_dacl().unwrap();
            assert!(present && !dacl.is_null());
            let admins = well_known(WinBuiltinAdministratorsSid);
            // SAFETY: both SIDs are valid for the call.
            assert_ne!(unsafe { EqualSid(owner, admins.as_ptr() as PSID) }, 0, "owned by Administrators");
            // SAFETY: `dacl` points into `sd`, a valid ACL.
            let count = unsafe { (*dacl).AceCount };
            let want = [
                (well_known(WinLocalSystemSid), 0x1f_01ffu32),
                (admins.clone(), 0x1f_01ff),
                (well_known(WinBuiltinUsersSid), 0x12_00a9),
            ];
            assert_eq!(count as usize, want.len(), "SYSTEM, Administrators, Users: no CREATOR OWNER");
            for (i, (sid, mask)) in want.iter().enumerate() {
                let mut ace: *mut std::ffi::c_void = std::ptr::null_mut();
                // SAFETY: `i` < AceCount; `ace` receives a pointer into the ACL.
                assert_ne!(unsafe { GetAce(dacl, i as u32, &mut ace) }, 0);
                let ace = ace as *const ACCESS_ALLOWED_ACE;
                // SAFETY: an ACCESS_ALLOWED_ACE (type 0, checked) whose SID starts at SidStart.
                let (kind, flags, got_mask, ace_sid) = unsafe {
                    (
                        (*ace).Header.AceType,
                        (*ace).Header.AceFlags,
                        (*ace).Mask,
                        std::ptr::addr_of!((*ace).SidStart) as PSID,
                    )
                };
                assert_eq!(kind, 0, "ACE {i} allows");
                assert_eq!(flags & 0x3, 0x3, "ACE {i} inherited by files and subfolders");
                assert_eq!(got_mask, *mask, "ACE {i}'s rights");
                // SAFETY: both SIDs are valid for the call.
                assert_ne!(unsafe { EqualSid(ace_sid, sid.as_ptr() as PSID) }, 0, "ACE {i}'s SID");
            }
            // And as SDDL, it passes the rule every trusted folder is held to.
            let sddl = sd.to_sddl().unwrap();
            check_descriptor("machine folder", &Descriptor::from_sddl(&sddl).unwrap()).unwrap();
        }
    }
}

#[cfg(windows)]
pub use win::check_path as check_windows_path;

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sddl: &str) -> Result<(), Untrusted> {
        check_descriptor("C:\\ProgramData\\Agent CPx", &Descriptor::from_sddl(sddl).unwrap())
    }

    #[test]
    fn the_machine_folder_sddl_passes_and_reads_back() {
        let d = Descriptor::from_sddl(MACHINE_FOLDER_SDDL).unwrap();
        assert!(d.protected);
        assert_eq!(d.owner, Some(Sid("BA".into())));
        let dacl = d.dacl.clone().unwrap();
        let who: Vec<_> = dacl.iter().map(|a| (a.sid.0.as_str(), a.mask)).collect();
        assert_eq!(who, [("SY", 0x1f_01ff), ("BA", 0x1f_01ff), ("BU", 0x12_00a9)]);
        assert!(dacl.iter().all(|a| a.allow && a.flags == ["OI", "CI"]));
        check_descriptor("machine folder", &d).unwrap();
    }

    #[test]
    fn owner_rule() {
        let rest = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)";
        for owner in ["SY", "BA", "S-1-5-18", "S-1-5-32-544"] {
            assert_eq!(check(&format!("O:{owner}G:SY{rest}")), Ok(()), "{owner}");
        }
        // Another account that made the folder before the install (or after an uninstall) owns it.
        let planted = check(&format!("O:S-1-5-21-1004336348-1177238915-682003330-1001G:S-1-5-21-1{rest}"));
        assert!(
            matches!(planted, Err(Untrusted::Owner { ref owner, .. }) if owner.ends_with("-1001")),
            "{planted:?}"
        );
        assert!(matches!(check(&format!("O:BUG:SY{rest}")), Err(Untrusted::Owner { .. })));
        assert!(matches!(check(rest), Err(Untrusted::Owner { .. })), "no owner given");
    }

    #[test]
    fn writability_rule() {
        // ProgramData's own DACL, inherited by a folder made with create_dir_all: Users may create files
        // and folders, and CREATOR OWNER has full control of what they create.
        let programdata = "O:SYG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)\
                           (A;CIID;DCLCRPCR;;;BU)(A;OICIIOID;GA;;;CO)";
        assert_eq!(
            check(programdata),
            Err(Untrusted::Writable { path: "C:\\ProgramData\\Agent CPx".into(), who: "BU".into() })
        );
        // Every kind of write right, to Users, Everyone, an account, Authenticated Users.
        for (ace, who) in [
            ("(A;;0x2;;;BU)", "BU"),
            ("(A;;0x4;;;WD)", "WD"),
            ("(A;;FW;;;S-1-5-21-1-2-3-1001)", "S-1-5-21-1-2-3-1001"),
            ("(A;;GA;;;AU)", "AU"),
            ("(A;;GW;;;BU)", "BU"),
            ("(A;;WD;;;BU)", "BU"),
            ("(A;;WO;;;BU)", "BU"),
            ("(A;;SD;;;BU)", "BU"),
            ("(A;OICIIO;GA;;;CO)", "CO"),
            ("(A;OICI;FR;;;CO)", "CO"),
        ] {
            let d = format!("O:BAG:SYD:P(A;OICI;FA;;;SY){ace}");
            assert_eq!(
                check(&d),
                Err(Untrusted::Writable { path: "C:\\ProgramData\\Agent CPx".into(), who: who.into() }),
                "{d}"
            );
        }
        // Reading is fine, for anyone; denying is fine; a TrustedInstaller full control is fine.
        assert_eq!(
            check(
                "O:BAG:SYD:P(A;;FR;;;WD)(D;;FW;;;BU)(A;;FA;;;S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)"
            ),
            Ok(())
        );
        // No DACL at all: everyone has every right.
        assert!(matches!(check("O:BAG:SYD:NO_ACCESS_CONTROL"), Err(Untrusted::NoDacl { .. })));
        assert!(matches!(check("O:BAG:SY"), Err(Untrusted::NoDacl { .. })));
    }

    #[test]
    fn odd_sddl_is_an_error_not_a_pass() {
        for bad in ["O:BAD:(A;;FA;;SY)", "O:BAD:(X;;FA;;;SY)", "O:BAD:(A;;QQ;;;SY)", "Q:BA"] {
            assert!(Descriptor::from_sddl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_rule_for_owner_and_write_bits() {
        assert_eq!(unix_rule("/etc/cpx-agent/policy.toml", 0, 0o100644), Ok(()));
        assert_eq!(unix_rule("/etc/cpx-agent", 0, 0o40755), Ok(()));
        assert!(matches!(
            unix_rule("/etc/cpx-agent/policy.toml", 1000, 0o100644),
            Err(Untrusted::Owner { .. })
        ));
        assert_eq!(
            unix_rule("/etc/cpx-agent/policy.toml", 0, 0o100664),
            Err(Untrusted::Writable { path: "/etc/cpx-agent/policy.toml".into(), who: "its group".into() })
        );
        assert_eq!(
            unix_rule("/etc/cpx-agent", 0, 0o41777),
            Err(Untrusted::Writable { path: "/etc/cpx-agent".into(), who: "every account".into() })
        );
    }

    #[cfg(unix)]
    #[test]
    fn unix_paths_on_this_machine() {
        use std::os::unix::fs::PermissionsExt;
        // A root-owned file in root-owned folders, none group- or world-writable.
        assert_eq!(check_unix_path(Path::new("/etc/passwd")), Ok(()));
        let dir = std::env::temp_dir().join(format!("cpx-admin-owned-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.toml");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let verdict = check_unix_path(&file);
        // The temporary folder (/tmp: sticky and world-writable) is above it, and, unless these tests run
        // as root, the file is this user's: refused either way.
        assert!(matches!(verdict, Err(Untrusted::Writable { .. } | Untrusted::Owner { .. })), "{verdict:?}");
        // A symbolic link does not launder a planted file: its target is checked.
        let link = dir.join("link.toml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(check_unix_path(&link), verdict);
        assert!(matches!(check_unix_path(&dir.join("absent")), Err(Untrusted::Unreadable { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_machine_folder_is_set_aside_and_made_anew() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let base = std::env::temp_dir().join(format!("cpx-machine-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("cpx-agent");
        assert_eq!(ensure_machine_folder(&dir).unwrap(), FolderState::Created);
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
        let mine = std::fs::metadata(&dir).unwrap().uid();
        if mine != 0 {
            // Not root: the folder made is this user's, which the rule refuses; nothing more to show.
            std::fs::remove_dir_all(&base).unwrap();
            return;
        }
        assert_eq!(ensure_machine_folder(&dir).unwrap(), FolderState::Trusted);
        // Another account's doing: the folder left writable by all, a CA planted in it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(dir.join("local-ca.pem"), "planted").unwrap();
        let FolderState::Rebuilt { set_aside, why } = ensure_machine_folder(&dir).unwrap() else { panic!() };
        assert!(matches!(why, Untrusted::Writable { .. }), "{why:?}");
        assert_eq!(std::fs::read_to_string(set_aside.join("local-ca.pem")).unwrap(), "planted");
        assert!(!dir.join("local-ca.pem").exists(), "nothing planted is in the folder used");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o755);
        // Owned by another account.
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        assert!(matches!(
            ensure_machine_folder(&dir).unwrap(),
            FolderState::Rebuilt { why: Untrusted::Owner { .. }, .. }
        ));
        assert_eq!(std::fs::metadata(&dir).unwrap().uid(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
