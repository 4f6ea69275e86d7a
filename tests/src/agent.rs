//! The agent under test: `cpx-agent serve` started as users start it, with a configuration file, a
//! scripted pinentry, and an HTTPS client that trusts its local CA as an installed system would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;

use crate::{binary, root};

/// The agent's default port (cpx-agent's config.rs).
pub const DEFAULT_AGENT_PORT: u16 = 47413;
/// The demo portal's session cookie (`__Host-` prefixed: this host only, Secure, Path=/).
pub const PORTAL_SESSION_COOKIE: &str = "__Host-cpx_session";

/// A free TCP port on the loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A public address (TEST-NET-3, RFC 5737) that tests put on the loopback of the isolated stack's private
/// network namespace, for a portal that browsers see as a public site (Local Network Access applies).
pub const PUBLIC_TEST_IP: &str = "203.0.113.5";

/// A test PKI for TLS servers (portals, nginx): a CA and a server certificate for 127.0.0.1/localhost (and
/// portal.test, cpx.portal.test, evil.test, [`PUBLIC_TEST_IP`]).
pub struct ServerPki {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
    /// The card CAs a portal trusts: TEST AC RACINE IGC-SANTE FORT + TEST AC IGC-SANTE FORT PERSONNES.
    pub card_cas_pem: PathBuf,
}

pub fn server_pki(dir: &Path) -> ServerPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "Portail de test, AC serveurs");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![
        "localhost".into(),
        "portal.test".into(),
        "cpx.portal.test".into(),
        "evil.test".into(),
    ])
    .unwrap();
    leaf.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
    leaf.subject_alt_names.push(SanType::IpAddress(PUBLIC_TEST_IP.parse().expect("an IP")));
    leaf.distinguished_name.push(DnType::CommonName, "portal.test");
    let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let pki = ServerPki {
        ca_pem: dir.join("server-ca.pem"),
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        card_cas_pem: dir.join("card-cas.pem"),
    };
    std::fs::write(&pki.ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert_pem, leaf_cert.pem()).unwrap();
    std::fs::write(&pki.key_pem, key.serialize_pem()).unwrap();
    std::fs::write(&pki.card_cas_pem, format!("{}{}", cpx_sim::pki::CA_PEM, cpx_sim::pki::ROOT_PEM)).unwrap();
    pki
}

/// A running `cpx-agent serve`, stopped on drop.
pub struct AgentProcess {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    pub ca_pem: String,
    pub pinentry_answers: PathBuf,
    pub pinentry_log: PathBuf,
}

impl AgentProcess {
    /// Starts the agent with `sites` (TOML `[[site]]` tables) in `dir`.
    pub fn start(dir: &Path, sites: &str) -> Self {
        Self::start_on(dir, sites, free_port())
    }

    pub fn start_on(dir: &Path, sites: &str, port: u16) -> Self {
        Self::start_full(dir, sites, port, &[])
    }

    /// `config` may start with top-level keys before its `[[site]]` tables; `env` is added to the agent's
    /// environment (PINENTRY_DELAY…).
    pub fn start_full(dir: &Path, config_text: &str, port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_as(dir, config_text, Some(port), env, None)
    }

