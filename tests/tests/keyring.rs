//! The loopback certificate's private key in a real keyring (Secret Service, gnome-keyring in a private
//! D-Bus session): never left in the data folder, found again at the next start, and the key that
//! matches the certificate the agent serves. Without a Secret Service, the tray app still starts, keeps
//! the keys in files of the user's only (0600 in a 0700 folder) and says so in its status window and in
//! `diagnose`; a keyring found later gets them.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use cpx_tests::agent::{free_port, server_pki, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::desktop::{Desktop, Panel, TrayApp};
use cpx_tests::{bin_dir, binary, insert, out_dir, root, stack};

#[test]
fn loopback_key_lives_in_the_secret_service() {
    let dir = out_dir("keyring");
    let port = free_port();
    std::fs::write(dir.join("config.toml"), format!("port = {port}\n")).unwrap();
    let data = dir.join("data");
    // A first start with no session bus at all (no keyring: the key goes to a file), then two starts in
    // one desktop session (the file's key moves into the keyring); after each, a TLS client checks the
    // served certificate against the local CA (which it can only pass if the server holds its key).
    let script = format!(
        r#"set -e
for run in 0 1 2; do
  bus=$DBUS_SESSION_BUS_ADDRESS
  [ $run = 0 ] && bus=unix:path=/nonexistent
  DBUS_SESSION_BUS_ADDRESS=$bus "{agent}" serve --config "{dir}/config.toml" --data-dir "{data}" > "{dir}/agent-$run.log" 2>&1 &
  pid=$!
  for i in $(seq 100); do grep -q https "{dir}/agent-$run.log" && break; sleep 0.05; done
  cp "{data}/loopback-cert.pem" "{dir}/cert-$run.pem"
  echo | openssl s_client -connect 127.0.0.1:{port} -CAfile "{data}/local-ca.pem" -verify_return_error 2>&1 | grep -m1 "Verify return code" || true
  kill $pid; wait $pid || true
done"#,
        agent = bin_dir().join("cpx-agent").display(),
        dir = dir.display(),
        data = data.display(),
    );
    let out = Command::new(root().join("tests/stack/with-keyring.sh"))
        .arg(dir.join("home"))
        .args(["bash", "-c", &script])
        .output()
        .expect("dbus-run-session (apt-get install dbus-daemon gnome-keyring)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("Verify return code: 0 (ok)").count(),
        3,
        "every start serves a certificate the local CA verifies:\n{text}\n{}",
        std::fs::read_to_string(dir.join("agent-1.log")).unwrap_or_default()
    );
    for run in [1, 2] {
        assert_eq!(
            std::fs::read(dir.join("cert-0.pem")).unwrap(),
            std::fs::read(dir.join(format!("cert-{run}.pem"))).unwrap(),
            "start {run} found the key (moved from the file into the keyring)"
        );
    }
    let logs = std::fs::read_to_string(dir.join("agent-1.log")).unwrap_or_default();
    let secrets = data.join("secrets");
    assert_eq!(
        std::fs::read_dir(&secrets).map(|d| d.count()).unwrap_or(0),
        0,
        "the key file is gone: {logs}"
    );
    let _ = std::fs::remove_dir(&secrets);
    let files: Vec<String> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(
        files.iter().all(|f| f.ends_with(".pem") && !f.contains("key")),
        "no key file in the data folder: {files:?}"
    );
    for f in &files {
        assert!(
            !std::fs::read_to_string(data.join(f)).unwrap().contains("PRIVATE KEY"),
            "{f} holds a private key"
        );
    }
}

#[test]
fn the_tray_starts_without_a_secret_service_and_says_so() {
    let reader = stack().reader();
    let dir = out_dir("keyring-none");
    let pki = server_pki(&dir.join("pki"));
    let port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, port);
    // The keyring asked for (the default), on a session bus where nothing provides a Secret Service.
    let desktop = Desktop::start_without_secret_service(Panel::Light, &dir);
    let app = TrayApp::start_on(
        desktop,
        &dir.join("app"),
        &format!("key_store = \"keyring\"\n{}", portal.agent_site(&pki)),
        port,
        &[],
    );
    app.wait_log(0, &["tray ready"]);
    app.wait_log(0, &["no usable keyring"]);

    // The keys in files of this user's only, created so; never a PIN there.
    let secrets = app.dir.join("data/secrets");
    let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&secrets), 0o700, "the folder is the user's only");
    let key = secrets.join("loopback-tls-key");
    assert_eq!(mode(&key), 0o600, "the key file is the user's only");
    assert!(std::fs::read_to_string(&key).unwrap().contains("PRIVATE KEY"));

    // The status window says so, with the fix.
    assert!(app.second_start(&["--show", "status"]).success(), "second start");
    app.wait_window("status");
    let said = app.wait_text("#keys", "Aucun trousseau de clés utilisable");
    assert!(said.contains("gnome-keyring") && said.contains(&secrets.display().to_string()), "{said}");
    let shot = app.screenshot("etat-sans-trousseau");
    assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 0), "{}", shot.display());
    app.click("#close");
    app.wait_closed("status");

    // So does `cpx-agent diagnose`: a warning, with the fix.
    let out = binary("cpx-agent")
        .args(["--lang", "en", "diagnose", "--json", "--card-timeout", "500", "--config"])
        .arg(app.dir.join("config.toml"))
        .env("CPX_AGENT_DATA_DIR", app.dir.join("data"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let check = v["checks"].as_array().unwrap().iter().find(|c| c["check"] == "key_store").cloned();
    let check = check.unwrap_or_else(|| panic!("no key_store check: {v}"));
    assert_eq!(
        (check["verdict"].as_str(), check["code"].as_str()),
        (Some("warn"), Some("KEYRING_UNAVAILABLE")),
        "{check}"
    );
    let folder = secrets.display().to_string();
    assert!(check["detail"].as_str().is_some_and(|d| d.contains(&folder)), "the folder named: {check}");

    // A card login works all the same: the browser trusts the loopback certificate made with that key.
    let browser = Browser::start(&dir.join("browser"), &[&app.ca_pem, &pki.ca_pem]);
    let _card = insert("cps3", &reader);
    app.wait_log(0, &["tray state", "\"state\":\"Ready\""]);
    browser.goto(&format!("{}/", portal.origin));
    browser.wait_text("#card-state", "Carte CPS insérée et reconnue");
    browser.click("#card-login");
    app.wait_window("pin");
    app.desktop.type_text("1234");
    app.desktop.key("Return");
    browser.wait_path("/premiere-connexion");
    browser.screenshot("connecte-sans-trousseau");
    let names: Vec<String> =
        std::fs::read_dir(&secrets).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| n.ends_with("-key")), "only the agent's keys: {names:?}");
    for name in &names {
        let text = std::fs::read_to_string(secrets.join(name)).unwrap();
        assert!(!text.contains("1234"), "no PIN in {name}");
    }
}
