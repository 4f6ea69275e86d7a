//! The portal's pages, in French, server-rendered. The card login button and the agent's card state are
//! driven by the JS client (`/static/cpx-agent.js`).

use crate::db::{Account, CardLink};

pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

const CSS: &str = r#"
body{font-family:system-ui,"DejaVu Sans",sans-serif;margin:0;background:#f3f5f8;color:#1d2733}
header{background:#0b4f8a;color:#fff;padding:14px 28px;font-size:20px;font-weight:600}
header small{font-weight:400;opacity:.8;margin-left:10px;font-size:14px}
main{max-width:860px;margin:28px auto;padding:0 16px}
.panes{display:flex;gap:20px;flex-wrap:wrap}
.pane{flex:1;min-width:300px;background:#fff;border-radius:8px;padding:20px 24px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:22px;margin:0 0 16px}
h2{font-size:18px;margin:0 0 12px;color:#0b4f8a}
label{display:block;margin:10px 0 4px;font-size:14px}
input{width:100%;box-sizing:border-box;padding:8px;border:1px solid #9aa7b4;border-radius:4px;font-size:15px}
input[readonly]{background:#eef1f4}
input[type=checkbox]{width:auto;margin:0 8px 0 0;vertical-align:middle}
label.confirm{margin-top:14px;padding:8px;border-radius:4px;background:#fff6d6}
.whose{margin-bottom:20px}.holder{font-size:19px}
button{margin-top:14px;padding:10px 18px;border:0;border-radius:4px;background:#0b4f8a;color:#fff;font-size:15px;cursor:pointer}
button.card{background:#0a7d4f;font-size:16px;width:100%}
button.secondary{background:#6b7785}
.state{margin:10px 0;padding:10px;border-radius:4px;background:#eef1f4;font-size:14px}
.state.ok{background:#dff3e8;color:#0a5e3b}.state.ko{background:#fde8e8;color:#8a1c1c}
.error{margin:12px 0;padding:10px;border-radius:4px;background:#fde8e8;color:#8a1c1c}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:6px;border-bottom:1px solid #dde3ea}
"#;

pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{t} — Portail démo CPx</title><style>{CSS}</style></head>\
         <body><header>Portail démo CPx<small>modèle ViaTrajectoire, données fictives</small></header><main>{body}</main></body></html>",
        t = escape(title)
    )
}

pub fn login(error: Option<&str>, agent_url: &str) -> String {
    login_page(
        error
            .map(|e| format!("<div class=\"error\" id=\"login-error\">{}</div>", escape(e)))
            .unwrap_or_default(),
        agent_url,
    )
}

/// The login page with a refusal that has a stable code (`data-code`), e.g. too many attempts.
pub fn login_refused(code: &str, message: &str, agent_url: &str) -> String {
    login_page(
        format!(
            "<div class=\"error\" id=\"login-error\" role=\"alert\" data-code=\"{}\">{}</div>",
            escape(code),
            escape(message)
        ),
        agent_url,
    )
}

fn login_page(error: String, agent_url: &str) -> String {
    let agent = escape(agent_url);
    layout(
        "Connexion",
        &format!(
            r#"<h1>Connexion à votre espace</h1>{error}
<div class="panes">
 <section class="pane" aria-labelledby="card-title">
  <h2 id="card-title">Carte CPx</h2>
  <div id="card-state" class="state" role="status">Recherche de l'Agent CPx…</div>
  <button id="card-login" class="card" type="button" data-agent="{agent}">S'identifier par carte CPx</button>
  <div id="card-error" class="error" role="alert" hidden></div>
 </section>
 <section class="pane" aria-labelledby="pw-title">
  <h2 id="pw-title">Identifiant et mot de passe</h2>
  <form method="post" action="/login">
   <label for="username">Identifiant</label><input id="username" name="username" autocomplete="username" required>
   <label for="password">Mot de passe</label><input id="password" name="password" type="password" autocomplete="current-password" required>
   <button type="submit">Se connecter</button>
  </form>
 </section>
</div>
<script type="module">
import {{ agentStatus, cardLogin, holderName, messageFor }} from "/static/cpx-agent.js";
const state = document.getElementById("card-state");
const errorBox = document.getElementById("card-error");
const button = document.getElementById("card-login");
const agent = button.dataset.agent;
async function refresh() {{
  try {{
    const s = await agentStatus({{ agent }});
    const ready = (s.readers || []).find(r => r.state === "CARD_READY");
    const shown = ready || (s.readers || []).find(r => r.state !== "NO_CARD") || (s.readers || [])[0];
    const who = ready && holderName(ready) ? " — " + holderName(ready) : "";
    const problem = shown && shown.problem ? ". " + shown.problem : "";
    state.textContent = shown ? shown.message + who + problem : "Aucun lecteur de carte détecté";
    state.className = "state " + (ready && !ready.problem ? "ok" : "ko");
    state.dataset.code = "";
  }} catch (e) {{ state.textContent = messageFor(e); state.className = "state ko"; state.dataset.code = e.code || ""; }}
}}
button.addEventListener("click", async () => {{
  errorBox.hidden = true; button.disabled = true; button.textContent = "Saisissez votre code porteur dans la fenêtre de l'Agent CPx…";
  try {{ const r = await cardLogin({{ agent }}); window.location.assign(r.next); }}
  catch (e) {{ errorBox.textContent = messageFor(e); errorBox.hidden = false; errorBox.dataset.code = e.code || ""; refresh(); }}
  finally {{ button.disabled = false; button.textContent = "S'identifier par carte CPx"; }}
}});
refresh();
</script>"#
        ),
    )
}

/// The card waiting to be linked, as the first-connection page names it.
pub struct PendingCard<'a> {
    pub nom: &'a str,
    pub prenom: &'a str,
    pub profession: &'a str,
    /// « CPS », « CPE »… (« CPx » when unknown).
    pub card_type: &'a str,
    /// The person, or the structure of a non-nominative card.
    pub holder: &'a str,
    /// The structure's name, when the card names one.
    pub structure: Option<&'a str>,
    /// « FINESS/identifiant interne 30B0238838/CPET00001 ».
    pub id_label: &'a str,
    /// The identifiant national, which the forms' confirmation names (`carte`).
    pub national_id: &'a str,
    /// « Espace médecin libéral » is offered (a CPS with an RPPS or ADELI number).
    pub liberal: bool,
}

/// Why a card other than a CPS with an RPPS or ADELI number gets no « Espace médecin libéral ».
pub const LIBERAL_CPS_ONLY: &str = "L'Espace médecin libéral est réservé aux titulaires d'une carte CPS \
     (identifiant RPPS ou ADELI) : avec cette carte CPx, liez-la à votre compte dans l'Espace professionnel.";

/// The first-time linking page. The card's holder is shown first, with the question « is this your
/// card? »: a page that an impostor agent answered with another person's card would otherwise have the
/// professional link that card to their own account with their password. Both forms carry a required
/// confirmation naming the card (`carte` = its identifiant national), which the portal checks.
pub fn first_login(card: &PendingCard, error: Option<&str>) -> String {
    first_login_with(card, error.map(|e| (None, e)))
}

/// The first-connection page with an error that has a stable code (`data-code`).
pub fn first_login_refused(card: &PendingCard, code: &str, message: &str) -> String {
    first_login_with(card, Some((Some(code), message)))
}

fn first_login_with(card: &PendingCard, error: Option<(Option<&str>, &str)>) -> String {
    let error = error
        .map(|(code, e)| {
            let code =
                code.map(|c| format!(" role=\"alert\" data-code=\"{}\"", escape(c))).unwrap_or_default();
            format!("<div class=\"error\" id=\"link-error\"{code}>{}</div>", escape(e))
        })
        .unwrap_or_default();
    let (nom, prenom, profession, id) =
        (escape(card.nom), escape(card.prenom), escape(card.profession), escape(card.national_id));
    let kind = escape(card.card_type);
    let holder = escape(card.holder);
    let confirm = |form: &str| {
        format!(
            "<label class=\"confirm\"><input type=\"checkbox\" id=\"{form}-confirm\" name=\"carte\" value=\"{id}\" required>Cette carte est la mienne : {holder}</label>"
        )
    };
    let (link_confirm, create_confirm) = (confirm("link"), confirm("create"));
    // A non-nominative card names no profession: its type then.
    let what = match profession.is_empty() {
        true => format!("carte {kind}"),
        false => profession.clone(),
    };
    let mut named = vec![escape(card.holder)];
    if let Some(s) = card.structure.filter(|s| *s != card.holder) {
        named.push(escape(s));
    }
    named.push(escape(card.id_label));
    let named = named.join(", ");
    let liberal = if card.liberal {
        format!(
            r#"
 <section class="pane" aria-labelledby="lib-title">
  <h2 id="lib-title">Espace médecin libéral</h2>
  <p>Créez votre compte à partir de votre carte.</p>
  <form method="post" action="/premiere-connexion/creer">
   <label for="nom">Nom</label><input id="nom" value="{nom}" readonly>
   <label for="prenom">Prénom</label><input id="prenom" value="{prenom}" readonly>
   <label for="profession">Profession</label><input id="profession" value="{profession}" readonly>
   <label for="mail">Adresse mail *</label><input id="mail" name="mail" type="email" required>
   <label for="telephone">Téléphone</label><input id="telephone" name="telephone" type="tel">
   <label for="code_postal">Code postal *</label><input id="code_postal" name="code_postal" required pattern="[0-9]{{5}}">
   <label for="ville">Ville *</label><input id="ville" name="ville" required>
   {create_confirm}
   <button type="submit">Créer mon compte</button>
  </form>
 </section>"#
        )
    } else {
        format!(r#"<p id="liberal-absent" class="state">{}</p>"#, escape(LIBERAL_CPS_ONLY))
    };
    layout(
        "Première connexion par carte CPx",
        &format!(
            r#"<h1>Première connexion par carte CPx</h1>
<section class="pane whose" id="whose-card" aria-labelledby="whose-title">
 <h2 id="whose-title">Est-ce bien votre carte ?</h2>
 <p class="holder" id="card-holder"><strong>{holder}</strong> — {what}, identifiant national {id}</p>
 <p id="pending-card">Votre carte {kind} ({named}) n'est encore liée à aucun compte. Vérifiez que ce nom est le vôtre avant de lier la carte à votre compte ou de créer un compte. Si ce n'est pas votre nom, ne saisissez pas votre mot de passe : un autre programme que l'Agent CPx a peut-être répondu à cette page.</p>
 <form method="post" action="/premiere-connexion/refuser"><button class="secondary" id="not-my-card" type="submit">Ce n'est pas ma carte</button></form>
</section>{error}
<div class="panes">
 <section class="pane" aria-labelledby="pro-title">
  <h2 id="pro-title">Espace professionnel</h2>
  <p>Vous avez déjà un compte : liez-y votre carte.</p>
  <form method="post" action="/premiere-connexion/lier">
   <label for="link-username">Identifiant</label><input id="link-username" name="username" required>
   <label for="link-password">Mot de passe</label><input id="link-password" name="password" type="password" required>
   {link_confirm}
   <button type="submit">Lier ma carte à ce compte</button>
  </form>
 </section>{liberal}
</div>"#
        ),
    )
}

/// After « Ce n'est pas ma carte »: the pending card is forgotten, and the professional is told why this
/// matters.
pub fn not_my_card() -> String {
    layout(
        "Carte non liée",
        r#"<h1>Carte non liée</h1>
<section class="pane" id="not-mine" role="alert">
 <h2>Aucune carte n'a été liée à votre compte</h2>
 <p>Si vous vous êtes identifié avec votre propre carte et qu'un autre nom s'est affiché, un autre programme se fait peut-être passer pour l'Agent CPx sur cet ordinateur. Ne saisissez pas votre mot de passe, retirez votre carte et prévenez votre service informatique.</p>
 <p><a href="/">Revenir à la page de connexion</a></p>
</section>"#,
    )
}

/// How « Mon compte » names a linked card's identifier, as the portals print it: « FINESS/identifiant
/// interne 30B0238838/CPET00001 », « RPPS 899700123456 ». `id_kind` is what the link stored (the verifier's
/// `IdNatKind`, or the older `RPPS`/`ADELI`/`OTHER`).
pub fn id_label(id_kind: &str, national_id: &str) -> String {
    let kind = serde_json::from_value::<cpx_verifier::IdNatKind>(serde_json::Value::from(id_kind))
        .unwrap_or_else(|_| cpx_verifier::IdNatKind::of(national_id));
    format!("{} {national_id}", kind.label())
}

pub fn account(a: &Account, links: &[CardLink]) -> String {
    let rows: String = links
        .iter()
        .map(|l| {
            format!(
                "<tr><td class=\"card-id\">{}</td><td>{}</td></tr>",
                escape(&id_label(&l.id_kind, &l.national_id)),
                crate::date(l.linked_at)
            )
        })
        .collect();
    let cards = if links.is_empty() {
        "<p id=\"no-card\">Aucune carte CPx liée à ce compte.</p>".to_owned()
    } else {
        format!("<table id=\"links\"><tr><th>Identifiant</th><th>Liée le</th></tr>{rows}</table><form method=\"post\" action=\"/compte/delier\"><button class=\"secondary\" type=\"submit\">Délier la carte</button></form>")
    };
    layout(
        "Mon compte",
        &format!(
            r#"<h1>Mon compte</h1>
<section class="pane"><h2>Bienvenue, {prenom} {nom}</h2>
<p id="who">Identifiant : <strong>{user}</strong>{prof}</p>
<p id="space">{space}{mail}</p>
<h2>Cartes CPx liées</h2>{cards}
<form method="post" action="/deconnexion"><button class="secondary" type="submit">Se déconnecter</button></form></section>"#,
            prenom = escape(&a.prenom),
            nom = escape(&a.nom),
            user = escape(&a.username),
            prof = a.profession.as_deref().map(|p| format!(" — {}", escape(p))).unwrap_or_default(),
            space = if a.kind == "liberal" { "Espace médecin libéral" } else { "Espace professionnel" },
            mail = a
                .email
                .as_deref()
                .filter(|m| *m != a.username)
                .map(|m| format!(" — {}", escape(m)))
                .unwrap_or_default()
        ),
    )
}
