//! macOS: the owner of a loopback client socket through libproc, as `lsof` finds it: every process's
//! descriptors (`PROC_PIDLISTFDS`), for each socket its TCP endpoint (`PROC_PIDFDSOCKETINFO`), and the
//! owner of the process whose socket is bound to the client's address and port and connected to the
//! agent's address and port (`PROC_PIDTBSDINFO`): the whole pair, by [`crate::loopback::peer_table`]'s
//! one rule. Ports alone let another account that bound `<its LAN address>:Y`, Y being the browser's
//! source port, pass as the professional (issue 19). Processes of other users are visible to this walk only as far as the system
//! lets a user see them; a client that cannot be found is refused (fail closed).
//!
//! `struct socket_fdinfo` (sys/proc_info.h) is not in the libc crate; the fields read are at fixed offsets,
//! parsed by [`crate::loopback::peer_table::macos_row`].

use std::net::SocketAddr;

use super::{PeerError, UserId};

use crate::loopback::peer_table::{client_owner, macos_row, MatchError, SocketRow};

use crate::platform::sys::macos::{all_pids, socket_fdinfo, socket_fds, uid_of_pid};

/// Larger than `struct socket_fdinfo` (about 800 bytes).
const SOCKET_FDINFO_BUF: usize = 2048;

/// Every TCP socket of every visible process, its owner the pid.
fn tcp_sockets() -> Result<Vec<SocketRow<libc::c_int>>, PeerError> {
    let pids = all_pids().map_err(|e| PeerError::Lookup(format!("proc_listallpids: {e}")))?;
    let mut out = Vec::new();
    for pid in pids {
        for fd in socket_fds(pid) {
            let mut info = [0u8; SOCKET_FDINFO_BUF];
            let Some(got) = socket_fdinfo(pid, fd, &mut info) else { continue };
            if let Some(row) = macos_row(pid, info.get(..got).unwrap_or(&info)) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

pub fn current_user() -> Result<UserId, PeerError> {
    Ok(UserId(crate::platform::sys::effective_uid().to_string()))
}

pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
    let pid = client_owner(tcp_sockets()?, local, remote).map_err(|e| match e {
        MatchError::NotFound { .. } => PeerError::NotFound(remote.to_string()),
        e @ MatchError::Ambiguous { .. } => PeerError::Lookup(e.to_string()),
    })?;
    uid_of_pid(pid).map(|u| UserId(u.to_string())).ok_or_else(|| PeerError::NotFound(remote.to_string()))
}

pub fn listening_ports_of(
    user: &UserId,
    range: std::ops::RangeInclusive<u16>,
) -> Result<Vec<u16>, PeerError> {
    let mut ports: Vec<u16> = tcp_sockets()?
        .into_iter()
        .filter(|r| {
            r.remote.port() == 0
                && range.contains(&r.local.port())
                && uid_of_pid(r.owner).is_some_and(|u| u.to_string() == user.0)
        })
        .map(|r| r.local.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}