    /// The same, run as the OS user `uid` (its folder given to that user; `setpriv`), on `port` or, with
    /// `None`, on the port the agent picks (its configuration's `user_ports`).
    pub fn start_as(
        dir: &Path,
        config_text: &str,
        port: Option<u16>,
        env: &[(&str, &str)],
        uid: Option<u32>,
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        // The first table header (a line starting with '['; top-level values may hold arrays).
        let first_table =
            if config_text.starts_with('[') { Some(0) } else { config_text.find("\n[").map(|i| i + 1) };
        let (top, sites) = match first_table {
            Some(i) => config_text.split_at(i),
            None => (config_text, ""),
        };
        let answers = dir.join("pinentry-answers");
        let log = dir.join("pinentry.log");
        std::fs::write(&answers, "").unwrap();
        std::fs::write(&log, "").unwrap();
        let config = dir.join("config.toml");
        let pinentry = root().join("tests/stack/scripted-pinentry");
        let port_line = port.map(|p| format!("port = {p}\n")).unwrap_or_default();
        std::fs::write(&config, format!("{port_line}key_store = \"file\"\n{top}[pin_prompt]\nkind = \"pinentry\"\nprogram = \"{}\"\n{sites}", pinentry.display())).unwrap();
        let mut command = match uid {
            Some(uid) => {
                give_to(dir, uid);
                let mut c = std::process::Command::new("setpriv");
                c.args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"])
                    .arg(crate::bin_dir().join("cpx-agent"))
                    .env("HOME", dir);
                c
            }
            None => binary("cpx-agent"),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("PINENTRY_ANSWERS", &answers)
            .env("PINENTRY_LOG", &log)
            .envs(env.iter().copied())
            .env("CPX_AGENT_CACHE_DIR", dir.join("cache"))
            // Tests run the agent at its most verbose level (the logs must hold no secret even then);
            // the benchmark sets CPX_AGENT_LOG=info, the default of an installed agent.
            .env("CPX_AGENT_LOG", std::env::var("CPX_AGENT_LOG").unwrap_or_else(|_| "trace".into()))
            .env("CPX_AGENT_LOG_DIR", dir.join("logs"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("the agent's stderr file"))
            .spawn()
            .expect("cpx-agent serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        let started_on = first
            .split("https://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse::<u16>().ok());
        assert!(
            started_on.is_some() && (port.is_none() || started_on == port),
            "agent did not start: {first:?}\n{}",
            std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
        );
        let port = started_on.unwrap_or_default();
        let ca_pem = std::fs::read_to_string(dir.join("data/local-ca.pem")).expect("local CA written");
        Self { child, port, dir: dir.to_path_buf(), ca_pem, pinentry_answers: answers, pinentry_log: log }
    }

    /// Everything the agent logged so far.
    pub fn logs(&self) -> String {
        crate::log_text(&self.dir.join("logs"))
    }

    /// Everything the agent wrote to its standard error so far (kept in `stderr.log` of its folder).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Queues the answers of the scripted pinentry (a PIN, or "cancel").
    pub fn answer_pins(&self, answers: &[&str]) {
        std::fs::write(&self.pinentry_answers, answers.iter().map(|a| format!("{a}\n")).collect::<String>())
            .unwrap();
    }

    /// The dialog texts the pinentry showed, decoded.
    pub fn dialogs(&self) -> Vec<String> {
        std::fs::read_to_string(&self.pinentry_log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.replace("%0A", "\n").replace("%25", "%"))
            .collect()
    }

    /// An HTTPS request to the agent, not checked against the API document (benchmarks).
    pub fn request_unchecked(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        https(&self.ca_pem, "127.0.0.1", self.port, method, path, headers, body)
    }

    /// `POST /v1/authenticate` as the page of `origin` sends it, code porteur `1234` answered; the JSON
    /// answer (not checked against the API document: benchmarks).
    pub fn authenticate_unchecked(&self, origin: &str, challenge: &str) -> serde_json::Value {
        self.answer_pins(&["1234"]);
        let body = serde_json::json!({ "challenge": challenge }).to_string();
        self.request_unchecked(
            "POST",
            "/v1/authenticate",
            &[("Origin", origin), ("Content-Type", "application/json")],
            Some(&body),
        )
        .json()
    }

    /// [`Self::request_unchecked`] that reports a missing answer (within `deadline`) instead of panicking.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        deadline: std::time::Duration,
    ) -> Result<HttpAnswer, NoAnswer> {
        Server { ca_pem: &self.ca_pem, addr: "127.0.0.1", host: "127.0.0.1", port: self.port }
            .try_send(&Request { method, path, headers, body }, deadline)
    }

    /// An HTTPS request to the agent, trusting its local CA. Every JSON answer is checked against
    /// docs/openapi.yaml.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        let answer = self.request_unchecked(method, path, headers, body);
        if method != "OPTIONS" && path.starts_with("/v1/") && !answer.body.is_empty() {
            let spec = crate::openapi::Spec::load();
            let documented = if answer.status == 404 { "/v1/authenticate" } else { path };
            let method = if answer.status == 404 { "POST" } else { method };
            if let Err(e) = spec.check(method, documented, answer.status, &answer.json()) {
                panic!(
                    "{method} {path} → {} does not follow docs/openapi.yaml: {e}\n{}",
                    answer.status, answer.body
                );
            }
        }
        answer
    }
}

/// Gives `dir` (and what is in it) to the OS user `uid`, and lets that user reach it from the root.
pub fn give_to(dir: &Path, uid: u32) {
    let status = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(dir)
        .status()
        .expect("chown");
    assert!(status.success(), "chown {}", dir.display());
    for ancestor in dir.ancestors().skip(1) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(ancestor) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001));
            }
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request over TLS to `host:port` on this machine, trusting `ca_pem`. Sends
/// `Host: host:port` unless a Host header is given.
pub fn https(
    ca_pem: &str,
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> HttpAnswer {
    Server { ca_pem, addr: "127.0.0.1", host, port }.send(&Request { method, path, headers, body })
}

/// A TLS client trusting only the certificates of `ca_pem` (as a browser that trusts the agent's local CA).
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    Arc::new(config)
}

