//! Windows: the owner of a loopback client socket. `GetExtendedTcpTable` (TCP_TABLE_OWNER_PID_ALL) gives
//! the process that owns each TCP endpoint; that process's token gives its user SID, and
//! `ProcessIdToSessionId` its session. A user is "SID@session": on a terminal server the same account in
//! two sessions is two users (two desktops, two card readers redirected).

use std::net::{Ipv4Addr, SocketAddr};

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, MIB_TCPROW_OWNER_PID, MIB_TCP_STATE_LISTEN, TCP_TABLE_OWNER_PID_ALL,
};
use windows_sys::Win32::Networking::WinSock::AF_INET;
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{GetTokenInformation, TokenUser, TOKEN_QUERY, TOKEN_USER};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{PeerError, UserId};

struct Handle(HANDLE);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle the system gave (checked not null), closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

fn os_error(what: &str) -> PeerError {
    PeerError::Lookup(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// "SID@session" of the process `pid`.
fn user_of_process(pid: u32) -> Result<UserId, PeerError> {
    let mut session = 0u32;
    // SAFETY: `session` outlives the call.
    if unsafe { ProcessIdToSessionId(pid, &mut session) } == 0 {
        return Err(os_error("ProcessIdToSessionId"));
    }
    // SAFETY: plain call; the handle is checked, then owned by `Handle`.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(os_error("OpenProcess"));
    }
    let process = Handle(process);
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: `process` is open and `token` outlives the call; the token is then owned by `Handle`.
    if unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token) } == 0 {
        return Err(os_error("OpenProcessToken"));
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
        return Err(os_error("GetTokenInformation"));
    }
    // SAFETY: GetTokenInformation filled `buf` (u64-aligned, large enough) with a TOKEN_USER.
    let user = unsafe { &*(buf.as_ptr() as *const TOKEN_USER) };
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: the SID points into `buf`, which is alive; `text` receives a LocalAlloc string.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut text) } == 0 || text.is_null() {
        return Err(os_error("ConvertSidToStringSidW"));
    }
    // SAFETY: `text` is the NUL-terminated string ConvertSidToStringSidW allocated; it is read up to its NUL, then freed once.
    let sid = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        s
    };
    Ok(UserId(format!("{sid}@{session}")))
}

pub fn current_user() -> Result<UserId, PeerError> {
    // SAFETY: GetCurrentProcessId takes nothing and cannot fail.
    user_of_process(unsafe { GetCurrentProcessId() })
}

/// The IPv4 TCP table with owning processes.
fn tcp_table() -> Result<Vec<MIB_TCPROW_OWNER_PID>, PeerError> {
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
    Err(os_error("GetExtendedTcpTable"))
}

fn addr(raw_addr: u32, raw_port: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(raw_addr.to_ne_bytes()), u16::from_be(raw_port as u16)))
}

pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
    let row = tcp_table()?
        .into_iter()
        .find(|r| {
            addr(r.dwLocalAddr, r.dwLocalPort) == remote && addr(r.dwRemoteAddr, r.dwRemotePort) == local
        })
        .ok_or_else(|| PeerError::NotFound(remote.to_string()))?;
    user_of_process(row.dwOwningPid)
}

pub fn listening_ports_of(
    user: &UserId,
    range: std::ops::RangeInclusive<u16>,
) -> Result<Vec<u16>, PeerError> {
    let mut ports: Vec<u16> = tcp_table()?
        .into_iter()
        .filter(|r| r.dwState == MIB_TCP_STATE_LISTEN as u32)
        .map(|r| (addr(r.dwLocalAddr, r.dwLocalPort), r.dwOwningPid))
        .filter(|(a, _)| a.ip() == Ipv4Addr::LOCALHOST && range.contains(&a.port()))
        .filter(|(_, pid)| user_of_process(*pid).is_ok_and(|u| &u == user))
        .map(|(a, _)| a.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}
