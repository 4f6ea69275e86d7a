//! The tray app on a virtual desktop (Xvfb), the real one: started by WebKitWebDriver, which reads each
//! window's text; window titles and focus from X; the dialogs also through the accessibility tree; PINs
//! typed with xdotool into whatever window has the keyboard focus; the tray icon docked in a test panel
//! (XEmbed) or read and clicked through a StatusNotifier host; the login page in headless Chromium; the
//! real pcscd/vpcd stack with virtual cards. Screenshots land in target/test-out/tray-*/screenshots (the
//! tray panel enlarged 4×, and the whole screen for each window).
//!
//! One test at a time: each runs a desktop, a web engine and often Chromium, on two cores.

use std::sync::Mutex;
use std::time::Duration;

use cpx_tests::agent::{free_port, https, server_pki, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::desktop::{Desktop, Panel, TrayApp};
use cpx_tests::{insert, insert_with, logged_commands, out_dir, stack, Options};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens the status window the way the launcher does (a second start) and returns its state line.
fn status_line(app: &TrayApp) -> String {
    assert!(app.second_start(&["--show", "status"]).success(), "second start");
    app.wait_window("status");
    let line =
        cpx_tests::try_poll(Duration::from_secs(10), || Some(app.text("#message")).filter(|l| !l.is_empty()))
            .unwrap_or_default();
    assert!(
        app.desktop.window_titles().iter().any(|t| t == "État de la carte — Agent CPx"),
        "status window title: {:?}",
        app.desktop.window_titles()
    );
    line
}

fn close_status(app: &TrayApp) {
    app.wait_window("status");
    app.click("#close");
    app.wait_closed("status");
}

#[test]
fn tray_icon_and_status_follow_the_card_and_the_pc_sc_service() {
    let _one = one_at_a_time();
    let s = stack();
    let reader = s.reader();
    let dir = out_dir("tray-states");
    let mark = 0;
    let app = TrayApp::start(&dir, "", free_port(), &[]);
    let ready = app.wait_log(mark, &["tray ready"]);
    assert!(ready.contains("\"state\":\"NoCard\""), "starts with no card: {ready}");
    app.tray_shot("tray-1-aucune-carte");
    assert_eq!(status_line(&app), "Aucune carte dans le lecteur");
    app.screenshot("etat-aucune-carte");
    close_status(&app);

    let mut shots = Vec::new();
    for (persona, state, words, name) in [
        ("cps3", "Ready", "Carte CPS insérée et reconnue", "tray-2-carte-prete"),
        ("cps3-blocked", "PinBlocked", "Code porteur bloqué", "tray-3-code-bloque"),
        (
            "cps3-expired",
            "CertificateExpired",
            "Le certificat de la carte a expiré",
            "tray-4-certificat-expire",
        ),
        ("mute", "NotRecognised", "Carte CPS mal insérée / non reconnue", "tray-5-carte-non-reconnue"),
    ] {
        let mark = app.log_mark();
        let card = insert(persona, &reader);
        let line = app.wait_log(mark, &["tray state", &format!("\"state\":\"{state}\"")]);
        assert!(
            line.contains("card_inserted") || line.contains("CardInserted") || line.contains("CardMute"),
            "changed on pcscd's event: {line}"
        );
        shots.push(std::fs::read(app.tray_shot(name)).unwrap());
        assert_eq!(status_line(&app), words, "{persona}");
        assert_eq!(
            app.text("#readers tr:first-child td:first-child"),
            reader.name,
            "{persona}: the reader with the card comes first"
        );
        app.screenshot(&format!("etat-{persona}"));
        close_status(&app);
        let mark = app.log_mark();
        card.remove();
        app.wait_log(mark, &["tray state", "\"state\":\"NoCard\""]);
    }
    for (i, a) in shots.iter().enumerate() {
        assert!(shots.iter().skip(i + 1).all(|b| a != b), "each state has its own icon on screen");
    }

    let mark = app.log_mark();
    s.stop();
    app.wait_log(mark, &["tray state", "\"state\":\"ServiceStopped\""]);
    app.tray_shot("tray-6-service-arrete");
    assert_eq!(status_line(&app), "Le service de carte à puce (PC/SC) est arrêté");
    close_status(&app);
    let mark = app.log_mark();
    s.start_without_readers().unwrap();
    app.wait_log(mark, &["tray state", "\"state\":\"NoReader\""]);
    app.tray_shot("tray-7-aucun-lecteur");
    assert_eq!(status_line(&app), "Aucun lecteur de carte détecté");
    app.screenshot("etat-aucun-lecteur");
    close_status(&app);
    s.stop();
    s.start().unwrap();
    app.wait_log(app.log_mark(), &["tray state", "\"state\":\"NoCard\""]);
}

#[test]
fn menu_single_instance_autostart_windows_and_their_capabilities() {
    let _one = one_at_a_time();
    let dir = out_dir("tray-windows");
    let reader = stack().reader(); // pcscd runs, no card in the readers
                                   // A StatusNotifier host, as GNOME and KDE panels: the menu can be read and clicked.
    let desktop = Desktop::start(Panel::StatusNotifier);
    let app = TrayApp::start_on(
        desktop,
        &dir,
        "[[site]]\norigin = \"https://portail.example.fr\"\nsigned_token = true\n",
        free_port(),
        &[],
    );
    app.wait_log(0, &["tray ready"]);

    // The tray menu: the state in words first (not clickable), then the entries.
    let item = cpx_tests::poll("the tray menu", Duration::from_secs(10), || {
        Some(app.tray_item()).filter(|item| item["menu"].as_array().is_some_and(|m| m.len() >= 8))
    });
    let labels: Vec<&str> =
        item["menu"].as_array().unwrap().iter().map(|e| e["label"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        labels,
        [
            "Aucune carte dans le lecteur",
            "État de la carte",
            "Changer mon code porteur",
            "Débloquer ma carte",
            "Diagnostic",
            "Sites autorisés",
            "À propos",
            "Quitter"
        ],
        "{item}"
    );
    assert_eq!(item["menu"][0]["enabled"], false, "the state line is not clickable");
    // The icon the panel shows: the app's drawing of this state, as a PNG file the host reads.
    let name = item["icon_name"].as_str().unwrap_or_default();
    let icon = std::path::Path::new(item["icon_theme_path"].as_str().unwrap_or_default())
        .join(if name.ends_with(".png") { name.to_owned() } else { format!("{name}.png") });
    std::fs::copy(&icon, app.shots.join("tray-icone-statusnotifier.png"))
        .unwrap_or_else(|e| panic!("{}: {e} ({item})", icon.display()));

    // A ready card is named by its own type in the menu's first line (issue 20): a CPE is no CPS.
    {
        let _card = insert("cpe", &reader);
        cpx_tests::poll("the menu naming the CPE", Duration::from_secs(10), || {
            let item = app.tray_item();
            (item["menu"][0]["label"] == "Carte CPE insérée et reconnue").then_some(())
        });
    }
    cpx_tests::poll("the menu back to no card", Duration::from_secs(10), || {
        (app.tray_item()["menu"][0]["label"] == "Aucune carte dans le lecteur").then_some(())
    });

    // « À propos » from the menu; a second start hands over and exits: still one app.
    app.click_menu("À propos");
    app.wait_window("about");
    assert!(app.second_start(&["--show", "about"]).success());
    assert_eq!(app.app_pids().len(), 1, "one cpx-tray process");
    let about = app.page_text();
    assert!(
        about.contains("Version")
            && about.contains(env!("CARGO_PKG_VERSION"))
            && about.contains(&format!("https://127.0.0.1:{}", app.port)),
        "{about}"
    );
    app.screenshot("a-propos");
    // The about page may not call another window's commands.
    let denied = app.run_async("window.__TAURI__.core.invoke('sites_remove', {origin: 'https://portail.example.fr'}).then(() => done('allowed'), e => done('denied: ' + e))");
    assert!(denied.as_str().unwrap_or_default().starts_with("denied"), "about → sites_remove: {denied}");
    let denied = app.run_async("window.__TAURI__.core.invoke('pin_submit', {pin: '1234'}).then(() => done('allowed'), e => done('denied: ' + e))");
    assert!(denied.as_str().unwrap_or_default().starts_with("denied"), "about → pin_submit: {denied}");
    let denied = app.run_async("window.__TAURI__.core.invoke('pin_life_start', {action: 'unblock'}).then(() => done('allowed'), e => done('denied: ' + e))");
    assert!(denied.as_str().unwrap_or_default().starts_with("denied"), "about → pin_life_start: {denied}");
    app.desktop.key("Escape");
    app.wait_closed("about");

    // Per-user autostart.
    let desktop_file = dir.join("home/.config/autostart/agent-cpx.desktop");
    let entry =
        std::fs::read_to_string(&desktop_file).unwrap_or_else(|e| panic!("{}: {e}", desktop_file.display()));
    assert!(entry.contains("cpx-tray"), "{entry}");

    // Sites: policy listed, nothing removable there.
    app.click_menu("Sites autorisés");
    app.wait_window("sites");
    assert!(app.text("#policy").contains("https://portail.example.fr"));
    assert_eq!(app.text("#user"), "Aucun site");
    app.screenshot("sites-autorises");
    app.click("#close");
    app.wait_closed("sites");

    // Diagnostics: the checks, and « copier le rapport » puts the redacted report on the clipboard.
    app.click_menu("Diagnostic");
    app.wait_window("diagnostics");
    cpx_tests::poll("the checks shown", Duration::from_secs(30), || {
        let shown = app.execute("return document.querySelectorAll('#checks tr').length").as_u64();
        (shown.unwrap_or(0) >= 3).then_some(())
    });
    let summary = app.text("#summary");
    assert!(
        summary.contains("Aucune carte") || summary.contains("Attention") || summary.contains("Échec"),
        "the first fault is named: {summary}"
    );
    app.screenshot("diagnostic");
    app.click("#copy");
    app.wait_text("#copied", "Rapport copié");
    let clip = app
        .desktop
        .command("xclip")
        .args(["-o", "-selection", "clipboard"])
        .output()
        .expect("xclip (apt-get install xclip)");
    let clip = String::from_utf8_lossy(&clip.stdout);
    assert!(
        clip.contains("\"agent_version\"") && clip.contains("\"checks\""),
        "the report is on the clipboard: {clip:.200}"
    );

    // « Quitter » ends the app.
    app.click_menu("Quitter");
    cpx_tests::poll("the app quitting", Duration::from_secs(10), || app.app_pids().is_empty().then_some(()));
}

struct LoginWorld {
    portal: PortalProcess,
    app: TrayApp,
    browser: Browser,
    _pki: cpx_tests::agent::ServerPki,
}

/// The portal, the tray app (with its keys in a real keyring when `keyring`) and Chromium.
fn login_world(name: &str, extra_sites: &str, keyring: bool) -> LoginWorld {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, port);
    let desktop = Desktop::start(Panel::Light);
    // A refused site stays refused without a dialog for 3 s (60 s by default).
    let mut top = "refused_site_quiet_seconds = 3\n".to_owned();
    if keyring {
        desktop.unlock_keyring(&dir.join("app/home"));
        top.push_str("key_store = \"keyring\"\n");
    }
    let app = TrayApp::start_on(
        desktop,
        &dir.join("app"),
        &format!("{top}{}{extra_sites}", portal.agent_site(&pki)),
        port,
        &[],
    );
    app.wait_log(0, &["tray ready"]);
    let browser = Browser::start(&dir.join("browser"), &[&app.ca_pem, &pki.ca_pem]);
    LoginWorld { portal, app, browser, _pki: pki }
}

impl LoginWorld {
    /// Opens the login page and clicks « Se connecter avec la carte » once the card is seen.
    fn click_card_login(&self, card_state: &str) {
        self.browser.goto(&format!("{}/", self.portal.origin));
        self.browser.wait_text("#card-state", card_state);
        self.browser.click("#card-login");
    }

    /// The PIN dialog: shown on top with the keyboard focus, naming the site, the holder, the card and the
    /// tries left.
    fn pin_dialog(&self, tries: &str) -> String {
        self.app.wait_window("pin");
        let text = self.app.page_text();
        for want in
            [self.portal.origin.as_str(), "demande à utiliser votre carte CPx", "JEAN DUPONT", "CPS3", tries]
        {
            assert!(text.contains(want), "{want:?} missing from the PIN dialog: {text}");
        }
        assert_eq!(
            self.app.desktop.focused_title(),
            "Code porteur — Agent CPx",
            "the PIN dialog has the keyboard focus"
        );
        text
    }

    /// What a screen reader gets of the PIN dialog: the labelled PIN field, both buttons, the site.
    fn pin_dialog_accessible(&self) {
        let nodes = self.app.accessible("Code porteur — Agent CPx");
        let has = |role: &str, name: &str| nodes.iter().any(|n| n["role"] == role && n["name"] == name);
        assert!(has("password text", "Code porteur (4 chiffres)"), "the PIN field is labelled: {nodes:?}");
        assert!(has("push button", "Valider") && has("push button", "Annuler"), "{nodes:?}");
        assert!(
            nodes.iter().any(|n| n["text"].as_str().is_some_and(|t| t.contains(&self.portal.origin))),
            "the site is read out: {nodes:?}"
        );
    }
}

#[test]
fn card_login_with_the_pin_typed_into_the_tray_dialog() {
    let _one = one_at_a_time();
    let w = login_world("tray-login", "", false);
    let (app, b) = (&w.app, &w.browser);
    let reader = stack().reader();
    {
        let _card = insert("cps3", &reader);
        app.wait_log(0, &["tray state", "\"state\":\"Ready\""]);
        app.tray_shot("0-icone-carte-prete-panneau-clair");
        // Typed on the keyboard into the real dialog: the portal logs in.
        w.click_card_login("Carte CPS insérée et reconnue");
        w.pin_dialog("3 sur 3");
        w.pin_dialog_accessible();
        app.screenshot("1-dialogue-code-porteur");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        b.wait_path("/premiere-connexion");
        b.screenshot("2-portail-connecte");

        // Annuler: the page is told USER_CANCELLED.
        w.click_card_login("Carte CPS insérée et reconnue");
        w.pin_dialog("3 sur 3");
        app.click("#cancel");
        let e = b.wait_text("#card-error", "Connexion annulée");
        assert!(!e.is_empty());
        app.wait_closed("pin");

        // A wrong PIN: the dialog comes back saying so, with the tries left; the right one then logs in.
        w.click_card_login("Carte CPS insérée et reconnue");
        w.pin_dialog("3 sur 3");
        app.desktop.type_text("0000");
        app.desktop.key("Return");
        let again = w.pin_dialog("2 sur 3");
        assert!(again.contains("Code porteur incorrect"), "{again}");
        app.screenshot("3-code-porteur-incorrect");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        b.wait_path("/premiere-connexion");
    }
    {
        // The last try: a warning, and a confirmation before sending; Escape sends nothing.
        let log = out_dir("tray-login-one-try").join("apdu.log");
        let _card = insert_with("cps3-one-try", &reader, &Options::default(), Some(&log));
        w.click_card_login("Carte CPS insérée et reconnue");
        let text = w.pin_dialog("1 sur 3");
        assert!(text.contains("dernier essai"), "{text}");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        app.wait_text("#confirm", "S'il est faux, la carte sera bloquée");
        app.screenshot("4-dernier-essai");
        app.desktop.key("Escape");
        b.wait_text("#card-error", "Connexion annulée");
        assert!(
            !logged_commands(&log).iter().any(|c| c.starts_with("0020") && c.len() > 10),
            "nothing was sent to the card"
        );
    }
    {
        // A blocked card: the blocked notice and what to do, no PIN field.
        let _card = insert("cps3-blocked", &reader);
        w.click_card_login("Code porteur bloqué");
        app.wait_window("blocked");
        let text = app.page_text();
        assert!(
            text.contains("Code porteur bloqué")
                && text.contains("0 825 85 2000")
                && text.contains(&w.portal.origin),
            "{text}"
        );
        assert_eq!(
            app.execute("return document.querySelectorAll('input').length").as_u64(),
            Some(0),
            "no PIN field"
        );
        assert!(app.desktop.window_titles().iter().any(|t| t == "Carte bloquée — Agent CPx"));
        app.screenshot("5-carte-bloquee");
        b.wait_text("#card-error", "Code porteur bloqué");
        // The notice's « Débloquer ma carte »: the unblocking dialog, then a login with the new code.
        app.click("#unblock");
        let codes = code_window(app, "codes");
        assert!(codes.contains("Essais du code de déblocage") && codes.contains("3 sur 3"), "{codes}");
        app.screenshot("6-debloquer-depuis-la-notice");
        type_codes(app, "12345678", "9876", "9876");
        assert!(code_window(app, "result").contains("Carte débloquée"));
        app.screenshot("7-carte-debloquee");
        app.click("#close");
        app.wait_closed("code");
        w.click_card_login("Carte CPS insérée et reconnue");
        w.pin_dialog("3 sur 3");
        app.desktop.type_text("9876");
        app.desktop.key("Return");
        b.wait_path("/premiere-connexion");
    }
    // The app logged at trace level through all of this; the PINs typed are nowhere in it.
    // The log writer is asynchronous: wait for the last login's line.
    let logs = cpx_tests::poll("the logins in the app's log", Duration::from_secs(10), || {
        Some(app.logs()).filter(|l| l.contains("card login done"))
    });
    assert!(logs.contains("\"apdu\""), "trace level is on");
    cpx_tests::assert_no_pin(&logs, &["1234", "0000", "12345678", "9876"]);
}

#[test]
fn site_consent_and_two_sites_asking_at_once() {
    let _one = one_at_a_time();
    let second = "https://second.test";
    // The approvals' integrity key (and the loopback key) in a real Secret Service.
    let w =
        login_world("tray-consent", &format!("[[site]]\norigin = \"{second}\"\nsigned_token = true\n"), true);
    let (app, b) = (&w.app, &w.browser);
    let reader = stack().reader();
    let _card = insert("cps3", &reader);
    let challenge = "A".repeat(43) + "=";

    // A site outside policy asks for a signed token from its page: the professional is asked first.
    let evil = w.portal.origin.replace("portal.test", "evil.test");
    b.goto(&format!("{evil}/"));
    let token_call = format!(
        "fetch('https://127.0.0.1:{}/v1/token', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{challenge: '{challenge}'}})}}).then(r => r.json()).then(j => done(JSON.stringify(j)), e => done('failed: ' + e))",
        app.port
    );
    let asked =
        std::thread::scope(|scope| {
            let call = scope.spawn(|| b.run_async(&token_call));
            app.wait_window("consent");
            let text = app.page_text();
            assert!(
                text.contains("Autoriser ce site à utiliser votre carte CPx ?") && text.contains(&evil),
                "{text}"
            );
            assert!(app.desktop.window_titles().iter().any(|t| t == "Autorisation du site — Agent CPx"));
            let nodes = app.accessible("Autorisation du site — Agent CPx");
            for button in ["Refuser", "Autoriser une fois", "Toujours autoriser"] {
                assert!(
                    nodes.iter().any(|n| n["role"] == "push button" && n["name"] == button),
                    "{button} for a screen reader: {nodes:?}"
                );
            }
            assert!(
                nodes.iter().any(|n| n["role"] == "heading"
                    && n["name"] == "Autoriser ce site à utiliser votre carte CPx ?"),
                "{nodes:?}"
            );
            app.screenshot("1-autorisation-du-site");
            // Keyboard only: the dialog has the focus, Échap refuses.
            assert_eq!(app.desktop.focused_title(), "Autorisation du site — Agent CPx");
            app.desktop.key("Escape");
            call.join().unwrap()
        });
    assert!(asked.as_str().unwrap_or_default().contains("SITE_REFUSED"), "refused: {asked}");
    // Asking again at once: refused without a dialog (a page cannot spam them); after the quiet period, asked.
    let again = b.run_async(&token_call);
    assert!(again.as_str().unwrap_or_default().contains("SITE_REFUSED"), "{again}");
    assert!(app.find_window("consent").is_none(), "no dialog during the quiet period");
    // Time passes on purpose: the quiet period (refused_site_quiet_seconds = 3) must be over.
    std::thread::sleep(Duration::from_secs(3));

    let answer = std::thread::scope(|scope| {
        let call = scope.spawn(|| b.run_async(&token_call));
        app.wait_window("consent");
        // Keyboard only: the focus starts on « Refuser »; Tab twice, then Entrée on « Toujours autoriser »,
        // which says what the site will see.
        assert_eq!(app.execute("return document.activeElement.id").as_str(), Some("refuse"));
        let text = app.page_text();
        assert!(text.contains("votre nom et votre identifiant national"), "{text}");
        app.desktop.key("Tab");
        app.desktop.key("Tab");
        assert_eq!(app.execute("return document.activeElement.id").as_str(), Some("always"));
        app.desktop.key("Return");
        app.wait_window("pin");
        assert!(app.page_text().contains(&evil), "the PIN dialog names the site");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        call.join().unwrap()
    });
    assert!(answer.as_str().unwrap_or_default().contains("cpx-token:1"), "token after consent: {answer}");
    let sealed = std::fs::read_to_string(app.dir.join("data/sites.json")).expect("approvals saved");
    assert!(sealed.contains(&evil) && sealed.contains("\"mac\""), "{sealed}");
    assert!(!app.dir.join("data/secrets").exists(), "the keys are in the keyring, not in files");
    let keyrings: Vec<_> = std::fs::read_dir(app.dir.join("home/.local/share/keyrings"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        keyrings.iter().any(|f| f.to_string_lossy().ends_with(".keyring")),
        "gnome-keyring holds them: {keyrings:?}"
    );
    // Allowed for good: listed, and asked no more; then removed.
    assert!(app.second_start(&["--show", "sites"]).success());
    app.wait_window("sites");
    assert!(app.text("#user").contains(&evil), "{}", app.text("#user"));
    app.screenshot("2-sites-autorises");
    app.click("#user button");
    cpx_tests::poll("the approval removed", Duration::from_secs(10), || {
        (!app.text("#user").contains(&evil)).then_some(())
    });
    app.click("#close");
    app.wait_closed("sites");

    // Two sites at once: the second dialog waits for the first to close; each names its own site.
    let ca = app.ca_text();
    let ask = |origin: &str| {
        let body = format!("{{\"challenge\":\"{challenge}\"}}");
        token_request(&ca, app.port, origin, &body)
    };
    std::thread::scope(|scope| {
        let first = scope.spawn(|| ask(&w.portal.origin));
        app.wait_window("pin");
        assert!(app.page_text().contains(&w.portal.origin));
        let second_call = scope.spawn(|| ask(second));
        // Time passes on purpose: the second request must have had the time to show a dialog, and not.
        std::thread::sleep(Duration::from_secs(2));
        app.find_window("pin").expect("the first dialog is still open");
        assert!(app.page_text().contains(&w.portal.origin), "still the first site's dialog");
        assert_eq!(app.handles().len(), 2, "one dialog (and the automation view), not two");
        app.screenshot("3-premier-site");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        assert_eq!(first.join().unwrap().status, 200);
        app.wait_window("pin");
        let text = app.page_text();
        assert!(
            text.contains(second) && !text.contains(&w.portal.origin),
            "the second dialog names the second site: {text}"
        );
        app.screenshot("4-second-site");
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        assert_eq!(second_call.join().unwrap().status, 200);
    });
}

#[test]
fn english_when_the_os_speaks_english() {
    let _one = one_at_a_time();
    let dir = out_dir("tray-english");
    // The desktop's language list (this machine generates no en_GB locale, so LANG stays C.UTF-8).
    let app = TrayApp::start(&dir, "", free_port(), &[("LANGUAGE", "en_GB:en")]);
    app.wait_log(0, &["tray ready"]);
    assert!(app.second_start(&["--show", "status"]).success());
    app.wait_window("status");
    app.wait_text("#message", "card");
    assert!(
        app.desktop.window_titles().iter().any(|t| t == "Card status — Agent CPx"),
        "{:?}",
        app.desktop.window_titles()
    );
    assert_eq!(app.text("#close"), "Close");
    assert_eq!(app.execute("return document.documentElement.lang").as_str(), Some("en"));
    app.screenshot("status-in-english");
}

#[test]
fn the_status_window_says_when_another_program_holds_the_port() {
    let _one = one_at_a_time();
    let dir = out_dir("tray-port-taken");
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let app = TrayApp::start(&dir, "", port, &[]);
    app.wait_log(0, &["loopback server not running", "AgentPortTaken"]);
    assert!(app.second_start(&["--show", "status"]).success());
    app.wait_window("status");
    let said = app.text("#server");
    assert!(
        said.contains("Le port de l'Agent CPx est occupé par un autre programme")
            && said.contains("Fermez le programme"),
        "{said}"
    );
    app.screenshot("port-occupe");
    drop(squatter);
}

#[test]
fn several_cpx_cards_the_professional_chooses_one() {
    let _one = one_at_a_time();
    let w = login_world("tray-choice", "", false);
    let app = &w.app;
    let (first, second) = (stack().reader(), stack().reader());
    let _cps3 = insert("cps3", &first);
    let _cps4 = insert("cps4", &second);
    let ca = app.ca_text();
    let body = format!("{{\"challenge\":\"{}=\"}}", "A".repeat(43));
    std::thread::scope(|scope| {
        let call = scope.spawn(|| token_request(&ca, app.port, &w.portal.origin, &body));
        app.wait_window("choice");
        let text = app.page_text();
        assert!(
            text.contains("Plusieurs cartes CPx sont présentes")
                && text.contains("JEAN DUPONT — CPS (CPS3)")
                && text.contains("CLAIRE MARTIN — CPS (CPS4)")
                && text.contains(&w.portal.origin),
            "{text}"
        );
        assert!(app.desktop.window_titles().iter().any(|t| t == "Choix de la carte — Agent CPx"));
        app.screenshot("choix-de-la-carte");
        app.execute("[...document.querySelectorAll('#cards button')].find(b => b.textContent.includes('CLAIRE MARTIN')).click()");
        app.wait_window("pin");
        let pin = app.page_text();
        assert!(
            pin.contains("CLAIRE MARTIN") && pin.contains("CPS4"),
            "the PIN dialog is for the chosen card: {pin}"
        );
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        let answer = call.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            (&answer.json()["card_type"], &answer.json()["generation"]),
            (&"CPS".into(), &"CPS4".into())
        );
    });
}

/// `POST /v1/token` to the app's agent as the page of `origin` sends it.
fn token_request(ca: &str, port: u16, origin: &str, body: &str) -> cpx_tests::agent::HttpAnswer {
    https(
        ca,
        "127.0.0.1",
        port,
        "POST",
        "/v1/token",
        &[("Origin", origin), ("Content-Type", "application/json")],
        Some(body),
    )
}

/// Every CPx card as itself in the status window and the PIN dialog: its type and generation, the holder
/// (a non-nominative card's structure), never an empty name.
#[test]
fn the_status_window_and_the_pin_dialog_name_every_cpx_card() {
    let _one = one_at_a_time();
    let w = login_world("tray-card-types", "", false);
    let (app, b) = (&w.app, &w.browser);
    let reader = stack().reader();
    for (persona, ready, card_line, holder, pin_card) in [
        (
            "cpe",
            "Carte CPE insérée et reconnue",
            "CPE · CPS3 (contact) — SOPHIE MOREAU, CENTRE HOSPITALIER DE TEST (FINESS 0B0238838)",
            "SOPHIE MOREAU",
            "CPE (CPS3)",
        ),
        (
            "cpe-anonyme",
            "Carte CPE insérée et reconnue",
            "CPE · CPS3 (contact) — CLINIQUE DE TEST DU PARC, FINESS 990000011",
            "CLINIQUE DE TEST DU PARC",
            "CPE (CPS3)",
        ),
        (
            "cpa",
            "Carte CPA insérée et reconnue",
            "CPA · CPS4 — MARIE BERNARD, RPPS 99700123456",
            "MARIE BERNARD",
            "CPA (CPS4)",
        ),
        (
            "cpf",
            "Carte CPF insérée et reconnue",
            "CPF · CPS3 (contact) — LUCAS PETIT",
            "LUCAS PETIT",
            "CPF (CPS3)",
        ),
    ] {
        let mark = app.log_mark();
        let _card = insert(persona, &reader);
        app.wait_log(mark, &["tray state", "\"state\":\"Ready\""]);
        assert_eq!(status_line(app), ready, "{persona}");
        let readers = app.text("#readers");
        assert!(readers.contains(card_line), "{persona}: {readers}");
        app.screenshot(&format!("etat-{persona}"));
        close_status(app);

        w.click_card_login(ready);
        app.wait_window("pin");
        let text = app.page_text();
        assert!(text.contains(holder) && text.contains(pin_card), "{persona}: {text}");
        app.screenshot(&format!("code-porteur-{persona}"));
        app.desktop.type_text("1234");
        app.desktop.key("Return");
        b.wait_path("/premiere-connexion");
        app.wait_closed("pin");
    }
}

/// Waits for the code porteur window (`ui/code.html`: changing or unblocking) at `step` (`confirm`,
/// `codes`, `result`), switched to, and returns its text.
fn code_window(app: &TrayApp, step: &str) -> String {
    let script = format!(
        "return document.body.dataset.ready === 'true' && !document.getElementById('{step}-step').hidden"
    );
    cpx_tests::poll(&format!("the code porteur window at {step}"), Duration::from_secs(30), || {
        app.find_window("code")?;
        (app.execute(&script) == true).then(|| app.page_text())
    })
}

/// Types the three codes of the codes window (first field focused), then Enter.
fn type_codes(app: &TrayApp, first: &str, new: &str, again: &str) {
    for (i, digits) in [first, new, again].into_iter().enumerate() {
        if i > 0 {
            app.desktop.key("Tab");
        }
        app.desktop.type_text(digits);
    }
    app.desktop.key("Return");
}

/// A login (VERIFY and a signature) with `digits`, on the card itself.
fn card_login(reader: &str, digits: &str) -> Result<(), cpx_card::CardError> {
    use sha2::Digest;
    let mut card = cpx_tests::open_card(reader, &cpx_card::CertCache::memory()).expect("opens");
    let scheme = card.schemes()[0];
    let digest = sha2::Sha256::digest(b"after the tray's dialog").to_vec();
    card.authenticate(&cpx_card::Pin::new(digits).unwrap(), scheme, &digest).map(drop)
}

#[test]
fn change_and_unblock_the_code_porteur_from_the_tray_menu() {
    let _one = one_at_a_time();
    let dir = out_dir("tray-pin-life");
    let reader = stack().reader();
    let app = TrayApp::start_on(Desktop::start(Panel::StatusNotifier), &dir, "", free_port(), &[]);
    app.wait_log(0, &["tray ready"]);
    let menu = cpx_tests::poll("the tray menu", Duration::from_secs(10), || {
        let item = app.tray_item();
        let labels: Vec<String> =
            item["menu"].as_array()?.iter().filter_map(|e| e["label"].as_str()).map(str::to_owned).collect();
        (labels.len() >= 8).then_some(labels)
    });
    assert_eq!(
        menu[1..4],
        ["État de la carte", "Changer mon code porteur", "Débloquer ma carte"],
        "{menu:?}"
    );

    {
        let log = dir.join("apdu-change.log");
        let _card = insert_with("cps3", &reader, &Options::default(), Some(&log));
        app.click_menu("Changer mon code porteur");
        let text = code_window(&app, "codes");
        for want in [
            "Changer mon code porteur",
            "JEAN DUPONT — CPS (CPS3)",
            "Essais restants",
            "3 sur 3",
            "Code porteur actuel (4 chiffres)",
            "Nouveau code porteur, une seconde fois",
        ] {
            assert!(text.contains(want), "{want:?} missing: {text}");
        }
        assert_eq!(
            app.desktop.focused_title(),
            "Changer le code porteur — Agent CPx",
            "the dialog has the focus"
        );
        app.screenshot("changer-1-dialogue");
        // Too short, then two new codes that differ: said in the window, nothing sent to the card.
        app.desktop.type_text("12");
        app.desktop.key("Return");
        app.wait_text("#error", "Le code porteur comporte 4 chiffres");
        app.screenshot("changer-2-trop-court");
        app.desktop.type_text("34");
        for (key, digits) in [("Tab", "5678"), ("Tab", "5679")] {
            app.desktop.key(key);
            app.desktop.type_text(digits);
        }
        app.desktop.key("Return");
        app.wait_text("#error", "Les deux saisies du nouveau code porteur sont différentes");
        app.screenshot("changer-3-codes-differents");
        assert!(!logged_commands(&log).iter().any(|c| c.contains("secret")), "nothing sent to the card yet");
        // The second entry again: changed, and a login with the new code works.
        app.desktop.type_text("5678");
        app.desktop.key("Return");
        let done = code_window(&app, "result");
        assert!(done.contains("Code porteur changé."), "{done}");
        app.screenshot("changer-4-change");
        app.click("#close");
        app.wait_closed("code");
        card_login(&reader.name, "5678").expect("a login with the new code");
        assert_eq!(card_login(&reader.name, "1234"), Err(cpx_card::CardError::WrongPin { tries_left: 2 }));

        // A wrong current code: the card's refusal with the tries left, and « Recommencer ».
        app.click_menu("Changer mon code porteur");
        let text = code_window(&app, "codes");
        assert!(text.contains("2 sur 3"), "the wrong code counted: {text}");
        type_codes(&app, "0000", "1111", "1111");
        let refused = code_window(&app, "result");
        assert!(
            refused.contains("Code porteur incorrect") && refused.contains("Essais restants : 1 sur 3"),
            "{refused}"
        );
        app.screenshot("changer-5-code-incorrect");
        app.click("#again-button");
        let again = code_window(&app, "codes");
        assert!(again.contains("1 sur 3"), "{again}");
        app.desktop.key("Escape");
        app.wait_closed("code");
    }
    {
        // A blocked card, two tries of its code de déblocage left: shown before it is typed.
        let options = Options { unblock_tries: Some(2), ..Options::default() };
        let _card = insert_with("cps3-blocked", &reader, &options, None);
        app.click_menu("Débloquer ma carte");
        let text = code_window(&app, "codes");
        for want in
            ["Débloquer ma carte", "Essais du code de déblocage", "2 sur 3", "Code de déblocage (8 chiffres)"]
        {
            assert!(text.contains(want), "{want:?} missing: {text}");
        }
        assert_eq!(app.desktop.focused_title(), "Débloquer la carte — Agent CPx");
        app.screenshot("debloquer-1-dialogue");
        type_codes(&app, "1234567", "4321", "4321");
        app.wait_text("#error", "Le code de déblocage comporte 8 chiffres");
        app.screenshot("debloquer-2-trop-court");
        app.desktop.key("Escape");
        app.wait_closed("code");
        // A wrong code de déblocage: its tries left.
        app.click_menu("Débloquer ma carte");
        code_window(&app, "codes");
        type_codes(&app, "87654321", "4321", "4321");
        let refused = code_window(&app, "result");
        assert!(
            refused.contains("Code de déblocage incorrect")
                && refused.contains("Essais du code de déblocage : 1 sur 3"),
            "{refused}"
        );
        app.screenshot("debloquer-3-code-incorrect");
        // Its last try: a confirmation first, then the right code unblocks the card.
        app.click("#again-button");
        let question = code_window(&app, "confirm");
        assert!(question.contains("Dernier essai du code de déblocage"), "{question}");
        let fields =
            "return [...document.querySelectorAll('input')].filter(i => i.offsetParent !== null).length";
        assert_eq!(app.execute(fields).as_u64(), Some(0), "nothing to type before « Continuer »");
        app.screenshot("debloquer-4-dernier-essai");
        app.click("#continue");
        let text = code_window(&app, "codes");
        assert!(text.contains("1 sur 3"), "{text}");
        type_codes(&app, "12345678", "4321", "4321");
        let done = code_window(&app, "result");
        assert!(done.contains("Carte débloquée"), "{done}");
        app.screenshot("debloquer-5-debloquee");
        app.click("#close");
        app.wait_closed("code");
        card_login(&reader.name, "4321").expect("a login after the unblocking");
        // The tray says the card is ready again, without waiting for a reader event.
        cpx_tests::poll("the menu saying the card is ready", Duration::from_secs(10), || {
            (app.tray_item()["menu"][0]["label"] == "Carte CPS insérée et reconnue").then_some(())
        });
    }
    {
        // The code de déblocage blocked: named with its route before anything is typed.
        let _card = insert_with("cps3-dead", &reader, &Options::default(), None);
        app.click_menu("Débloquer ma carte");
        let text = code_window(&app, "result");
        assert!(text.contains("Code de déblocage bloqué") && text.contains("CPS Info Service"), "{text}");
        assert_eq!(app.text("#again-button"), "", "no « Recommencer »");
        app.screenshot("debloquer-6-code-de-deblocage-bloque");
        app.click("#close");
        app.wait_closed("code");
    }
    {
        // A CPS4: its own sequence behind the same dialog.
        let _card = insert_with("cps4", &reader, &Options::default(), None);
        app.click_menu("Changer mon code porteur");
        let text = code_window(&app, "codes");
        assert!(text.contains("CLAIRE MARTIN — CPS (CPS4)") && text.contains("3 sur 3"), "{text}");
        type_codes(&app, "1234", "2468", "2468");
        assert!(code_window(&app, "result").contains("Code porteur changé."));
        app.click("#close");
        app.wait_closed("code");
        card_login(&reader.name, "2468").expect("a CPS4 login with the new code");
    }
    let logs = cpx_tests::poll("the flows in the app's log", Duration::from_secs(10), || {
        Some(app.logs()).filter(|l| l.matches("code porteur flow ended").count() >= 8)
    });
    cpx_tests::assert_no_pin(
        &logs,
        &["5678", "0000", "1111", "87654321", "12345678", "4321", "1234567", "2468"],
    );
}

/// The same dialogs in English when the desktop speaks English: the catalogue's English words.
#[test]
fn the_code_porteur_dialogs_in_english() {
    let _one = one_at_a_time();
    let dir = out_dir("tray-pin-life-english");
    let reader = stack().reader();
    let desktop = Desktop::start(Panel::StatusNotifier);
    let app = TrayApp::start_on(desktop, &dir, "", free_port(), &[("LANGUAGE", "en_GB:en")]);
    app.wait_log(0, &["tray ready"]);
    let options = Options { unblock_tries: Some(1), ..Options::default() };
    let _card = insert_with("cps3-blocked", &reader, &options, None);
    app.click_menu("Unblock my card");
    let question = code_window(&app, "confirm");
    assert!(question.contains("Last try of the unblocking code"), "{question}");
    assert_eq!(app.desktop.focused_title(), "Unblock the card — Agent CPx");
    app.screenshot("unblock-last-try");
    app.click("#continue");
    let text = code_window(&app, "codes");
    for want in [
        "Tries of the unblocking code",
        "1 of 3",
        "Unblocking code (8 digits)",
        "New code porteur, once more",
    ] {
        assert!(text.contains(want), "{want:?} missing: {text}");
    }
    type_codes(&app, "12345678", "4321", "4322");
    app.wait_text("#error", "The two entries of the new code porteur differ");
    app.screenshot("unblock-codes-differ");
    app.desktop.key("Escape");
    app.wait_closed("code");
}

/// The code porteur typed on the reader's keypad: the tray shows a notice (the site, the holder, the tries,
/// where to type, what to do when the reader stops waiting) with no field and no cancel button (only the
/// reader's Cancel key stops the reader); a wrong code brings the notice back saying so; the notice goes
/// away when the reader is done. Screenshots: target/test-out/tray-keypad/app/screenshots.
#[test]
fn card_login_with_the_code_typed_on_the_reader_keypad() {
    use cpx_tests::pinpad::{borrow, Keypad};
    let _one = one_at_a_time();
    let w = login_world("tray-keypad", "", false);
    let (app, b) = (&w.app, &w.browser);
    let pad = borrow(false);
    let log = out_dir("tray-keypad-card").join("apdu.log");
    let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
    let mut keypad = Keypad::connect(&pad);
    let wait = Duration::from_secs(30);

    // The reader waits 5 s for the code: the notice is read and shot first, the keys pressed at once after.
    w.click_card_login("Carte CPS insérée et reconnue");
    app.wait_window("keypad");
    let text = app.page_text();
    app.screenshot("1-code-porteur-sur-le-lecteur");
    assert_eq!(keypad.wait_entry(wait), "current");
    keypad.type_code("0000");
    assert_eq!(keypad.wait_done(wait), "63C2");
    for want in [
        w.portal.origin.as_str(),
        "JEAN DUPONT",
        "3 sur 3",
        "Saisissez votre code porteur sur le clavier du lecteur",
        "Pour annuler, appuyez sur la touche Annuler du lecteur",
        "cesse d'attendre",
    ] {
        assert!(text.contains(want), "{want:?} missing from the keypad notice: {text}");
    }
    // A wrong code: the notice comes back saying so, with the tries left.
    let wrong = cpx_tests::poll("the keypad notice saying the code was wrong", wait, || {
        app.find_window("keypad").map(|_| app.page_text()).filter(|t| t.contains("Code porteur incorrect"))
    });
    app.screenshot("2-code-incorrect-sur-le-lecteur");
    assert!(wrong.contains("2 sur 3") && !wrong.contains("dernier essai"), "{wrong}");
    assert_eq!(keypad.wait_entry(wait), "current");
    keypad.type_code("0000");
    assert_eq!(keypad.wait_done(wait), "63C1");
    // The last try: the warning (no confirmation can stop the reader: the warning comes before the code).
    let last = cpx_tests::poll("the keypad notice of the last try", wait, || {
        app.find_window("keypad").map(|_| app.page_text()).filter(|t| t.contains("1 sur 3"))
    });
    app.screenshot("3-dernier-essai-sur-le-lecteur");
    assert!(last.contains("dernier essai") && last.contains("Code porteur incorrect"), "{last}");
    assert_eq!(keypad.wait_entry(wait), "current");
    keypad.type_code("1234");
    assert_eq!(keypad.wait_done(wait), "9000");
    b.wait_path("/premiere-connexion");
    app.wait_closed("keypad");

    // Looked at without a reader waiting (cancel pressed first): no field, no button, the focus given.
    w.click_card_login("Carte CPS insérée et reconnue");
    app.wait_window("keypad");
    let again = app.page_text();
    assert!(again.contains("3 sur 3"), "the right code reset the tries: {again}");
    assert_eq!(
        app.execute("return document.querySelectorAll('input, button').length").as_u64(),
        Some(0),
        "no PIN field and no cancel that would pretend to stop the reader"
    );
    assert_eq!(app.desktop.focused_title(), "Code porteur sur le lecteur — Agent CPx");
    // Its capability grants no answer: the keypad window cannot hand a code porteur to the login.
    let denied = app.run_async("window.__TAURI__.core.invoke('pin_submit', {pin: '1234'}).then(() => done('allowed'), e => done('denied: ' + e))");
    assert!(denied.as_str().unwrap_or_default().starts_with("denied"), "keypad → pin_submit: {denied}");
    assert_eq!(keypad.wait_entry(wait), "current");
    keypad.press("C");
    assert_eq!(keypad.wait_done(wait), "6401");
    b.wait_text("#card-error", "Connexion annulée");
    app.wait_closed("keypad");

    let verifies: Vec<_> = logged_commands(&log).into_iter().filter(|c| c.contains("secret")).collect();
    assert_eq!(verifies.len(), 3, "two wrong codes and the right one, all built by the reader: {verifies:?}");
    let logs = cpx_tests::poll("the login in the app's log", Duration::from_secs(10), || {
        Some(app.logs()).filter(|l| l.contains("card login done"))
    });
    cpx_tests::assert_no_pin(&logs, &["1234", "0000"]);
}

/// Changing and unblocking from the tray menu on a PIN-pad reader: the window shows what to type on the
/// keypad — no field, no button — while the reader takes the codes porteur; for an unblock only the code
/// de déblocage is typed in the window. Screenshots: target/test-out/tray-pin-life-keypad/screenshots.
#[test]
fn change_and_unblock_on_the_reader_keypad_from_the_tray_menu() {
    use cpx_tests::pinpad::{borrow, Keypad};
    let _one = one_at_a_time();
    let dir = out_dir("tray-pin-life-keypad");
    let pad = borrow(false);
    let app = TrayApp::start_on(Desktop::start(Panel::StatusNotifier), &dir, "", free_port(), &[]);
    app.wait_log(0, &["tray ready"]);
    let wait = Duration::from_secs(30);
    let no_control = "return document.querySelectorAll('#keypad-step input, #keypad-step button').length";
    {
        let log = dir.join("apdu-change.log");
        let _card = insert_with("cps3", &pad.reader, &Options::default(), Some(&log));
        let mut keypad = Keypad::connect(&pad);
        app.click_menu("Changer mon code porteur");
        let text = code_window(&app, "keypad");
        for want in [
            "JEAN DUPONT — CPS (CPS3)",
            "saisissez votre code porteur actuel, puis deux fois le nouveau",
            "Pour annuler, appuyez sur la touche Annuler du lecteur",
        ] {
            assert!(text.contains(want), "{want:?} missing from the keypad step: {text}");
        }
        assert_eq!(app.execute(no_control).as_u64(), Some(0), "no field, no button: {text}");
        app.screenshot("changer-sur-le-clavier");
        for (entry, code) in [("current", "1234"), ("new", "5678"), ("confirm", "5678")] {
            assert_eq!(keypad.wait_entry(wait), entry);
            keypad.type_code(code);
        }
        assert_eq!(keypad.wait_done(wait), "9000");
        assert!(code_window(&app, "result").contains("Code porteur changé."));
        app.screenshot("changer-sur-le-clavier-fait");
        app.click("#close");
        app.wait_closed("code");
        cpx_tests::assert_no_pin(&logged_commands(&log).join("\n"), &["5678"]);
    }
    {
        let log = dir.join("apdu-unblock.log");
        let _card = insert_with("cps3-blocked", &pad.reader, &Options::default(), Some(&log));
        let mut keypad = Keypad::connect(&pad);
        app.click_menu("Débloquer ma carte");
        let text = code_window(&app, "codes");
        assert!(
            text.contains("Le nouveau code porteur se saisira ensuite sur le clavier du lecteur"),
            "{text}"
        );
        let shown =
            "return [...document.querySelectorAll('#codes-step input')].filter(i => !i.hidden).length";
        assert_eq!(app.execute(shown).as_u64(), Some(1), "only the code de déblocage on screen");
        app.screenshot("debloquer-code-de-deblocage-seul");
        app.desktop.type_text("12345678");
        app.desktop.key("Return");
        let text = code_window(&app, "keypad");
        assert!(text.contains("saisissez deux fois votre nouveau code porteur"), "{text}");
        app.screenshot("debloquer-nouveau-code-sur-le-clavier");
        for (entry, code) in [("new", "4321"), ("confirm", "4321")] {
            assert_eq!(keypad.wait_entry(wait), entry);
            keypad.type_code(code);
        }
        assert_eq!(keypad.wait_done(wait), "9000");
        assert!(code_window(&app, "result").contains("Carte débloquée"));
        app.click("#close");
        app.wait_closed("code");
        cpx_tests::assert_no_pin(&logged_commands(&log).join("\n"), &["4321"]);
    }
    let logs = cpx_tests::poll("the flows in the app's log", Duration::from_secs(10), || {
        Some(app.logs()).filter(|l| l.matches("code porteur flow ended").count() >= 2)
    });
    cpx_tests::assert_no_pin(&logs, &["5678", "12345678", "4321"]);
}
