//! The HTTP `CONNECT` tunnel through a proxy (RFC 9110, section 9.3.6): `CONNECT host:port`, the proxy's
//! answer read up to its blank line ([`MAX_HEAD`] bytes at most), and on `407` the authentication rounds
//! ([`super::auth`]) — on the same connection when the proxy keeps it open (NTLM needs that), on a new one
//! otherwise. A `2xx` gives the raw stream, over which the TLS handshake with the portal (and the card's
//! signature) then runs end to end: the proxy sees only encrypted bytes.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::auth::{self, Challenge, Credentials, Scheme};
use super::connect::{authority, connect_any};
use super::{ProxyError, ProxyServer};

/// The most the agent reads of a proxy's answer head.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most it reads (and throws away) of a `407`'s body to keep the connection.
const MAX_BODY: usize = 64 * 1024;
/// Authentication rounds before giving up (Negotiate: 1 or 2; NTLM: 2).
const MAX_ROUNDS: usize = 4;

/// A proxy's answer head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header lines, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Parses the head (the bytes up to, not including, the blank line).
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not text".to_owned())?;
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(format!(
                "not an HTTP answer: {:?}",
                status_line.chars().take(40).collect::<String>()
            ));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| format!("no status in {status_line:?}"))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Self { version: version.to_owned(), status, reason, headers })
    }

    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every header of that name (any case), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The challenges of every `Proxy-Authenticate` header.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.all("proxy-authenticate").filter_map(Challenge::parse).collect()
    }

    /// Whether the proxy keeps the connection open after this answer, with a body the agent can skip.
    fn reusable(&self) -> Option<usize> {
        let close = |v: &str| v.to_ascii_lowercase().contains("close");
        let keep = |v: &str| v.to_ascii_lowercase().contains("keep-alive");
        let conn = self.header("connection").or(self.header("proxy-connection"));
        let persistent = match conn {
            Some(v) if close(v) => false,
            Some(v) if keep(v) => true,
            _ => self.version == "HTTP/1.1",
        };
        let length = self.header("content-length")?.parse::<usize>().ok()?;
        (persistent && length <= MAX_BODY && self.header("transfer-encoding").is_none()).then_some(length)
    }
}

