//! The tray app on a virtual desktop, used the way a person would: Xvfb as the screen, a private D-Bus
//! session (single instance), WebKitWebDriver launching the real app (whose web views then allow
//! automation) to read each window's text, xdotool to type into whatever window has the keyboard focus,
//! ImageMagick's `import` for screenshots, AT-SPI for what a screen reader gets (`tests/stack/a11y-tree`),
//! and a panel for the tray icon: either a minimal system tray
//! (`tests/stack/xembed-tray`) that docks the icon on screen, or a StatusNotifier host
//! (`tests/stack/sni-host`, what GNOME and KDE panels speak) that reads and clicks the icon's menu.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::agent::{free_port, wait_listening};
use crate::bin_dir;
use crate::webdriver::Session;

/// What shows the app's tray icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// An XEmbed system tray on a dark panel (the icon is on screen).
    Dark,
    /// The same on a light panel.
    Light,
    /// A StatusNotifier host on D-Bus (the icon's menu can be read and clicked).
    StatusNotifier,
}

/// An X screen with a tray panel, and a D-Bus session bus of its own.
pub struct Desktop {
    xvfb: Child,
    panel: Child,
    dbus_pid: u32,
    pub display: String,
    pub dbus: String,
}

impl Desktop {
    pub fn start(panel_kind: Panel) -> Self {
        Self::start_with_bus(panel_kind, &["--session"])
    }

