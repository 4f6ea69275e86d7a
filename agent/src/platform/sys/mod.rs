//! The FFI in one place: the calls into the C library (libc), Win32 and libproc that the other modules
//! need, each behind a safe function, so that those modules hold no `unsafe` block. Here: the effective
//! user id, the open-files limit, the uid of a Unix socket's other end as the kernel says, a
//! NETLINK_SOCK_DIAG socket; `windows`: a process's user and the TCP table; `macos`: libproc's
//! processes and sockets. Left in modules of their own, being FFI from end to end: the Windows stores and
//! descriptors (root_store, admin_owned, known_folders), the proxies' SSPI/GSSAPI/WinHTTP/
//! SystemConfiguration, the macOS profile reader (policy_macos) and the terminal prompt's echo switch
//! (card/pin_prompt.rs).
#![allow(unsafe_code)]

#[cfg(target_os = "macos")]
pub mod macos;
#[cfg(windows)]
pub mod windows;

/// This process's effective user id.
#[cfg(unix)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// The soft limit on open files (`RLIMIT_NOFILE`), when it can be read.
#[cfg(unix)]
pub fn open_files_limit() -> Option<usize> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` outlives the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0).then_some(r.rlim_cur as usize)
}

/// The uid of the process at the other end of `stream`, from the kernel (Linux `SO_PEERCRED`, macOS and
/// the BSDs `getpeereid`).
#[cfg(unix)]
pub fn peer_uid(stream: &std::os::unix::net::UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: ucred is plain data; all zeros is a valid value.
        let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` outlive the call; `len` is `cred`'s size.
        let r = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(cred.uid)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: `uid` and `gid` outlive the call.
        if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(uid)
    }
}

/// A netlink datagram socket to the kernel (closed when dropped).
#[cfg(target_os = "linux")]
pub struct NetlinkSocket(std::os::fd::OwnedFd);

#[cfg(target_os = "linux")]
impl NetlinkSocket {
    /// A socket of netlink `protocol` (NETLINK_SOCK_DIAG…) whose receptions wait at most `timeout_secs`.
    pub fn open(protocol: i32, timeout_secs: i64) -> std::io::Result<Self> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: socket(2) with constant arguments; the descriptor is checked, then owned.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the descriptor socket(2) just gave, owned by nothing else.
        let socket = Self(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        let timeout = libc::timeval { tv_sec: timeout_secs, tv_usec: 0 };
        // SAFETY: `timeout` outlives the call and the length given is its size.
        unsafe {
            libc::setsockopt(
                socket.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        Ok(socket)
    }

    /// Sends `message` to the kernel.
    pub fn send_to_kernel(&self, message: &[u8]) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // SAFETY: sockaddr_nl is plain data, all zeros is valid (and what the kernel's address needs).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `message` and `kernel` outlive the call; the lengths given are theirs.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram into `buf`: the number of bytes.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` outlives the call and holds `buf.len()` bytes.
        let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}
