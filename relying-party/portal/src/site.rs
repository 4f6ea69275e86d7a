//! The portal's web site: login page (card or username/password), the card login's challenge and finish
//! calls for the JS client, the first-time linking page, « Mon compte ». Every POST must come from the
//! site's own origin (CSRF); the session cookie is HttpOnly, Secure, SameSite=Strict. The session id
//! changes at every step that gives the session more (password login, card login, first-time link): an
//! id set in the browser beforehand (session fixation) never becomes a logged-in one. Sessions end after
//! an idle time and at an absolute lifetime. Password attempts are rate-limited per account and per
//! client address.

use std::net::IpAddr;

use serde_json::{json, Value};

use cpx_demo_portal::forms::{field, form, NewAccount};

use crate::db::{Account, AccountFields, DbError, SessionState};
use crate::pages;
use crate::ratelimit::Refusal;
use crate::state::{random_token, Portal, PENDING_LINK_SECONDS};

/// A response of the site.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub location: Option<String>,
    pub set_session: Option<String>,
    pub clear_session: bool,
    /// `Retry-After` in seconds (rate-limited answers).
    pub retry_after: Option<u64>,
}

impl Reply {
    fn html(body: String) -> Self {
        Self {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
            location: None,
            set_session: None,
            clear_session: false,
            retry_after: None,
        }
    }
    fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: v.to_string(),
            location: None,
            set_session: None,
            clear_session: false,
            retry_after: None,
        }
    }
    fn redirect(to: &str) -> Self {
        Self {
            status: 303,
            content_type: "text/plain",
            body: String::new(),
            location: Some(to.to_owned()),
            set_session: None,
            clear_session: false,
            retry_after: None,
        }
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
    /// The client's address (the rate limit per address).
    pub client: Option<IpAddr>,
}

fn db_error(e: DbError) -> Reply {
    Reply {
        status: 500,
        ..Reply::html(pages::layout(
            "Erreur",
            &format!("<div class=\"error\">{}</div>", pages::escape(&e.to_string())),
        ))
    }
}

/// Session `old` (if any) ends and a new one, holding `state`, takes its place; the reply sets its cookie.
fn new_session(db: &crate::db::Db, old: Option<&str>, state: SessionState<'_>, reply: Reply) -> Reply {
    let id = random_token();
    match db.replace_session(old, &id, state) {
        Ok(()) => Reply { set_session: Some(id), ..reply },
        Err(e) => db_error(e),
    }
}

/// The typed refusal of `/premiere-connexion/creer` for a card other than a CPS with an RPPS or ADELI
/// number (CPE, CPA, a structure's number…).
pub const LIBERAL_SPACE_CPS_ONLY: &str = "LIBERAL_SPACE_CPS_ONLY";

