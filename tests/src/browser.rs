//! Headless Chromium (Debian's) driven through chromedriver's WebDriver API, with its own HOME whose NSS
//! database trusts the given CAs (the agent's local CA, the portal's test CA), as an installed system
//! would. Screenshots land in the test's output folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::agent::free_port;
use crate::webdriver::Session;

pub struct Browser {
    driver: Child,
    session: Session,
    pub shots: PathBuf,
}

impl std::ops::Deref for Browser {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that trusts `cas` and resolves `portal.test` (and
    /// `evil.test`) to 127.0.0.1.
    pub fn start(dir: &Path, cas: &[&Path]) -> Self {
        Self::start_with(dir, cas, None)
    }

    /// The same, with `etc_chromium` seen by Chromium as `/etc/chromium` (its managed policies are in
    /// `policies/managed`): chromedriver and the browser run in a mount namespace of their own where that
    /// folder is bind-mounted, so the machine's `/etc/chromium` is never touched (root; inside the isolated
    /// stack).
    pub fn start_with(dir: &Path, cas: &[&Path], etc_chromium: Option<&Path>) -> Self {
        Self::start_full(dir, cas, etc_chromium, &[])
    }

    /// The same, with more command-line arguments for Chromium (`--proxy-server=…`).
    pub fn start_full(dir: &Path, cas: &[&Path], etc_chromium: Option<&Path>, extra_args: &[String]) -> Self {
        let home = dir.join("home");
        let nss = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nss).unwrap();
        let db = format!("sql:{}", nss.display());
        let ok = Command::new("certutil")
            .args(["-d", &db, "-N", "--empty-password"])
            .status()
            .expect("certutil (apt-get install libnss3-tools)");
        assert!(ok.success());
        for (i, ca) in cas.iter().enumerate() {
            let ok = Command::new("certutil")
                .args(["-d", &db, "-A", "-t", "C,,", "-n", &format!("test CA {i}"), "-i"])
                .arg(ca)
                .status()
                .unwrap();
            assert!(ok.success(), "certutil -A {}", ca.display());
        }
        let port = free_port();
        let mut driver = match etc_chromium {
            Some(etc) => {
                assert!(
                    Path::new("/etc/chromium").is_dir(),
                    "/etc/chromium missing: apt-get install chromium"
                );
                let mut c = Command::new("unshare");
                c.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "sh",
                    "-c",
                    r#"mount --bind "$0" /etc/chromium && exec chromedriver "$1""#,
                ])
                .arg(etc);
                c
            }
            None => Command::new("chromedriver"),
        };
        let driver = driver
            .arg(format!("--port={port}"))
            .env("HOME", &home)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        crate::agent::wait_listening(port);
        let profile = dir.join("profile");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--lang=fr-FR",
            "--window-size=1100,900",
            "--host-resolver-rules=MAP portal.test 127.0.0.1, MAP evil.test 127.0.0.1",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra_args.iter().cloned());
        let caps = json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}});
        let session = Session::new(port, caps).unwrap_or_else(|e| panic!("{e}"));
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Self { driver, session, shots }
    }

    /// Saves a PNG screenshot as `name.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.screenshot_png();
        assert!(!png.is_empty(), "no screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.end();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
