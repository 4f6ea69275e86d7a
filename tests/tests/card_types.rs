//! Every CPx card as itself — CPS, CPE (nominative or not), CPA, CPF — through the real pcscd and vpcd: the
//! driver's card type (from the card's `CPS_ID_CARD`, else the identifiant national) apart from the
//! generation, the identity's structure and holder; the demo portal offering « Espace médecin libéral »
//! to CPS holders only and refusing its POST for any other card whatever the form; « Mon compte » naming
//! the identifier as the portals do; headless Chromium driving the pages (screenshots under
//! target/test-out/card-types-browser/browser/screenshots).

use std::sync::Mutex;

use cpx_card::{CardType, CertCache, Generation, IdNatKind, TypeSource};
use cpx_tests::agent::{free_port, server_pki, AgentProcess, PortalProcess, ServerPki};
use cpx_tests::browser::Browser;
use cpx_tests::{insert, open_card, out_dir, stack};
use serde_json::json;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// (persona, generation, card type, where it was learnt, kind of identifiant national, holder, nominative)
const CARDS: &[(&str, Generation, CardType, TypeSource, IdNatKind, &str, bool)] = &[
    ("cps3", Generation::Cps3, CardType::Cps, TypeSource::Certificate, IdNatKind::Rpps, "JEAN DUPONT", true),
    (
        "cpe",
        Generation::Cps3,
        CardType::Cpe,
        TypeSource::Card,
        IdNatKind::FinessInternal,
        "SOPHIE MOREAU",
        true,
    ),
    (
        "cpe-anonyme",
        Generation::Cps3,
        CardType::Cpe,
        TypeSource::Certificate,
        IdNatKind::FinessInternal,
        "CLINIQUE DE TEST DU PARC",
        false,
    ),
    (
        "cpa",
        Generation::Cps4,
        CardType::Cpa,
        TypeSource::Card,
        IdNatKind::RppsInternal,
        "MARIE BERNARD",
        true,
    ),
    ("cpf", Generation::Cps3, CardType::Cpf, TypeSource::Card, IdNatKind::Rpps, "LUCAS PETIT", true),
];

#[test]
fn each_card_has_its_type_apart_from_its_generation() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let cache = CertCache::memory();
    for &(persona, generation, card_type, source, kind, holder, nominative) in CARDS {
        let _card = insert(persona, &reader);
        // Twice: read from the card, then from the certificate cache.
        for pass in ["card", "cache"] {
            let card = open_card(&reader.name, &cache).unwrap_or_else(|e| panic!("{persona} opens: {e}"));
            let (info, id) = (card.info(), card.identity());
            assert_eq!(
                (info.generation, info.card_type, info.card_type_source),
                (generation, card_type, source),
                "{persona} ({pass})"
            );
            assert_eq!(
                (id.id_nat_kind, id.display_name().as_str(), id.nominative),
                (kind, holder, nominative)
            );
        }
    }
    let _card = insert("cpe-anonyme", &reader);
    let card = open_card(&reader.name, &cache).unwrap();
    let id = card.identity();
    assert_eq!(id.id_display_fr(), "FINESS/identifiant interne 3990000011/ACCUEIL01");
    let structure = id.structure.clone().expect("a structure");
    assert_eq!(
        (structure.register.as_deref(), structure.number.as_deref(), structure.internal_id.as_deref()),
        (Some("FINESS"), Some("990000011"), Some("ACCUEIL01"))
    );
    assert_eq!(card.info().type_name(), "CPE (CPS3)");
}