/// What a card link stores as the identifier's kind: every PS_IdNat kind (`FINESS_INTERNAL`…).
fn id_kind_of(identity: &cpx_verifier::Identity) -> String {
    serde_json::to_value(identity.id_nat_kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A verified card identity reached the browser session: in when the card is linked, else the
/// first-time linking page (the identity waits 10 minutes in the session). Either way under a new
/// session id.
fn signed_in(db: &crate::db::Db, session: &str, identity: cpx_verifier::Identity) -> Reply {
    match db.linked_account(&identity.national_id) {
        Ok(Some(a)) => {
            let id_kind = id_kind_of(&identity);
            match db.link(&identity.national_id, &id_kind, a.id, &identity.certificate_serial) {
                Ok(()) => new_session(
                    db,
                    Some(session),
                    SessionState::LoggedIn(a.id),
                    Reply::json(200, json!({"next": "/compte"})),
                ),
                Err(e) => db_error(e),
            }
        }
        Ok(None) => {
            let identity_json = serde_json::to_string(&identity).unwrap_or_default();
            new_session(
                db,
                Some(session),
                SessionState::PendingLink { identity_json: &identity_json, seconds: PENDING_LINK_SECONDS },
                Reply::json(200, json!({"next": "/premiere-connexion"})),
            )
        }
        Err(e) => db_error(e),
    }
}

/// A password check under the rate limits: the account, or the reply to give instead.
fn password_login(
    portal: &Portal,
    f: &[(String, String)],
    client: Option<IpAddr>,
    wrong: impl Fn() -> Reply,
) -> Result<Account, Reply> {
    let username = field(f, "username");
    // Counted now, before argon2 runs: guesses sent in parallel are refused while the first ones hash.
    let attempt = portal.limiter.begin(username, client).map_err(|refusal| rate_limited(portal, refusal))?;
    match portal.db.check_password(username, field(f, "password")) {
        Ok(Some(a)) => {
            portal.limiter.succeeded(username, attempt);
            Ok(a)
        }
        Ok(None) => Err(wrong()),
        Err(e) => Err(db_error(e)),
    }
}

fn rate_limited(portal: &Portal, refusal: Refusal) -> Reply {
    let page = pages::login_refused(refusal.code(), &refusal.message(), &portal.agent_url);
    Reply { status: 429, retry_after: Some(refusal.retry_after().as_secs().max(1)), ..Reply::html(page) }
}

pub fn handle(portal: &Portal, req: SiteRequest) -> Reply {
    let db = &portal.db;
    // A session that the database does not know, or that has expired, is no session.
    let session =
        req.session.filter(|s| db.touch_session(s, portal.sessions, crate::db::now()).unwrap_or(false));
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
    let anonymous_session = || {
        let id = random_token();
        db.create_session(&id).map(|_| id)
    };
    match (req.method, req.path) {
        ("GET", "/") => match account {
            Some(_) => Reply::redirect("/compte"),
            None => Reply::html(pages::login(None, &portal.agent_url)),
        },
        ("GET", "/static/cpx-agent.js") => Reply {
            content_type: "text/javascript; charset=utf-8",
            ..Reply::html(include_str!("../../js/cpx-agent.js").to_owned())
        },
        ("POST", "/login") => {
            let f = form(req.body);
            let wrong = || Reply {
                status: 401,
                ..Reply::html(pages::login(Some("Identifiant ou mot de passe incorrect."), &portal.agent_url))
            };
            match password_login(portal, &f, req.client, wrong) {
                Ok(a) => new_session(
                    db,
                    session.as_deref(),
                    SessionState::LoggedIn(a.id),
                    Reply::redirect("/compte"),
                ),
                Err(reply) => reply,
            }
        }
        ("POST", "/cpx/challenge") => {
            let s = match session.clone().map_or_else(anonymous_session, Ok) {
                Ok(s) => s,
                Err(e) => return db_error(e),
            };
            let challenge = portal.challenges.issue(&s, &portal.origin);
            Reply { set_session: Some(s), ..Reply::json(200, json!({"challenge": challenge})) }
        }
        ("POST", "/cpx/finish") => {
            let Some(s) = session else {
                return Reply::error(403, "NO_SESSION", "Session absente : rechargez la page.");
            };
            let code = serde_json::from_slice::<Value>(req.body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let Some(identity) = portal.redeem_code(&code, &s) else {
                return Reply::error(
                    403,
                    "CODE_REFUSED",
                    "Code de connexion invalide, expiré ou d'une autre session.",
                );
            };
            signed_in(db, &s, identity)
        }
        ("POST", "/cpx/token") => {
            // Signed-token mode: the page brings the token the agent made; same checks, plus the signature
            // over SHA-256(origin) ‖ SHA-256(challenge) for this portal's origin and this session's challenge.
            let Some(s) = session else {
                return Reply::error(403, "NO_SESSION", "Session absente : rechargez la page.");
            };
            let Ok(v) = serde_json::from_slice::<Value>(req.body) else {
                return Reply::error(400, "BAD_REQUEST", "JSON attendu.");
            };
            let challenge = v["challenge"].as_str().unwrap_or_default().to_owned();
            let Ok(token) = serde_json::from_value::<cpx_verifier::Token>(v["token"].clone()) else {
                return Reply::error(400, "BAD_REQUEST", "Jeton attendu.");
            };
            match portal.challenges.redeem(&challenge, &portal.origin) {
                Ok(owner) if owner == s => {}
                Ok(_) => return Reply::error(403, "CODE_REFUSED", "Défi d'une autre session."),
                Err(cpx_verifier::ChallengeError::Replayed) => {
                    return Reply::error(
                        403,
                        "CHALLENGE_REPLAYED",
                        "Cette tentative de connexion a déjà servi.",
                    )
                }
                Err(e) => return Reply::error(403, "CHALLENGE_UNKNOWN", &e.to_string()),
            }
            match portal.verifier.verify_token(&token, &portal.origin, &challenge) {
                Ok(identity) => {
                    crate::state::log_unknown_revocation(&identity);
                    signed_in(db, &s, identity)
                }
                Err(e) => {
                    let (code, message) = crate::endpoint::card_refusal(&e);
                    Reply::error(403, code, &format!("Jeton refusé : {message}"))
                }
            }
        }
        ("POST", "/premiere-connexion/refuser") => {
            // « Ce n'est pas ma carte »: the pending identity and its session end here.
            if let Some(s) = &session {
                let _ = db.log_out(s);
            }
            Reply { clear_session: true, ..Reply::html(pages::not_my_card()) }
        }
        ("GET", "/premiere-connexion")
        | ("POST", "/premiere-connexion/lier")
        | ("POST", "/premiere-connexion/creer") => {
            let pending = session
                .as_deref()
                .and_then(|s| db.pending(s).ok().flatten())
                .and_then(|p| serde_json::from_str::<cpx_verifier::Identity>(&p).ok());
            let (Some(s), Some(identity)) = (session.clone(), pending) else {
                return Reply { status: 403, ..Reply::html(pages::login(Some("La liaison de carte a expiré (10 minutes) : identifiez-vous de nouveau par carte."), &portal.agent_url)) };
            };
            let (holder, id_label) = (identity.holder(), identity.id_label());
            let card = pages::PendingCard {
                nom: &identity.nom,
                prenom: &identity.prenom,
                profession: identity.profession.as_deref().unwrap_or(""),
                card_type: identity.card_type.code(),
                holder: &holder,
                structure: identity.structure.as_ref().and_then(|s| s.name.as_deref()),
                id_label: &id_label,
                national_id: &identity.national_id,
                liberal: identity.may_open_liberal_space(),
            };
            let id_kind = id_kind_of(&identity);
            let again = |status: u16, msg: &str| Reply {
                status,
                ..Reply::html(pages::first_login(&card, Some(msg)))
            };
            // Whatever the form says (confirmed or not): only a CPS with an RPPS or ADELI number makes an
            // account.
            if req.path == "/premiere-connexion/creer" && !identity.may_open_liberal_space() {
                return Reply {
                    status: 403,
                    ..Reply::html(pages::first_login_refused(
                        &card,
                        LIBERAL_SPACE_CPS_ONLY,
                        pages::LIBERAL_CPS_ONLY,
                    ))
                };
            }
            let f = form(req.body);
            if req.method == "POST" && field(&f, "carte") != identity.national_id {
                // Checked before any password: the professional has not said this card is theirs.
                return again(
                    400,
                    "Vérifiez le nom de la carte en haut de la page, puis cochez « Cette carte est la mienne » : seul son titulaire peut la lier à un compte.",
                );
            }
            let account_id = match req.path {
                "/premiere-connexion/lier" => match password_login(portal, &f, req.client, || {
                    again(401, "Identifiant ou mot de passe incorrect : seul le titulaire du compte peut y lier sa carte.")
                }) {
                    Ok(a) => a.id,
                    Err(reply) => return reply,
                },
                "/premiere-connexion/creer" => {
                    let new = match NewAccount::from_form(&f) {
                        Ok(new) => new,
                        Err(message) => return again(400, message),
                    };
                    let NewAccount { mail, telephone: tel, code_postal: cp, ville } = new;
                    match db.create_account(&AccountFields {
                        username: mail,
                        nom: &identity.nom,
                        prenom: &identity.prenom,
                        profession: identity.profession.as_deref(),
                        kind: "liberal",
                        email: Some(mail),
                        telephone: tel,
                        code_postal: Some(cp),
                        ville: Some(ville),
                        password: None,
                    }) {
                        Ok(id) => id,
                        Err(DbError::UsernameTaken) => return again(409, "Un compte existe déjà avec cette adresse mail : liez votre carte dans l'Espace professionnel."),
                        Err(e) => return db_error(e),
                    }
                }
                _ => return Reply::html(pages::first_login(&card, None)),
            };
            match db.link(&identity.national_id, &id_kind, account_id, &identity.certificate_serial) {
                Ok(()) => {}
                Err(DbError::AlreadyLinked) => {
                    return again(
                        409,
                        "Cette carte est déjà liée à un autre compte : déliez-la d'abord depuis ce compte.",
                    )
                }
                Err(e) => return db_error(e),
            }
            new_session(db, Some(&s), SessionState::LoggedIn(account_id), Reply::redirect("/compte"))
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
        _ => Reply {
            status: 404,
            ..Reply::html(pages::layout("Page introuvable", "<div class=\"error\">Page introuvable.</div>"))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    const ORIGIN: &str = "https://portal.test";

    fn amelie() -> AccountFields<'static> {
        AccountFields {
            username: "amelie",
            password: Some("mot-de-passe"),
            nom: "MARTIN",
            prenom: "AMELIE",
            kind: "pro",
            ..Default::default()
        }
    }

    fn portal(name: &str) -> Arc<Portal> {
        let path = std::env::temp_dir().join(format!("cpx-portal-site-{name}-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // The card CA of the simulator's test PKI, as plain text (the verifier is not used here).
        let anchors = include_str!("../../../drivers/sim/pki/ca.pem");
        Arc::new(Portal {
            db: crate::db::Db::open(&path).unwrap(),
            challenges: cpx_verifier::ChallengeStore::new(),
            codes: Mutex::default(),
            verifier: cpx_verifier::Verifier::from_pem(anchors, &[]).unwrap(),
            origin: ORIGIN.into(),
            agent_url: "https://127.0.0.1:47413".into(),
            sessions: crate::db::SessionLimits::default(),
            limiter: crate::ratelimit::Limiter::new(crate::ratelimit::Limits::default()),
        })
    }

    fn request<'a>(method: &'a str, path: &'a str, session: Option<&str>, body: &'a [u8]) -> SiteRequest<'a> {
        SiteRequest {
            method,
            path,
            origin: Some(ORIGIN),
            session: session.map(str::to_owned),
            content_type: "application/x-www-form-urlencoded",
            body,
            client: Some([127, 0, 0, 1].into()),
        }
    }

    #[test]
    fn a_form_with_odd_escapes_gets_an_answer() {
        let p = portal("odd-form");
        for body in ["username=%aé&password=x", "username=%&password=%", "username=%G1&password=%é1"] {
            let r = handle(&p, request("POST", "/login", None, body.as_bytes()));
            assert_eq!(r.status, 401, "{body}");
        }
    }

    #[test]
    fn the_password_hash_is_checked_outside_the_database_lock() {
        let p = portal("lock");
        p.db.create_account(&amelie()).unwrap();
        p.db.create_session("someone-else").unwrap();
        // While this thread hashes the password, another request that needs the database is served.
        let (seen_tx, seen_rx) = mpsc::channel();
        let other = p.clone();
        crate::db::tests::set_while_hashing(Some(Box::new(move |_| {
            let (done_tx, done_rx) = mpsc::channel();
            let other = other.clone();
            std::thread::spawn(move || {
                let r = handle(&other, request("GET", "/compte", Some("someone-else"), b""));
                let _ = done_tx.send(r.status);
            });
            let _ = seen_tx.send(done_rx.recv_timeout(Duration::from_secs(10)).ok());
        })));
        let login = handle(&p, request("POST", "/login", None, b"username=amelie&password=mot-de-passe"));
        crate::db::tests::set_while_hashing(None);
        assert_eq!(login.status, 303);
        assert_eq!(seen_rx.recv().unwrap(), Some(303), "the other request waited for the password hash");
    }

    #[test]
    fn password_login_renews_the_session_id() {
        let p = portal("renew");
        let a = p.db.create_account(&amelie()).unwrap();
        p.db.create_session("planted").unwrap();
        let r =
            handle(&p, request("POST", "/login", Some("planted"), b"username=amelie&password=mot-de-passe"));
        let fresh = r.set_session.expect("a session cookie");
        assert_ne!(fresh, "planted");
        assert_eq!(p.db.session_account(&fresh).unwrap().map(|x| x.id), Some(a));
        assert!(p.db.session_account("planted").unwrap().is_none());
    }

    #[test]
    fn parallel_password_guesses_do_not_all_pass() {
        let p = portal("parallel");
        p.db.create_account(&amelie()).unwrap();
        // 12 guesses at once: all reach the limiter before the first argon2 hash ends.
        let start = std::sync::Barrier::new(12);
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let guesses: Vec<_> = (0..12)
                .map(|i| {
                    let (p, start) = (&p, &start);
                    s.spawn(move || {
                        let body = format!("username=amelie&password=devine-{i}");
                        start.wait();
                        handle(p, request("POST", "/login", None, body.as_bytes())).status
                    })
                })
                .collect();
            guesses.into_iter().map(|g| g.join().unwrap()).collect()
        });
        let checked = statuses.iter().filter(|s| **s == 401).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!((checked, refused), (5, 7), "{statuses:?}");
    }

    fn pending_card(p: &Portal, session: &str) {
        let identity = serde_json::json!({
            "national_id": "899700123456", "id_kind": "RPPS", "id_number": "99700123456", "id_nat_kind": "RPPS", "card_type": "CPS", "nominative": true,
            "nom": "DUPONT", "prenom": "JEAN", "profession": "Médecin",
            "certificate_serial": "01", "issuer": "test"
        });
        p.db.create_session(session).unwrap();
        p.db.set_pending(session, &identity.to_string(), 600).unwrap();
    }

    #[test]
    fn the_card_is_linked_only_once_its_holder_says_it_is_theirs() {
        let p = portal("confirm");
        let a = p.db.create_account(&amelie()).unwrap();
        pending_card(&p, "pending");
        let page = handle(&p, request("GET", "/premiere-connexion", Some("pending"), b"")).body;
        assert!(page.contains("Est-ce bien votre carte ?"), "{page}");
        assert!(page.contains("<strong>JEAN DUPONT</strong> — Médecin, identifiant national 899700123456"));
        assert!(page.contains("name=\"carte\" value=\"899700123456\" required"));
        // The right password without the confirmation, or confirming another card: nothing linked, and no
        // attempt spent.
        for body in [
            "username=amelie&password=mot-de-passe",
            "username=amelie&password=mot-de-passe&carte=899700999999",
            "username=amelie&password=mot-de-passe&carte=",
        ] {
            let r = handle(&p, request("POST", "/premiere-connexion/lier", Some("pending"), body.as_bytes()));
            assert_eq!(r.status, 400, "{body}");
            assert!(r.body.contains("cochez « Cette carte est la mienne »"), "{}", r.body);
        }
        let r = handle(
            &p,
            request(
                "POST",
                "/premiere-connexion/creer",
                Some("pending"),
                b"mail=a%40b.fr&code_postal=75001&ville=Paris",
            ),
        );
        assert_eq!(r.status, 400);
        assert!(p.db.linked_account("899700123456").unwrap().is_none());
        let r = handle(
            &p,
            request(
                "POST",
                "/premiere-connexion/lier",
                Some("pending"),
                b"username=amelie&password=mot-de-passe&carte=899700123456",
            ),
        );
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(p.db.linked_account("899700123456").unwrap().map(|x| x.id), Some(a));
    }

    #[test]
    fn not_my_card_ends_the_pending_link() {
        let p = portal("not-mine");
        p.db.create_account(&amelie()).unwrap();
        pending_card(&p, "pending");
        let r = handle(&p, request("POST", "/premiere-connexion/refuser", Some("pending"), b""));
        assert_eq!(r.status, 200);
        assert!(r.clear_session);
        assert!(
            r.body.contains("un autre programme se fait peut-être passer pour l'Agent CPx"),
            "{}",
            r.body
        );
        let r = handle(
            &p,
            request(
                "POST",
                "/premiere-connexion/lier",
                Some("pending"),
                b"username=amelie&password=mot-de-passe&carte=899700123456",
            ),
        );
        assert_eq!(r.status, 403, "the pending card is gone");
        assert!(p.db.linked_account("899700123456").unwrap().is_none());
    }
}
