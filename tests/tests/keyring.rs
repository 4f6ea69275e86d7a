//! The loopback certificate's private key in a real keyring (Secret Service, gnome-keyring in a private
//! D-Bus session): never written to the data folder, found again at the next start, and the key that
//! matches the certificate the agent serves.

use std::process::Command;

use cpx_tests::agent::free_port;
use cpx_tests::{bin_dir, out_dir, root};

#[test]
fn loopback_key_lives_in_the_secret_service() {
    let dir = out_dir("keyring");
    let port = free_port();
    std::fs::write(dir.join("config.toml"), format!("port = {port}\n")).unwrap();
    let data = dir.join("data");
    // Two starts in one desktop session; after each, a TLS client checks the served certificate against
    // the local CA (which it can only pass if the server holds the certificate's key).
    let script = format!(
        r#"set -e
for run in 1 2; do
  "{agent}" serve --config "{dir}/config.toml" --data-dir "{data}" > "{dir}/agent-$run.log" 2>&1 &
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
        2,
        "both starts serve a certificate the local CA verifies:\n{text}\n{}",
        std::fs::read_to_string(dir.join("agent-1.log")).unwrap_or_default()
    );
    assert_eq!(
        std::fs::read(dir.join("cert-1.pem")).unwrap(),
        std::fs::read(dir.join("cert-2.pem")).unwrap(),
        "the second start found the key in the keyring"
    );
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
