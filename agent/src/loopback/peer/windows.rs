//! Windows: the owner of a loopback client socket. `GetExtendedTcpTable` (TCP_TABLE_OWNER_PID_ALL) gives
//! the process that owns each TCP endpoint; that process's token gives its user SID, and
//! `ProcessIdToSessionId` its session. A user is "SID@session": on a terminal server the same account in
//! two sessions is two users (two desktops, two card readers redirected).

use std::net::{Ipv4Addr, SocketAddr};

use windows_sys::Win32::NetworkManagement::IpHelper::{MIB_TCPROW_OWNER_PID, MIB_TCP_STATE_LISTEN};

use super::{PeerError, UserId};
use crate::loopback::peer_table::{client_owner, windows_row, MatchError};
use crate::platform::sys::windows::{current_process_id, process_user, tcp_table as system_tcp_table};

/// "SID@session" of the process `pid`.
fn user_of_process(pid: u32) -> Result<UserId, PeerError> {
    let (sid, session) = process_user(pid).map_err(|e| PeerError::Lookup(e.to_string()))?;
    Ok(UserId(format!("{sid}@{session}")))
}

pub fn current_user() -> Result<UserId, PeerError> {
    user_of_process(current_process_id())
}

/// The IPv4 TCP table with owning processes.
fn tcp_table() -> Result<Vec<MIB_TCPROW_OWNER_PID>, PeerError> {
    system_tcp_table().map_err(|e| PeerError::Lookup(e.to_string()))
}

fn addr(raw_addr: u32, raw_port: u32) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::from(raw_addr.to_ne_bytes()), u16::from_be(raw_port as u16)))
}

pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
    // The whole address pair, and only one socket with it (crate::loopback::peer_table's one rule).
    let rows = tcp_table()?.into_iter().map(|r| {
        windows_row((r.dwLocalAddr, r.dwLocalPort), (r.dwRemoteAddr, r.dwRemotePort), r.dwOwningPid)
    });
    let pid = client_owner(rows, local, remote).map_err(|e| match e {
        MatchError::NotFound { .. } => PeerError::NotFound(remote.to_string()),
        e @ MatchError::Ambiguous { .. } => PeerError::Lookup(e.to_string()),
    })?;
    user_of_process(pid)
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
