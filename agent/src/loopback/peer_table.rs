//! The per-user check's one rule, the same on every OS: the client of a connection the agent accepted is
//! the one socket of the system's table whose own address is the connection's remote address and whose
//! peer is the connection's local address, addresses and ports all four. A socket that matches on ports
//! only is another socket: on macOS another account can bind `<its LAN address>:Y`, where Y is the source
//! port of the professional's browser connection (anyone sees it in `netstat`), and connect it to any host
//! on the agent's port; a port-only match would take that account for the professional. When more than
//! one socket matches, nobody is trusted.
//!
//! Each OS's table is read into [`SocketRow`]s by a parser of its own records, kept here as plain byte and
//! number functions so that the unit tests feed them made-up tables on any OS: [`linux_row`]
//! (`inet_diag_msg` of NETLINK sock_diag), [`macos_row`] (`socket_fdinfo` of libproc), [`windows_row`]
//! (`MIB_TCPROW_OWNER_PID` of `GetExtendedTcpTable`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP socket of the system's table: its own address, its peer's, and its owner (a uid, a pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRow<O> {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub owner: O,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("no socket {client} connected to {server} in the system's table")]
    NotFound { client: SocketAddr, server: SocketAddr },
    #[error("{count} sockets claim to be {client} connected to {server}: none is trusted")]
    Ambiguous { count: usize, client: SocketAddr, server: SocketAddr },
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, as a dual-stack socket reports it) as IPv4.
fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, a.port())),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// The owner of the client socket of a connection accepted on `server` (the connection's local address)
/// from `client` (its remote address): the one row bound to `client` and connected to `server`.
pub fn client_owner<O: Copy>(
    rows: impl IntoIterator<Item = SocketRow<O>>,
    server: SocketAddr,
    client: SocketAddr,
) -> Result<O, MatchError> {
    let (server, client) = (canonical(server), canonical(client));
    let mut found = rows
        .into_iter()
        .filter(|r| canonical(r.local) == client && canonical(r.remote) == server)
        .map(|r| r.owner);
    let first = found.next().ok_or(MatchError::NotFound { client, server })?;
    match found.count() {
        0 => Ok(first),
        more => Err(MatchError::Ambiguous { count: more + 1, client, server }),
    }
}

fn bytes<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Linux: one `inet_diag_msg` (linux/inet_diag.h): family at 0, then `inet_diag_sockid` at 4 (source
/// port, destination port big-endian, source and destination addresses 16 bytes each), the uid at 64.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn linux_row(msg: &[u8]) -> Option<SocketRow<u32>> {
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    let family = *msg.first()?;
    let addr = |at: usize, port_at: usize| -> Option<SocketAddr> {
        let port = u16::from_be_bytes(bytes(msg, port_at)?);
        let ip = match family {
            AF_INET => IpAddr::V4(Ipv4Addr::from(bytes::<4>(msg, at)?)),
            AF_INET6 => IpAddr::V6(Ipv6Addr::from(bytes::<16>(msg, at)?)),
            _ => return None,
        };
        Some(SocketAddr::from((ip, port)))
    };
    let uid = u32::from_ne_bytes(bytes(msg, 64)?);
    Some(SocketRow { local: addr(8, 4)?, remote: addr(24, 6)?, owner: uid })
}

/// macOS: where `socket_fdinfo` (sys/proc_info.h) keeps what is read: `proc_fileinfo` (24 bytes), then
/// `socket_info`, whose `soi_kind` is at 232 and `soi_proto` at 240. For a TCP socket `soi_proto` starts
/// with `in_sockinfo`: `insi_fport` at 0 and `insi_lport` at 4 (network order in an int), `insi_vflag` at
/// 24 (1 IPv4, 2 IPv6), `insi_faddr` at 32 and `insi_laddr` at 48 (16 bytes; IPv4 in the last 4).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub mod macos_offsets {
    pub const SOI_KIND: usize = 24 + 232;
    pub const IN_SOCKINFO: usize = 24 + 240;
    pub const FPORT: usize = IN_SOCKINFO;
    pub const LPORT: usize = IN_SOCKINFO + 4;
    pub const VFLAG: usize = IN_SOCKINFO + 24;
    pub const FADDR: usize = IN_SOCKINFO + 32;
    pub const LADDR: usize = IN_SOCKINFO + 48;
    pub const SOCKINFO_TCP: i32 = 2;
    pub const INI_IPV4: u8 = 1;
    pub const INI_IPV6: u8 = 2;
}

