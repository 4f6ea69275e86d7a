//! Headless Chromium (Debian's) driven through chromedriver's WebDriver API, with its own HOME whose NSS
//! database trusts the given CAs (the agent's local CA, the portal's test CA), as an installed system
//! would. Screenshots land in the test's output folder.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::agent::free_port;

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    pub shots: PathBuf,
}

/// One WebDriver call (plain HTTP on the loopback). chromedriver keeps connections alive whatever the
/// request says, so the answer is read to its Content-Length.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    use std::io::BufRead;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("chromedriver answer");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut raw = vec![0u8; length];
    reader.read_exact(&mut raw).expect("chromedriver body");
    serde_json::from_slice(&raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that trusts `cas` and resolves `portal.test` (and
    /// `evil.test`) to 127.0.0.1.
    pub fn start(dir: &Path, cas: &[&Path]) -> Self {
        let home = dir.join("home");
        let nss = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nss).unwrap();
        let db = format!("sql:{}", nss.display());
        let ok = Command::new("certutil").args(["-d", &db, "-N", "--empty-password"]).status().expect("certutil (apt-get install libnss3-tools)");
        assert!(ok.success());
        for (i, ca) in cas.iter().enumerate() {
            let ok = Command::new("certutil").args(["-d", &db, "-A", "-t", "C,,", "-n", &format!("test CA {i}"), "-i"]).arg(ca).status().unwrap();
            assert!(ok.success(), "certutil -A {}", ca.display());
        }
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("HOME", &home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        crate::agent::wait_listening(port);
        let profile = dir.join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
                     "--lang=fr-FR", "--window-size=1100,900", format!("--user-data-dir={}", profile.display()),
                     "--host-resolver-rules=MAP portal.test 127.0.0.1, MAP evil.test 127.0.0.1"]
        }}}});
        let v = call(port, "POST", "/session", Some(&caps));
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {v}")).to_owned();
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Self { driver, port, session, shots }
    }

    fn s(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        call(self.port, method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(&json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.s("GET", "/url", None)["value"].as_str().unwrap_or_default().to_owned()
    }

    fn element(&self, css: &str) -> Option<String> {
        let v = self.s("POST", "/element", Some(&json!({"using": "css selector", "value": css})));
        v["value"].as_object().and_then(|o| o.values().next()).and_then(Value::as_str).map(str::to_owned)
    }

    pub fn click(&self, css: &str) {
        let e = self.wait_for(css);
        self.s("POST", &format!("/element/{e}/click"), Some(&json!({})));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css);
        self.s("POST", &format!("/element/{e}/value"), Some(&json!({"text": text})));
    }

    pub fn text(&self, css: &str) -> String {
        match self.element(css) {
            Some(e) => self.s("GET", &format!("/element/{e}/text"), None)["value"].as_str().unwrap_or_default().to_owned(),
            None => String::new(),
        }
    }

    /// The page's whole visible text.
    pub fn page_text(&self) -> String {
        self.text("body")
    }

    fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(e) = self.element(css) {
                return e;
            }
            assert!(Instant::now() < deadline, "no element {css} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `css`'s text contains `want` (20 s at most) and returns it.
    pub fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let t = self.text(css);
            if t.contains(want) {
                return t;
            }
            assert!(Instant::now() < deadline, "{css} never showed {want:?}; it shows {t:?} on {}", self.url());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the URL path is `path`.
    pub fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.url().split_once("://").and_then(|(_, r)| r.split_once('/')).is_some_and(|(_, p)| format!("/{p}") == path) {
            assert!(Instant::now() < deadline, "never reached {path}; at {} showing {}", self.url(), self.page_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs an async script in the page; it calls `done(value)` (the last argument) with its result.
    pub fn run_async(&self, script: &str) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1]; {script}");
        self.s("POST", "/execute/async", Some(&json!({"script": wrapped, "args": []})))["value"].clone()
    }

    /// Saves a PNG screenshot as `name.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.s("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(v["value"].as_str().expect("screenshot")).unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(self.port, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
