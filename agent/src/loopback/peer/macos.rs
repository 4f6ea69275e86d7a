//! macOS: the owner of a loopback client socket through libproc, as `lsof` finds it: every process's
//! descriptors (`PROC_PIDLISTFDS`), for each socket its TCP endpoint (`PROC_PIDFDSOCKETINFO`), and the
//! owner of the process whose socket is bound to the client's port and connected to the agent's port
//! (`PROC_PIDTBSDINFO`). Processes of other users are visible to this walk only as far as the system
//! lets a user see them; a client that cannot be found is refused (fail closed).
//!
//! `struct socket_fdinfo` (sys/proc_info.h) is not in the libc crate; the fields read are at fixed offsets:
//! `proc_fileinfo` (24 bytes), then `socket_info` whose `soi_kind` is at 232 and `soi_proto` at 240; in
//! `soi_proto`, `in_sockinfo.insi_fport` at 0 and `insi_lport` at 4 (ports in network order).

use std::net::SocketAddr;

use super::{PeerError, UserId};

const PROC_PIDFDSOCKETINFO: libc::c_int = 3;
const SOCKINFO_TCP: i32 = 2;
const SOI_KIND: usize = 24 + 232;
const INSI_FPORT: usize = 24 + 240;
const INSI_LPORT: usize = 24 + 244;
/// Larger than `struct socket_fdinfo` (about 800 bytes).
const SOCKET_FDINFO_BUF: usize = 2048;

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    buf.get(at..at + 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn uid_of_pid(pid: libc::c_int) -> Option<u32> {
    // SAFETY: proc_bsdinfo is plain data; all zeros is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` outlives the call and `size` is its size.
    let n = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast(),
            size,
        )
    };
    (n == size).then_some(info.pbi_uid)
}

/// Every TCP socket of every visible process: (pid, local port, foreign port).
fn tcp_sockets() -> Result<Vec<(libc::c_int, u16, u16)>, PeerError> {
    let mut pids = vec![0 as libc::pid_t; 4096];
    // SAFETY: `pids` outlives the call and holds the byte length given.
    let n = unsafe {
        libc::proc_listallpids(
            pids.as_mut_ptr().cast(),
            (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int,
        )
    };
    if n < 0 {
        return Err(PeerError::Lookup(format!("proc_listallpids: {}", std::io::Error::last_os_error())));
    }
    pids.truncate(n as usize);
    let mut out = Vec::new();
    for pid in pids {
        let mut fds = vec![libc::proc_fdinfo { proc_fd: 0, proc_fdtype: 0 }; 1024];
        // SAFETY: `fds` outlives the call and holds the byte length given.
        let bytes = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDLISTFDS,
                0,
                fds.as_mut_ptr().cast(),
                (fds.len() * std::mem::size_of::<libc::proc_fdinfo>()) as libc::c_int,
            )
        };
        if bytes <= 0 {
            continue;
        }
        fds.truncate(bytes as usize / std::mem::size_of::<libc::proc_fdinfo>());
        for fd in fds.iter().filter(|f| f.proc_fdtype == libc::PROX_FDTYPE_SOCKET as u32) {
            let mut info = [0u8; SOCKET_FDINFO_BUF];
            // SAFETY: `info` outlives the call and holds the byte length given.
            let got = unsafe {
                libc::proc_pidfdinfo(
                    pid,
                    fd.proc_fd,
                    PROC_PIDFDSOCKETINFO,
                    info.as_mut_ptr().cast(),
                    info.len() as libc::c_int,
                )
            };
            if got <= 0 || read_i32(&info, SOI_KIND) != Some(SOCKINFO_TCP) {
                continue;
            }
            let port = |at| read_i32(&info, at).map(|p| u16::from_be(p as u16));
            if let (Some(l), Some(f)) = (port(INSI_LPORT), port(INSI_FPORT)) {
                out.push((pid, l, f));
            }
        }
    }
    Ok(out)
}

pub fn current_user() -> Result<UserId, PeerError> {
    // SAFETY: geteuid takes nothing and cannot fail.
    Ok(UserId(unsafe { libc::geteuid() }.to_string()))
}

pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
    // SAFETY: getpid takes nothing and cannot fail.
    let me = unsafe { libc::getpid() };
    let (pid, ..) = tcp_sockets()?
        .into_iter()
        .find(|&(pid, l, f)| {
            l == remote.port() && f == local.port() && (pid != me || remote.port() != local.port())
        })
        .ok_or_else(|| PeerError::NotFound(remote.to_string()))?;
    uid_of_pid(pid).map(|u| UserId(u.to_string())).ok_or_else(|| PeerError::NotFound(remote.to_string()))
}

pub fn listening_ports_of(
    user: &UserId,
    range: std::ops::RangeInclusive<u16>,
) -> Result<Vec<u16>, PeerError> {
    let mut ports: Vec<u16> = tcp_sockets()?
        .into_iter()
        .filter(|&(pid, l, f)| {
            f == 0 && range.contains(&l) && uid_of_pid(pid).is_some_and(|u| u.to_string() == user.0)
        })
        .map(|(_, l, _)| l)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}
