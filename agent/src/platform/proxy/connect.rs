//! A TCP connection to a name: every address it resolves to is tried in turn (IPv6 and IPv4, in the
//! resolver's order) until one answers, all within the deadline; the failure names each address tried.

use tokio::net::TcpStream;
use tokio::time::Instant;

/// `host:port`, an IPv6 address bracketed.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `host:port`, trying every address of the name before `deadline`; the error says what each
/// address answered.
pub async fn connect_any(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let lookup = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port)));
    let addrs: Vec<std::net::SocketAddr> = match lookup.await {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return Err(format!("name not resolved: {e}")),
        Err(_) => return Err("name resolution timed out".into()),
    };
    if addrs.is_empty() {
        return Err("no address".into());
    }
    let mut failures = Vec::new();
    for addr in &addrs {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                // Small handshake records back to back: without this, Nagle and delayed ACK add ~40 ms
                // to TLS 1.2.
                let _ = tcp.set_nodelay(true);
                if !failures.is_empty() {
                    tracing::info!(%host, %addr, skipped = ?failures, "connected after other addresses failed");
                }
                return Ok(tcp);
            }
            Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
            Err(_) => {
                failures.push(format!("{addr}: connection timed out"));
                break;
            }
        }
    }
    Err(failures.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_address_is_tried_until_one_answers() {
        // `localhost` resolves to ::1 and 127.0.0.1 here; only the IPv4 one listens, so whichever the
        // resolver gives first, the connection is made.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let addrs: Vec<_> = tokio::net::lookup_host(("localhost", port)).await.unwrap().collect();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let tcp = connect_any("localhost", port, deadline).await.expect("the IPv4 address answers");
        assert!(tcp.peer_addr().unwrap().is_ipv4());
        drop(listener);
        let err = connect_any("localhost", port, deadline).await.unwrap_err();
        // Every address is named in the failure.
        for a in addrs {
            assert!(err.contains(&a.to_string()), "{a} in {err}");
        }
        let err = connect_any("nowhere.invalid", 443, deadline).await.unwrap_err();
        assert!(err.starts_with("name not resolved"), "{err}");
        assert_eq!(authority("::1", 8443), "[::1]:8443");
    }
}
