//! The helpdesk page (docs/helpdesk.md in French, docs/helpdesk.en.md in English): every code the
//! professional can see — the catalogue's (agent, CLI, tray, loopback API) and the page client's own
//! (relying-party/js/cpx-agent.js) — with the exact words on screen, who acts, what to do and where to
//! look. The words and fixes of the catalogue's codes come from [`crate::messages`]; this module adds who
//! acts and where to look, the page client's codes, and the situations that have no code of their own
//! (a reader not redirected into a remote desktop session). Tests keep the page complete and the files
//! equal to what [`helpdesk_markdown`] generates.

use crate::messages::{Code, Lang, Text};

const fn t(fr: &'static str, en: &'static str) -> Text {
    Text { fr, en }
}

/// Who does something about a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The professional, alone, with the words on screen.
    Professional,
    /// The helpdesk, with the diagnostic report.
    Helpdesk,
    /// The IT department: installation, managed policy, browsers, workstation.
    It,
    /// The portal's team: its page, its card login server.
    Portal,
}

impl Actor {
    fn text(self) -> Text {
        match self {
            Self::Professional => t("le professionnel", "the professional"),
            Self::Helpdesk => t("le support", "the helpdesk"),
            Self::It => t("le service informatique", "IT"),
            Self::Portal => t("l'équipe du portail", "the portal's team"),
        }
    }
}

/// Where the helpdesk looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// `cpx-agent diagnose`, or the tray's « Diagnostic » window.
    Diagnose,
    /// The report (« Copier le rapport », `cpx-agent report`).
    Report,
    /// The agent's log files.
    Logs,
    /// The browser: its site permissions, its certificate warning, its developer console.
    Browser,
    /// The portal's own logs (its card login server).
    PortalLogs,
}

impl Look {
    fn text(self) -> Text {
        match self {
            Self::Diagnose => t("le diagnostic", "the diagnosis"),
            Self::Report => t("le rapport", "the report"),
            Self::Logs => t("les journaux de l'agent", "the agent's logs"),
            Self::Browser => t("le navigateur", "the browser"),
            Self::PortalLogs => t("les journaux du portail", "the portal's logs"),
        }
    }
}

/// What the page adds to a catalogue code.
pub struct Guide {
    /// The code's wire name.
    pub code: &'static str,
    /// Who acts first.
    pub actor: Actor,
    /// Where to look.
    pub look: &'static [Look],
    /// For the helpdesk, after the fix on screen (empty when the fix says it all).
    pub then: Text,
}

/// A code only the page client shows (relying-party/js/cpx-agent.js): its words are the page's.
pub struct PageCode {
    /// The code.
    pub code: &'static str,
    /// The words on screen: the page's French (`message` in cpx-agent.js), and their English meaning.
    pub message: Text,
    /// What to do: the page's French (`fix` in cpx-agent.js), and its English.
    pub fix: Text,
    /// Who acts first.
    pub actor: Actor,
    /// Where to look.
    pub look: &'static [Look],
    /// For the helpdesk.
    pub then: Text,
}

/// A situation with no code of its own, found by the words on screen of the code it shows as.
pub struct Situation {
    /// The code it shows as.
    pub shown_as: Code,
    /// What happened.
    pub title: Text,
    /// Who acts first.
    pub actor: Actor,
    /// What to do.
    pub fix: Text,
    /// Where to look.
    pub look: &'static [Look],
}

use Actor::{Helpdesk, It, Portal, Professional};
use Look::{Browser, Diagnose, Logs, PortalLogs, Report};

const NONE: Text = t("", "");
const CPS_INFO: Text = t(
    "Pour la carte elle-même (commande, remplacement, code oublié) : CPS Info Service, 0 825 85 2000.",
    "For the card itself (order, replacement, forgotten code): CPS Info Service, 0 825 85 2000.",
);

