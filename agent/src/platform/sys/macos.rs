//! libproc calls behind safe functions: the processes, their socket descriptors and a descriptor's socket
//! information, and a process's owner (the loopback peer lookup, loopback/peer/macos.rs).

const PROC_PIDFDSOCKETINFO: libc::c_int = 3;

/// The uid that owns process `pid`, when the system lets this user see it.
pub fn uid_of_pid(pid: libc::c_int) -> Option<u32> {
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

/// Every process id this user can see (at most 4096).
pub fn all_pids() -> std::io::Result<Vec<libc::pid_t>> {
    let mut pids = vec![0 as libc::pid_t; 4096];
    // SAFETY: `pids` outlives the call and holds the byte length given.
    let n = unsafe {
        libc::proc_listallpids(
            pids.as_mut_ptr().cast(),
            (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    pids.truncate(n as usize);
    Ok(pids)
}

/// The socket descriptors of process `pid` (at most 1024; none when it cannot be read).
pub fn socket_fds(pid: libc::pid_t) -> Vec<i32> {
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
        return Vec::new();
    }
    fds.truncate(bytes as usize / std::mem::size_of::<libc::proc_fdinfo>());
    fds.iter().filter(|f| f.proc_fdtype == libc::PROX_FDTYPE_SOCKET as u32).map(|f| f.proc_fd).collect()
}

/// `struct socket_fdinfo` of descriptor `fd` of process `pid`, written into `info`: the bytes written.
pub fn socket_fdinfo(pid: libc::pid_t, fd: i32, info: &mut [u8]) -> Option<usize> {
    // SAFETY: `info` outlives the call and holds the byte length given.
    let got = unsafe {
        libc::proc_pidfdinfo(
            pid,
            fd,
            PROC_PIDFDSOCKETINFO,
            info.as_mut_ptr().cast(),
            info.len() as libc::c_int,
        )
    };
    (got > 0).then_some(got as usize)
}
