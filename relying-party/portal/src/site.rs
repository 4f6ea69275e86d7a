//! The portal's web site: login page (card or username/password), the card login's challenge and finish
//! calls for the JS client, the first-time linking page, « Mon compte ». Every POST must come from the
//! site's own origin (CSRF); the session cookie is HttpOnly, Secure, SameSite=Strict.

use serde_json::{json, Value};

use crate::db::{Account, DbError};
use crate::pages;
use crate::state::{random_token, Portal, PENDING_LINK_SECONDS};

/// A response of the site.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub location: Option<String>,
    pub set_session: Option<String>,
    pub clear_session: bool,
}

impl Reply {
    fn html(body: String) -> Self {
        Self { status: 200, content_type: "text/html; charset=utf-8", body, location: None, set_session: None, clear_session: false }
    }
    fn json(status: u16, v: Value) -> Self {
        Self { status, content_type: "application/json", body: v.to_string(), location: None, set_session: None, clear_session: false }
    }
    fn redirect(to: &str) -> Self {
        Self { status: 303, content_type: "text/plain", body: String::new(), location: Some(to.to_owned()), set_session: None, clear_session: false }
    }
    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, json!({"error": {"code": code, "message": message}}))
    }
}

pub struct SiteRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub origin: Option<&'a str>,
    pub session: Option<String>,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// `application/x-www-form-urlencoded` fields.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body).split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
}

fn db_error(e: DbError) -> Reply {
    Reply { status: 500, ..Reply::html(pages::layout("Erreur", &format!("<div class=\"error\">{}</div>", pages::escape(&e.to_string())))) }
}