/// Reads a head from `tcp`: bytes up to the blank line, nothing after it but what `rest` returns (the
/// start of a body).
async fn read_head(tcp: &mut TcpStream, proxy: &str) -> Result<(Head, Vec<u8>), ProxyError> {
    let bad = |why: String| ProxyError::BadAnswer { proxy: proxy.into(), why };
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(|e| bad(e.to_string()))?;
        if n == 0 {
            return Err(bad(if buf.is_empty() {
                "connection closed without an answer".into()
            } else {
                "connection closed in the middle of the answer".into()
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = Head::parse(&buf[..end]).map_err(bad)?;
            return Ok((head, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            return Err(bad(format!("answer head larger than {MAX_HEAD} bytes")));
        }
    }
}

/// What the next request carries.
enum Answer {
    None,
    Basic,
    Context(Scheme, Box<dyn auth::Context>),
}

/// Opens a tunnel to `host:port` through `proxy`, authenticating with `credentials` (and the Basic
/// credentials in the proxy's URL) when asked; the TCP stream, past the proxy's `2xx`, is the portal's.
pub async fn open_tunnel(
    proxy: &ProxyServer,
    host: &str,
    port: u16,
    deadline: Instant,
    credentials: &Credentials,
) -> Result<TcpStream, ProxyError> {
    let name = proxy.to_string();
    let seconds = deadline.saturating_duration_since(Instant::now()).as_secs();
    let too_slow = || ProxyError::TooSlow { proxy: name.clone(), seconds };
    tokio::time::timeout_at(deadline, tunnel(proxy, host, port, deadline, credentials))
        .await
        .unwrap_or_else(|_| Err(too_slow()))
}

async fn tunnel(
    proxy: &ProxyServer,
    host: &str,
    port: u16,
    deadline: Instant,
    credentials: &Credentials,
) -> Result<TcpStream, ProxyError> {
    let name = proxy.to_string();
    let target = authority(host, port);
    let mut credentials = credentials.clone();
    if proxy.basic.is_some() {
        credentials.basic = proxy.basic.clone();
    }
    let mut answer = Answer::None;
    let mut tcp: Option<TcpStream> = None;
    let mut header: Option<String> = None;
    for round in 0..=MAX_ROUNDS {
        let mut stream = match tcp.take() {
            Some(s) => s,
            None => connect_any(&proxy.host, proxy.port, deadline)
                .await
                .map_err(|why| ProxyError::ProxyUnreachable { proxy: name.clone(), why })?,
        };
        let mut request = format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: cpx-agent/{}\r\nProxy-Connection: Keep-Alive\r\n",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(h) = &header {
            request.push_str(&format!("Proxy-Authorization: {h}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| ProxyError::ProxyUnreachable { proxy: name.clone(), why: e.to_string() })?;
        let (head, body_start) = read_head(&mut stream, &name).await?;
        tracing::debug!(proxy = %name, %target, status = head.status, round, "CONNECT answered");
        if (200..300).contains(&head.status) {
            if !body_start.is_empty() {
                return Err(ProxyError::BadAnswer {
                    proxy: name,
                    why: "bytes after the tunnel's answer, before the TLS handshake".into(),
                });
            }
            return Ok(stream);
        }
        if head.status != 407 {
            return Err(ProxyError::Refused {
                proxy: name,
                target,
                status: head.status,
                reason: head.reason.clone(),
            });
        }
        let challenges = head.challenges();
        let offered = challenges.iter().map(|c| c.scheme.clone()).collect::<Vec<_>>().join(", ");
        let failed = |scheme: &str, why: String| ProxyError::AuthFailed {
            proxy: name.clone(),
            scheme: scheme.to_owned(),
            why,
        };
        // The next answer: a continuation of the context in progress, else a first try of the best
        // scheme offered that the agent can answer.
        answer = match answer {
            Answer::Context(scheme, mut ctx) => {
                let token = challenges.iter().find(|c| c.known() == Some(scheme)).and_then(|c| c.token());
                let Some(token) = token else {
                    return Err(failed(scheme.name(), "credentials refused by the proxy".into()));
                };
                let next = ctx.step(Some(&token)).map_err(|why| failed(scheme.name(), why))?;
                header = Some(auth::header(scheme, &next));
                Answer::Context(scheme, ctx)
            }
            Answer::Basic => return Err(failed("Basic", "user or password refused by the proxy".into())),
            Answer::None => {
                let has = |s: Scheme| challenges.iter().any(|c| c.known() == Some(s));
                let mut chosen = Answer::None;
                let mut context_failure = None;
                for scheme in [Scheme::Negotiate, Scheme::Ntlm] {
                    if !(credentials.negotiate && has(scheme) && matches!(chosen, Answer::None)) {
                        continue;
                    }
                    let started = auth::context(scheme, &proxy.host).and_then(|mut c| {
                        let first = c.step(None)?;
                        Ok((c, first))
                    });
                    match started {
                        Ok((ctx, first)) => {
                            header = Some(auth::header(scheme, &first));
                            chosen = Answer::Context(scheme, ctx);
                        }
                        Err(why) => {
                            tracing::info!(proxy = %name, scheme = scheme.name(), %why, "no credentials for this scheme");
                            context_failure.get_or_insert((scheme, why));
                        }
                    }
                }
                if matches!(chosen, Answer::None) && has(Scheme::Basic) {
                    if let Some((user, password)) = &credentials.basic {
                        header = Some(auth::basic(user, password));
                        chosen = Answer::Basic;
                    }
                }
                match (chosen, context_failure) {
                    // No ticket, no logon credentials: the agent lacks what the proxy asks for.
                    (Answer::None, Some((scheme, why))) => {
                        let offered = format!("{offered}; {}: {why}", scheme.name());
                        return Err(ProxyError::AuthRequired { proxy: name, offered });
                    }
                    (Answer::None, None) => {
                        return Err(ProxyError::AuthRequired { proxy: name, offered });
                    }
                    (chosen, _) => chosen,
                }
            }
        };
        // The same connection when the proxy keeps it (its body skipped), else a new one.
        if let Some(length) = head.reusable() {
            let mut rest = body_start;
            while rest.len() < length {
                let mut chunk = vec![0u8; length - rest.len()];
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            if rest.len() == length {
                tcp = Some(stream);
            }
        }
    }
    Err(ProxyError::AuthFailed {
        proxy: name,
        scheme: "?".into(),
        why: format!("no tunnel after {MAX_ROUNDS} authentication rounds"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[test]
    fn heads() {
        let h = Head::parse(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm=\"CHU\"\r\nContent-Length: 12\r\nConnection: keep-alive",
        )
        .unwrap();
        assert_eq!((h.status, h.reason.as_str()), (407, "Proxy Authentication Required"));
        assert_eq!(h.challenges().len(), 2);
        assert_eq!(h.reusable(), Some(12));
        let h = Head::parse(b"HTTP/1.0 200 Connection established").unwrap();
        assert_eq!((h.status, h.reusable()), (200, None));
        assert!(Head::parse(b"SSH-2.0-OpenSSH").is_err());
        assert!(Head::parse(b"HTTP/1.1 abc").is_err());
        assert!(Head::parse(b"HTTP/1.1 407 x\r\nno colon").is_err());
        let h = Head::parse(b"HTTP/1.1 407 x\r\nContent-Length: 3\r\nConnection: close").unwrap();
        assert_eq!(h.reusable(), None);
    }

    /// A scripted proxy (a unit test's stand-in; the real proxies are in tests/tests/proxy.rs): answers
    /// each request on each connection with the next line of `answers`, and records the requests.
    async fn scripted(answers: Vec<&'static str>) -> (ProxyServer, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut answers = answers.into_iter().peekable();
            'conns: while let Ok((tcp, _)) = listener.accept().await {
                let mut reader = tokio::io::BufReader::new(tcp);
                loop {
                    let mut request = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            if answers.peek().is_none() {
                                break 'conns;
                            }
                            continue 'conns;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        request.push_str(&line);
                    }
                    seen.push(request);
                    let Some(a) = answers.next() else { break 'conns };
                    reader.get_mut().write_all(a.as_bytes()).await.unwrap();
                    if a.contains("close") {
                        continue 'conns;
                    }
                }
            }
            seen
        });
        (ProxyServer { host: "127.0.0.1".into(), port, basic: None }, task)
    }

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(5)
    }

    #[tokio::test]
    async fn tunnel_without_authentication() {
        let (proxy, task) = scripted(vec!["HTTP/1.1 200 Connection established\r\n\r\n"]).await;
        let stream = open_tunnel(&proxy, "cpx.portail.fr", 8444, soon(), &Credentials::default()).await;
        assert!(stream.is_ok());
        drop(stream);
        let seen = task.await.unwrap();
        assert!(seen[0].starts_with("CONNECT cpx.portail.fr:8444 HTTP/1.1\r\nHost: cpx.portail.fr:8444\r\n"));
        assert!(!seen[0].contains("Proxy-Authorization"));
    }

    #[tokio::test]
    async fn basic_on_the_same_connection_then_refused_credentials() {
        let challenge = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"CHU\"\r\nContent-Length: 4\r\n\r\nnon!";
        let (mut proxy, task) = scripted(vec![challenge, "HTTP/1.1 200 OK\r\n\r\n"]).await;
        proxy.basic = Some(("jean".into(), "motdepasse".into()));
        assert!(open_tunnel(&proxy, "::1", 443, soon(), &Credentials::default()).await.is_ok());
        let seen = task.await.unwrap();
        assert!(seen[0].starts_with("CONNECT [::1]:443 "));
        assert!(seen[1].contains("Proxy-Authorization: Basic amVhbjptb3RkZXBhc3Nl\r\n"), "{}", seen[1]);

        // The proxy refuses the credentials: AuthFailed.
        let (mut proxy, _task) = scripted(vec![challenge, challenge]).await;
        proxy.basic = Some(("jean".into(), "faux".into()));
        let e = open_tunnel(&proxy, "p.fr", 443, soon(), &Credentials::default()).await.unwrap_err();
        assert!(matches!(&e, ProxyError::AuthFailed { scheme, .. } if scheme == "Basic"), "{e:?}");
        assert_eq!(e.code().as_str(), "PROXY_AUTH_FAILED");
    }

    #[tokio::test]
    async fn no_credentials_for_the_scheme_offered() {
        let (proxy, _task) = scripted(vec![
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"CHU\"\r\nProxy-Authenticate: Digest realm=x\r\nConnection: close\r\n\r\n",
        ])
        .await;
        let e = open_tunnel(&proxy, "p.fr", 443, soon(), &Credentials::default()).await.unwrap_err();
        assert_eq!(e, ProxyError::AuthRequired { proxy: proxy.to_string(), offered: "Basic, Digest".into() });
        assert_eq!(e.code().as_str(), "PROXY_AUTH_REQUIRED");
    }

    #[tokio::test]
    async fn refusals_and_bad_answers_are_typed() {
        let (proxy, _task) = scripted(vec!["HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"]).await;
        let e = open_tunnel(&proxy, "p.fr", 443, soon(), &Credentials::default()).await.unwrap_err();
        assert!(
            matches!(&e, ProxyError::Refused { status: 403, target, .. } if target == "p.fr:443"),
            "{e:?}"
        );
        assert_eq!(e.code().as_str(), "PROXY_REFUSED");
        let (proxy, _task) = scripted(vec!["SSH-2.0-OpenSSH_9.2\r\n\r\n"]).await;
        let e = open_tunnel(&proxy, "p.fr", 443, soon(), &Credentials::default()).await.unwrap_err();
        assert!(matches!(e, ProxyError::BadAnswer { .. }), "{e:?}");
        // Nobody listens.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let gone = ProxyServer { host: "127.0.0.1".into(), port, basic: None };
        let e = open_tunnel(&gone, "p.fr", 443, soon(), &Credentials::default()).await.unwrap_err();
        assert!(matches!(e, ProxyError::ProxyUnreachable { .. }), "{e:?}");
        assert_eq!(e.code().as_str(), "PROXY_UNREACHABLE");
    }

    #[tokio::test]
    async fn a_proxy_that_never_answers_hits_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = ProxyServer { host: "127.0.0.1".into(), port, basic: None };
        let deadline = Instant::now() + std::time::Duration::from_millis(300);
        let e = open_tunnel(&proxy, "p.fr", 443, deadline, &Credentials::default()).await.unwrap_err();
        assert!(matches!(e, ProxyError::TooSlow { .. }), "{e:?}");
        drop(listener);
    }
}
