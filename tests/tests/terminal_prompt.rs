//! The terminal PIN prompt, on a real terminal (tmux): the professional sees the site, the holder and the
//! tries, types the code porteur without echo, and the login goes through. With the card in a PIN-pad
//! reader, the terminal says to type the code on the reader's keypad and reads nothing.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use cpx_tests::agent::{free_port, server_pki, HttpAnswer, Nginx};
use cpx_tests::terminal::Terminal;
use cpx_tests::{bin_dir, insert, out_dir, stack};
use serde_json::json;

/// The agent sees every reader: one test at a time, so that no other test's card is offered.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `cpx-agent serve` in a tmux session of its own, asking on its terminal.
struct TerminalAgent {
    terminal: Terminal,
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
        let command = format!(
            "{} serve --config {} --data-dir {}",
            bin_dir().join("cpx-agent").display(),
            config.display(),
            dir.join("data").display()
        );
        let terminal = Terminal::start(name, &command, 120, 40);
        cpx_tests::agent::wait_listening(port);
        let ca = std::fs::read_to_string(dir.join("data/local-ca.pem")).unwrap();
        Self { terminal, port, ca, _nginx: nginx }
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
        self.terminal.screen()
    }

    /// Waits until the terminal shows `words`; returns the screen.
    fn wait_screen(&self, words: &str) -> String {
        self.terminal.wait_for(words)
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
    agent.terminal.type_line("1234");
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