/// (persona, status line, `card`'s type line, its national id line, its structure line)
const CLI: &[(&str, &str, &str, &str, Option<&str>)] = &[
    (
        "cps3",
        "Carte CPS insérée et reconnue — CPS3 (contact), JEAN DUPONT",
        "CPS (carte de professionnel de santé, d'après l'identifiant national) sur CPS3 (contact)",
        "899700123456 (RPPS 99700123456)",
        None,
    ),
    (
        "cpe",
        "Carte CPE insérée et reconnue — CPS3 (contact), SOPHIE MOREAU",
        "CPE (carte de personnel d'établissement, d'après la carte) sur CPS3 (contact)",
        "FINESS/identifiant interne 30B0238838/CPET00001",
        Some("CENTRE HOSPITALIER DE TEST (FINESS 0B0238838)"),
    ),
    (
        "cpe-anonyme",
        "Carte CPE insérée et reconnue — CPS3 (contact), CLINIQUE DE TEST DU PARC",
        "CPE (carte de personnel d'établissement, d'après l'identifiant national) sur CPS3 (contact)",
        "FINESS/identifiant interne 3990000011/ACCUEIL01",
        Some("CLINIQUE DE TEST DU PARC (FINESS 990000011)"),
    ),
    (
        "cpa",
        "Carte CPA insérée et reconnue — CPS4, MARIE BERNARD",
        "CPA (carte de personnel autorisé, d'après la carte) sur CPS4",
        "RPPS/identifiant interne 699700123456/SEC01",
        Some("RPPS 99700123456"),
    ),
    (
        "cpf",
        "Carte CPF insérée et reconnue — CPS3 (contact), LUCAS PETIT",
        "CPF (carte de professionnel en formation, d'après la carte) sur CPS3 (contact)",
        "899700456789 (RPPS 99700456789)",
        None,
    ),
];

#[test]
fn status_card_and_json_name_each_card_as_itself() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let cache = out_dir("card-types-cli");
    let cli = |args: &[&str]| {
        let out = cpx_tests::agent_cli(&[args, &["--reader", &reader.name]].concat(), &cache);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for &(persona, status, kind, id, structure) in CLI {
        let _card = insert(persona, &reader);
        let (code, text) = cli(&["status"]);
        assert_eq!(code, Some(0), "{persona}: {text}");
        assert!(text.contains(status), "{persona}: {text}");
        assert!(
            !text.contains(", \n") && !text.trim_end().ends_with(','),
            "{persona}: no dangling comma: {text}"
        );
        let (_, card) = cli(&["card"]);
        assert!(card.contains(&format!("Type de carte : {kind}")), "{persona}: {card}");
        assert!(card.contains(&format!("Identifiant national : {id}")), "{persona}: {card}");
        match structure {
            Some(s) => assert!(card.contains(&format!("Structure : {s}")), "{persona}: {card}"),
            None => assert!(!card.contains("Structure :"), "{persona}: {card}"),
        }
        assert!(!card.contains("Titulaire : \n"), "{persona}: a holder: {card}");
        let (_, en) = cli(&["status", "--lang", "en"]);
        let want = format!("{} card inserted and recognised", &status[6..9]);
        assert!(en.contains(&want), "{persona}: {en}");

        let (_, json) = cli(&["card", "--json"]);
        let j: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let c = &j["readers"][0]["card"];
        let (_, _, card_type, _, _, holder, _) = CARDS.iter().find(|c| c.0 == persona).unwrap();
        assert_eq!(c["card_type"], json!(card_type), "{persona}: {c}");
        assert_eq!(c["generation"], json!(CARDS.iter().find(|c| c.0 == persona).unwrap().1), "{persona}");
        assert_eq!(j["readers"][0]["message"], status.split(" — ").next().unwrap(), "{persona}");
        assert_eq!(
            c["identity"]["structure"]["name"].as_str(),
            structure.map(|s| s.split(" (").next().unwrap()).filter(|_| !persona.starts_with("cpa"))
        );
        assert!(text.contains(holder), "{persona}");
    }
}

struct World {
    portal: PortalProcess,
    agent: AgentProcess,
    pki: ServerPki,
    dir: std::path::PathBuf,
}

fn world(name: &str, agent_port: u16) -> World {
    let dir = out_dir(name);
    let pki = server_pki(&dir.join("pki"));
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, agent_port);
    for (user, nom, prenom) in
        [("amelie", "MARTIN", "AMELIE"), ("bruno", "BERNARD", "BRUNO"), ("chloe", "ROBERT", "CHLOE")]
    {
        portal.add_account(user, &format!("mot-de-passe-{user}"), nom, prenom);
    }
    let agent = AgentProcess::start_on(&dir.join("agent"), &portal.agent_site(&pki), agent_port);
    World { portal, agent, pki, dir }
}

const REFUSAL: &str = "data-code=\"LIBERAL_SPACE_CPS_ONLY\"";