/// Who acts and where to look, for every catalogue code.
pub const GUIDES: &[Guide] = &[
    Guide { code: "PCSC_SERVICE_STOPPED", actor: It, look: &[Diagnose, Logs], then: t("Windows : services.msc, service « Carte à puce » en démarrage automatique. Linux : `systemctl status pcscd.socket`.", "Windows: services.msc, the « Smart Card » service set to start automatically. Linux: `systemctl status pcscd.socket`.") },
    Guide { code: "PCSC_SERVICE_FAULT", actor: It, look: &[Diagnose, Logs], then: t("Le service carte à puce répond mais échoue lui-même : redémarrer le service (Windows : services.msc, « Carte à puce » ; Linux : `systemctl restart pcscd`) ou l'ordinateur ; si cela revient, joindre le rapport au ticket.", "The smart-card service answers but fails itself: restart the service (Windows: services.msc, « Smart Card »; Linux: `systemctl restart pcscd`) or the computer; if it comes back, attach the report to the ticket.") },
    Guide { code: "NO_READER", actor: Professional, look: &[Diagnose], then: t("Sur un bureau à distance (RDS, Citrix), voir plus bas « Le lecteur n'est pas redirigé dans la session ».", "On a remote desktop (RDS, Citrix), see « The reader is not redirected into the session » below.") },
    Guide { code: "READER_UNAVAILABLE", actor: Professional, look: &[Diagnose, Logs], then: t("Si cela persiste, essayer un autre port USB ou un autre lecteur.", "If it persists, try another USB port or another reader.") },
    Guide { code: "NO_CARD", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "CARD_MUTE", actor: Professional, look: &[Diagnose, Report], then: t("Si une autre carte fonctionne dans le même lecteur, la carte est en cause : CPS Info Service.", "If another card works in the same reader, the card is at fault: CPS Info Service.") },
    Guide { code: "CARD_NOT_CPX", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "CARD_IN_USE", actor: Professional, look: &[Diagnose, Logs], then: t("Un logiciel de facturation (GALSS) ou Cryptolib peut garder la carte : le fermer, ou le configurer en accès partagé.", "A billing program (GALSS) or Cryptolib may hold the card: close it, or set it to shared access.") },
    Guide { code: "CARD_REMOVED", actor: Professional, look: &[], then: NONE },
    Guide { code: "CARD_TIMEOUT", actor: Professional, look: &[Diagnose, Logs], then: t("Répété sur plusieurs cartes : changer de lecteur.", "Repeated with several cards: change the reader.") },
    Guide { code: "CARD_COMMUNICATION", actor: Professional, look: &[Diagnose, Logs], then: NONE },
    Guide { code: "CARD_MALFORMED", actor: Helpdesk, look: &[Report, Logs], then: t("Joindre le rapport au ticket et l'escalader à l'équipe de l'Agent CPx.", "Attach the report to the ticket and escalate it to the Agent CPx team.") },
    Guide { code: "CARD_UNEXPECTED_STATUS", actor: Helpdesk, look: &[Report, Logs], then: t("Joindre le rapport au ticket et l'escalader à l'équipe de l'Agent CPx.", "Attach the report to the ticket and escalate it to the Agent CPx team.") },
    Guide { code: "CARD_INCOMPLETE", actor: Helpdesk, look: &[Report], then: CPS_INFO },
    Guide { code: "PIN_BLOCKED", actor: Professional, look: &[Diagnose], then: t("Sans le code de déblocage, ou s'il est bloqué lui aussi, la carte doit être remplacée : CPS Info Service, 0 825 85 2000.", "Without the unblocking code, or if it is blocked too, the card must be replaced: CPS Info Service, 0 825 85 2000.") },
    Guide { code: "PIN_WRONG", actor: Professional, look: &[], then: t("Le support ne connaît jamais le code porteur : ne pas le demander.", "The helpdesk never knows the code porteur: never ask for it.") },
    Guide { code: "PIN_FORMAT", actor: Professional, look: &[], then: NONE },
    Guide { code: "PIN_REQUIRED", actor: Professional, look: &[Logs], then: NONE },
    Guide { code: "CONTACTLESS", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "UNSUPPORTED", actor: Helpdesk, look: &[Report], then: t("Escalader à l'équipe de l'Agent CPx avec le rapport (type de carte et lecteur).", "Escalate to the Agent CPx team with the report (card type and reader).") },
    Guide { code: "CERTIFICATE_EXPIRED", actor: Professional, look: &[Diagnose], then: CPS_INFO },
    Guide { code: "CERTIFICATE_NOT_YET_VALID", actor: Professional, look: &[Diagnose], then: t("Si l'heure du poste est juste, la carte est neuve : attendre sa date de début de validité (dans le diagnostic).", "If the computer's time is right, the card is new: wait for its start of validity (in the diagnosis).") },
    Guide { code: "NO_CPX_CARD", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "BUSY", actor: Professional, look: &[], then: NONE },
    Guide { code: "USER_CANCELLED", actor: Professional, look: &[], then: NONE },
    Guide { code: "PROMPT_UNAVAILABLE", actor: Professional, look: &[Logs], then: t("L'icône Agent CPx doit être dans la zone de notification ; sinon, démarrer « Agent CPx » depuis le menu des applications.", "The Agent CPx icon must be in the notification area; if not, start « Agent CPx » from the applications menu.") },
    Guide { code: "ORIGIN_NOT_ALLOWED", actor: It, look: &[Diagnose], then: t("Ajouter l'adresse exacte du portail à la politique gérée (docs/deploiement.md, section 5) ; `cpx-agent diagnose --origin https://portail…` la vérifie.", "Add the portal's exact address to the managed policy (docs/deploiement.md, section 5); `cpx-agent diagnose --origin https://portal…` checks it.") },
    Guide { code: "SITE_REFUSED", actor: Professional, look: &[], then: NONE },
    Guide { code: "HOST_NOT_ALLOWED", actor: Portal, look: &[Browser], then: t("La page du portail appelle l'agent par une adresse inattendue : la signaler à l'équipe du portail (elle doit utiliser cpx-agent.js).", "The portal's page calls the agent at an unexpected address: report it to the portal's team (it must use cpx-agent.js).") },
    Guide { code: "SITE_NOT_CONFIGURED", actor: It, look: &[Diagnose], then: t("Renseigner l'adresse de connexion par carte (mtls_endpoint) du site dans la politique gérée.", "Set the site's card login address (mtls_endpoint) in the managed policy.") },
    Guide { code: "BAD_REQUEST", actor: Portal, look: &[Browser, Logs], then: t("La page du portail a envoyé une demande que l'agent ne comprend pas : la signaler à l'équipe du portail avec l'heure de l'essai.", "The portal's page sent a request the agent does not understand: report it to the portal's team with the time of the attempt.") },
    Guide { code: "CHALLENGE_INVALID", actor: Portal, look: &[Browser, Logs], then: t("Recharger la page ; si cela persiste, le signaler à l'équipe du portail.", "Reload the page; if it persists, report it to the portal's team.") },
    Guide { code: "NOT_FOUND", actor: Portal, look: &[Browser], then: t("La page du portail utilise une version de cpx-agent.js qui ne correspond pas à l'agent : le signaler à l'équipe du portail.", "The portal's page uses a cpx-agent.js that does not match the agent: report it to the portal's team.") },
    Guide { code: "PORTAL_UNREACHABLE", actor: Professional, look: &[Diagnose, Logs], then: t("`cpx-agent diagnose --origin https://portail…` essaie le serveur du portail ; un proxy ou un pare-feu peut bloquer son port.", "`cpx-agent diagnose --origin https://portal…` tries the portal's server; a proxy or a firewall may block its port.") },
    Guide { code: "PROXY_UNREACHABLE", actor: It, look: &[Diagnose, Logs], then: t("`cpx-agent diagnose` (check `portal_way`) nomme le proxy utilisé et ce qui l'a choisi (clé `proxy` de la politique, paramètres du système) : vérifier son adresse et qu'il répond depuis ce poste.", "`cpx-agent diagnose` (check `portal_way`) names the proxy used and what chose it (the policy's `proxy` key, the system's settings): check its address and that it answers from this workstation.") },
    Guide { code: "PROXY_REFUSED", actor: It, look: &[Diagnose, Logs], then: t("Le proxy refuse le tunnel `CONNECT` vers le port mTLS du portail : autoriser cet hôte et ce port dans le proxy (souvent seul le port 443 est permis), ou fixer `proxy = \"direct\"` si le poste y accède sans proxy.", "The proxy refuses the `CONNECT` tunnel to the portal's mTLS port: allow that host and port on the proxy (often only port 443 is), or set `proxy = \"direct\"` if the workstation reaches it without a proxy.") },
    Guide { code: "PROXY_AUTH_REQUIRED", actor: It, look: &[Diagnose, Logs], then: t("Le proxy demande une authentification que l'agent n'a pas : ouvrir une session Kerberos (`klist` doit montrer un ticket), ou exempter l'hôte mTLS du portail de l'authentification du proxy.", "The proxy asks for authentication the agent lacks: open a Kerberos session (`klist` must show a ticket), or exempt the portal's mTLS host from the proxy's authentication.") },
    Guide { code: "PROXY_AUTH_FAILED", actor: It, look: &[Diagnose, Logs], then: t("Le proxy a refusé les identifiants de l'agent (Basic, Kerberos ou NTLM) : vérifier le compte et le ticket Kerberos (`klist`), puis réessayer ; le journal nomme le schéma essayé.", "The proxy refused the agent's credentials (Basic, Kerberos or NTLM): check the account and the Kerberos ticket (`klist`), then try again; the log names the scheme tried.") },
    Guide { code: "PORTAL_TLS", actor: Helpdesk, look: &[Diagnose, Report, Logs], then: t("Vérifier l'heure du poste, puis transmettre le rapport à l'équipe du portail (certificat de son serveur).", "Check the computer's time, then pass the report to the portal's team (its server's certificate).") },
    Guide { code: "AGENT_ERROR", actor: Helpdesk, look: &[Report, Logs], then: t("Joindre le rapport au ticket et l'escalader à l'équipe de l'Agent CPx.", "Attach the report to the ticket and escalate it to the Agent CPx team.") },
    Guide { code: "CARD_UNLISTED_VARIANT", actor: Helpdesk, look: &[Diagnose, Report], then: t("Rien ne presse : transmettre l'ATR (dans le rapport) à l'équipe de l'Agent CPx.", "Nothing urgent: pass the ATR (in the report) to the Agent CPx team.") },
    Guide { code: "PIN_LAST_TRY", actor: Professional, look: &[], then: NONE },
    Guide { code: "CARD_TEST_ON_PRODUCTION", actor: It, look: &[Diagnose], then: t("Le réglage `pki` de la politique gérée dit quelles cartes le poste accepte.", "The managed policy's `pki` setting says which cards the computer accepts.") },
    Guide { code: "AGENT_PORT_TAKEN", actor: It, look: &[Diagnose, Logs], then: t("Windows : `netstat -ano | findstr 47413` ; Linux et macOS : `lsof -i :47413` nomme le programme.", "Windows: `netstat -ano | findstr 47413`; Linux and macOS: `lsof -i :47413` names the program.") },
    Guide { code: "CLOCK_SKEW", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "LOOPBACK_NOT_TRUSTED", actor: It, look: &[Diagnose, Browser], then: t("`cpx-agent install-trust` (en administrateur) approuve le certificat local pour toute la machine ; le diagnostic dit quels navigateurs l'approuvent.", "`cpx-agent install-trust` (as administrator) trusts the local certificate machine-wide; the diagnosis says which browsers trust it.") },
    Guide { code: "POLICY_MALFORMED", actor: It, look: &[Diagnose], then: NONE },
    Guide { code: "CARD_RECOGNISED_UNREADABLE", actor: Helpdesk, look: &[Report, Logs], then: CPS_INFO },
    Guide { code: "CARD_RECOGNISED_NO_CERTIFICATE", actor: Helpdesk, look: &[Report], then: CPS_INFO },
    Guide { code: "CARD_RECOGNISED_REFUSED", actor: Helpdesk, look: &[Report, Logs], then: CPS_INFO },
    Guide { code: "PIN_NOT_ACCEPTED", actor: Professional, look: &[Logs], then: NONE },
    Guide { code: "OTHER_USER", actor: It, look: &[Diagnose, Logs], then: t("Sur un poste partagé, le relais `cpx-agent broker` et une plage de ports par utilisateur sont nécessaires (docs/deploiement.md, section 7).", "On a shared computer, the `cpx-agent broker` relay and a port range per user are needed (docs/deploiement.md, section 7).") },
    Guide { code: "USER_AGENT_NOT_RUNNING", actor: Professional, look: &[Diagnose], then: NONE },
    Guide { code: "USE_USER_AGENT", actor: Portal, look: &[Browser], then: t("La page du portail utilise une ancienne version de cpx-agent.js : le signaler à l'équipe du portail.", "The portal's page uses an old cpx-agent.js: report it to the portal's team.") },
    Guide { code: "CONSENT_TOO_OFTEN", actor: Professional, look: &[Logs], then: NONE },
    Guide { code: "AGENT_UNREACHABLE", actor: Professional, look: &[Diagnose, Browser], then: t("Si l'agent tourne (icône dans la zone de notification) : les stratégies de navigateur (docs/deploiement.md, section 6) et la confiance du certificat local (section 1).", "If the agent runs (icon in the notification area): the browser policies (docs/deploiement.md, section 6) and the trust of the local certificate (section 1).") },
    Guide { code: "LOCAL_NETWORK_BLOCKED", actor: Professional, look: &[Browser], then: t("Pour tous les postes : `cpx-agent browser-policies apply` (fait par l'installation) autorise les portails gérés.", "For every computer: `cpx-agent browser-policies apply` (run by the installers) allows the managed portals.") },
    Guide { code: "KEYRING_UNAVAILABLE", actor: It, look: &[Diagnose], then: NONE },
    Guide { code: "UNBLOCK_CODE_WRONG", actor: Professional, look: &[], then: t("Le support ne connaît jamais le code de déblocage : il est dans le courrier reçu avec la carte. Perdu : CPS Info Service, 0 825 85 2000.", "The helpdesk never knows the unblocking code: it is in the letter that came with the card. Lost: CPS Info Service, 0 825 85 2000.") },
    Guide { code: "UNBLOCK_CODE_BLOCKED", actor: Professional, look: &[], then: t("Aucun logiciel ne peut plus débloquer cette carte : seule une nouvelle carte règle le problème.", "No software can unblock this card any more: only a new card solves it.") },
    Guide { code: "UNBLOCK_CODE_FORMAT", actor: Professional, look: &[], then: NONE },
    Guide { code: "NEW_PIN_MISMATCH", actor: Professional, look: &[], then: NONE },
    Guide { code: "PINPAD_TIMEOUT", actor: Professional, look: &[Diagnose], then: t("Le lecteur à clavier attend le code porteur un temps qui lui est propre ; `cpx-agent diagnose` nomme le clavier du lecteur. Si le clavier ne répond jamais, la clé de stratégie `pinpad = \"off\"` fait demander le code dans la fenêtre de l'agent.", "The PIN-pad reader waits for the code porteur for a time of its own; `cpx-agent diagnose` names the reader's keypad. If the keypad never answers, the policy key `pinpad = \"off\"` has the code asked for in the agent's dialog.") },
];

