//! The terminal PIN prompt, on a real terminal (tmux): the professional sees the site, the holder and the
//! tries, types the code porteur without echo, and the login goes through. With the card in a PIN-pad
//! reader, the terminal says to type the code on the reader's keypad and reads nothing.

use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpx_tests::agent::{free_port, server_pki, HttpAnswer, Nginx};
use cpx_tests::{bin_dir, insert, out_dir, stack};
use serde_json::json;

/// The agent sees every reader: one test at a time, so that no other test's card is offered.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux (apt-get install tmux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cpx-agent serve` in a tmux session of its own, asking on its terminal.
struct TerminalAgent {
    session: String,
    port: u16,
    ca: String,
    _nginx: Nginx,
}

impl TerminalAgent {
    fn start(name: &str) -> Self {
        let dir = out_dir(name);
        let pki = server_pki(&dir.join("pki"));
        let nginx = Nginx::start(&dir.join("nginx"), &pki);
        let port = free_port();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("port = {port}\nkey_store = \"file\"\n[pin_prompt]\nkind = \"terminal\"\n[[site]]\norigin = \"https://portal.test\"\nmtls_endpoint = \"https://127.0.0.1:{}/\"\nserver_roots = \"{}\"\n", nginx.port, pki.ca_pem.display()),
        )
        .unwrap();
        let session = format!("cpx-{name}-{}", std::process::id());
        let command = format!(
            "{} serve --config {} --data-dir {}",
            bin_dir().join("cpx-agent").display(),
            config.display(),
            dir.join("data").display()
        );
        tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &command]);
        cpx_tests::agent::wait_listening(port);
        let ca = std::fs::read_to_string(dir.join("data/local-ca.pem")).unwrap();
        Self { session, port, ca, _nginx: nginx }
    }

    /// The page's login request, in a thread (it waits for the code porteur).
    fn login(&self) -> JoinHandle<HttpAnswer> {
        let (ca, port) = (self.ca.clone(), self.port);
        std::thread::spawn(move || {
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
        })
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Waits until the terminal shows `words`; returns the screen.
    fn wait_screen(&self, words: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(words) {
                return s;
            }
            assert!(Instant::now() < deadline, "{words:?} not on the terminal:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TerminalAgent {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.session]);
    }
}

#[test]
fn terminal_prompt_without_echo() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = TerminalAgent::start("terminal-prompt");
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let request = agent.login();
    let screen = agent.wait_screen("Code porteur (4 chiffres) :");
    assert!(
        screen.contains("Le site https://portal.test")
            && screen.contains("JEAN DUPONT — CPS (CPS3)")
            && screen.contains("Essais restants : 3 sur 3"),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &agent.session, "1234", "Enter"]);
    let answer = request.join().unwrap();
    let after = agent.screen();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!after.contains("1234"), "the code porteur was echoed:\n{after}");
}

#[test]
fn terminal_notice_for_the_code_typed_on_the_reader_keypad() {
    use cpx_tests::pinpad::{borrow, Keypad};
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent = TerminalAgent::start("terminal-keypad");
    let pad = borrow(false);
    let _card = cpx_tests::insert_with("cps3", &pad.reader, &cpx_tests::Options::default(), None);
    let mut keypad = Keypad::connect(&pad);
    let request = agent.login();
    let screen = agent.wait_screen("Saisissez votre code porteur sur le clavier du lecteur");
    for words in [
        "Agent CPx — code porteur sur le lecteur",
        "Le site https://portal.test",
        "JEAN DUPONT — CPS (CPS3)",
        "Essais restants : 3 sur 3",
        "Pour annuler, appuyez sur la touche Annuler du lecteur",
    ] {
        assert!(screen.contains(words), "{words:?}:\n{screen}");
    }
    assert!(!screen.contains("Code porteur (4 chiffres) :"), "nothing is read from the terminal:\n{screen}");
    assert_eq!(keypad.wait_entry(Duration::from_secs(20)), "current");
    keypad.type_code("1234");
    let answer = request.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!agent.screen().contains("1234"));
}
