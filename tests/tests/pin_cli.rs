//! `cpx-agent pin change|unblock` on a real terminal (tmux), on virtual CPS3 and CPS4 cards: what the
//! professional reads, the codes typed without echo, then a login with the new code through the driver.

use std::process::Command;
use std::time::{Duration, Instant};

use cpx_card::{CertCache, Pin};
use cpx_tests::{bin_dir, insert_with, open_card, stack, Options};
use sha2::{Digest, Sha256};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux (apt-get install tmux)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A `cpx-agent pin …` running in its own tmux session.
struct Terminal {
    session: String,
}

impl Terminal {
    fn start(name: &str, args: &str, reader: &str) -> Self {
        let session = format!("cpx-pin-{name}-{}", std::process::id());
        let command = format!(
            "{} pin {args} --reader '{reader}'; echo \"exit=$?\"; sleep 600",
            bin_dir().join("cpx-agent").display()
        );
        tmux(&["new-session", "-d", "-s", &session, "-x", "400", "-y", "50", &command]);
        Self { session }
    }

    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Waits until the screen shows `text` (polling), and returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < deadline, "« {text} » not on the terminal:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the prompt `label`, then types `keys` and Enter.
    fn answer(&self, label: &str, keys: &str) -> String {
        let screen = self.wait_for(label);
        tmux(&["send-keys", "-t", &self.session, keys, "Enter"]);
        screen
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.session]);
    }
}

fn login(reader: &str, digits: &str) -> Result<(), cpx_card::CardError> {
    let mut card = open_card(reader, &CertCache::memory()).expect("opens");
    let scheme = card.schemes()[0];
    let digest = Sha256::digest(b"after cpx-agent pin").to_vec();
    card.authenticate(&Pin::new(digits).unwrap(), scheme, &digest).map(drop)
}

#[test]
fn change_on_the_terminal_then_log_in_with_the_new_code() {
    for (persona, holder) in [("cps3", "JEAN DUPONT — CPS (CPS3)"), ("cps4", "CLAIRE MARTIN — CPS (CPS4)")]
    {
        let reader = stack().reader();
        let _card = insert_with(persona, &reader, &Options::default(), None);

        // The two new codes differ: said, nothing changed.
        let t = Terminal::start(&format!("{persona}-mismatch"), "change", &reader.name);
        let first = t.answer("Code porteur actuel (4 chiffres) :", "1234");
        assert!(first.contains(holder) && first.contains("Essais restants : 3 sur 3"), "{persona}:\n{first}");
        t.answer("Nouveau code porteur (4 chiffres) :", "5678");
        t.answer("Nouveau code porteur, une seconde fois :", "5679");
        let end = t.wait_for("exit=");
        assert!(
            end.contains("Les deux saisies du nouveau code porteur sont différentes"),
            "{persona}:\n{end}"
        );
        assert!(end.contains("exit=7"), "{persona}:\n{end}");
        drop(t);

        // A wrong current code: its tries said.
        let t = Terminal::start(&format!("{persona}-wrong"), "change", &reader.name);
        t.answer("Code porteur actuel (4 chiffres) :", "0000");
        t.answer("Nouveau code porteur (4 chiffres) :", "5678");
        t.answer("Nouveau code porteur, une seconde fois :", "5678");
        let end = t.wait_for("exit=");
        assert!(end.contains("Code porteur incorrect") && end.contains("2"), "{persona}:\n{end}");
        drop(t);

        let t = Terminal::start(&format!("{persona}-change"), "change", &reader.name);
        let shown = t.answer("Code porteur actuel (4 chiffres) :", "1234");
        assert!(shown.contains("Essais restants : 2 sur 3"), "{persona}: the wrong code counted:\n{shown}");
        t.answer("Nouveau code porteur (4 chiffres) :", "5678");
        t.answer("Nouveau code porteur, une seconde fois :", "5678");
        let end = t.wait_for("exit=");
        assert!(end.contains("Code porteur changé.") && end.contains("exit=0"), "{persona}:\n{end}");
        for code in ["1234", "5678", "0000", "5679"] {
            assert!(!end.contains(code), "{persona}: {code} echoed:\n{end}");
        }
        drop(t);
        login(&reader.name, "5678").unwrap_or_else(|e| panic!("{persona}: login with the new code: {e}"));
    }
}

#[test]
fn unblock_on_the_terminal_with_the_tries_shown() {
    for (persona, unblock_tries) in [("cps3-blocked", 1), ("cps4-blocked", 3)] {
        let reader = stack().reader();
        let options = Options { unblock_tries: Some(unblock_tries), ..Options::default() };
        let _card = insert_with(persona, &reader, &options, None);
        // A blocked code porteur is not changed: the way to unblock it is named.
        let t = Terminal::start(&format!("{persona}-change"), "change", &reader.name);
        let end = t.wait_for("exit=");
        assert!(
            end.contains("Code porteur bloqué") && end.contains("cpx-agent pin unblock"),
            "{persona}:\n{end}"
        );
        drop(t);

        let t = Terminal::start(&format!("{persona}-unblock"), "unblock", &reader.name);
        if unblock_tries == 1 {
            let question = t.answer("Continuer ? [o/N]", "o");
            assert!(question.contains("Dernier essai du code de déblocage"), "{persona}:\n{question}");
        }
        let shown = t.answer("Code de déblocage (8 chiffres) :", "12345678");
        let tries = format!("Essais du code de déblocage : {unblock_tries} sur 3");
        assert!(shown.contains(&tries), "{persona}: the tries before the code:\n{shown}");
        t.answer("Nouveau code porteur (4 chiffres) :", "4321");
        t.answer("Nouveau code porteur, une seconde fois :", "4321");
        let end = t.wait_for("exit=");
        assert!(end.contains("Carte débloquée") && end.contains("exit=0"), "{persona}:\n{end}");
        assert!(!end.contains("12345678") && !end.contains("4321"), "{persona}: a code echoed:\n{end}");
        drop(t);
        login(&reader.name, "4321").unwrap_or_else(|e| panic!("{persona}: login after the unblock: {e}"));
    }
    // A wrong code de déblocage, then a blocked one.
    let reader = stack().reader();
    let options = Options { unblock_tries: Some(2), ..Options::default() };
    let _card = insert_with("cps3-blocked", &reader, &options, None);
    let t = Terminal::start("wrong-unblock", "unblock", &reader.name);
    t.answer("Code de déblocage (8 chiffres) :", "87654321");
    t.answer("Nouveau code porteur (4 chiffres) :", "4321");
    t.answer("Nouveau code porteur, une seconde fois :", "4321");
    let end = t.wait_for("exit=");
    assert!(end.contains("Code de déblocage incorrect") && end.contains("exit=7"), "{end}");
    drop(t);
    let t = Terminal::start("last-unblock", "unblock", &reader.name);
    t.answer("Continuer ? [o/N]", "o");
    t.answer("Code de déblocage (8 chiffres) :", "87654321");
    t.answer("Nouveau code porteur (4 chiffres) :", "4321");
    t.answer("Nouveau code porteur, une seconde fois :", "4321");
    let end = t.wait_for("exit=");
    assert!(end.contains("Code de déblocage bloqué") && end.contains("CPS Info Service"), "{end}");
    drop(t);
    let t = Terminal::start("dead-unblock", "unblock", &reader.name);
    let end = t.wait_for("exit=");
    assert!(
        end.contains("Code de déblocage bloqué") && !end.contains("(8 chiffres)"),
        "nothing asked:\n{end}"
    );
}