/// The page client's own codes, with its words (kept equal to cpx-agent.js by a test).
pub const PAGE_CODES: &[PageCode] = &[
    PageCode {
        code: "PORTAL_REFUSED",
        message: t("Le portail a refusé la connexion par carte.", "The portal refused the card login."),
        fix: t("Contactez le support du portail en donnant l'heure de l'essai.", "Contact the portal's support, giving the time of the attempt."),
        actor: Portal,
        look: &[PortalLogs],
        then: t("Le portail peut afficher ses propres mots à la place ; sa raison est dans ses journaux.", "The portal may show its own words instead; its reason is in its logs."),
    },
    PageCode {
        code: "CHALLENGE_REPLAYED",
        message: t("Cette tentative de connexion a déjà servi.", "This login attempt was already used."),
        fix: t("Recommencez la connexion.", "Start the login again."),
        actor: Professional,
        look: &[],
        then: t("Répété sans double clic : le signaler à l'équipe du portail.", "Repeated without a double click: report it to the portal's team."),
    },
    PageCode {
        code: "CHALLENGE_EXPIRED",
        message: t("La tentative de connexion a expiré.", "The login attempt expired."),
        fix: t("Recommencez la connexion.", "Start the login again."),
        actor: Professional,
        look: &[],
        then: t("Le code porteur doit être saisi dans les 5 minutes.", "The code porteur must be typed within 5 minutes."),
    },
    PageCode {
        code: "CHALLENGE_UNKNOWN",
        message: t("Tentative de connexion inconnue.", "Unknown login attempt."),
        fix: t("Rechargez la page et recommencez.", "Reload the page and start again."),
        actor: Professional,
        look: &[],
        then: t("La session du portail a pu expirer entre-temps.", "The portal's session may have expired meanwhile."),
    },
    PageCode {
        code: "ORIGIN_MISMATCH",
        message: t("Connexion refusée : elle a été demandée depuis un autre site.", "Login refused: it was asked from another site."),
        fix: t("Ouvrez le portail à son adresse habituelle (pas par un lien reçu) et recommencez.", "Open the portal at its usual address (not through a link you received) and start again."),
        actor: Portal,
        look: &[PortalLogs],
        then: t("Si l'adresse est la bonne, la configuration du portail ne correspond pas à son adresse : le signaler à l'équipe du portail.", "If the address is the right one, the portal's configuration does not match its address: report it to the portal's team."),
    },
    PageCode {
        code: "CERTIFICATE_REFUSED",
        message: t("Le certificat de votre carte n'est pas accepté par ce portail.", "This portal does not accept your card's certificate."),
        fix: t("Vérifiez dans l'Agent CPx (menu « État de la carte ») que votre carte est valide, puis contactez le support du portail.", "Check in Agent CPx (« État de la carte » menu) that your card is valid, then contact the portal's support."),
        actor: Portal,
        look: &[Diagnose, PortalLogs],
        then: t("Carte valide d'après le diagnostic : le portail refuse sa chaîne ou sa révocation (ses journaux disent pourquoi). Carte révoquée ou expirée : CPS Info Service.", "Card valid according to the diagnosis: the portal refuses its chain or its revocation status (its logs say why). Card revoked or expired: CPS Info Service."),
    },
    PageCode {
        code: "NETWORK",
        message: t("Le portail ne répond pas.", "The portal does not answer."),
        fix: t("Vérifiez votre connexion réseau, puis rechargez la page.", "Check your network connection, then reload the page."),
        actor: Professional,
        look: &[Browser],
        then: t("Le portail lui-même est injoignable depuis le navigateur (pas l'agent).", "The portal itself cannot be reached from the browser (not the agent)."),
    },
];

