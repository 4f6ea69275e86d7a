//! A W3C WebDriver client over plain HTTP/1.1 on the loopback, shared by headless Chromium (chromedriver)
//! and the tray app (WebKitWebDriver): pages, elements, texts, scripts, windows, screenshots.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// A session of the WebDriver server listening on `port`.
pub struct Session {
    pub port: u16,
    pub id: String,
}

/// One WebDriver call (plain HTTP on the loopback). chromedriver keeps connections alive whatever the
/// request says, so the answer is read to its Content-Length.
pub fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    use std::io::BufRead;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("WebDriver server");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("WebDriver answer");
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
    reader.read_exact(&mut raw).expect("WebDriver body");
    serde_json::from_slice(&raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
}

impl Session {
    /// Opens a session with `capabilities` (the `alwaysMatch` object).
    pub fn new(port: u16, capabilities: Value) -> Result<Self, String> {
        let v = call(port, "POST", "/session", Some(&json!({"capabilities": {"alwaysMatch": capabilities}})));
        let id =
            v["value"]["sessionId"].as_str().ok_or_else(|| format!("no WebDriver session: {v}"))?.to_owned();
        Ok(Self { port, id })
    }

    pub fn s(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        call(self.port, method, &format!("/session/{}{path}", self.id), body)
    }

    pub fn goto(&self, url: &str) {
        self.s("POST", "/url", Some(&json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.s("GET", "/url", None)["value"].as_str().unwrap_or_default().to_owned()
    }

    pub fn element(&self, css: &str) -> Option<String> {
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
            Some(e) => self.s("GET", &format!("/element/{e}/text"), None)["value"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => String::new(),
        }
    }

    /// The page's whole visible text.
    pub fn page_text(&self) -> String {
        self.text("body")
    }

    pub fn wait_for(&self, css: &str) -> String {
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
            assert!(
                Instant::now() < deadline,
                "{css} never showed {want:?}; it shows {t:?} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the URL path is `path`.
    pub fn wait_path(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let at_path = |url: String| {
            url.split_once("://")
                .and_then(|(_, r)| r.split_once('/'))
                .is_some_and(|(_, p)| format!("/{p}") == path)
        };
        while !at_path(self.url()) {
            assert!(
                Instant::now() < deadline,
                "never reached {path}; at {} showing {}",
                self.url(),
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs an async script in the page; it calls `done(value)` (the last argument) with its result.
    pub fn run_async(&self, script: &str) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1]; {script}");
        self.s("POST", "/execute/async", Some(&json!({"script": wrapped, "args": []})))["value"].clone()
    }

    /// Runs a script in the page and returns its value.
    pub fn execute(&self, script: &str) -> Value {
        self.s("POST", "/execute/sync", Some(&json!({"script": script, "args": []})))["value"].clone()
    }

    /// The page as PNG.
    pub fn screenshot_png(&self) -> Vec<u8> {
        let v = self.s("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn handles(&self) -> Vec<String> {
        self.s("GET", "/window/handles", None)["value"]
            .as_array()
            .map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    pub fn switch_to(&self, handle: &str) {
        self.s("POST", "/window", Some(&json!({"handle": handle})));
    }

    pub fn end(&self) {
        let _ = call(self.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}
