//! `cpx-agent pin change|unblock` on a real terminal (tmux), on virtual CPS3 and CPS4 cards: what the
//! professional reads, the codes typed without echo, then a login with the new code through the driver.

use std::process::Command;
use std::time::Duration;

use cpx_card::{CertCache, Pin};
use cpx_tests::terminal::Terminal;
use cpx_tests::{bin_dir, insert_with, open_card, stack, Options};
use sha2::{Digest, Sha256};

/// `cpx-agent pin ARGS --reader READER` on a terminal of its own; the exit status is printed after it.
fn pin_terminal(name: &str, args: &str, reader: &str) -> Terminal {
    let command = format!(
        "{} pin {args} --reader '{reader}'; echo \"exit=$?\"; sleep 600",
        bin_dir().join("cpx-agent").display()
    );
    Terminal::start(&format!("pin-{name}"), &command, 400, 50)
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
        let t = pin_terminal(&format!("{persona}-mismatch"), "change", &reader.name);
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
        let t = pin_terminal(&format!("{persona}-wrong"), "change", &reader.name);
        t.answer("Code porteur actuel (4 chiffres) :", "0000");
        t.answer("Nouveau code porteur (4 chiffres) :", "5678");
        t.answer("Nouveau code porteur, une seconde fois :", "5678");
        let end = t.wait_for("exit=");
        assert!(end.contains("Code porteur incorrect") && end.contains("2"), "{persona}:\n{end}");
        drop(t);

        let t = pin_terminal(&format!("{persona}-change"), "change", &reader.name);
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
        let t = pin_terminal(&format!("{persona}-change"), "change", &reader.name);
        let end = t.wait_for("exit=");
        assert!(
            end.contains("Code porteur bloqué") && end.contains("cpx-agent pin unblock"),
            "{persona}:\n{end}"
        );
        drop(t);

        let t = pin_terminal(&format!("{persona}-unblock"), "unblock", &reader.name);
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
    let t = pin_terminal("wrong-unblock", "unblock", &reader.name);
    t.answer("Code de déblocage (8 chiffres) :", "87654321");
    t.answer("Nouveau code porteur (4 chiffres) :", "4321");
    t.answer("Nouveau code porteur, une seconde fois :", "4321");
    let end = t.wait_for("exit=");
    assert!(end.contains("Code de déblocage incorrect") && end.contains("exit=7"), "{end}");
    drop(t);
    let t = pin_terminal("last-unblock", "unblock", &reader.name);
    t.answer("Continuer ? [o/N]", "o");
    t.answer("Code de déblocage (8 chiffres) :", "87654321");
    t.answer("Nouveau code porteur (4 chiffres) :", "4321");
    t.answer("Nouveau code porteur, une seconde fois :", "4321");
    let end = t.wait_for("exit=");
    assert!(end.contains("Code de déblocage bloqué") && end.contains("CPS Info Service"), "{end}");
    drop(t);
    let t = pin_terminal("dead-unblock", "unblock", &reader.name);
    let end = t.wait_for("exit=");
    assert!(
        end.contains("Code de déblocage bloqué") && !end.contains("(8 chiffres)"),
        "nothing asked:\n{end}"
    );
}

/// `cpx-agent pin …` with the configuration's pinentry (the scripted one: its answers queued, the texts it
/// showed logged): no terminal at all.
struct PinentryRun {
    dir: std::path::PathBuf,
}

impl PinentryRun {
    fn new(name: &str) -> Self {
        let dir = cpx_tests::out_dir(&format!("pin-pinentry-{name}"));
        let program = cpx_tests::root().join("tests/stack/scripted-pinentry");
        std::fs::write(
            dir.join("config.toml"),
            format!("[pin_prompt]\nkind = \"pinentry\"\nprogram = \"{}\"\n", program.display()),
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.join("pinentry.log"));
        Self { dir }
    }

