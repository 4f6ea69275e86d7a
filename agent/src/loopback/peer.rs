//! Who is on the other end of a loopback connection: the OS user that owns the client's socket. The agent
//! serves only its own user (another user of a shared workstation or terminal server must not reach the
//! holder's card), and the machine-wide broker tells each user where that user's agent listens.
//!
//! - Linux: the kernel's socket table through NETLINK `sock_diag` (the client socket is looked up by its
//!   exact address and port pair; its `uid` is the owner). The same table lists the listening sockets.
//! - Windows: `GetExtendedTcpTable` gives the process owning the client's socket; its token's user SID and
//!   its session are compared with the agent's (see [`windows`]).
//! - macOS: libproc walks the processes' socket descriptors to find the one bound to the client's address
//!   and port and connected to the agent's, then its owner (see [`macos`]).
//!
//! On every OS the table's rows go through [`crate::loopback::peer_table`]'s one rule: the whole address
//! pair, and a refusal when more than one socket has it.

use std::net::SocketAddr;

/// An OS user: a uid on Unix; on Windows the SID as text with the session number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the lookup found out about a connection's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The agent's own user.
    SameUser,
    /// Another user of the machine.
    OtherUser(UserId),
    /// The owner could not be found (the client already closed, or the platform lookup failed).
    Unknown(String),
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("socket owner lookup: {0}")]
    Lookup(String),
    #[error("no socket {0} in the system's table")]
    NotFound(String),
}

/// The user running this process.
pub fn current_user() -> Result<UserId, PeerError> {
    imp::current_user()
}

/// The owner of the client socket of a connection accepted on `local` from `remote`.
pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
    imp::owner_of_client(local, remote)
}

/// Whether the client of a connection accepted on `local` from `remote` is `me`.
pub fn classify(me: &UserId, local: SocketAddr, remote: SocketAddr) -> Peer {
    match owner_of_client(local, remote) {
        Ok(owner) if &owner == me => Peer::SameUser,
        Ok(owner) => Peer::OtherUser(owner),
        Err(_) if unknown_is_self() => Peer::SameUser,
        Err(e) => Peer::Unknown(e.to_string()),
    }
}

/// Debug builds on Windows only, for the tests under Wine: their clients are Linux programs (curl) that
/// Wine's socket table does not list, so their owner can never be found. `CPX_AGENT_TEST_UNKNOWN_PEER_IS_SELF`
/// then takes such a client as the agent's own user. Release builds ignore it, as the tray app's release
/// builds ignore `TAURI_WEBVIEW_AUTOMATION`; everywhere else an unknown owner is refused.
fn unknown_is_self() -> bool {
    cfg!(all(windows, debug_assertions)) && std::env::var_os("CPX_AGENT_TEST_UNKNOWN_PEER_IS_SELF").is_some()
}

/// The loopback ports (IPv4) in `range` that a socket of `user` listens on, lowest first (the broker
/// finds a user's agent this way: only that user can own those sockets).
pub fn listening_ports_of(
    user: &UserId,
    range: std::ops::RangeInclusive<u16>,
) -> Result<Vec<u16>, PeerError> {
    imp::listening_ports_of(user, range)
}

