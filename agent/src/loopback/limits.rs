//! What keeps the loopback servers (the agent and the broker) up when a local program misbehaves:
//! accept errors are logged and retried after a pause (longer when descriptors run out), connections are
//! counted in total and per peer (the client socket's OS user, else its address) and those over the cap
//! are closed at once, and every stage of a connection has a deadline (TLS handshake, request headers,
//! request body; an idle keep-alive connection is closed by the header deadline of its next request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Caps and deadlines of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once, all peers together.
    pub max_connections: usize,
    /// Connections open at once from one peer (OS user).
    pub max_per_peer: usize,
    /// The TLS handshake of a new connection.
    pub handshake: Duration,
    /// Reading a request's headers; also how long an idle keep-alive connection stays open.
    pub header_read: Duration,
    /// Reading a request's body.
    pub body_read: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_per_peer: 32,
            handshake: Duration::from_secs(5),
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The defaults, with the total cap kept under this process's descriptor limit (room left for the
    /// log files, PC/SC and the blocking threads).
    pub fn for_this_process() -> Self {
        let mut limits = Self::default();
        if let Some(n) = descriptor_limit() {
            limits.max_connections = limits.max_connections.min(n.saturating_sub(64).max(16));
            limits.max_per_peer = limits.max_per_peer.min(limits.max_connections);
        }
        limits
    }
}

#[cfg(unix)]
fn descriptor_limit() -> Option<usize> {
    crate::platform::sys::open_files_limit()
}

#[cfg(not(unix))]
fn descriptor_limit() -> Option<usize> {
    None
}

/// The connection counters of one server.
#[derive(Debug)]
pub struct Gate {
    pub limits: Limits,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<String, usize>,
}

/// A connection counted in the total; uncounted on drop.
pub struct Slot {
    gate: Arc<Gate>,
    peer: Option<String>,
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self { limits, counts: Mutex::new(Counts::default()) })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection, or `None` when the server is full.
    pub fn enter(self: &Arc<Self>) -> Option<Slot> {
        let mut c = self.counts();
        if c.total >= self.limits.max_connections {
            return None;
        }
        c.total += 1;
        Some(Slot { gate: self.clone(), peer: None })
    }

    /// Connections open now (all peers).
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Slot {
    /// Counts the connection for `peer` too; `false` when that peer already has its share.
    pub fn assign(&mut self, peer: String) -> bool {
        let mut c = self.gate.counts();
        let n = c.per_peer.entry(peer.clone()).or_insert(0);
        if *n >= self.gate.limits.max_per_peer {
            return false;
        }
        *n += 1;
        drop(c);
        self.peer = Some(peer);
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(p) = self.peer.take() {
            if let Some(n) = c.per_peer.get_mut(&p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_peer.remove(&p);
                }
            }
        }
    }
}

/// Whether an accept error means the process or the system ran out of something (descriptors,
/// memory): the pause before the next try grows then.
fn is_exhaustion(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
    }
    #[cfg(windows)]
    {
        // WSAEMFILE, WSAENOBUFS
        matches!(e.raw_os_error(), Some(10024 | 10055))
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = e;
        false
    }
}

/// The next connection; accept errors never end the server: they are logged and retried after a pause
/// (from 50 ms doubling to 2 s while descriptors stay exhausted).
pub async fn accept(listener: &TcpListener, pause: &mut Duration) -> (TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(c) => {
                *pause = Duration::ZERO;
                return c;
            }
            Err(e) if is_exhaustion(&e) => {
                *pause = (*pause * 2).clamp(Duration::from_millis(50), Duration::from_secs(2));
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed: out of descriptors; retrying after a pause");
                tokio::time::sleep(*pause).await;
            }
            Err(e) => {
                // A connection reset before it was accepted, and the like: only that connection is lost.
                tracing::debug!(error = %e, "accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_total_and_per_peer_and_frees_on_drop() {
        let gate = Gate::new(Limits { max_connections: 3, max_per_peer: 2, ..Limits::default() });
        let mut a = gate.enter().unwrap();
        let mut b = gate.enter().unwrap();
        let mut c = gate.enter().unwrap();
        assert!(gate.enter().is_none(), "total cap");
        assert!(a.assign("1000".into()) && b.assign("1000".into()));
        assert!(!c.assign("1000".into()), "per-peer cap");
        assert!(c.assign("1001".into()), "another peer has its own share");
        drop(a);
        assert_eq!(gate.open(), 2);
        let mut d = gate.enter().unwrap();
        assert!(d.assign("1000".into()), "a freed place is reused");
        drop((b, c, d));
        assert_eq!(gate.open(), 0);
        assert!(gate.counts().per_peer.is_empty());
    }
}
