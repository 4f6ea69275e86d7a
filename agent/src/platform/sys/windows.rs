//! Win32 calls behind safe functions: a process's user (token SID, session) and the IPv4 TCP table with
//! the owning processes (the loopback peer lookup, loopback/peer/windows.rs).

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, MIB_TCPROW_OWNER_PID, TCP_TABLE_OWNER_PID_ALL,
};
use windows_sys::Win32::Networking::WinSock::AF_INET;
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// A Win32 call that failed, and the system's error.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {error}")]
pub struct CallFailed {
    /// The function called.
    pub call: &'static str,
    /// `GetLastError`'s.
    pub error: std::io::Error,
}

fn failed(call: &'static str) -> CallFailed {
    CallFailed { call, error: std::io::Error::last_os_error() }
}

struct Handle(HANDLE);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle the system gave (checked not null), closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// This process's id.
pub fn current_process_id() -> u32 {
    // SAFETY: GetCurrentProcessId takes nothing and cannot fail.
    unsafe { GetCurrentProcessId() }
}

/// The user SID (as text) and the session of the process `pid`.
pub fn process_user(pid: u32) -> Result<(String, u32), CallFailed> {
    let mut session = 0u32;
    // SAFETY: `session` outlives the call.
    if unsafe { ProcessIdToSessionId(pid, &mut session) } == 0 {
        return Err(failed("ProcessIdToSessionId"));
    }
    // SAFETY: plain call; the handle is checked, then owned by `Handle`.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(failed("OpenProcess"));
    }
    let process = Handle(process);
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is open and `token` outlives the call; the token is then owned by `Handle`.
    if unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token) } == 0 {
        return Err(failed("OpenProcessToken"));
    }
    let token = Handle(token);
    let mut needed = 0u32;
    // SAFETY: a size query: no buffer is written, `needed` outlives the call.
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
    // u64 words keep TOKEN_USER aligned.
    let mut buf = vec![0u64; (needed as usize).div_ceil(8).max(8)];
    // SAFETY: `buf` outlives the call and holds the byte length given.
    if unsafe {
        GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32, &mut needed)
    } == 0
    {
        return Err(failed("GetTokenInformation"));
    }
    // SAFETY: GetTokenInformation filled `buf` (u64-aligned, large enough) with a TOKEN_USER.
    let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the SID points into `buf`, which is alive; `text` receives a LocalAlloc string.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut text) } == 0 || text.is_null() {
        return Err(failed("ConvertSidToStringSidW"));
    }
    // SAFETY: `text` is the NUL-terminated string ConvertSidToStringSidW allocated; it is read up to its NUL, then freed once.
    let sid = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        s
    };
    Ok((sid, session))
}

/// The IPv4 TCP table with owning processes.
pub fn tcp_table() -> Result<Vec<MIB_TCPROW_OWNER_PID>, CallFailed> {
    let mut size = 0u32;
    let mut buf: Vec<u64> = Vec::new();
    for _ in 0..4 {
        // SAFETY: `buf` outlives the call and `size` is its length in bytes (0 for the first, size-only, call).
        let r = unsafe {
            GetExtendedTcpTable(
                buf.as_mut_ptr().cast(),
                &mut size,
                0,
                AF_INET as u32,
                TCP_TABLE_OWNER_PID_ALL,
                0,
            )
        };
        if r == 0 && !buf.is_empty() {
            // MIB_TCPTABLE_OWNER_PID: dwNumEntries, then the rows.
            let count = (buf[0] & 0xffff_ffff) as usize;
            // SAFETY: the table starts with a u32 count, the rows follow at byte 4, inside `buf`.
            let rows = unsafe { (buf.as_ptr() as *const u8).add(4) as *const MIB_TCPROW_OWNER_PID };
            let max = (buf.len() * 8 - 4) / std::mem::size_of::<MIB_TCPROW_OWNER_PID>();
            return Ok((0..count.min(max))
                // SAFETY: `i` < `max`: every row read lies inside `buf`; unaligned reads.
                .map(|i| unsafe { std::ptr::read_unaligned(rows.add(i)) })
                .collect());
        }
        // ERROR_INSUFFICIENT_BUFFER (122): grow to the size asked, with room for new connections.
        buf = vec![0u64; (size as usize).div_ceil(8) + 64];
        size = (buf.len() * 8) as u32;
    }
    Err(failed("GetExtendedTcpTable"))
}