/// A verified card identity reached the browser session: in when the card is linked, else the
/// first-time linking page (the identity waits 10 minutes in the session).
fn signed_in(db: &crate::db::Db, session: &str, identity: cpx_verifier::Identity) -> Reply {
    match db.linked_account(&identity.national_id) {
        Ok(Some(a)) => {
            let id_kind = serde_json::to_value(identity.id_kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            match db.link(&identity.national_id, &id_kind, a.id, &identity.certificate_serial).and_then(|_| db.log_in(session, a.id)) {
                Ok(()) => Reply::json(200, json!({"next": "/compte"})),
                Err(e) => db_error(e),
            }
        }
        Ok(None) => match db.set_pending(session, &serde_json::to_string(&identity).unwrap_or_default(), PENDING_LINK_SECONDS) {
            Ok(()) => Reply::json(200, json!({"next": "/premiere-connexion"})),
            Err(e) => db_error(e),
        },
        Err(e) => db_error(e),
    }
}

pub fn handle(portal: &Portal, req: SiteRequest) -> Reply {
    let db = portal.db.lock().unwrap_or_else(|e| e.into_inner());
    // A session that the database does not know is no session.
    let session = req.session.filter(|s| db.session_exists(s).unwrap_or(false));
    if req.method == "POST" && req.origin != Some(portal.origin.as_str()) {
        return Reply::error(403, "ORIGIN_REFUSED", "Requête refusée : elle ne vient pas de ce site.");
    }
    let account: Option<Account> = match &session {
        Some(s) => match db.session_account(s) {
            Ok(a) => a,
            Err(e) => return db_error(e),
        },
        None => None,
    };
    let json_call = matches!(req.path, "/cpx/challenge" | "/cpx/finish" | "/cpx/token");
    if json_call && !req.content_type.starts_with("application/json") {
        return Reply::error(415, "BAD_REQUEST", "JSON attendu.");
    }
    let new_session = || {
        let id = random_token();
        db.create_session(&id).map(|_| id)
    };
    match (req.method, req.path) {
        ("GET", "/") => match account {
            Some(_) => Reply::redirect("/compte"),
            None => Reply::html(pages::login(None, &portal.agent_url)),
        },
        ("GET", "/static/cpx-agent.js") => Reply { content_type: "text/javascript; charset=utf-8", ..Reply::html(include_str!("../../js/cpx-agent.js").to_owned()) },
        ("POST", "/login") => {
            let f = form(req.body);
            match db.check_password(field(&f, "username"), field(&f, "password")) {
                Ok(Some(a)) => match session.clone().map_or_else(new_session, Ok) {
                    Ok(s) => match db.log_in(&s, a.id) {
                        Ok(()) => Reply { set_session: Some(s), ..Reply::redirect("/compte") },
                        Err(e) => db_error(e),
                    },
                    Err(e) => db_error(e),
                },
                Ok(None) => Reply { status: 401, ..Reply::html(pages::login(Some("Identifiant ou mot de passe incorrect."), &portal.agent_url)) },
                Err(e) => db_error(e),
            }
        }
        ("POST", "/cpx/challenge") => {
            let s = match session.clone().map_or_else(new_session, Ok) {
                Ok(s) => s,
                Err(e) => return db_error(e),
            };
            let challenge = portal.challenges.issue(&s, &portal.origin);
            Reply { set_session: Some(s), ..Reply::json(200, json!({"challenge": challenge})) }
        }
        ("POST", "/cpx/finish") => {
            let Some(s) = session else { return Reply::error(403, "NO_SESSION", "Session absente : rechargez la page.") };
            let code = serde_json::from_slice::<Value>(req.body).ok().and_then(|v| v["code"].as_str().map(str::to_owned)).unwrap_or_default();
            let Some(identity) = portal.redeem_code(&code, &s) else {
                return Reply::error(403, "CODE_REFUSED", "Code de connexion invalide, expiré ou d'une autre session.");
            };
            signed_in(&db, &s, identity)
        }
        ("POST", "/cpx/token") => {
            // Signed-token mode: the page brings the token the agent made; same checks, plus the signature
            // over SHA-256(origin) ‖ SHA-256(challenge) for this portal's origin and this session's challenge.
            let Some(s) = session else { return Reply::error(403, "NO_SESSION", "Session absente : rechargez la page.") };
            let Ok(v) = serde_json::from_slice::<Value>(req.body) else { return Reply::error(400, "BAD_REQUEST", "JSON attendu.") };
            let challenge = v["challenge"].as_str().unwrap_or_default().to_owned();
            let Ok(token) = serde_json::from_value::<cpx_verifier::Token>(v["token"].clone()) else { return Reply::error(400, "BAD_REQUEST", "Jeton attendu.") };
            match portal.challenges.redeem(&challenge, &portal.origin) {
                Ok(owner) if owner == s => {}
                Ok(_) => return Reply::error(403, "CODE_REFUSED", "Défi d'une autre session."),
                Err(cpx_verifier::ChallengeError::Replayed) => return Reply::error(403, "CHALLENGE_REPLAYED", "Cette tentative de connexion a déjà servi."),
                Err(e) => return Reply::error(403, "CHALLENGE_UNKNOWN", &e.to_string()),
            }
            match portal.verifier.verify_token(&token, &portal.origin, &challenge) {
                Ok(identity) => signed_in(&db, &s, identity),
                Err(e) => Reply::error(403, "CERTIFICATE_REFUSED", &format!("Jeton refusé : {e}")),
            }
        }
        ("GET", "/premiere-connexion") | ("POST", "/premiere-connexion/lier") | ("POST", "/premiere-connexion/creer") => {
            let pending = session.as_deref().and_then(|s| db.pending(s).ok().flatten()).and_then(|p| serde_json::from_str::<cpx_verifier::Identity>(&p).ok());
            let (Some(s), Some(identity)) = (session.clone(), pending) else {
                return Reply { status: 403, ..Reply::html(pages::login(Some("La liaison de carte a expiré (10 minutes) : identifiez-vous de nouveau par carte."), &portal.agent_url)) };
            };
            let card = pages::PendingCard { nom: &identity.nom, prenom: &identity.prenom, profession: identity.profession.as_deref().unwrap_or(""), national_id: &identity.national_id };
            let id_kind = serde_json::to_value(identity.id_kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let again = |status: u16, msg: &str| Reply { status, ..Reply::html(pages::first_login(&card, Some(msg))) };
            let f = form(req.body);
            let account_id = match req.path {
                "/premiere-connexion/lier" => match db.check_password(field(&f, "username"), field(&f, "password")) {
                    Ok(Some(a)) => a.id,
                    Ok(None) => return again(401, "Identifiant ou mot de passe incorrect : seul le titulaire du compte peut y lier sa carte."),
                    Err(e) => return db_error(e),
                },
                "/premiere-connexion/creer" => {
                    let (mail, tel, cp, ville) = (field(&f, "mail"), field(&f, "telephone"), field(&f, "code_postal"), field(&f, "ville"));
                    if !mail.contains('@') || mail.len() < 3 {
                        return again(400, "Adresse mail invalide.");
                    }
                    if cp.len() != 5 || !cp.bytes().all(|b| b.is_ascii_digit()) || ville.is_empty() {
                        return again(400, "Code postal (5 chiffres) et ville sont obligatoires.");
                    }
                    let tel = (!tel.is_empty()).then_some(tel);
                    match db.create_account(mail, None, &identity.nom, &identity.prenom, identity.profession.as_deref(), "liberal", [Some(mail), tel, Some(cp), Some(ville)]) {
                        Ok(id) => id,
                        Err(DbError::UsernameTaken) => return again(409, "Un compte existe déjà avec cette adresse mail : liez votre carte dans l'Espace professionnel."),
                        Err(e) => return db_error(e),
                    }
                }
                _ => return Reply::html(pages::first_login(&card, None)),
            };
            match db.link(&identity.national_id, &id_kind, account_id, &identity.certificate_serial) {
                Ok(()) => {}
                Err(DbError::AlreadyLinked) => return again(409, "Cette carte est déjà liée à un autre compte : déliez-la d'abord depuis ce compte."),
                Err(e) => return db_error(e),
            }
            match db.log_in(&s, account_id) {
                Ok(()) => Reply::redirect("/compte"),
                Err(e) => db_error(e),
            }
        }
        ("GET", "/compte") => match account {
            Some(a) => match db.links(a.id) {
                Ok(links) => Reply::html(pages::account(&a, &links)),
                Err(e) => db_error(e),
            },
            None => Reply::redirect("/"),
        },
        ("POST", "/compte/delier") => match account {
            Some(a) => match db.unlink(a.id) {
                Ok(_) => Reply::redirect("/compte"),
                Err(e) => db_error(e),
            },
            None => Reply::redirect("/"),
        },
        ("POST", "/deconnexion") => {
            if let Some(s) = &session {
                let _ = db.log_out(s);
            }
            Reply { clear_session: true, ..Reply::redirect("/") }
        }
        _ => Reply { status: 404, ..Reply::html(pages::layout("Page introuvable", "<div class=\"error\">Page introuvable.</div>")) },
    }
}