    /// A desktop whose session bus has no Secret Service: every D-Bus service installed but the ones that
    /// provide `org.freedesktop.secrets` (gnome-keyring, KeePassXC…), its configuration in `dir`.
    pub fn start_without_secret_service(panel_kind: Panel, dir: &Path) -> Self {
        let services = dir.join("dbus-services");
        std::fs::create_dir_all(&services).unwrap();
        for entry in std::fs::read_dir("/usr/share/dbus-1/services").into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if !text.lines().any(|l| l.trim() == "Name=org.freedesktop.secrets") {
                let _ = std::os::unix::fs::symlink(entry.path(), services.join(entry.file_name()));
            }
        }
        // The system's session bus configuration (/usr/share/dbus-1/session.conf) with these services.
        let config = dir.join("session-bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                services.display()
            ),
        )
        .unwrap();
        Self::start_with_bus(panel_kind, &[&format!("--config-file={}", config.display())])
    }

    fn start_with_bus(panel_kind: Panel, bus: &[&str]) -> Self {
        let (xvfb, display) = (20..200)
            .find_map(|n| {
                if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                    return None;
                }
                let mut child = Command::new("Xvfb")
                    .args([
                        format!(":{n}"),
                        "-screen".into(),
                        "0".into(),
                        "1024x768x24".into(),
                        "-nolisten".into(),
                        "tcp".into(),
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("Xvfb (apt-get install xvfb)");
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return None; // display taken meanwhile: next one (the child has exited)
                    }
                    if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                        return Some((child, format!(":{n}")));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
                None
            })
            .expect("a free X display");
        let out = Command::new("dbus-daemon")
            .args(bus)
            .args(["--fork", "--print-address=1", "--print-pid=1"])
            .output()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let dbus = lines.next().expect("D-Bus address").trim().to_owned();
        let dbus_pid = lines.next().and_then(|l| l.trim().parse().ok()).expect("D-Bus pid");
        let mut desktop =
            Self { xvfb, panel: Command::new("true").spawn().expect("true"), dbus_pid, display, dbus };
        let mut panel = match panel_kind {
            Panel::StatusNotifier => desktop
                .command(crate::root().join("tests/stack/sni-host"))
                .arg("serve")
                .stdout(Stdio::piped())
                .spawn(),
            Panel::Dark | Panel::Light => desktop
                .command(crate::root().join("tests/stack/xembed-tray"))
                .arg(if panel_kind == Panel::Dark { "dark" } else { "light" })
                .stdout(Stdio::piped())
                .spawn(),
        }
        .expect("tests/stack panel (apt-get install python3-xlib python3-dbus python3-gi)");
        let mut line = String::new();
        BufReader::new(panel.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("tray panel");
        assert_eq!(line.trim(), "ready", "tray panel did not start");
        desktop.panel = panel;
        desktop
    }

    /// Starts an unlocked gnome-keyring (Secret Service) on this desktop's bus, its files under `home`, as a
    /// desktop session has.
    pub fn unlock_keyring(&self, home: &Path) {
        use std::io::Write;
        std::fs::create_dir_all(home).unwrap();
        let mut daemon = self
            .command("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (apt-get install gnome-keyring)");
        daemon.stdin.take().expect("stdin").write_all(b"test keyring password").unwrap();
        assert!(daemon.wait().unwrap().success(), "gnome-keyring-daemon --unlock");
    }

    /// `program` on this desktop.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        // A UTF-8 locale, or xdotool cannot read the windows' (French) titles.
        c.env("DISPLAY", &self.display).env("DBUS_SESSION_BUS_ADDRESS", &self.dbus).env("LANG", "C.UTF-8");
        c
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = self.command("xdotool").args(args).output().expect("xdotool (apt-get install xdotool)");
        if !out.stderr.is_empty() {
            eprintln!("xdotool {args:?} on {}: {}", self.display, String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The title of the window that has the keyboard focus.
    pub fn focused_title(&self) -> String {
        self.xdotool(&["getwindowfocus", "getwindowname"])
    }

    /// The titles of the visible top-level windows.
    pub fn window_titles(&self) -> Vec<String> {
        self.xdotool(&["search", "--onlyvisible", "--name", "."])
            .lines()
            .map(|id| self.xdotool(&["getwindowname", id.trim()]))
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Types `text` on the keyboard, into whatever window has the focus.
    pub fn type_text(&self, text: &str) {
        self.xdotool(&["type", "--delay", "30", text]);
    }

    /// Presses one key ("Return", "Escape", "Tab").
    pub fn key(&self, key: &str) {
        self.xdotool(&["key", key]);
    }

    /// A PNG of the whole screen.
    pub fn screenshot(&self, path: &Path) {
        let ok = self
            .command("import")
            .args(["-window", "root"])
            .arg(path)
            .status()
            .expect("import (apt-get install imagemagick)");
        assert!(ok.success(), "screenshot {}", path.display());
    }

    /// A PNG of the window named exactly `name`, enlarged `scale` times (a 16 px tray icon is hard to see).
    pub fn window_shot(&self, name: &str, scale: u32, path: &Path) -> bool {
        let id = self.xdotool(&["search", "--name", &format!("^{name}$")]);
        let Some(id) = id.lines().next() else { return false };
        let raw = path.with_extension("raw.png");
        let taken =
            self.command("import").args(["-window", id.trim()]).arg(&raw).status().is_ok_and(|s| s.success());
        let scaled = taken
            && Command::new("convert")
                .arg(&raw)
                .args(["-scale", &format!("{}%", scale * 100)])
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
        let _ = std::fs::remove_file(&raw);
        scaled
    }
}

#[allow(unsafe_code)] // libc: kill
impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.panel.kill();
        let _ = self.panel.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
        // SAFETY: plain kill(2) of the D-Bus daemon this desktop started.
        unsafe { libc::kill(self.dbus_pid as i32, libc::SIGTERM) };
    }
}

/// The tray app, started by WebKitWebDriver on its own desktop.
pub struct TrayApp {
    pub desktop: Desktop,
    driver: Child,
    session: Session,
    pub port: u16,
    pub dir: PathBuf,
    pub ca_pem: PathBuf,
    pub shots: PathBuf,
    env: Vec<(String, String)>,
}

impl std::ops::Deref for TrayApp {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl TrayApp {
    /// Starts the app in `dir` with `config_text` (top-level keys, then `[[site]]` tables) on `port`.
    /// `env` is added to the app's environment (CPX_AGENT_LANG…).
    pub fn start(dir: &Path, config_text: &str, port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_on(Desktop::start(Panel::Dark), dir, config_text, port, env)
    }

    /// Same, on `desktop`.
    pub fn start_on(
        desktop: Desktop,
        dir: &Path,
        config_text: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let config = dir.join("config.toml");
        // The file key store unless the test asks for the keyring.
        let key_store = if config_text.contains("key_store") { "" } else { "key_store = \"file\"\n" };
        std::fs::write(&config, format!("port = {port}\n{key_store}{config_text}")).unwrap();
        let mut all_env: Vec<(String, String)> = vec![
            ("HOME".into(), dir.join("home").display().to_string()),
            ("XDG_CONFIG_HOME".into(), dir.join("home/.config").display().to_string()),
            ("CPX_AGENT_CONFIG".into(), config.display().to_string()),
            ("CPX_AGENT_DATA_DIR".into(), dir.join("data").display().to_string()),
            ("CPX_AGENT_CACHE_DIR".into(), dir.join("cache").display().to_string()),
            ("CPX_AGENT_LOG_DIR".into(), dir.join("logs").display().to_string()),
            ("CPX_AGENT_LOG".into(), std::env::var("CPX_AGENT_LOG").unwrap_or_else(|_| "trace".into())),
        ];
        all_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let driver_port = free_port();
        let driver = desktop
            .command("WebKitWebDriver")
            .arg(format!("--port={driver_port}"))
            .envs(all_env.iter().map(|(k, v)| (k, v)))
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("WebKitWebDriver (apt-get install webkit2gtk-driver)");
        wait_listening(driver_port);
        let app = bin_dir().join("cpx-tray");
        assert!(app.exists(), "{} not built: run `cargo build --workspace` first", app.display());
        let session =
            Session::new(driver_port, json!({"webkitgtk:browserOptions": {"binary": app, "args": []}}))
                .unwrap_or_else(|e| panic!("{e}"));
        wait_listening(port);
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let ca_pem = dir.join("data/local-ca.pem");
        Self { desktop, driver, session, port, dir: dir.to_path_buf(), ca_pem, shots, env: all_env }
    }

    /// Switches to the window showing `ui/<page>.html`, waiting for it (20 s at most).
    pub fn wait_window(&self, page: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(h) = self.find_window(page) {
                // The page fills itself in from the app, then marks itself ready.
                let ready = Instant::now() + Duration::from_secs(20);
                loop {
                    match self.execute("return document.body && document.body.dataset.ready").as_str() {
                        Some("true") => return h,
                        Some("error") => panic!("the {page} page failed: {}", self.page_text()),
                        _ => {}
                    }
                    assert!(Instant::now() < ready, "the {page} page never got ready");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {page} window; windows: {:?}",
                self.desktop.window_titles()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The window showing `page`, switched to, if there is one.
    pub fn find_window(&self, page: &str) -> Option<String> {
        let suffix = format!("/{page}.html");
        self.handles().into_iter().find(|h| {
            self.switch_to(h);
            self.url().ends_with(&suffix)
        })
    }

    /// Waits until no window shows `page`.
    pub fn wait_closed(&self, page: &str) {
        crate::poll(&format!("the {page} window closing"), Duration::from_secs(20), || {
            self.find_window(page).is_none().then_some(())
        });
    }

    /// Starts `cpx-tray` a second time with `args`, as a person clicking its launcher would: it must hand
    /// them to the running app and exit (a second app would keep running).
    pub fn second_start(&self, args: &[&str]) -> std::process::ExitStatus {
        let mut c = self.desktop.command(bin_dir().join("cpx-tray"));
        c.args(args).envs(self.env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = c.spawn().expect("cpx-tray");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("cpx-tray") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a second cpx-tray kept running: no single instance");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The app's processes (children of the WebDriver server named cpx-tray).
    pub fn app_pids(&self) -> Vec<u32> {
        let driver = self.driver.id();
        let children =
            std::fs::read_to_string(format!("/proc/{driver}/task/{driver}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "cpx-tray")
            })
            .collect()
    }

    /// Saves the whole screen as `name.png`, once the current window has painted its page.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.run_async(
            "requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(true), 100)))",
        );
        let path = self.shots.join(format!("{name}.png"));
        self.desktop.screenshot(&path);
        path
    }

    /// Saves the tray panel with the app's icon (enlarged 4×) as `name.png`.
    pub fn tray_shot(&self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        // The icon docks a moment after the app starts.
        let deadline = Instant::now() + Duration::from_secs(10);
        let panel = self.desktop.xdotool(&["search", "--name", "^cpx-test-tray$"]);
        loop {
            let tree = self
                .desktop
                .command("xwininfo")
                .args(["-children", "-id", panel.trim()])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if tree.contains("tray-icon tray app cpx") {
                break;
            }
            assert!(Instant::now() < deadline, "the app's icon never docked in the tray: {tree}");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(self.desktop.window_shot("cpx-test-tray", 4, &path), "tray panel screenshot");
        path
    }

    /// The accessibility tree (AT-SPI) of the window titled `title`, as a screen reader gets it: each node's
    /// role, accessible name and text.
    pub fn accessible(&self, title: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self
                .desktop
                .command(crate::root().join("tests/stack/a11y-tree"))
                .arg(title)
                .output()
                .expect("tests/stack/a11y-tree (apt-get install python3-pyatspi)");
            if out.status.success() {
                let nodes: Vec<serde_json::Value> =
                    serde_json::from_slice(&out.stdout).expect("a11y-tree JSON");
                // The web content is exposed a moment after the window.
                if nodes.iter().any(|n| n["role"] == "push button") {
                    return nodes;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no accessibility tree for {title:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The tray item as the StatusNotifier host sees it: icon name and folder, menu entries.
    pub fn tray_item(&self) -> serde_json::Value {
        let out = self
            .desktop
            .command(crate::root().join("tests/stack/sni-host"))
            .arg("item")
            .output()
            .expect("sni-host");
        assert!(out.status.success(), "sni-host item: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("sni-host JSON")
    }

    /// Clicks the tray menu's entry `label` through the StatusNotifier host.
    pub fn click_menu(&self, label: &str) {
        let out = self
            .desktop
            .command(crate::root().join("tests/stack/sni-host"))
            .args(["click", label])
            .output()
            .expect("sni-host");
        assert!(out.status.success(), "sni-host click {label:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Everything the app logged so far.
    pub fn logs(&self) -> String {
        crate::log_text(&self.dir.join("logs"))
    }

    /// How many lines the app logged so far (for [`TrayApp::wait_log`]).
    pub fn log_mark(&self) -> usize {
        self.logs().lines().count()
    }

    /// Waits until the app logs, after line `after`, a line containing all of `parts` (20 s at most).
    pub fn wait_log(&self, after: usize, parts: &[&str]) -> String {
        crate::poll(&format!("the app logging {parts:?}"), Duration::from_secs(20), || {
            self.logs().lines().skip(after).find(|l| parts.iter().all(|p| l.contains(p))).map(str::to_owned)
        })
    }

    /// The local CA's PEM text (to trust the app's loopback certificate).
    pub fn ca_text(&self) -> String {
        std::fs::read_to_string(&self.ca_pem).expect("local CA written")
    }
}

#[allow(unsafe_code)] // libc: kill
impl Drop for TrayApp {
    fn drop(&mut self) {
        let apps = self.app_pids();
        self.session.end();
        for pid in apps {
            // SAFETY: plain kill(2) of the app this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `cpx-tray` started directly (no WebDriver), for the benchmark: the time to its "ready" line.
pub fn start_plain(desktop: &Desktop, dir: &Path, port: u16) -> (Child, Duration) {
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("port = {port}\nkey_store = \"file\"\nautostart = false\nlog_level = \"info\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let mut c = desktop.command(bin_dir().join("cpx-tray"));
    c.args(["--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("HOME", dir.join("home"))
        .env("CPX_AGENT_CACHE_DIR", dir.join("cache"))
        .env("CPX_AGENT_LOG_DIR", dir.join("logs"))
        .env("NO_AT_BRIDGE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("cpx-tray");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("ready line");
    assert!(line.contains("ready"), "cpx-tray did not start: {line:?}");
    (child, started.elapsed())
}
