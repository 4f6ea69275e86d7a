//! `cpx-tray-demo`: the tray app on a virtual screen (Xvfb) with a virtual CPS3 in the isolated test stack,
//! the demo portal, and headless Chromium logging in; the code porteur is typed into the tray's own dialog.
//! Prints the screenshot of each step. Run it with `./scripts/demo-tray.sh`.

use cpx_tests::agent::{free_port, server_pki, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::desktop::{Desktop, Panel, TrayApp};
use cpx_tests::{insert, out_dir, stack};

fn main() {
    let dir = out_dir("demo-tray");
    let pki = server_pki(&dir.join("pki"));
    let port = free_port();
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, port);
    let app = TrayApp::start_on(
        Desktop::start(Panel::Light),
        &dir.join("app"),
        &portal.agent_site(&pki),
        port,
        &[],
    );
    app.wait_log(0, &["tray ready"]);
    println!("portail  : {}", portal.origin);
    println!("Agent CPx: cpx-tray, https://127.0.0.1:{port}");
    let step = |path: std::path::PathBuf, what: &str| println!("  {} — {what}", path.display());

    let reader = stack().reader();
    let mark = app.log_mark();
    let _card = insert("cps3", &reader);
    app.wait_log(mark, &["tray state", "\"state\":\"Ready\""]);
    println!("carte    : cps3 (Dr Jean DUPONT) dans « {} », code porteur 1234", reader.name);
    step(app.tray_shot("1-icone"), "l'icône de la barre : carte prête");
    assert!(app.second_start(&["--show", "status"]).success());
    app.wait_window("status");
    app.wait_text("#message", "Carte CPS insérée et reconnue");
    step(app.screenshot("2-etat-de-la-carte"), "la fenêtre « État de la carte »");
    app.click("#close");
    app.wait_closed("status");

    let b = Browser::start(&dir.join("browser"), &[&app.ca_pem, &pki.ca_pem]);
    b.goto(&format!("{}/", portal.origin));
    b.wait_text("#card-state", "Carte CPS insérée et reconnue");
    step(b.screenshot("3-page-de-connexion"), "la page de connexion du portail");
    b.click("#card-login");
    app.wait_window("pin");
    step(app.screenshot("4-code-porteur"), "la fenêtre du code porteur, qui nomme le site");
    app.desktop.type_text("1234");
    app.desktop.key("Return");
    b.wait_path("/premiere-connexion");
    step(b.screenshot("5-connecte"), "connecté par carte : première connexion");
}