#[test]
fn the_portal_refuses_a_liberal_account_to_any_card_but_a_cps_whatever_the_form() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let w = world("card-types-portal", free_port());
    let reader = stack().reader();
    for persona in ["cpa", "cpe-anonyme"] {
        let _card = insert(persona, &reader);
        let r = w.portal.page("POST", "/cpx/challenge", None, "application/json", Some("{}"));
        let cookie = r.session_cookie().expect("session");
        let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
        w.agent.answer_pins(&["1234"]);
        let a = w.agent.request(
            "POST",
            "/v1/authenticate",
            &[("Origin", &w.portal.origin), ("Content-Type", "application/json")],
            Some(&json!({"challenge": challenge}).to_string()),
        );
        assert_eq!(a.status, 200, "{}", a.body);
        // The login answer names the card type and the generation both (docs/openapi.yaml).
        let want = if persona == "cpa" { ("CPA", "CPS4") } else { ("CPE", "CPS3") };
        assert_eq!(
            (a.json()["card_type"].as_str(), a.json()["generation"].as_str()),
            (Some(want.0), Some(want.1))
        );
        let status = w.agent.request("GET", "/v1/status", &[("Origin", &w.portal.origin)], None).json();
        let readers = status["readers"].as_array().cloned().unwrap_or_default();
        let r = readers.iter().find(|r| r["reader"] == reader.name.as_str()).expect("the test reader");
        assert_eq!(r["card_kind"], want.0, "{status}");
        let display = if persona == "cpa" { "MARIE BERNARD" } else { "CLINIQUE DE TEST DU PARC" };
        assert_eq!(r["holder"]["display"], display, "{status}");
        assert_eq!(r["message"], format!("Carte {} insérée et reconnue", want.0));
        let fin = w.portal.finish(&cookie, a.json()["portal"]["code"].as_str().unwrap());
        assert_eq!(fin.json()["next"], "/premiere-connexion", "{persona}");
        let cookie = fin.session_cookie().expect("a new session at card login");
        let page = w.portal.page("GET", "/premiere-connexion", Some(&cookie), "", None).body;
        assert!(page.contains("Espace professionnel") && page.contains("id=\"liberal-absent\""), "{page}");
        assert!(!page.contains("action=\"/premiere-connexion/creer\""), "{persona}: no liberal form: {page}");
        for form in [
            "mail=pirate%40example.fr&telephone=0102030405&code_postal=75012&ville=Paris",
            "",
            "mail=x&kind=liberal&profession=M%C3%A9decin",
        ] {
            let refused = w.portal.page(
                "POST",
                "/premiere-connexion/creer",
                Some(&cookie),
                "application/x-www-form-urlencoded",
                Some(form),
            );
            assert_eq!(refused.status, 403, "{persona} {form:?}: {}", refused.body);
            assert!(
                refused.body.contains(REFUSAL)
                    && refused.body.contains("réservé aux titulaires d&#39;une carte CPS"),
                "{}",
                refused.body
            );
            assert!(refused.session_cookie().is_none(), "no account session");
        }
        // Still waiting for a link: no account was made.
        let after = w.portal.page("GET", "/compte", Some(&cookie), "", None);
        assert_eq!(after.status, 303, "{persona}: not logged in");
    }
}

/// True when the page has no « Espace médecin libéral » pane.
const NO_LIBERAL_PANE: &str =
    "done(document.querySelector('#lib-title') === null && document.querySelector('#liberal-absent') !== null)";

