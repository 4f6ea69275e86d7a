//! The kernel-authenticated local channel between a machine service and a user's agent: who is on the
//! other end of a Unix socket, as the kernel says (Linux `SO_PEERCRED`, macOS and the BSDs
//! `getpeereid`), never as the peer says. A service that forwards a browser's request to « that user's
//! agent » checks that the process listening on, or connecting to, the socket runs as that user.

#[cfg(unix)]
pub use unix::{check_peer, peer_uid};

/// Why the other end of a channel is refused.
#[derive(Debug, thiserror::Error)]
pub enum ChannelRefused {
    #[error("the other end runs as uid {found}, not {expected}")]
    OtherUser { expected: u32, found: u32 },
    #[error("the other end's credentials could not be read: {0}")]
    Unknown(#[from] std::io::Error),
}

/// The rule: the uid the kernel gives is the one expected.
pub fn same_user(expected: u32, found: u32) -> Result<(), ChannelRefused> {
    if expected == found {
        Ok(())
    } else {
        Err(ChannelRefused::OtherUser { expected, found })
    }
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::net::UnixStream;

    pub use crate::platform::sys::peer_uid;

    /// `stream`'s other end runs as `expected`, or the refusal.
    pub fn check_peer(stream: &UnixStream, expected: u32) -> Result<(), ChannelRefused> {
        same_user(expected, peer_uid(stream)?)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn me() -> u32 {
        crate::platform::sys::effective_uid()
    }

    #[test]
    fn a_socket_pair_of_this_process_is_this_user() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), me());
        assert!(check_peer(&b, me()).is_ok());
        assert!(matches!(
            check_peer(&b, me().wrapping_add(1)),
            Err(ChannelRefused::OtherUser { found, .. }) if found == me()
        ));
    }

    /// Another account connects (run as `nobody` when these tests run as root): the kernel says so,
    /// whatever it sends.
    #[test]
    fn another_account_is_seen_as_itself() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        if me() != 0 || std::process::Command::new("python3").arg("-V").output().is_err() {
            return; // needs root to run a client as another account (the test stack runs as root)
        }
        let dir = std::env::temp_dir().join(format!("cpx-peer-cred-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        let nobody = 65534;
        let mut client = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(1)",
            ])
            .arg(&path)
            .uid(nobody)
            .gid(nobody)
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().unwrap();
        assert_eq!(peer_uid(&stream).unwrap(), nobody);
        assert!(
            matches!(check_peer(&stream, 0), Err(ChannelRefused::OtherUser { expected: 0, found }) if found == nobody)
        );
        drop(stream);
        let _ = client.wait();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