/// macOS: the TCP socket `info` (a `socket_fdinfo` as `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)` fills it) of
/// process `pid`; None for another kind of socket.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub fn macos_row(pid: i32, info: &[u8]) -> Option<SocketRow<i32>> {
    use macos_offsets::*;
    if i32::from_ne_bytes(bytes(info, SOI_KIND)?) != SOCKINFO_TCP {
        return None;
    }
    let vflag = *info.get(VFLAG)?;
    let addr = |addr_at: usize, port_at: usize| -> Option<SocketAddr> {
        let port = u16::from_be(i32::from_ne_bytes(bytes(info, port_at)?) as u16);
        let ip = if vflag & INI_IPV6 != 0 {
            IpAddr::V6(Ipv6Addr::from(bytes::<16>(info, addr_at)?))
        } else if vflag & INI_IPV4 != 0 {
            IpAddr::V4(Ipv4Addr::from(bytes::<4>(info, addr_at + 12)?))
        } else {
            return None;
        };
        Some(SocketAddr::from((ip, port)))
    };
    Some(SocketRow { local: addr(LADDR, LPORT)?, remote: addr(FADDR, FPORT)?, owner: pid })
}

/// Windows: an IPv4 row of `GetExtendedTcpTable` (`MIB_TCPROW_OWNER_PID`): addresses as the DWORDs hold
/// them (network order in memory), ports in network order in the low 16 bits.
#[cfg_attr(not(windows), allow(dead_code))]
pub fn windows_row(local: (u32, u32), remote: (u32, u32), pid: u32) -> SocketRow<u32> {
    let addr =
        |(a, p): (u32, u32)| SocketAddr::from((Ipv4Addr::from(a.to_ne_bytes()), u16::from_be(p as u16)));
    SocketRow { local: addr(local), remote: addr(remote), owner: pid }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "127.0.0.1:47413";
    /// The source port of the professional's browser connection.
    const Y: u16 = 51234;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn row<O>(local: &str, remote: &str, owner: O) -> SocketRow<O> {
        SocketRow { local: sa(local), remote: sa(remote), owner }
    }

    /// The item-2 attack's table: the professional's browser (501) connected from 127.0.0.1:Y; the
    /// agent's own end of it; another account (502) that bound 192.168.1.20:Y and connected it to some
    /// host's port 47413, listed first, and a listener of its own on the LAN address and Y.
    fn attacked_table<O: Copy>(professional: O, other: O) -> Vec<SocketRow<O>> {
        vec![
            row(&format!("192.168.1.20:{Y}"), "192.168.1.1:47413", other),
            row(&format!("192.168.1.20:{Y}"), "0.0.0.0:0", other),
            row(&format!("127.0.0.1:{Y}"), AGENT, professional),
            row(AGENT, &format!("127.0.0.1:{Y}"), professional),
            row(AGENT, "0.0.0.0:0", professional),
        ]
    }

    #[test]
    fn the_lan_address_on_the_browser_port_is_not_the_browser() {
        let client = sa(&format!("127.0.0.1:{Y}"));
        assert_eq!(client_owner(attacked_table(501u32, 502), sa(AGENT), client), Ok(501));
        // Without the professional's socket (closed), the other account's is no stand-in.
        let table: Vec<_> = attacked_table(501u32, 502).into_iter().filter(|r| r.local != client).collect();
        assert!(matches!(client_owner(table, sa(AGENT), client), Err(MatchError::NotFound { .. })));
    }

    #[test]
    fn two_sockets_on_the_same_pair_are_refused() {
        let client = sa(&format!("127.0.0.1:{Y}"));
        let mut table = attacked_table(501u32, 502);
        table.push(row(&format!("127.0.0.1:{Y}"), AGENT, 502));
        assert_eq!(
            client_owner(table, sa(AGENT), client),
            Err(MatchError::Ambiguous { count: 2, client, server: sa(AGENT) })
        );
    }

    #[test]
    fn ipv6_loopback_and_mapped_addresses() {
        let table = vec![
            row("[::1]:40000", "[::1]:47413", 501u32),
            row("[::ffff:127.0.0.1]:40001", "[::ffff:127.0.0.1]:47413", 503),
            row("127.0.0.1:40000", AGENT, 502),
        ];
        assert_eq!(client_owner(table.clone(), sa("[::1]:47413"), sa("[::1]:40000")), Ok(501));
        assert_eq!(client_owner(table.clone(), sa(AGENT), sa("127.0.0.1:40000")), Ok(502));
        assert_eq!(client_owner(table, sa(AGENT), sa("127.0.0.1:40001")), Ok(503));
    }

    /// A `socket_fdinfo` buffer as libproc fills it, for a TCP socket.
    fn macos_info(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
        use macos_offsets::*;
        let mut b = vec![0u8; 2048];
        b[SOI_KIND..SOI_KIND + 4].copy_from_slice(&SOCKINFO_TCP.to_ne_bytes());
        for (a, addr_at, port_at) in [(local, LADDR, LPORT), (remote, FADDR, FPORT)] {
            b[port_at..port_at + 4].copy_from_slice(&i32::from(a.port().to_be()).to_ne_bytes());
            match a.ip() {
                IpAddr::V4(v4) => {
                    b[VFLAG] = INI_IPV4;
                    b[addr_at + 12..addr_at + 16].copy_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    b[VFLAG] = INI_IPV6;
                    b[addr_at..addr_at + 16].copy_from_slice(&v6.octets());
                }
            }
        }
        b
    }

    #[test]
    fn macos_table_with_the_attack() {
        // Processes: 700 the other account's, 800 the browser, 900 the agent.
        let owners = |pid: i32| if pid == 700 { 502 } else { 501 };
        let table: Vec<SocketRow<i32>> = attacked_table(800, 700)
            .into_iter()
            .map(|r| {
                let pid = if r.local.port() == 47413 { 900 } else { r.owner };
                macos_row(pid, &macos_info(r.local, r.remote)).unwrap()
            })
            .collect();
        assert_eq!(table[0].local, sa(&format!("192.168.1.20:{Y}")));
        assert_eq!(table[0].remote, sa("192.168.1.1:47413"));
        let pid = client_owner(table, sa(AGENT), sa(&format!("127.0.0.1:{Y}"))).unwrap();
        assert_eq!((pid, owners(pid)), (800, 501));
        let v6 = macos_row(1, &macos_info(sa("[::1]:40000"), sa("[::1]:47413"))).unwrap();
        assert_eq!((v6.local, v6.remote), (sa("[::1]:40000"), sa("[::1]:47413")));
        let mut udp = macos_info(sa("[::1]:40000"), sa("[::1]:47413"));
        udp[macos_offsets::SOI_KIND] = 1;
        assert_eq!(macos_row(1, &udp), None, "not a TCP socket");
        assert_eq!(macos_row(1, &[0u8; 100]), None, "short buffer");
    }

    /// An `inet_diag_msg` as NETLINK sock_diag answers.
    fn linux_msg(local: SocketAddr, remote: SocketAddr, uid: u32) -> Vec<u8> {
        let mut m = vec![0u8; 72];
        m[0] = if local.is_ipv4() { 2 } else { 10 };
        m[4..6].copy_from_slice(&local.port().to_be_bytes());
        m[6..8].copy_from_slice(&remote.port().to_be_bytes());
        for (a, at) in [(local, 8), (remote, 24)] {
            match a.ip() {
                IpAddr::V4(v4) => m[at..at + 4].copy_from_slice(&v4.octets()),
                IpAddr::V6(v6) => m[at..at + 16].copy_from_slice(&v6.octets()),
            }
        }
        m[64..68].copy_from_slice(&uid.to_ne_bytes());
        m
    }

    #[test]
    fn linux_table_with_the_attack() {
        let table: Vec<_> = attacked_table(1000u32, 1001)
            .into_iter()
            .map(|r| linux_row(&linux_msg(r.local, r.remote, r.owner)).unwrap())
            .collect();
        assert_eq!(client_owner(table, sa(AGENT), sa(&format!("127.0.0.1:{Y}"))), Ok(1000));
        let v6 = linux_row(&linux_msg(sa("[::1]:40000"), sa("[::1]:47413"), 7)).unwrap();
        assert_eq!(v6, row("[::1]:40000", "[::1]:47413", 7));
        assert_eq!(linux_row(&[2u8; 40]), None, "short message");
    }

    #[test]
    fn windows_table_with_the_attack() {
        let raw = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => (u32::from_ne_bytes(v4.octets()), u32::from(a.port().to_be())),
            IpAddr::V6(_) => unreachable!(),
        };
        let table: Vec<_> = attacked_table(4242u32, 666)
            .into_iter()
            .map(|r| windows_row(raw(r.local), raw(r.remote), r.owner))
            .collect();
        assert_eq!(table[2], row(&format!("127.0.0.1:{Y}"), AGENT, 4242));
        assert_eq!(client_owner(table, sa(AGENT), sa(&format!("127.0.0.1:{Y}"))), Ok(4242));
    }
}