#[test]
fn cpe_cpe_anonyme_and_cpf_in_chromium() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let agent_port = free_port();
    let w = world("card-types-browser", agent_port);
    let b = Browser::start(&w.dir.join("browser"), &[&w.agent.dir.join("data/local-ca.pem"), &w.pki.ca_pem]);
    let reader = stack().reader();
    let login = |persona: &str| {
        b.goto(&format!("{}/", w.portal.origin));
        b.wait_text("#card-state", "insérée et reconnue");
        b.screenshot(&format!("{persona}-01-page-de-connexion"));
        w.agent.answer_pins(&["1234"]);
        b.click("#card-login");
        b.wait_path("/premiere-connexion");
    };
    let link = |user: &str| {
        b.type_into("#link-username", user);
        b.type_into("#link-password", &format!("mot-de-passe-{user}"));
        // « Cette carte est la mienne »: the portal links nothing without it.
        b.click("#link-confirm");
        b.click("form[action='/premiere-connexion/lier'] button");
        b.wait_path("/compte");
    };
    let log_out = || {
        b.click("form[action='/deconnexion'] button");
        b.wait_path("/");
    };

    // A CPE linked to an existing account; no liberal space, and its POST refused from the page itself.
    {
        let _card = insert("cpe", &reader);
        b.goto(&format!("{}/", w.portal.origin));
        b.wait_text("#card-state", "Carte CPE insérée et reconnue — SOPHIE MOREAU");
        login("cpe");
        let card = b.text("#pending-card");
        assert!(
            card.contains(
                "Votre carte CPE (SOPHIE MOREAU, CENTRE HOSPITALIER DE TEST, FINESS/identifiant interne 30B0238838/CPET00001)"
            ),
            "{card}"
        );
        assert_eq!(b.run_async(NO_LIBERAL_PANE), json!(true), "no « Espace médecin libéral » pane");
        assert!(b.text("#liberal-absent").contains("réservé aux titulaires d'une carte CPS"));
        b.screenshot("cpe-02-premiere-connexion-sans-espace-liberal");
        let posted = b.run_async(
            "fetch('/premiere-connexion/creer', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'mail=sophie%40example.fr&code_postal=75012&ville=Paris'}).then(async r => done(r.status + ' ' + await r.text()), e => done('error ' + e))",
        );
        let posted = posted.as_str().unwrap_or_default();
        assert!(posted.starts_with("403 ") && posted.contains(REFUSAL), "{posted}");
        link("amelie");
        let links = b.wait_text("#links", "FINESS/identifiant interne 30B0238838/CPET00001");
        assert!(!links.contains("OTHER"), "{links}");
        b.screenshot("cpe-03-mon-compte-identifiant");
        log_out();
    }
    // A non-nominative CPE: named by its structure, never an empty name or a dangling comma.
    {
        let _card = insert("cpe-anonyme", &reader);
        b.goto(&format!("{}/", w.portal.origin));
        b.wait_text("#card-state", "Carte CPE insérée et reconnue — CLINIQUE DE TEST DU PARC");
        login("cpe-anonyme");
        let card = b.text("#pending-card");
        assert!(
            card.contains(
                "Votre carte CPE (CLINIQUE DE TEST DU PARC, FINESS/identifiant interne 3990000011/ACCUEIL01)"
            ),
            "{card}"
        );
        assert!(!card.contains("( ") && !card.contains(", ,"), "{card}");
        assert_eq!(b.run_async(NO_LIBERAL_PANE), json!(true));
        b.screenshot("cpe-anonyme-02-premiere-connexion");
        link("bruno");
        b.wait_text("#links", "FINESS/identifiant interne 3990000011/ACCUEIL01");
        b.screenshot("cpe-anonyme-03-mon-compte");
        log_out();
    }
    // A CPF's first login. Its certificate is a CPS's (an RPPS, a person): the portal, which sees only the
    // certificate, names it by its RPPS (docs/card-facts.md#card-types).
    {
        let _card = insert("cpf", &reader);
        login("cpf");
        let card = b.text("#pending-card");
        assert!(card.contains("(LUCAS PETIT, RPPS 899700456789)"), "{card}");
        b.screenshot("cpf-02-premiere-connexion");
        link("chloe");
        b.wait_text("#links", "RPPS 899700456789");
        b.screenshot("cpf-03-mon-compte");
    }
}

/// Asking a CPS4 for its tries left opens a logical channel; the driver closes it when it goes, so that any
/// number of scans leaves the card's channels free for the login (the card keeps them across connections).
#[test]
fn cps4_scans_do_not_use_up_the_logical_channels() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let reader = stack().reader();
    let _card = insert("cpa", &reader);
    let cache = CertCache::memory();
    for i in 0..5 {
        let mut card = open_card(&reader.name, &cache).unwrap_or_else(|e| panic!("open {i}: {e}"));
        let tries = card.pin_status().unwrap_or_else(|e| panic!("tries left, scan {i}: {e}"));
        assert_eq!(tries.map(|t| t.tries_left), Some(3));
    }
}