/// Situations without a code of their own.
pub const SITUATIONS: &[Situation] = &[Situation {
    shown_as: Code::NoReader,
    title: t(
        "Le lecteur n'est pas redirigé dans la session (bureau à distance : RDS, Citrix)",
        "The reader is not redirected into the session (remote desktop: RDS, Citrix)",
    ),
    actor: It,
    fix: t(
        "Le lecteur est branché sur le poste du professionnel mais pas redirigé dans la session. Connexion Bureau à distance : Options > Ressources locales > Autres > cocher « Cartes à puce » (fichier .rdp : `redirectsmartcards:i:1`) ; côté serveur, la stratégie « Ne pas autoriser la redirection de périphériques de carte à puce » doit être désactivée. Citrix : la stratégie « Redirection de carte à puce » doit être autorisée. Puis fermer et rouvrir la session.",
        "The reader is plugged into the professional's computer but not redirected into the session. Remote Desktop Connection: Options > Local Resources > More > tick « Smart cards » (.rdp file: `redirectsmartcards:i:1`); on the server, the policy « Do not allow smart card device redirection » must be disabled. Citrix: the « Smart card redirection » policy must be allowed. Then sign out and open the session again.",
    ),
    look: &[Diagnose],
}];

/// What the page says about each place to look, in the introduction.
fn where_to_look(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "## Où regarder\n\n\
- **Le diagnostic** : dans la zone de notification, Agent CPx → « Diagnostic » ; en ligne de commande `cpx-agent diagnose` \
(`--origin https://portail…` pour essayer un portail). Il vérifie dans l'ordre le service de carte, les lecteurs, la carte, \
le code porteur, le certificat, le certificat local et sa confiance, la politique gérée.\n\
- **Le rapport** : « Copier le rapport » dans la fenêtre Diagnostic, ou `cpx-agent report --out rapport.json`. Il ne \
contient jamais de code porteur ; à joindre à tout ticket escaladé.\n\
- **Les journaux de l'agent** (un fichier par jour, les 7 derniers) : Windows `%LOCALAPPDATA%\\Agent CPx\\logs`, macOS \
`~/Library/Logs/Agent CPx`, Linux `~/.local/state/cpx-agent/logs` (ou `$XDG_STATE_HOME/cpx-agent/logs`). Chercher le code \
et l'heure de l'essai. Ils ne contiennent jamais de code porteur.\n\
- **Le navigateur** : l'icône à gauche de l'adresse du site (autorisations), l'avertissement de certificat, la console \
de développement (F12) où la page écrit le code.\n\
- **Les journaux du portail** : chez l'équipe du portail, à l'heure de l'essai.\n\n\
Le support ne demande jamais le code porteur ni le code de déblocage.\n",
        Lang::En => "## Where to look\n\n\
- **The diagnosis**: in the notification area, Agent CPx → « Diagnostic »; on the command line `cpx-agent diagnose` \
(`--origin https://portal…` to try a portal). It checks in turn the smart-card service, the readers, the card, the code \
porteur, the certificate, the local certificate and its trust, the managed policy.\n\
- **The report**: « Copier le rapport » in the Diagnostic window, or `cpx-agent report --out report.json`. It never \
holds a code porteur; attach it to every escalated ticket.\n\
- **The agent's logs** (one file a day, the last 7): Windows `%LOCALAPPDATA%\\Agent CPx\\logs`, macOS \
`~/Library/Logs/Agent CPx`, Linux `~/.local/state/cpx-agent/logs` (or `$XDG_STATE_HOME/cpx-agent/logs`). Search for the \
code and the time of the attempt. They never hold a code porteur.\n\
- **The browser**: the icon left of the site's address (permissions), the certificate warning, the developer console \
(F12) where the page writes the code.\n\
- **The portal's logs**: with the portal's team, at the time of the attempt.\n\n\
The helpdesk never asks for the code porteur nor for the unblocking code.\n",
    }
}