#[cfg(target_os = "linux")]
use linux as imp;
#[cfg(target_os = "macos")]
use macos as imp;
#[cfg(windows)]
use windows as imp;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod imp {
    use super::*;
    pub fn current_user() -> Result<UserId, PeerError> {
        Err(PeerError::Lookup("not supported on this system".into()))
    }
    pub fn owner_of_client(_: SocketAddr, _: SocketAddr) -> Result<UserId, PeerError> {
        Err(PeerError::Lookup("not supported on this system".into()))
    }
    pub fn listening_ports_of(_: &UserId, _: std::ops::RangeInclusive<u16>) -> Result<Vec<u16>, PeerError> {
        Err(PeerError::Lookup("not supported on this system".into()))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! NETLINK_SOCK_DIAG (linux/inet_diag.h): one exact-match request per connection, a dump of the
    //! listening sockets for the broker.
    use super::*;
    use std::net::IpAddr;

    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const TCP_LISTEN: u32 = 10;
    const HEADER: usize = 16;
    /// inet_diag_msg: family, state, timer, retrans (4), sockid (48), expires, rqueue, wqueue, uid, inode.
    const MSG_UID_OFFSET: usize = 4 + 48 + 12;

    pub fn current_user() -> Result<UserId, PeerError> {
        Ok(UserId(crate::platform::sys::effective_uid().to_string()))
    }

    /// inet_diag_req_v2 for one IPv4 socket (`src`, `dst` as that socket sees them) or a dump.
    fn request(flags: u16, states: u32, src: Option<SocketAddr>, dst: Option<SocketAddr>) -> Vec<u8> {
        let mut m = Vec::with_capacity(HEADER + 56);
        let len = (HEADER + 56) as u32;
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&1u32.to_ne_bytes()); // seq
        m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
        let family = match src {
            Some(SocketAddr::V6(_)) => libc::AF_INET6 as u8,
            _ => libc::AF_INET as u8,
        };
        m.extend_from_slice(&[family, libc::IPPROTO_TCP as u8, 0, 0]);
        m.extend_from_slice(&states.to_ne_bytes());
        let port = |a: Option<SocketAddr>| a.map_or(0, |a| a.port()).to_be_bytes();
        m.extend_from_slice(&port(src));
        m.extend_from_slice(&port(dst));
        for a in [src, dst] {
            let mut raw = [0u8; 16];
            match a.map(|a| a.ip()) {
                Some(IpAddr::V4(v4)) => raw[..4].copy_from_slice(&v4.octets()),
                Some(IpAddr::V6(v6)) => raw.copy_from_slice(&v6.octets()),
                None => {}
            }
            m.extend_from_slice(&raw);
        }
        m.extend_from_slice(&0u32.to_ne_bytes()); // interface
        m.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
        m
    }

    /// Sends `req` and calls `each` with every inet_diag_msg of the answer, until the end of a dump or
    /// the one answer of an exact request.
    fn exchange(req: &[u8], dump: bool, mut each: impl FnMut(&[u8])) -> Result<(), PeerError> {
        use crate::platform::sys::NetlinkSocket;
        let err = |what: &'static str| move |e: std::io::Error| PeerError::Lookup(format!("{what}: {e}"));
        let socket = NetlinkSocket::open(NETLINK_SOCK_DIAG, 2).map_err(err("netlink socket"))?;
        socket.send_to_kernel(req).map_err(err("netlink send"))?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = socket.recv(&mut buf).map_err(err("netlink receive"))?;
            let mut rest = buf.get(..n).unwrap_or_default();
            if rest.is_empty() {
                return Ok(());
            }
            while rest.len() >= HEADER {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if len < HEADER || len > rest.len() {
                    return Err(PeerError::Lookup("netlink: truncated message".into()));
                }
                let body = &rest[HEADER..len];
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = body.get(..4).map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return if code == -libc::ENOENT {
                            Err(PeerError::NotFound(String::new()))
                        } else {
                            Err(PeerError::Lookup(format!(
                                "netlink: {}",
                                std::io::Error::from_raw_os_error(-code)
                            )))
                        };
                    }
                    SOCK_DIAG_BY_FAMILY => {
                        each(body);
                        if !dump {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
                rest = rest.get((len + 3) & !3..).unwrap_or_default();
            }
        }
    }

    fn uid_of(msg: &[u8]) -> Option<u32> {
        msg.get(MSG_UID_OFFSET..MSG_UID_OFFSET + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn owner_of_client(local: SocketAddr, remote: SocketAddr) -> Result<UserId, PeerError> {
        // The client's socket: its own address is our `remote`, its peer our `local`.
        let req = request(NLM_F_REQUEST, u32::MAX, Some(remote), Some(local));
        let mut rows = Vec::new();
        exchange(&req, false, |m| rows.extend(crate::loopback::peer_table::linux_row(m))).map_err(
            |e| match e {
                PeerError::NotFound(_) => PeerError::NotFound(remote.to_string()),
                e => e,
            },
        )?;
        // The kernel matched the exact pair; its answer is held to the same rule as every OS's table.
        crate::loopback::peer_table::client_owner(rows, local, remote)
            .map(|uid| UserId(uid.to_string()))
            .map_err(|e| PeerError::NotFound(e.to_string()))
    }

    pub fn listening_ports_of(
        user: &UserId,
        range: std::ops::RangeInclusive<u16>,
    ) -> Result<Vec<u16>, PeerError> {
        let req = request(NLM_F_REQUEST | NLM_F_DUMP, 1 << TCP_LISTEN, None, None);
        let mut ports = Vec::new();
        exchange(&req, true, |m| {
            // sockid starts at 4: sport (big-endian), dport, src[16]…
            let (Some(port), Some(addr), Some(uid)) = (m.get(4..6), m.get(8..12), uid_of(m)) else { return };
            let port = u16::from_be_bytes([port[0], port[1]]);
            if uid.to_string() == user.0 && range.contains(&port) && (addr == [127, 0, 0, 1]) {
                ports.push(port);
            }
        })?;
        ports.sort_unstable();
        ports.dedup();
        Ok(ports)
    }
}

#[cfg(windows)]
mod windows;

#[cfg(target_os = "macos")]
mod macos;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_connection_of_this_process_is_the_same_user() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, remote) = listener.accept().unwrap();
        assert_eq!(remote, client.local_addr().unwrap());
        let me = current_user().unwrap();
        assert_eq!(classify(&me, server.local_addr().unwrap(), remote), Peer::SameUser);
        let other = UserId("4242424".into());
        assert_eq!(classify(&other, server.local_addr().unwrap(), remote), Peer::OtherUser(me.clone()));
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listening_ports_of(&me, port..=port).unwrap(), [port]);
        assert!(listening_ports_of(&other, port..=port).unwrap().is_empty());
        drop(client);
    }

    #[test]
    fn a_closed_client_is_not_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap();
        let gone: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert!(matches!(owner_of_client(local, gone), Err(PeerError::NotFound(_))));
    }
}