/// Where an HTTPS request goes: the address connected to, the name the server is asked for (SNI, its
/// certificate, the Host header), its port, and the only CA trusted.
#[derive(Clone, Copy)]
pub struct Server<'a> {
    pub ca_pem: &'a str,
    pub addr: &'a str,
    pub host: &'a str,
    pub port: u16,
}

/// One HTTP/1.1 request.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a str>,
}

/// Why an HTTPS request got no answer.
#[derive(Debug)]
pub enum NoAnswer {
    /// Nothing (or not all of the answer) within the deadline.
    TimedOut,
    /// The connection failed, or what came back is not HTTP.
    Failed(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::TimedOut => f.write_str("no answer within the deadline"),
            NoAnswer::Failed(why) => write!(f, "no HTTP answer: {why}"),
        }
    }
}

impl Server<'_> {
    /// Sends `r` and reads the whole answer (60 s at the most), panicking without one.
    pub fn send(&self, r: &Request) -> HttpAnswer {
        self.try_send(r, std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{} {}: {e}", r.method, r.path))
    }

    /// [`Self::send`] that reports a missing answer instead of panicking: the connection and each read
    /// get `deadline` (the soak tells a hung request from a failed one).
    pub fn try_send(&self, r: &Request, deadline: std::time::Duration) -> Result<HttpAnswer, NoAnswer> {
        let Server { ca_pem, addr, host, port } = *self;
        let Request { method, path, headers, body } = *r;
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| NoAnswer::Failed(e.to_string()))?;
        let conn = rustls::ClientConnection::new(client_config(ca_pem), name)
            .map_err(|e| NoAnswer::Failed(e.to_string()))?;
        let to = std::net::ToSocketAddrs::to_socket_addrs(&(addr, port))
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| NoAnswer::Failed(format!("no address for {addr}")))?;
        let tcp = TcpStream::connect_timeout(&to, deadline).map_err(|e| {
            if is_timeout(&e) {
                NoAnswer::TimedOut
            } else {
                NoAnswer::Failed(format!("connect: {e}"))
            }
        })?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(deadline)).map_err(|e| NoAnswer::Failed(e.to_string()))?;
        tcp.set_write_timeout(Some(deadline)).map_err(|e| NoAnswer::Failed(e.to_string()))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {host}:{port}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        tls.write_all(req.as_bytes()).map_err(|e| {
            if is_timeout(&e) {
                NoAnswer::TimedOut
            } else {
                NoAnswer::Failed(format!("send: {e}"))
            }
        })?;
        let mut raw = Vec::new();
        // A server that closes without TLS close_notify ends the read with an error after the whole answer.
        if let Err(e) = tls.read_to_end(&mut raw) {
            if is_timeout(&e) {
                return Err(NoAnswer::TimedOut);
            }
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, rest) =
            text.split_once("\r\n\r\n").ok_or_else(|| NoAnswer::Failed(format!("{text:?}")))?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| NoAnswer::Failed(format!("no status line: {head:?}")))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let (_, body) = parse_http(&raw).unwrap_or((status, rest.as_bytes().to_vec()));
        Ok(HttpAnswer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

/// Status and body of an HTTP/1.1 answer (Content-Length, chunked, or until close): the agent's, or
/// another server's in the tests.
fn parse_http(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "transfer-encoding" => chunked = v.trim().eq_ignore_ascii_case("chunked"),
            "content-length" => length = v.trim().parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[split + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = rest;
        loop {
            let eol = at.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&at[..eol]).ok()?.split(';').next()?.trim(), 16)
                    .ok()?;
            at = &at[eol + 2..];
            if size == 0 {
                break out;
            }
            out.extend_from_slice(at.get(..size)?);
            at = at.get(size + 2..)?;
        }
    } else {
        match length {
            Some(n) => rest.get(..n)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some((status, body))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// nginx as a portal's mTLS endpoint: client certificate required, verified against the card CAs; it
/// answers what it saw (verification result, subject, TLS version) as JSON.
pub struct Nginx {
    child: Child,
    pub port: u16,
}

impl Nginx {
    pub fn start(dir: &Path, pki: &ServerPki) -> Self {
        Self::start_with(dir, pki, "")
    }

    /// With more directives in its `http` block (for example longer timeouts: `client_header_timeout`
    /// also bounds nginx's TLS handshake).
    pub fn start_with(dir: &Path, pki: &ServerPki, http_directives: &str) -> Self {
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  {http_directives}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_client_certificate {cas}; ssl_verify_client on; ssl_verify_depth 2;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ default_type application/json; return 200 '{{\"verify\":\"$ssl_client_verify\",\"subject\":\"$ssl_client_s_dn\",\"protocol\":\"$ssl_protocol\"}}'; }}
  }}
}}
",
            cert = pki.cert_pem.display(),
            key = pki.key_pem.display(),
            cas = pki.card_cas_pem.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .spawn()
            .expect("nginx (apt-get install nginx-light)");
        wait_listening(port);
        Self { child, port }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something listens on 127.0.0.1:port (10 s at most).