fn looks(look: &[Look], lang: Lang) -> String {
    if look.is_empty() {
        return match lang {
            Lang::Fr => "rien de plus que l'écran".into(),
            Lang::En => "nothing beyond the screen".into(),
        };
    }
    look.iter().map(|l| l.text().get(lang)).collect::<Vec<_>>().join(", ")
}

/// One entry of the page.
struct Item<'a> {
    /// The heading: the code, or the situation.
    heading: &'a str,
    /// The words on screen, quoted (searchable).
    words: String,
    /// Which surface shows it.
    shown_by: &'a str,
    actor: Actor,
    fix: &'a str,
    look: &'a [Look],
    then: Text,
}

impl Item<'_> {
    /// The code, the words on screen, then who acts, what to do, where to look and the helpdesk's next
    /// step.
    fn write(&self, out: &mut String, lang: Lang) {
        let (on_screen, by, who, todo, look_label, colon) = match lang {
            Lang::Fr => ("À l'écran", "Affiché par", "Qui agit", "Que faire", "Où regarder", " :"),
            Lang::En => ("On screen", "Shown by", "Who acts", "What to do", "Where to look", ":"),
        };
        let mut fix = self.fix.to_owned();
        if !self.then.get(lang).is_empty() {
            fix = format!("{fix} {}", self.then.get(lang));
        }
        out.push_str(&format!("### {}\n\n", self.heading));
        out.push_str(&format!("- **{on_screen}**{colon} {}\n", self.words));
        out.push_str(&format!("- **{by}**{colon} {}\n", self.shown_by));
        out.push_str(&format!("- **{who}**{colon} {}\n", self.actor.text().get(lang)));
        out.push_str(&format!("- **{todo}**{colon} {fix}\n"));
        out.push_str(&format!("- **{look_label}**{colon} {}\n\n", looks(self.look, lang)));
    }
}

