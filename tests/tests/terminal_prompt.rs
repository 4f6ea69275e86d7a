//! The terminal PIN prompt, on a real terminal (tmux): the professional sees the site, the holder and the
//! tries, types the code porteur without echo, and the login goes through.

use std::process::Command;
use std::time::{Duration, Instant};

use cpx_tests::agent::{free_port, server_pki, Nginx};
use cpx_tests::{bin_dir, insert, out_dir, stack};
use serde_json::json;

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux (apt-get install tmux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn terminal_prompt_without_echo() {
    let dir = out_dir("terminal-prompt");
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    let port = free_port();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("port = {port}\nkey_store = \"file\"\n[pin_prompt]\nkind = \"terminal\"\n[[site]]\norigin = \"https://portal.test\"\nmtls_endpoint = \"https://127.0.0.1:{}/\"\nserver_roots = \"{}\"\n", nginx.port, pki.ca_pem.display()),
    )
    .unwrap();
    let session = format!("cpx-prompt-{}", std::process::id());
    let command = format!(
        "{} serve --config {} --data-dir {}",
        bin_dir().join("cpx-agent").display(),
        config.display(),
        dir.join("data").display()
    );
    tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &command]);
    cpx_tests::agent::wait_listening(port);
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let ca = std::fs::read_to_string(dir.join("data/local-ca.pem")).unwrap();
    let request = std::thread::spawn(move || {
        let body = json!({"challenge": "A".repeat(43) + "="}).to_string();
        cpx_tests::agent::https(
            &ca,
            "127.0.0.1",
            port,
            "POST",
            "/v1/authenticate",
            &[("Origin", "https://portal.test"), ("Content-Type", "application/json")],
            Some(&body),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let screen = loop {
        let s = tmux(&["capture-pane", "-p", "-t", &session]);
        if s.contains("Code porteur (4 chiffres) :") {
            break s;
        }
        assert!(Instant::now() < deadline, "no prompt on the terminal:\n{s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        screen.contains("Le site https://portal.test")
            && screen.contains("JEAN DUPONT — CPS (CPS3)")
            && screen.contains("Essais restants : 3 sur 3"),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &session, "1234", "Enter"]);
    let answer = request.join().unwrap();
    let after = tmux(&["capture-pane", "-p", "-t", &session]);
    tmux(&["kill-session", "-t", &session]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!after.contains("1234"), "the code porteur was echoed:\n{after}");
}