pub fn wait_listening(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `openssl s_server` as a portal's mTLS endpoint: `-Verify 2 -verify_return_error` against the card
/// CAs, one connection, and a canned HTTP answer fed on its standard input.
pub struct OpensslServer {
    child: Child,
    pub port: u16,
}

impl OpensslServer {
    /// A server that requires a client certificate from the card CAs and answers `answer` to the agent's
    /// login POST.
    pub fn start(dir: &Path, pki: &ServerPki, answer: &str) -> Self {
        Self::answering(dir, pki, true, "\"origin\"", answer)
    }

    /// A server (with or without client certificates) that answers `answer` once its output shows
    /// `trigger` (a piece of the request).
    pub fn answering(dir: &Path, pki: &ServerPki, client_auth: bool, trigger: &str, answer: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let verify: &[&str] = if client_auth { &["-Verify", "2", "-verify_return_error"] } else { &[] };
        let mut child = std::process::Command::new("openssl")
            .args(["s_server", "-naccept", "1"])
            .args(verify)
            .args(["-accept", &port.to_string()])
            .arg("-cert")
            .arg(&pki.cert_pem)
            .arg("-key")
            .arg(&pki.key_pem)
            .arg("-CAfile")
            .arg(&pki.card_cas_pem)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(dir.join("s_server.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("s_server.err")).unwrap())
            .spawn()
            .expect("openssl s_server");
        // s_server sends what arrives on its stdin once a client is connected: answer when the request is in.
        let mut stdin = child.stdin.take().unwrap();
        let (out, answer, trigger) = (dir.join("s_server.out"), answer.to_owned(), trigger.to_owned());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if std::fs::read_to_string(&out).unwrap_or_default().contains(&trigger) {
                    let _ = stdin.write_all(answer.as_bytes());
                    let _ = stdin.flush();
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    return; // dropping stdin ends the connection
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        // Not a probe connection (it would be the one connection served): wait for its "ACCEPT".
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(dir.join("s_server.out")).unwrap_or_default().contains("ACCEPT") {
            assert!(std::time::Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port }
    }

    /// Waits for the server to end (it serves one connection) and returns what it printed.
    pub fn output(mut self, dir: &Path) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(dir.join("s_server.out")).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("s_server.err")).unwrap_or_default()
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo portal: site on `https://portal.test:SITE_PORT` (reached on 127.0.0.1), mTLS endpoint on
/// 127.0.0.1:MTLS_PORT, a SQLite file, the test IGC-Santé CAs as card anchors and a current CRL of the
/// issuing CA (the portal refuses cards whose revocation status is unknown). Its standard error goes to
/// `portal.err` in its folder.
pub struct PortalProcess {
    child: Child,
    pub site_port: u16,
    pub mtls_port: u16,
    pub origin: String,
    pub db: PathBuf,
    /// The CRL file the portal reads (and reads again when it changes), if any.
    pub crl: Option<PathBuf>,
    pub dir: PathBuf,
    /// The address the harness reaches the site on (the page calls of the tests).
    pub site_addr: String,
    ca_pem: String,
}

/// The issuing CA of the test cards (TEST AC IGC-SANTE FORT PERSONNES) and its key.
fn card_ca_key() -> String {
    std::fs::read_to_string(root().join("drivers/sim/pki/ca.key.pem"))
        .expect("the test CA key (drivers/sim/pki)")
}

/// Writes a CRL (DER) of the cards' issuing CA at `path`, revoking the certificates given (PEM), valid
/// from `this_update` to `next_update` (Unix seconds).
pub fn write_card_crl(path: &Path, revoked_cert_pems: &[&str], this_update: i64, next_update: i64) {
    let serials: Vec<Vec<u8>> = revoked_cert_pems.iter().map(|p| crate::crl::serial_of(p)).collect();
    let der = crate::crl::crl_der(cpx_sim::pki::CA_PEM, &card_ca_key(), &serials, this_update, next_update);
    // Written aside and renamed, as a CRL is published: the portal never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, der).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A CRL of the cards' issuing CA that revokes nobody, current for a week.
pub fn write_current_card_crl(path: &Path) {
    let now = crate::crl::now();
    write_card_crl(path, &[], now - 3600, now + 7 * 24 * 3600);
}

impl PortalProcess {
    pub fn start(dir: &Path, pki: &ServerPki) -> Self {
        Self::start_with_agent(dir, pki, crate::agent::DEFAULT_AGENT_PORT)
    }

    /// Same, with the login page pointing at an agent on `agent_port`.
    pub fn start_with_agent(dir: &Path, pki: &ServerPki, agent_port: u16) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let crl = dir.join("card-ca.crl");
        write_current_card_crl(&crl);
        Self::start_full(dir, pki, agent_port, Some(&crl), &[])
    }

    /// The portal with the CRL file `crl` (none: no `--crl`) and more command-line arguments.
    pub fn start_full(
        dir: &Path,
        pki: &ServerPki,
        agent_port: u16,
        crl: Option<&Path>,
        args: &[&str],
    ) -> Self {
        Self::start_at(dir, pki, agent_port, crl, args, None, None)
    }

    /// The portal's site on `https://IP:SITE_PORT`, listening on that address (a public address put on the
    /// isolated stack's loopback: [`PUBLIC_TEST_IP`]); its mTLS endpoint stays on 127.0.0.1.
    pub fn start_public(dir: &Path, pki: &ServerPki, agent_port: u16, ip: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let crl = dir.join("card-ca.crl");
        write_current_card_crl(&crl);
        Self::start_at(dir, pki, agent_port, Some(&crl), &[], Some(ip), None)
    }

    /// The portal in the proxy tests' « outside » ([`crate::proxy::Outside`]): its site on the outside's
    /// address (`https://portal.test:SITE_PORT`, the harness's page calls go there), its mTLS endpoint on
    /// the outside's own loopback, which only the proxy reaches.
    pub fn start_outside(
        dir: &Path,
        pki: &ServerPki,
        agent_port: u16,
        outside: &crate::proxy::Outside,
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let crl = dir.join("card-ca.crl");
        write_current_card_crl(&crl);
        Self::start_at(dir, pki, agent_port, Some(&crl), &[], None, Some(outside))
    }

    fn start_at(
        dir: &Path,
        pki: &ServerPki,
        agent_port: u16,
        crl: Option<&Path>,
        args: &[&str],
        ip: Option<&str>,
        outside: Option<&crate::proxy::Outside>,
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let (site_port, mtls_port) = (free_port(), free_port());
        let origin = match ip {
            Some(ip) => format!("https://{ip}:{site_port}"),
            None => format!("https://portal.test:{site_port}"),
        };
        let db = dir.join("portal.sqlite");
        let site_addr = outside.map_or(ip.unwrap_or("127.0.0.1"), |o| o.ip.as_str()).to_owned();
        let mut cmd = match outside {
            Some(o) => o.command(crate::bin_dir().join("cpx-demo-portal")),
            None => binary("cpx-demo-portal"),
        };
        cmd.args([
            "serve",
            "--origin",
            &origin,
            "--site",
            &format!("{site_addr}:{site_port}"),
            "--mtls",
            &format!("127.0.0.1:{mtls_port}"),
        ])
        .arg("--db")
        .arg(&db)
        .arg("--cert")
        .arg(&pki.cert_pem)
        .arg("--key")
        .arg(&pki.key_pem)
        .arg("--card-anchors")
        .arg(&pki.card_cas_pem)
        .arg("--agent-url")
        .arg(format!("https://127.0.0.1:{agent_port}"))
        .args(args);
        if let Some(crl) = crl {
            cmd.arg("--crl").arg(crl);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("portal.err")).unwrap())
            .spawn()
            .expect("cpx-demo-portal serve");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        assert!(
            first.contains("cpx-demo-portal: site"),
            "portal did not start: {first:?} {}",
            std::fs::read_to_string(dir.join("portal.err")).unwrap_or_default()
        );
        let ca_pem = std::fs::read_to_string(&pki.ca_pem).unwrap();
        Self {
            child,
            site_port,
            mtls_port,
            origin,
            db,
            crl: crl.map(Path::to_path_buf),
            dir: dir.to_path_buf(),
            site_addr: if outside.is_some() { site_addr } else { "127.0.0.1".into() },
            ca_pem,
        }
    }

    /// What the portal wrote on its standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("portal.err")).unwrap_or_default()
    }

    /// Creates an account with the CLI, as the README says.
    pub fn add_account(&self, username: &str, password: &str, nom: &str, prenom: &str) {
        let out = binary("cpx-demo-portal")
            .args([
                "add-account",
                "--username",
                username,
                "--password",
                password,
                "--nom",
                nom,
                "--prenom",
                prenom,
            ])
            .arg("--db")
            .arg(&self.db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The agent's `[[site]]` for this portal.
    pub fn agent_site(&self, pki: &ServerPki) -> String {
        format!("[[site]]\norigin = \"{}\"\nmtls_endpoint = \"https://127.0.0.1:{}/cpx/login\"\nserver_roots = \"{}\"\nsigned_token = true\n", self.origin, self.mtls_port, pki.ca_pem.display())
    }

    /// The agent's `[[site]]` for this portal with its mTLS endpoint named `host` (a name only a proxy
    /// resolves, in the proxy tests), and `extra` lines (`proxy = …`) before it.
    pub fn agent_site_named(&self, pki: &ServerPki, host: &str) -> String {
        format!("[[site]]\norigin = \"{}\"\nmtls_endpoint = \"https://{host}:{}/cpx/login\"\nserver_roots = \"{}\"\nsigned_token = true\n", self.origin, self.mtls_port, pki.ca_pem.display())
    }

    /// A request to the site as its own page would make it (Origin of the site, session cookie).
    pub fn page(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        content_type: &str,
        body: Option<&str>,
    ) -> HttpAnswer {
        self.try_page(method, path, cookie, content_type, body, std::time::Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// The login page's first step: a new session and its challenge (session cookie, challenge).
    pub fn challenge(&self) -> (String, String) {
        let c = self.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
        assert_eq!(c.status, 200, "{}", c.body);
        let cookie = c.session_cookie().expect("a session cookie with the challenge");
        (cookie, c.json()["challenge"].as_str().expect("challenge").to_owned())
    }

    /// The login page's last step: the code the agent brought back, exchanged for a session.
    pub fn finish(&self, cookie: &str, code: &str) -> HttpAnswer {
        let body = serde_json::json!({ "code": code }).to_string();
        self.page("POST", "/cpx/finish", Some(cookie), "application/json", Some(&body))
    }

    /// [`Self::page`] that reports a missing answer (within `deadline`) instead of panicking.
    pub fn try_page(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        content_type: &str,
        body: Option<&str>,
        deadline: std::time::Duration,
    ) -> Result<HttpAnswer, NoAnswer> {
        let cookie_header = cookie.map(|c| format!("{PORTAL_SESSION_COOKIE}={c}"));
        let mut headers: Vec<(&str, &str)> = vec![("Origin", self.origin.as_str())];
        if let Some(c) = &cookie_header {
            headers.push(("Cookie", c));
        }
        if body.is_some() {
            headers.push(("Content-Type", content_type));
        }
        Server { ca_pem: &self.ca_pem, addr: &self.site_addr, host: "portal.test", port: self.site_port }
            .try_send(&Request { method, path, headers: &headers, body }, deadline)
    }
}

impl HttpAnswer {
    /// The session cookie the answer sets.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).find_map(|(_, v)| {
            v.strip_prefix(PORTAL_SESSION_COOKIE)?.strip_prefix('=')?.split(';').next().map(str::to_owned)
        })
    }
}

impl Drop for PortalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