/// The helpdesk page in one language.
pub fn helpdesk_markdown(lang: Lang) -> String {
    let mut out = String::new();
    let (title, intro, agent_h, page_h, situations_h, agent_by, page_by, diagnosis_by) = match lang {
        Lang::Fr => (
            "# Agent CPx — guide du support",
            "Généré depuis le catalogue des messages de l'agent (`agent/src/messages.rs`) et `agent/src/helpdesk/page.rs` ; ne pas modifier à la main. English: [helpdesk.en.md](helpdesk.en.md).\n\nChaque problème a un code stable, affiché avec le message : cherchez dans cette page le code ou les mots exacts que le professionnel lit à l'écran.",
            "## Codes de l'agent (zone de notification, fenêtres, ligne de commande, page du portail)",
            "## Codes de la page du portail (`cpx-agent.js`)",
            "## Situations sans code",
            "l'Agent CPx (ses fenêtres, `cpx-agent`, et la page du portail qui reprend ses mots)",
            "la page du portail (ses propres mots, ou ceux que le portail envoie)",
            "l'Agent CPx et son diagnostic",
        ),
        Lang::En => (
            "# Agent CPx — helpdesk guide",
            "Generated from the agent's message catalogue (`agent/src/messages.rs`) and `agent/src/helpdesk/page.rs`; do not edit by hand. En français : [helpdesk.md](helpdesk.md).\n\nEvery problem has a stable code, shown with the message: search this page for the code or for the exact words the professional reads on screen. The agent speaks French by default (English when the computer is set to English); the portal's page speaks French.",
            "## The agent's codes (notification area, windows, command line, the portal's page)",
            "## The portal page's codes (`cpx-agent.js`)",
            "## Situations without a code",
            "Agent CPx (its windows, `cpx-agent`, and the portal's page, which takes its words)",
            "the portal's page (its own words, or those the portal sends)",
            "Agent CPx and its diagnosis",
        ),
    };
    out.push_str(&format!("{title}\n\n{intro}\n\n{}\n", where_to_look(lang)));
    out.push_str(&format!("{agent_h}\n\n"));
    for code in Code::ALL {
        let e = code.entry();
        let name = code.as_str();
        let Some(g) = GUIDES.iter().find(|g| g.code == name) else { continue };
        let mut words = match lang {
            Lang::Fr => format!("« {} »", e.message.fr),
            Lang::En => format!("« {} » (in French: « {} »)", e.message.en, e.message.fr),
        };
        if name.starts_with("CARD_RECOGNISED_") {
            words.push_str(match lang {
                Lang::Fr => " — « CPx » y est le type de la carte : « Carte CPS3 reconnue, mais … »",
                Lang::En => " — « CPx » there is the card's type: « CPS3 card recognised, but … »",
            });
        }
        let heading = format!("`{name}`");
        let item = Item {
            heading: &heading,
            words,
            shown_by: agent_by,
            actor: g.actor,
            fix: e.fix.get(lang),
            look: g.look,
            then: g.then,
        };
        item.write(&mut out, lang);
    }
    out.push_str(&format!("{page_h}\n\n"));
    for p in PAGE_CODES {
        let words = match lang {
            Lang::Fr => format!("« {} »", p.message.fr),
            Lang::En => format!("« {} » ({})", p.message.fr, p.message.en),
        };
        let heading = format!("`{}`", p.code);
        let item = Item {
            heading: &heading,
            words,
            shown_by: page_by,
            actor: p.actor,
            fix: p.fix.get(lang),
            look: p.look,
            then: p.then,
        };
        item.write(&mut out, lang);
    }
    out.push_str(&format!("{situations_h}\n\n"));
    for s in SITUATIONS {
        let e = s.shown_as.entry();
        let words = match lang {
            Lang::Fr => format!("« {} » (`{}`)", e.message.fr, s.shown_as.as_str()),
            Lang::En => format!("« {} » / « {} » (`{}`)", e.message.en, e.message.fr, s.shown_as.as_str()),
        };
        let heading = s.title.get(lang);
        let item = Item {
            heading,
            words,
            shown_by: diagnosis_by,
            actor: s.actor,
            fix: s.fix.get(lang),
            look: s.look,
            then: NONE,
        };
        item.write(&mut out, lang);
    }
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn page_client() -> String {
        std::fs::read_to_string(repo().join("relying-party/js/cpx-agent.js")).expect("cpx-agent.js")
    }

    /// Every code cpx-agent.js can show: the keys of its MESSAGES table, and every code it builds an
    /// error with (`pageError("X")`, `new CpxError("X"`, `|| "X"`).
    fn page_client_codes(js: &str) -> BTreeSet<String> {
        let mut codes = BTreeSet::new();
        let table =
            js.split("const MESSAGES = {").nth(1).and_then(|s| s.split("\n};").next()).expect("MESSAGES");
        for line in table.lines() {
            let key = line.trim().split(':').next().unwrap_or("");
            if !key.is_empty() && key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                codes.insert(key.to_owned());
            }
        }
        for pattern in ["pageError(\"", "new CpxError(\"", "|| \""] {
            for piece in js.split(pattern).skip(1) {
                let code: String =
                    piece.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
                if code.len() > 2 && piece[code.len()..].starts_with('"') {
                    codes.insert(code);
                }
            }
        }
        codes
    }

    /// The French words and fix cpx-agent.js gives a code.
    fn page_client_texts(js: &str, code: &str) -> (String, String) {
        let start = js.find(&format!("  {code}: {{")).unwrap_or_else(|| panic!("{code} in MESSAGES"));
        let rest = &js[start..];
        let block = &rest[..rest.find("},").unwrap_or(rest.len())];
        let field = |name: &str| {
            let at = block.find(&format!("{name}: \"")).map(|i| i + name.len() + 3);
            at.map(|i| block[i..i + block[i..].find('"').unwrap_or(0)].to_owned()).unwrap_or_default()
        };
        (field("message"), field("fix"))
    }

    #[test]
    fn every_code_the_agent_the_tray_or_the_page_client_shows_has_an_entry_with_a_fix() {
        // The agent, its CLI and the tray show only the catalogue's codes.
        for code in Code::ALL {
            let name = code.as_str();
            let guide = GUIDES.iter().find(|g| g.code == name);
            assert!(guide.is_some(), "{name} has no entry on the helpdesk page (GUIDES)");
            for lang in [Lang::Fr, Lang::En] {
                assert!(!code.entry().fix.get(lang).trim().is_empty(), "{name} has no fix in {lang:?}");
            }
        }
        for g in GUIDES {
            assert!(Code::ALL.iter().any(|c| c.as_str() == g.code), "{}: no such catalogue code", g.code);
        }
        let js = page_client();
        let shown = page_client_codes(&js);
        assert!(shown.contains("CERTIFICATE_REFUSED") && shown.contains("AGENT_UNREACHABLE"), "{shown:?}");
        for code in &shown {
            let in_catalogue = Code::ALL.iter().any(|c| c.as_str() == code);
            let in_page = PAGE_CODES.iter().any(|p| p.code == code);
            assert!(in_catalogue || in_page, "cpx-agent.js can show {code}, which has no helpdesk entry");
        }
        for p in PAGE_CODES {
            assert!(shown.contains(p.code), "{}: cpx-agent.js does not show it", p.code);
            for lang in [Lang::Fr, Lang::En] {
                assert!(!p.fix.get(lang).trim().is_empty(), "{} has no fix in {lang:?}", p.code);
                assert!(!p.message.get(lang).trim().is_empty(), "{} has no words in {lang:?}", p.code);
            }
        }
    }

    #[test]
    fn the_page_codes_carry_the_words_of_cpx_agent_js() {
        let js = page_client();
        for p in PAGE_CODES {
            let (message, fix) = page_client_texts(&js, p.code);
            assert_eq!(message, p.message.fr, "{}: the words on screen", p.code);
            assert_eq!(fix, p.fix.fr, "{}: the fix on screen", p.code);
        }
    }

    #[test]
    fn the_scan_of_the_page_client_finds_a_new_code() {
        let js =
            page_client().replace("throw pageError(\"NETWORK\");", "throw pageError(\"PAGE_NEW_CODE\");");
        assert!(page_client_codes(&js).contains("PAGE_NEW_CODE"));
    }

    #[test]
    fn the_helpdesk_pages_are_generated() {
        for (lang, file) in [(Lang::Fr, "docs/helpdesk.md"), (Lang::En, "docs/helpdesk.en.md")] {
            let page = helpdesk_markdown(lang);
            if std::env::var_os("CPX_WRITE_HELPDESK").is_some() {
                std::fs::write(repo().join(file), &page).unwrap();
            }
            let committed = std::fs::read_to_string(repo().join(file)).unwrap_or_default();
            assert!(committed == page, "{file} is not what helpdesk_markdown({lang:?}) generates");
            for code in Code::ALL.iter().map(|c| c.as_str()).chain(PAGE_CODES.iter().map(|p| p.code)) {
                assert!(page.contains(&format!("### `{code}`")), "{file}: no entry for {code}");
            }
        }
        let fr = helpdesk_markdown(Lang::Fr);
        assert!(fr.contains("« L'Agent CPx ne répond pas sur cet ordinateur »"));
        assert!(fr.contains("%LOCALAPPDATA%\\Agent CPx\\logs"));
        let en = helpdesk_markdown(Lang::En);
        assert!(en.contains("redirectsmartcards:i:1"));
        for s in SITUATIONS {
            assert!(
                fr.contains(&format!("### {}", s.title.fr)) && en.contains(&format!("### {}", s.title.en))
            );
        }
    }
}