    /// Runs `cpx-agent pin ACTION` with `answers` queued; its exit code, standard output and error, and
    /// what the pinentry showed (decoded).
    fn run(&self, action: &str, reader: &str, answers: &[&str]) -> (i32, String, String) {
        let queued: String = answers.iter().map(|a| format!("{a}\n")).collect();
        std::fs::write(self.dir.join("answers"), queued).unwrap();
        let out = Command::new(bin_dir().join("cpx-agent"))
            .args(["pin", action, "--reader", reader])
            .env("CPX_AGENT_CONFIG", self.dir.join("config.toml"))
            .env("PINENTRY_ANSWERS", self.dir.join("answers"))
            .env("PINENTRY_LOG", self.dir.join("pinentry.log"))
            .stdin(std::process::Stdio::null())
            .output()
            .expect("cpx-agent");
        let shown = std::fs::read_to_string(self.dir.join("pinentry.log")).unwrap_or_default();
        let shown = percent_decode(&shown);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            format!("{}\n--- pinentry:\n{shown}", text(&out.stderr)),
        )
    }
}

/// The Assuan escapes of the pinentry's log (`%0A`…), decoded.
fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (b[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn change_and_unblock_through_pinentry() {
    let reader = stack().reader();
    {
        let _card = insert_with("cps3", &reader, &Options::default(), None);
        let p = PinentryRun::new("change");
        let (status, _, said) = p.run("change", &reader.name, &["1234", "5678", "5679"]);
        assert!(
            status == 7 && said.contains("Les deux saisies du nouveau code porteur sont différentes"),
            "{said}"
        );
        assert!(
            said.contains("Titulaire : JEAN DUPONT — CPS (CPS3)")
                && said.contains("Essais restants : 3 sur 3"),
            "the card and its tries in the pinentry's dialog: {said}"
        );
        let (status, out, said) = p.run("change", &reader.name, &["1234", "5678", "5678"]);
        assert_eq!((status, out.trim()), (0, "Code porteur changé."), "{said}");
        login(&reader.name, "5678").expect("a login with the new code");
        // Cancelled at the first question: nothing changed.
        let (status, _, said) = p.run("change", &reader.name, &["cancel"]);
        assert!(status == 7 && said.contains("annulée"), "{said}");
        login(&reader.name, "5678").expect("still the new code");
    }
    {
        let options = Options { unblock_tries: Some(1), ..Options::default() };
        let _card = insert_with("cps3-blocked", &reader, &options, None);
        let p = PinentryRun::new("unblock");
        // The last try of the code de déblocage: « not OK » to the confirmation sends nothing.
        let (status, _, said) = p.run("unblock", &reader.name, &["no"]);
        assert!(status == 7 && said.contains("Dernier essai du code de déblocage"), "{said}");
        let (status, out, said) = p.run("unblock", &reader.name, &["yes", "12345678", "4321", "4321"]);
        assert_eq!(status, 0, "{out}{said}");
        assert!(out.contains("Carte débloquée"), "{out}");
        assert!(said.contains("Essais du code de déblocage : 1 sur 3"), "the tries before the code: {said}");
        for code in ["12345678", "4321"] {
            assert!(!out.contains(code) && !said.split("--- pinentry:").next().unwrap().contains(code));
        }
        login(&reader.name, "4321").expect("a login after the unblocking");
    }
}

/// On a PIN-pad reader the terminal only says what to type on the reader's keypad (the current code, then
/// the new one twice); nothing is read from the terminal, and the new code logs in.
#[test]
fn change_on_the_reader_keypad_from_the_terminal() {
    use cpx_tests::pinpad::{borrow, Keypad};
    let pad = borrow(false);
    let _card = insert_with("cps4", &pad.reader, &Options::default(), None);
    let mut keypad = Keypad::connect(&pad);
    let t = pin_terminal("keypad", "change", &pad.reader.name);
    let screen = t.wait_for("Sur le clavier du lecteur");
    for want in [
        "CLAIRE MARTIN — CPS (CPS4)",
        "saisissez votre code porteur actuel, puis deux fois le nouveau",
        "Pour annuler, appuyez sur la touche Annuler du lecteur",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    let wait = Duration::from_secs(30);
    for (entry, code) in [("current", "1234"), ("new", "2468"), ("confirm", "2468")] {
        assert_eq!(keypad.wait_entry(wait), entry);
        keypad.type_code(code);
    }
    assert_eq!(keypad.wait_done(wait), "9000");
    let screen = t.wait_for("exit=");
    assert!(screen.contains("exit=0"), "{screen}");
    assert!(!screen.contains("2468") && !screen.contains("1234"), "{screen}");
    login(&pad.reader.name, "2468").expect("a login with the code changed on the keypad");
}
