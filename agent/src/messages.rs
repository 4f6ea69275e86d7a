//! The message catalogue: every text the user sees, in French (default) and English, with a stable code,
//! what to do about it, and whether trying again can help. The CLI, and later the HTTP API and the tray
//! app, take their wording from here and nowhere else.

use cpx_card::{CardError, Generation};
use cpx_pcsc::PcscError;
use serde::Serialize;

/// The language the agent speaks: French by default, or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French.
    #[default]
    Fr,
    /// English.
    En,
}

/// French and English versions of one text.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// In French.
    pub fr: &'static str,
    /// In English.
    pub en: &'static str,
}

impl Text {
    /// The text in `lang`.
    pub fn get(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Fr => self.fr,
            Lang::En => self.en,
        }
    }
}

macro_rules! text {
    ($fr:expr, $en:expr) => {
        Text { fr: $fr, en: $en }
    };
}

/// The state of one reader slot as the professional sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlotState {
    /// A CPx card, read.
    CardReady,
    /// A card that is not a CPx card (or not read at all).
    CardNotRecognised,
    /// A card another program holds.
    CardInUse,
    /// No card.
    NoCard,
    /// The card is a CPx (its ATR or EF.SN.ICC says so) but cannot be used: its reader line says which
    /// card and why, from the first code ([`Code::CardRecognisedUnreadable`]…), never « mal insérée ».
    CardRecognisedUnusable,
}

impl SlotState {
    /// How the state reads on the reader's line.
    pub fn text(self) -> Text {
        match self {
            Self::CardReady => text!("Carte CPS insérée et reconnue", "CPS card inserted and recognised"),
            Self::CardNotRecognised => {
                text!("Carte CPS mal insérée / non reconnue", "CPS card badly inserted / not recognised")
            }
            Self::CardInUse => {
                text!("Carte utilisée par un autre programme", "Card in use by another program")
            }
            Self::NoCard => text!("Aucune carte dans le lecteur", "No card in the reader"),
            Self::CardRecognisedUnusable => {
                text!("Carte CPx reconnue, mais inutilisable", "CPx card recognised, but unusable")
            }
        }
    }
}

/// The ready card's line with the card's own type: « Carte CPE insérée et reconnue » (« Carte CPx … » when
/// the type is not known).
pub fn card_ready(card_type: cpx_card::CardType) -> Text {
    use cpx_card::CardType::*;
    match card_type {
        Cps => text!("Carte CPS insérée et reconnue", "CPS card inserted and recognised"),
        Cpf => text!("Carte CPF insérée et reconnue", "CPF card inserted and recognised"),
        Cpe => text!("Carte CPE insérée et reconnue", "CPE card inserted and recognised"),
        Cpa => text!("Carte CPA insérée et reconnue", "CPA card inserted and recognised"),
        Csa => text!("Carte CSA insérée et reconnue", "CSA card inserted and recognised"),
        Cpx => text!("Carte CPx insérée et reconnue", "CPx card inserted and recognised"),
    }
}

/// What a card type is, in words: « carte de personnel d'établissement ».
pub fn card_type_name(card_type: cpx_card::CardType) -> Text {
    use cpx_card::CardType::*;
    match card_type {
        Cps => text!("carte de professionnel de santé", "health professional card"),
        Cpf => text!("carte de professionnel en formation", "card of a professional in training"),
        Cpe => text!("carte de personnel d'établissement", "card of a health structure's staff"),
        Cpa => text!("carte de personnel autorisé", "card of authorised staff"),
        Csa => text!("carte de serveur applicatif", "application server card"),
        Cpx => text!("type non précisé par la carte", "type not given by the card"),
    }
}

/// The French and English texts of a failure on a recognised card: « Carte CPS3 reconnue, mais … ».
macro_rules! named {
    ($g:expr, $fr:literal, $en:literal) => {
        match $g {
            Some(Generation::Cps3) => {
                text!(concat!("Carte CPS3 reconnue, mais ", $fr), concat!("CPS3 card recognised, but ", $en))
            }
            Some(Generation::Cps4) => {
                text!(concat!("Carte CPS4 reconnue, mais ", $fr), concat!("CPS4 card recognised, but ", $en))
            }
            None => {
                text!(concat!("Carte CPx reconnue, mais ", $fr), concat!("CPx card recognised, but ", $en))
            }
        }
    };
}

// Every code is one row of the `codes!` table below: its variant, its wire name, whether trying again can
// help, its message and its fix. The enum, `Code::ALL`, `Code::as_str` and `Code::entry` are generated from
// it, so that a code cannot be left out of any of them.
macro_rules! codes {
    ($(
        $(#[$doc:meta])*
        $name:ident $(($g:ident))? = $wire:literal, retriable: $retriable:literal,
            $message:expr,
            $fix:expr;
    )*) => {
        /// Stable error codes, shared by every surface of the agent. A code about a card already recognised
        /// as a CPx carries its generation (`None`: a CPx variant whose generation is not known yet), so that
        /// every surface names the card (« Carte CPS3 reconnue, mais … »); it serialises as its name alone. A
        /// variant's meaning is its catalogue entry ([`Code::entry`], docs/errors.md), written once there, in
        /// the one table (agent/src/messages.rs) the enum, [`Code::ALL`] and [`Code::as_str`] come from.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Code {
            $($(#[$doc])* $name $((codes!(@with $g, Option<Generation>)))?,)*
        }

        impl Code {
            /// Every code, for catalogues and documentation (the codes about a recognised card as « CPx »).
            pub const ALL: [Code; [$(stringify!($name)),*].len()] =
                [$(Code::$name $((codes!(@with $g, None)))?),*];

            /// The stable wire name (`CARD_NOT_CPX`…), the same for every generation: what the API, the
            /// CLI's JSON and docs/errors.md say (serialising a code writes exactly this).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name $((codes!(@with $g, _)))? => $wire,)*
                }
            }

            /// The code's catalogue entry: its message, its fix, whether retrying can help.
            pub fn entry(self) -> Entry {
                let (message, fix, retriable) = match self {
                    $(Code::$name $(($g))? => ($message, $fix, $retriable),)*
                };
                Entry { message, fix, retriable }
            }
        }
    };
    // `$with` in place of the payload's name `$g`.
    (@with $g:ident, $($with:tt)*) => { $($with)* };
}

codes! {
    PcscServiceStopped = "PCSC_SERVICE_STOPPED", retriable: true,
        text!("Le service de carte à puce (PC/SC) est arrêté", "The smart-card service (PC/SC) is stopped"),
        text!("Démarrez le service « Carte à puce » (Windows) ou pcscd (Linux), puis réessayez.", "Start the Smart Card service (Windows) or pcscd (Linux), then try again.");
    PcscServiceFault = "PCSC_SERVICE_FAULT", retriable: true,
        text!("Le service de carte à puce (PC/SC) est en erreur : ni la carte ni le lecteur n'en sont la cause", "The smart-card service (PC/SC) failed: neither the card nor the reader is the cause"),
        text!("Redémarrez le service « Carte à puce » (Windows) ou pcscd (Linux), ou redémarrez l'ordinateur, puis réessayez.", "Restart the Smart Card service (Windows) or pcscd (Linux), or restart the computer, then try again.");
    NoReader = "NO_READER", retriable: true,
        text!("Aucun lecteur de carte détecté", "No card reader detected"),
        text!("Branchez le lecteur de carte (ou vérifiez son câble USB), puis réessayez.", "Plug in the card reader (or check its USB cable), then try again.");
    ReaderUnavailable = "READER_UNAVAILABLE", retriable: true,
        text!("Le lecteur de carte ne répond pas", "The card reader does not respond"),
        text!("Débranchez puis rebranchez le lecteur.", "Unplug the reader and plug it in again.");
    NoCard = "NO_CARD", retriable: true,
        text!("Aucune carte dans le lecteur", "No card in the reader"),
        text!("Insérez votre carte CPS, puce vers le haut.", "Insert your CPS card, chip facing up.");
    CardMute = "CARD_MUTE", retriable: true,
        text!("Carte CPS mal insérée / non reconnue : la carte ne répond pas", "CPS card badly inserted / not recognised: the card does not answer"),
        text!("Retirez la carte et réinsérez-la dans le bon sens, puce vers le haut ; si cela persiste, la puce est peut-être sale ou abîmée.", "Take the card out and insert it the right way, chip up; if it persists, the chip may be dirty or damaged.");
    CardNotCpx = "CARD_NOT_CPX", retriable: false,
        text!("Cette carte n'est pas une carte CPx (CPS, CPE, CPA, CPF)", "This card is not a CPx card (CPS, CPE, CPA, CPF)"),
        text!("Insérez votre carte de professionnel de santé ; une carte Vitale ou bancaire ne convient pas.", "Insert your health-professional card; a Carte Vitale or a bank card will not do.");
    CardInUse = "CARD_IN_USE", retriable: true,
        text!("La carte est utilisée par un autre programme", "The card is in use by another program"),
        text!("Fermez l'autre logiciel qui utilise la carte (GALSS, Cryptolib, logiciel de facturation), puis réessayez.", "Close the other software using the card (GALSS, Cryptolib, billing software), then try again.");
    CardRemoved = "CARD_REMOVED", retriable: true,
        text!("La carte a été retirée pendant l'opération", "The card was removed during the operation"),
        text!("Réinsérez la carte et recommencez.", "Insert the card again and start over.");
    CardTimeout = "CARD_TIMEOUT", retriable: true,
        text!("La carte ne répond plus", "The card stopped answering"),
        text!("Retirez la carte, réinsérez-la et recommencez ; si cela persiste, essayez un autre lecteur.", "Take the card out, insert it again and start over; if it persists, try another reader.");
    CardCommunication = "CARD_COMMUNICATION", retriable: true,
        text!("Échec de communication avec la carte ou le lecteur", "Communication with the card or reader failed"),
        text!("Retirez et réinsérez la carte ; si cela persiste, rebranchez le lecteur.", "Take the card out and insert it again; if it persists, plug the reader in again.");
    CardMalformed = "CARD_MALFORMED", retriable: true,
        text!("La carte a renvoyé des données illisibles", "The card returned unreadable data"),
        text!("Réinsérez la carte ; si cela persiste, contactez le support en joignant le rapport de diagnostic.", "Insert the card again; if it persists, contact support with the diagnostic report.");
    CardUnexpectedStatus = "CARD_UNEXPECTED_STATUS", retriable: true,
        text!("La carte a refusé une commande", "The card refused a command"),
        text!("Réinsérez la carte ; si cela persiste, contactez le support en joignant le rapport de diagnostic.", "Insert the card again; if it persists, contact support with the diagnostic report.");
    CardIncomplete = "CARD_INCOMPLETE", retriable: false,
        text!("La carte ne contient pas de certificat d'authentification utilisable", "The card holds no usable authentication certificate"),
        text!("Contactez l'émetteur de la carte (CPS Info Service : 0 825 85 2000).", "Contact the card issuer (CPS Info Service: 0 825 85 2000).");
    PinBlocked = "PIN_BLOCKED", retriable: false,
        text!("Code porteur bloqué", "Code porteur (PIN) blocked"),
        text!("Débloquez la carte avec son code de déblocage (courrier reçu avec la carte) : Agent CPx → « Débloquer ma carte », ou cpx-agent pin unblock. Sans ce code, appelez CPS Info Service au 0 825 85 2000.", "Unblock the card with its unblocking code (letter received with the card): Agent CPx → « Débloquer ma carte », or cpx-agent pin unblock. Without that code, call CPS Info Service on 0 825 85 2000.");
    PinWrong = "PIN_WRONG", retriable: true,
        text!("Code porteur incorrect", "Wrong code porteur (PIN)"),
        text!("Vérifiez votre code porteur (4 chiffres) avant de réessayer : la carte se bloque après 3 erreurs.", "Check your code porteur (4 digits) before trying again: the card blocks after 3 errors.");
    PinFormat = "PIN_FORMAT", retriable: true,
        text!("Le code porteur comporte 4 chiffres", "The code porteur is 4 digits"),
        text!("Saisissez les 4 chiffres de votre code porteur.", "Type the 4 digits of your code porteur.");
    PinRequired = "PIN_REQUIRED", retriable: true,
        text!("Le code porteur n'a pas été vérifié", "The code porteur was not verified"),
        text!("Recommencez la connexion et saisissez votre code porteur.", "Start the login again and type your code porteur.");
    Contactless = "CONTACTLESS", retriable: false,
        text!("Carte lue en sans contact : la connexion demande le contact", "Card read contactless: login needs the contact interface"),
        text!("Insérez la carte dans la fente du lecteur au lieu de la poser dessus.", "Insert the card into the reader's slot instead of laying it on top.");
    Unsupported = "UNSUPPORTED", retriable: false,
        text!("Opération non prise en charge par cette carte", "Operation not supported by this card"),
        text!("Contactez le support en joignant le rapport de diagnostic.", "Contact support with the diagnostic report.");
    CertificateExpired = "CERTIFICATE_EXPIRED", retriable: false,
        text!("Le certificat de la carte a expiré", "The card's certificate has expired"),
        text!("Commandez une nouvelle carte auprès de l'ANS (CPS Info Service : 0 825 85 2000).", "Order a new card from the ANS (CPS Info Service: 0 825 85 2000).");
    CertificateNotYetValid = "CERTIFICATE_NOT_YET_VALID", retriable: false,
        text!("Le certificat de la carte n'est pas encore valide", "The card's certificate is not valid yet"),
        text!("Vérifiez la date et l'heure de l'ordinateur.", "Check the computer's date and time.");
    // The loopback API.
    NoCpxCard = "NO_CPX_CARD", retriable: true,
        text!("Aucune carte CPx prête dans les lecteurs", "No CPx card ready in the readers"),
        text!("Insérez votre carte CPS dans le lecteur, puce vers le haut, puis recommencez.", "Insert your CPS card in the reader, chip up, then start again.");
    Busy = "BUSY", retriable: true,
        text!("La carte est déjà utilisée pour une autre connexion", "The card is already in use for another login"),
        text!("Terminez la connexion en cours (fenêtre du code porteur), puis recommencez.", "Finish the login in progress (code porteur window), then start again.");
    UserCancelled = "USER_CANCELLED", retriable: true,
        text!("Connexion annulée", "Login cancelled"),
        text!("Recommencez quand vous le souhaitez.", "Start again whenever you wish.");
    PromptUnavailable = "PROMPT_UNAVAILABLE", retriable: true,
        text!("La fenêtre du code porteur n'a pas pu s'ouvrir", "The code porteur window could not open"),
        text!("Vérifiez que l'Agent CPx est démarré dans votre session, puis recommencez.", "Check that Agent CPx is running in your session, then start again.");
    OriginNotAllowed = "ORIGIN_NOT_ALLOWED", retriable: false,
        text!("Ce site n'est pas autorisé à utiliser votre carte CPx", "This site is not allowed to use your CPx card"),
        text!("Si ce site est celui de votre établissement, demandez à votre service informatique de l'autoriser.", "If this is your organisation's site, ask your IT department to allow it.");
    SiteRefused = "SITE_REFUSED", retriable: true,
        text!("Vous avez refusé que ce site utilise votre carte CPx", "You refused to let this site use your CPx card"),
        text!("Si c'était une erreur, recommencez la connexion et choisissez « Autoriser ». La liste est dans le menu « Sites autorisés » de l'Agent CPx.", "If that was a mistake, start again and choose « Allow ». The list is in Agent CPx's « Sites autorisés » menu.");
    HostNotAllowed = "HOST_NOT_ALLOWED", retriable: false,
        text!("Requête refusée : adresse de l'agent inattendue", "Request refused: unexpected agent address"),
        text!("Le site doit appeler https://127.0.0.1 ou https://localhost sur le port de l'agent.", "The site must call https://127.0.0.1 or https://localhost on the agent's port.");
    SiteNotConfigured = "SITE_NOT_CONFIGURED", retriable: false,
        text!("La connexion par carte n'est pas configurée pour ce site", "Card login is not configured for this site"),
        text!("Demandez à votre service informatique de configurer l'adresse de connexion par carte de ce site.", "Ask your IT department to configure this site's card login address.");
    BadRequest = "BAD_REQUEST", retriable: false,
        text!("Requête invalide", "Invalid request"),
        text!("Le site doit envoyer un JSON conforme à l'API de l'agent (voir docs/openapi.yaml).", "The site must send JSON that follows the agent's API (see docs/openapi.yaml).");
    ChallengeInvalid = "CHALLENGE_INVALID", retriable: false,
        text!("Défi de connexion invalide (au moins 256 bits aléatoires, en base64)", "Invalid login challenge (at least 256 random bits, base64)"),
        text!("Le site doit obtenir un nouveau défi de son serveur.", "The site must get a new challenge from its server.");
    NotFound = "NOT_FOUND", retriable: false,
        text!("Adresse inconnue de l'agent", "Unknown agent address"),
        text!("Consultez docs/openapi.yaml pour les adresses de l'agent.", "See docs/openapi.yaml for the agent's addresses.");
    PortalUnreachable = "PORTAL_UNREACHABLE", retriable: true,
        text!("Le serveur de connexion par carte du site ne répond pas", "The site's card login server does not answer"),
        text!("Vérifiez votre connexion réseau ; si cela persiste, contactez le support du site.", "Check your network connection; if it persists, contact the site's support.");
    PortalTls = "PORTAL_TLS", retriable: true,
        text!("La connexion sécurisée avec le site a échoué", "The secure connection with the site failed"),
        text!("Vérifiez la date de l'ordinateur ; si cela persiste, contactez le support du site avec le rapport de diagnostic.", "Check the computer's date; if it persists, contact the site's support with the diagnostic report.");
    ProxyUnreachable = "PROXY_UNREACHABLE", retriable: true,
        text!("Le proxy du réseau ne répond pas", "The network's proxy does not answer"),
        text!("Vérifiez la connexion réseau ; si cela persiste, signalez au service informatique le proxy indiqué dans le rapport de diagnostic (réglage proxy de l'ordinateur ou clé de stratégie « proxy »).", "Check the network connection; if it persists, give IT the proxy named in the diagnostic report (the computer's proxy setting or the « proxy » policy key).");
    ProxyRefused = "PROXY_REFUSED", retriable: false,
        text!("Le proxy refuse la connexion au serveur de connexion par carte du site", "The proxy refuses the connection to the site's card login server"),
        text!("Demandez au service informatique d'autoriser sur le proxy l'accès HTTPS (CONNECT) à l'adresse de connexion par carte du site indiquée dans le rapport de diagnostic.", "Ask IT to allow on the proxy HTTPS access (CONNECT) to the site's card login address named in the diagnostic report.");
    ProxyAuthRequired = "PROXY_AUTH_REQUIRED", retriable: false,
        text!("Le proxy demande une authentification que l'Agent CPx ne peut pas fournir", "The proxy asks for an authentication Agent CPx cannot provide"),
        text!("Ouvrez une session avec votre compte du domaine (ticket Kerberos) ; sinon, demandez au service informatique d'autoriser l'Agent CPx sur le proxy ou d'y activer l'authentification Negotiate.", "Log in with your domain account (Kerberos ticket); otherwise ask IT to let Agent CPx through the proxy or to enable Negotiate authentication on it.");
    ProxyAuthFailed = "PROXY_AUTH_FAILED", retriable: true,
        text!("L'authentification au proxy a échoué", "Authentication to the proxy failed"),
        text!("Verrouillez puis rouvrez votre session pour renouveler votre ticket Kerberos ; si cela persiste, contactez le service informatique avec le rapport de diagnostic.", "Lock and unlock your session to renew your Kerberos ticket; if it persists, contact IT with the diagnostic report.");
    AgentError = "AGENT_ERROR", retriable: true,
        text!("Erreur interne de l'Agent CPx", "Agent CPx internal error"),
        text!("Redémarrez l'Agent CPx ; si cela persiste, contactez le support avec le rapport de diagnostic.", "Restart Agent CPx; if it persists, contact support with the diagnostic report.");
    // Diagnostics.
    CardUnlistedVariant = "CARD_UNLISTED_VARIANT", retriable: false,
        text!("Carte CPx d'un modèle non répertorié (ATR inconnu, émetteur ANS)", "CPx card of an unlisted model (unknown ATR, ANS issuer)"),
        text!("La carte est utilisable ; signalez son ATR au support pour qu'il soit ajouté à la table.", "The card is usable; report its ATR to support so that it is added to the table.");
    PinLastTry = "PIN_LAST_TRY", retriable: false,
        text!("Il ne reste qu'un essai au code porteur", "Only one try left on the code porteur"),
        text!("Vérifiez votre code porteur avant de le saisir : une erreur de plus bloquera la carte.", "Check your code porteur before typing it: one more error will block the card.");
    CardTestOnProduction = "CARD_TEST_ON_PRODUCTION", retriable: false,
        text!("Carte de TEST (IGC-Santé de test) sur un poste configuré pour la production", "TEST card (test IGC-Santé) on a workstation configured for production"),
        text!("Utilisez votre carte de production, ou demandez au service informatique la configuration de test.", "Use your production card, or ask IT for the test configuration.");
    AgentPortTaken = "AGENT_PORT_TAKEN", retriable: true,
        text!("Le port de l'Agent CPx est occupé par un autre programme", "Agent CPx's port is taken by another program"),
        text!("Fermez le programme qui utilise ce port, ou demandez au service informatique de configurer un autre port.", "Close the program using that port, or ask IT to configure another port.");
    ClockSkew = "CLOCK_SKEW", retriable: true,
        text!("L'horloge de l'ordinateur est décalée par rapport au serveur du site", "The computer's clock is off compared with the site's server"),
        text!("Réglez la date et l'heure de l'ordinateur (réglage automatique), puis réessayez : un décalage fait échouer la connexion sécurisée.", "Set the computer's date and time (automatic setting), then try again: a clock that is off makes the secure connection fail.");
    LoopbackNotTrusted = "LOOPBACK_NOT_TRUSTED", retriable: false,
        text!("Le certificat local de l'Agent CPx n'est pas approuvé par les navigateurs", "Agent CPx's local certificate is not trusted by the browsers"),
        text!("Réinstallez l'Agent CPx (l'installation l'approuve) ou demandez au service informatique de l'ajouter aux certificats approuvés des navigateurs.", "Reinstall Agent CPx (installing trusts it) or ask IT to add it to the browsers' trusted certificates.");
    /// A managed policy (or the user's file) has a malformed key: its safe default is in force.
    PolicyMalformed = "POLICY_MALFORMED", retriable: false,
        text!("Une valeur de la configuration gérée est invalide : l'Agent CPx applique à sa place la valeur sûre", "A managed configuration value is malformed: Agent CPx uses the safe value instead"),
        text!("Signalez-le au service informatique en donnant la clé et la source indiquées (fichier policy.toml, registre, profil) : il corrigera la valeur. D'ici là, la valeur sûre peut limiter ce que l'agent permet.", "Tell IT, giving the key and the source shown (policy.toml file, registry, profile): they will correct the value. Until then, the safe value may limit what the agent allows.");
    /// A CPx card whose PKCS#15 content could not be read.
    CardRecognisedUnreadable(g) = "CARD_RECOGNISED_UNREADABLE", retriable: false,
        named!(g, "son contenu n'a pas pu être lu", "its content could not be read"),
        text!("La carte est bien insérée : inutile de la réinsérer. Contactez le support en joignant le rapport de diagnostic (menu Diagnostic, ou cpx-agent report) ; pour la carte elle-même, CPS Info Service : 0 825 85 2000.", "The card is inserted correctly: no need to insert it again. Contact support with the diagnostic report (Diagnostics menu, or cpx-agent report); about the card itself, CPS Info Service: 0 825 85 2000.");
    /// A CPx card without a usable authentication key and certificate.
    CardRecognisedNoCertificate(g) = "CARD_RECOGNISED_NO_CERTIFICATE", retriable: false,
        named!(g, "elle ne contient pas de certificat d'authentification utilisable", "it holds no usable authentication certificate"),
        text!("La carte est bien insérée : inutile de la réinsérer. Contactez l'émetteur de la carte (CPS Info Service : 0 825 85 2000) en joignant le rapport de diagnostic.", "The card is inserted correctly: no need to insert it again. Contact the card issuer (CPS Info Service: 0 825 85 2000) with the diagnostic report.");
    /// A CPx card that answered a command with an unexpected status.
    CardRecognisedRefused(g) = "CARD_RECOGNISED_REFUSED", retriable: false,
        named!(g, "elle a refusé une commande", "it refused a command"),
        text!("La carte est bien insérée : inutile de la réinsérer. Contactez le support en joignant le rapport de diagnostic (menu Diagnostic, ou cpx-agent report) ; pour la carte elle-même, CPS Info Service : 0 825 85 2000.", "The card is inserted correctly: no need to insert it again. Contact support with the diagnostic report (Diagnostics menu, or cpx-agent report); about the card itself, CPS Info Service: 0 825 85 2000.");
    /// The card did not take the code porteur this time (`69 85`): nothing was retried.
    PinNotAccepted = "PIN_NOT_ACCEPTED", retriable: true,
        text!("La carte n'a pas pu prendre en compte le code porteur cette fois-ci", "The card could not take the code porteur this time"),
        text!("Recommencez la connexion et saisissez de nouveau votre code porteur ; l'agent ne le représente jamais à votre place.", "Start the login again and type your code porteur again; the agent never presents it again on your behalf.");
    // One agent per user (shared computers).
    OtherUser = "OTHER_USER", retriable: false,
        text!("Refusé : cette demande vient d'un autre utilisateur de l'ordinateur", "Refused: this request comes from another user of the computer"),
        text!("L'Agent CPx ne sert que la session qui l'a démarré. Sur un poste partagé, chaque utilisateur a son propre agent : le site doit le trouver par l'adresse habituelle (cpx-agent.js à jour).", "Agent CPx serves only the session that started it. On a shared computer each user has an agent of their own: the site must find it through the usual address (an up-to-date cpx-agent.js).");
    UserAgentNotRunning = "USER_AGENT_NOT_RUNNING", retriable: true,
        text!("L'Agent CPx de votre session n'est pas démarré", "The Agent CPx of your session is not running"),
        text!("Démarrez l'Agent CPx (menu Démarrer ou reconnexion à la session), puis rechargez la page.", "Start Agent CPx (Start menu, or log in to the session again), then reload the page.");
    UseUserAgent = "USE_USER_AGENT", retriable: false,
        text!("Sur ce poste partagé, chaque utilisateur a son propre Agent CPx", "On this shared computer each user has their own Agent CPx"),
        text!("Le site doit demander le port de votre agent à l'adresse habituelle (GET /v1/status, champ agent_port) : mettez à jour cpx-agent.js.", "The site must ask the usual address for your agent's port (GET /v1/status, field agent_port): update cpx-agent.js.");
    ConsentTooOften = "CONSENT_TOO_OFTEN", retriable: true,
        text!("Trop de demandes d'autorisation de sites en peu de temps : aucune question n'a été posée", "Too many site permission requests in a short time: no question was asked"),
        text!("Attendez une minute puis recommencez la connexion. Si cela se répète sans que vous l'ayez demandé, une page ouverte essaie d'obtenir votre carte : fermez-la.", "Wait a minute, then start the login again. If it keeps happening without you asking, an open page is trying to get your card: close it.");
    // Said by the page client (relying-party/js/cpx-agent.js) when it cannot reach the agent.
    AgentUnreachable = "AGENT_UNREACHABLE", retriable: true,
        text!("L'Agent CPx ne répond pas sur cet ordinateur", "Agent CPx does not answer on this computer"),
        text!("Vérifiez que l'Agent CPx est installé et démarré, puis rechargez la page. Si le navigateur demande d'autoriser ce site à accéder aux appareils et applications de cet ordinateur, choisissez « Autoriser ».", "Check that Agent CPx is installed and running, then reload the page. If the browser asks whether this site may access the devices and apps of this computer, choose « Allow ».");
    LocalNetworkBlocked = "LOCAL_NETWORK_BLOCKED", retriable: false,
        text!("Le navigateur empêche ce site de joindre l'Agent CPx sur cet ordinateur (accès au réseau local refusé)", "The browser stops this site from reaching Agent CPx on this computer (local network access refused)"),
        text!("Cliquez sur l'icône à gauche de l'adresse du site, autorisez l'accès aux appareils et applications de cet ordinateur (réseau local), puis rechargez la page. Le service informatique peut l'autoriser pour tous les postes (stratégies de navigateur de l'Agent CPx).", "Click the icon left of the site's address, allow access to this computer's devices and apps (local network), then reload the page. IT can allow it for every workstation (Agent CPx's browser policies).");
    // Where the agent's keys are.
    /// No usable keyring: the agent's keys are in files of this user only (0600).
    KeyringUnavailable = "KEYRING_UNAVAILABLE", retriable: false,
        text!("Aucun trousseau de clés utilisable : la clé du certificat local de l'Agent CPx est gardée dans un fichier lisible par vous seul", "No usable keyring: Agent CPx's local certificate key is kept in a file readable by you only"),
        text!("Installez et déverrouillez un trousseau de clés (gnome-keyring, ou le Secret Service de KeePassXC), puis redémarrez l'Agent CPx : la clé y sera déplacée. En attendant, l'Agent CPx fonctionne normalement.", "Install and unlock a keyring (gnome-keyring, or KeePassXC's Secret Service), then restart Agent CPx: the key will be moved into it. Meanwhile Agent CPx works as usual.");
    // Changing and unblocking the code porteur.
    UnblockCodeWrong = "UNBLOCK_CODE_WRONG", retriable: true,
        text!("Code de déblocage incorrect", "Wrong unblocking code"),
        text!("Vérifiez le code de déblocage (8 chiffres, dans le courrier reçu avec la carte) : après 3 erreurs la carte ne peut plus être débloquée et doit être remplacée.", "Check the unblocking code (8 digits, in the letter that came with the card): after 3 mistakes the card can no longer be unblocked and must be replaced.");
    UnblockCodeBlocked = "UNBLOCK_CODE_BLOCKED", retriable: false,
        text!("Code de déblocage bloqué : la carte ne peut plus être débloquée", "Unblocking code blocked: the card can no longer be unblocked"),
        text!("La carte doit être remplacée : appelez CPS Info Service au 0 825 85 2000.", "The card must be replaced: call CPS Info Service on 0 825 85 2000.");
    UnblockCodeFormat = "UNBLOCK_CODE_FORMAT", retriable: true,
        text!("Le code de déblocage comporte 8 chiffres", "The unblocking code is 8 digits"),
        text!("Saisissez les 8 chiffres du code de déblocage reçu par courrier avec la carte.", "Type the 8 digits of the unblocking code that came by letter with the card.");
    NewPinMismatch = "NEW_PIN_MISMATCH", retriable: true,
        text!("Les deux saisies du nouveau code porteur sont différentes", "The two entries of the new code porteur differ"),
        text!("Saisissez deux fois le même nouveau code porteur (4 chiffres). Rien n'a été changé sur la carte.", "Type the same new code porteur (4 digits) twice. Nothing was changed on the card.");
    /// No code porteur was typed on the PIN-pad reader's keypad before the reader gave up (`64 00`).
    PinpadTimeout = "PINPAD_TIMEOUT", retriable: true,
        text!("Le lecteur a cessé d'attendre le code porteur sur son clavier", "The reader stopped waiting for the code porteur on its keypad"),
        text!("Recommencez la connexion, puis saisissez votre code porteur sur le clavier du lecteur et appuyez sur sa touche OK sans attendre. Aucun essai n'a été compté.", "Start the login again, then type your code porteur on the reader's keypad and press its OK key without waiting. No try was spent.");
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One catalogue entry.
pub struct Entry {
    /// What happened.
    pub message: Text,
    /// What to do.
    pub fix: Text,
    /// Whether trying again can help.
    pub retriable: bool,
}

impl Code {
    /// The generation a code names, for the codes about a recognised CPx card.
    pub fn generation(self) -> Option<Option<Generation>> {
        match self {
            Code::CardRecognisedUnreadable(g)
            | Code::CardRecognisedNoCertificate(g)
            | Code::CardRecognisedRefused(g) => Some(g),
            _ => None,
        }
    }

    /// The code of a failure on a card already named `generation` (after it was opened).
    pub fn about_card(e: &CardError, generation: Option<Generation>) -> Code {
        Code::from(&e.clone().after_recognition(generation))
    }
}

/// The catalogue as Markdown (docs/errors.md is generated from it; a test keeps them equal).
pub fn catalogue_markdown() -> String {
    let mut out = String::from("# Agent CPx — error codes\n\nGenerated from `agent/src/messages.rs` by `cpx-agent errors --markdown`; do not edit.\nThe same codes are used by `cpx-agent` (CLI and `diagnose`) , the loopback API and the tray app.\n\n| code | message (fr) | message (en) | what to do | retry can help |\n|---|---|---|---|---|\n");
    for code in Code::ALL {
        let e = code.entry();
        let name = code.as_str();
        out.push_str(&format!(
            "| `{name}` | {} | {} | {} | {} |\n",
            e.message.fr,
            e.message.en,
            e.fix.fr,
            if e.retriable { "oui" } else { "non" }
        ));
    }
    out
}

impl From<&PcscError> for Code {
    fn from(e: &PcscError) -> Self {
        match e {
            PcscError::ServiceStopped => Code::PcscServiceStopped,
            PcscError::NoReaders => Code::NoReader,
            PcscError::ReaderUnavailable { .. } => Code::ReaderUnavailable,
            PcscError::NoCard { .. } => Code::NoCard,
            PcscError::CardRemoved | PcscError::CardReset => Code::CardRemoved,
            PcscError::Unresponsive | PcscError::Unpowered => Code::CardMute,
            PcscError::UnsupportedCard => Code::CardNotCpx,
            PcscError::SharingViolation => Code::CardInUse,
            PcscError::Timeout { .. } => Code::CardTimeout,
            PcscError::BadResponse { .. } | PcscError::BadCommand { .. } => Code::CardMalformed,
            // The service's own failure (SCARD_F_INTERNAL_ERROR…; every call under Wine's winscard).
            other @ PcscError::Other { .. } if other.service_fault() => Code::PcscServiceFault,
            PcscError::ProtocolMismatch
            | PcscError::Communication { .. }
            | PcscError::Cancelled
            | PcscError::Other { .. } => Code::CardCommunication,
            // The card could not be reset after the code porteur: the connection is dropped, the next
            // request connects again (and resets it).
            PcscError::ResetFailed { .. } => Code::CardCommunication,
        }
    }
}

impl From<&CardError> for Code {
    fn from(e: &CardError) -> Self {
        match e {
            CardError::Pcsc(p) => p.into(),
            CardError::NotCpx { .. } => Code::CardNotCpx,
            CardError::UnexpectedStatus { .. } => Code::CardUnexpectedStatus,
            CardError::Malformed { .. } => Code::CardMalformed,
            CardError::Missing { .. } => Code::CardIncomplete,
            CardError::PinBlocked => Code::PinBlocked,
            CardError::WrongPin { .. } => Code::PinWrong,
            CardError::PinFormat => Code::PinFormat,
            CardError::PinRequired => Code::PinRequired,
            CardError::MissingCredential { .. } => Code::CardIncomplete,
            // No code porteur or no signature on this interface: the card logs in through a contact reader.
            CardError::NoPinOnInterface | CardError::ContactlessSignature => Code::Contactless,
            CardError::SchemeUnsupported { .. } | CardError::DigestLength { .. } => Code::Unsupported,
            CardError::PinConditions => Code::PinNotAccepted,
            CardError::Recognised { generation, source } => match source.root() {
                CardError::Malformed { .. } => Code::CardRecognisedUnreadable(*generation),
                CardError::UnexpectedStatus { .. } => Code::CardRecognisedRefused(*generation),
                CardError::MissingCredential { .. } => Code::CardRecognisedNoCertificate(*generation),
                CardError::Missing { .. } => Code::CardRecognisedUnreadable(*generation),
                // Removed, mute, PIN states…: the plain meaning, the report still names the card.
                root => Code::from(root),
            },
        }
    }
}

impl From<&cpx_card::PinChangeError> for Code {
    fn from(e: &cpx_card::PinChangeError) -> Self {
        use cpx_card::PinChangeError::*;
        match e {
            Card(e) => e.into(),
            WrongUnblockingCode { .. } => Code::UnblockCodeWrong,
            UnblockingCodeBlocked => Code::UnblockCodeBlocked,
            UnblockingCodeFormat => Code::UnblockCodeFormat,
        }
    }
}

/// Labels of the CLI output (each constant's doc is its text).
#[allow(missing_docs)]
pub mod label {
    use super::Text;
    pub const READER: Text = text!("Lecteur", "Reader");
    pub const CARD_TYPE: Text = text!("Type de carte", "Card type");
    pub const HOLDER: Text = text!("Titulaire", "Holder");
    pub const NATIONAL_ID: Text = text!("Identifiant national", "National id");
    pub const STRUCTURE: Text = text!("Structure", "Structure");
    pub const ON_PLATFORM: Text = text!("sur", "on");
    pub const TYPE_FROM_CARD: Text = text!("d'après la carte", "from the card");
    pub const TYPE_FROM_CERTIFICATE: Text = text!("d'après l'identifiant national", "from the national id");
    pub const PROFESSION: Text = text!("Profession", "Profession");
    pub const CERTIFICATE: Text = text!("Certificat", "Certificate");
    pub const VALID_FROM_TO: Text = text!("valide du {from} au {to}", "valid from {from} to {to}");
    pub const EXPIRED_ON: Text = text!("expiré depuis le {to}", "expired since {to}");
    pub const NOT_YET_VALID: Text = text!("valide seulement à partir du {from}", "valid only from {from}");
    pub const TEST_PKI: Text = text!("IGC-Santé de TEST", "TEST IGC-Santé");
    pub const PIN: Text = text!("Code porteur", "Code porteur (PIN)");
    pub const TRIES_LEFT: Text = text!("{n} essai(s) restant(s) sur {max}", "{n} of {max} tries left");
    pub const BLOCKED: Text = text!("bloqué", "blocked");
    pub const NO_PIN: Text = text!("aucun (sans contact)", "none (contactless)");
    pub const SERIAL: Text = text!("Numéro de carte", "Card number");
    pub const UNKNOWN_VARIANT: Text =
        text!("variante CPx non répertoriée (ATR {atr})", "unlisted CPx variant (ATR {atr})");
    pub const WHAT_TO_DO: Text = text!("Que faire", "What to do");
    pub const INSERTED: Text = text!("carte insérée", "card inserted");
    pub const REMOVED: Text = text!("carte retirée", "card removed");
    pub const MUTE: Text = text!("carte muette (pas d'ATR)", "mute card (no ATR)");
    pub const READER_ADDED: Text = text!("lecteur branché", "reader plugged in");
    pub const READER_REMOVED: Text = text!("lecteur débranché", "reader unplugged");
    pub const SERVICE_STARTED: Text = text!("service PC/SC démarré", "PC/SC service started");
    pub const SERVICE_STOPPED: Text = text!("service PC/SC arrêté", "PC/SC service stopped");
    pub const READY_IN: Text = text!("prête en {ms} ms", "ready in {ms} ms");
    pub const NO_CPX_CARD: Text = text!("Aucune carte CPx prête", "No CPx card ready");
    pub const BP_WRITTEN: Text = text!("écrit dans", "written in");
    pub const BP_REMOVED: Text = text!("retiré de", "removed from");
    pub const BP_NOTHING_WANTED: Text = text!("Stratégies de navigateur désactivées (browser_policies = false) ou aucun site géré : les nôtres sont retirées.", "Browser policies off (browser_policies = false) or no managed site: ours are removed.");
    pub const BP_NOTHING_DONE: Text = text!(
        "Rien à faire : aucune stratégie de navigateur de l'Agent CPx.",
        "Nothing to do: no Agent CPx browser policy."
    );
    pub const BP_SCHEDULED: Text = text!(
        "Tâche planifiée « {task} » enregistrée : les stratégies de navigateur sont réécrites au démarrage, après chaque actualisation des GPO et toutes les heures.",
        "Scheduled task \"{task}\" registered: the browser policies are rewritten at boot, after each Group Policy refresh and every hour."
    );
    pub const BP_UNSCHEDULED: Text =
        text!("Tâche planifiée « {task} » retirée.", "Scheduled task \"{task}\" removed.");
    pub const AUTOSTART_USER_ON: Text = text!(
        "Démarrage avec la session (cet utilisateur) : activé",
        "Start with the session (this user): on"
    );
    pub const AUTOSTART_USER_OFF: Text = text!(
        "Démarrage avec la session (cet utilisateur) : désactivé",
        "Start with the session (this user): off"
    );
    pub const AUTOSTART_MACHINE_ON: Text = text!(
        "Démarrage pour toutes les sessions (installation) : activé",
        "Start in every session (installation): on"
    );
    pub const AUTOSTART_MACHINE_OFF: Text = text!(
        "Démarrage pour toutes les sessions (installation) : absent",
        "Start in every session (installation): absent"
    );
}

/// The tray app's words (window titles, buttons, field names), by key. Error texts stay in [`Code`].
pub const LABELS: &[(&str, Text)] = &[
    ("lang", text!("fr", "en")),
    ("app_name", text!("Agent CPx", "Agent CPx")),
    ("menu_status", text!("État de la carte", "Card status")),
    ("menu_diagnostics", text!("Diagnostic", "Diagnostics")),
    ("menu_sites", text!("Sites autorisés", "Allowed sites")),
    ("menu_about", text!("À propos", "About")),
    ("menu_quit", text!("Quitter", "Quit")),
    ("pin_title", text!("Code porteur — Agent CPx", "Code porteur (PIN) — Agent CPx")),
    ("pin_site", prompt::SITE),
    ("pin_site_asks", prompt::SITE_ASKS),
    ("pin_holder", label::HOLDER),
    ("pin_card", label::CARD_TYPE),
    ("pin_tries", prompt::TRIES),
    ("pin_of", prompt::OF),
    ("pin_label", prompt::PIN_FIELD),
    ("pin_wrong", text!("Code porteur incorrect.", "Wrong code porteur.")),
    ("pin_last_try", prompt::LAST_TRY),
    ("pin_confirm_last", text!("Envoyer ce code ? S'il est faux, la carte sera bloquée.", "Send this code? If it is wrong, the card will be blocked.")),
    ("pin_send_anyway", text!("Envoyer quand même", "Send anyway")),
    ("pin_format", text!("Le code porteur a 4 chiffres.", "The code porteur has 4 digits.")),
    ("keypad_title", text!("Code porteur sur le lecteur — Agent CPx", "Code porteur on the reader — Agent CPx")),
    ("keypad_ask", prompt::KEYPAD_ASK),
    ("keypad_cancel", prompt::KEYPAD_CANCEL),
    ("keypad_timeout", prompt::KEYPAD_TIMEOUT),
    ("pin_blocked_title", text!("Carte bloquée — Agent CPx", "Card blocked — Agent CPx")),
    ("ok", prompt::OK),
    ("cancel", prompt::CANCEL),
    ("close", text!("Fermer", "Close")),
    ("back", text!("Retour", "Back")),
    ("consent_title", text!("Autorisation du site — Agent CPx", "Site permission — Agent CPx")),
    ("consent_question", text!("Autoriser ce site à utiliser votre carte CPx ?", "Allow this site to use your CPx card?")),
    ("consent_explain", text!("Ce site n'est pas dans la liste de votre établissement. N'autorisez que les sites que vous connaissez : il pourra vous demander votre code porteur pour vous connecter.", "This site is not on your organisation's list. Only allow sites you know: it will be able to ask for your code porteur to log you in.")),
    ("consent_once", text!("Autoriser une fois", "Allow once")),
    ("consent_always", text!("Toujours autoriser", "Always allow")),
    ("consent_always_explain", text!("« Toujours autoriser » : ce site verra, à chaque visite et sans nouvelle question, votre nom et votre identifiant national (RPPS ou ADELI) lus sur la carte.", "« Always allow »: this site will see, at every visit and without asking again, your name and your national identifier (RPPS or ADELI) read from the card.")),
    ("consent_refuse", text!("Refuser", "Refuse")),
    ("choice_title", text!("Choix de la carte — Agent CPx", "Choose the card — Agent CPx")),
    ("choice_question", text!("Plusieurs cartes CPx sont présentes. Laquelle utiliser ?", "Several CPx cards are present. Which one to use?")),
    ("status_title", text!("État de la carte — Agent CPx", "Card status — Agent CPx")),
    ("status_reader", label::READER),
    ("status_certificate", label::CERTIFICATE),
    ("status_pin", label::PIN),
    ("status_no_reader", text!("Aucun lecteur", "No reader")),
    ("sites_title", text!("Sites autorisés — Agent CPx", "Allowed sites — Agent CPx")),
    ("sites_policy", text!("Autorisés par votre établissement", "Allowed by your organisation")),
    ("sites_user", text!("Autorisés par vous", "Allowed by you")),
    ("sites_none", text!("Aucun site", "No site")),
    ("sites_remove", text!("Retirer", "Remove")),
    ("sites_tampered", text!("La liste des sites autorisés avait été modifiée hors de l'Agent CPx : elle a été mise de côté et n'est plus utilisée.", "The list of allowed sites had been changed outside Agent CPx: it was set aside and is no longer used.")),
    ("about_title", text!("À propos — Agent CPx", "About — Agent CPx")),
    ("about_text", text!("Connexion aux portails de santé avec votre carte CPS, CPE ou CPF. Logiciel libre (EUPL-1.2), remplace la Cryptolib pour la connexion par carte.", "Log in to health portals with your CPS, CPE or CPF card. Free software (EUPL-1.2), replaces Cryptolib for card login.")),
    ("about_version", text!("Version", "Version")),
    ("about_port", text!("Adresse locale", "Local address")),
    ("diag_title", text!("Diagnostic — Agent CPx", "Diagnostics — Agent CPx")),
    ("diag_copy", text!("Copier le rapport", "Copy the report")),
    ("diag_copied", text!("Rapport copié : collez-le dans votre demande d'assistance.", "Report copied: paste it into your support request.")),
    ("diag_rerun", text!("Relancer", "Run again")),
    ("diag_ok", text!("OK", "OK")),
    ("diag_warn", text!("Attention", "Warning")),
    ("diag_fail", text!("Échec", "Failed")),
    ("diag_running", text!("Vérification en cours…", "Checking…")),
    ("menu_change_pin", text!("Changer mon code porteur", "Change my code porteur")),
    ("menu_unblock", text!("Débloquer ma carte", "Unblock my card")),
    ("pin_change_title", text!("Changer le code porteur — Agent CPx", "Change the code porteur — Agent CPx")),
    ("pin_unblock_title", text!("Débloquer la carte — Agent CPx", "Unblock the card — Agent CPx")),
    ("pin_current", pin_life::CURRENT_FIELD),
    ("pin_new", pin_life::NEW_FIELD),
    ("pin_new_again", pin_life::NEW_AGAIN_FIELD),
    ("pin_new_on_keypad", pin_life::KEYPAD_NEW_LATER),
    ("pin_keypad_timeout", pin_life::KEYPAD_TIMEOUT),
    ("pin_unblock_code", pin_life::UNBLOCK_FIELD),
    ("pin_unblock_tries", pin_life::UNBLOCK_TRIES),
    ("pin_unblock_last_try", pin_life::UNBLOCK_LAST_TRY),
    ("pin_continue", pin_life::GO_ON),
    ("pin_again", text!("Recommencer", "Start again")),
    ("pin_sending", text!("Envoi à la carte…", "Sending to the card…")),
];

// ---- The words of `diagnose`, the PIN prompts and the exit statuses: their own section, apart from the
// `Code` impl. Each `texts!` block also lists its texts in `ALL`, for the completeness tests.

/// Declares `Text` constants and `ALL`, the list of them (a constant's words are its documentation).
macro_rules! texts {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$doc])* #[allow(missing_docs)] pub const $name: Text = $value;)*
        /// Every text of this section.
        pub const ALL: &[Text] = &[$($name),*];
    };
}

/// The titles of `diagnose`'s checks.
pub mod check_title {
    use super::Text;
    texts! {
        PCSC_SERVICE = text!("Service PC/SC", "PC/SC service");
        READERS = text!("Lecteurs de carte", "Card readers");
        CARD = text!("Carte dans le lecteur", "Card in the reader");
        CARD_TYPE = text!("Type de carte (ATR, émetteur)", "Card type (ATR, issuer)");
        CARD_CONTENT = text!("Contenu de la carte (PKCS#15, certificat)", "Card content (PKCS#15, certificate)");
        PIN = text!("Code porteur", "Code porteur (PIN)");
        CERTIFICATE = text!("Certificat de la carte", "Card certificate");
        LOOPBACK_PORT = text!("Port local de l'agent", "Agent's loopback port");
        CONFIGURATION = text!("Configuration en vigueur", "Configuration in force");
        SITE = text!("Site configuré", "Site configured");
        PORTAL_WAY = text!("Chemin vers le serveur de connexion par carte (proxy)", "Way to the site's card login server (proxy)");
        PORTAL_ENDPOINT = text!("Serveur de connexion par carte du site", "Site's card login server");
        CLOCK = text!("Horloge de l'ordinateur", "Computer clock");
        POLICY = text!("Politique gérée : valeurs fixées et leur source", "Managed policy: values set and their source");
        POLICY_PROBLEM = text!("Clé de configuration invalide", "Malformed configuration key");
        LOOPBACK_TRUST = text!("Certificat local approuvé par les navigateurs", "Local certificate trusted by the browsers");
        KEY_STORE = text!("Trousseau des clés de l'agent", "Agent's key store");
        PINPAD = text!("Clavier du lecteur (code porteur)", "Reader's PIN pad");
    }
}

/// What each check of `diagnose` found (`{name}` placeholders filled with technical values: paths, ATRs,
/// the system's own error texts).
pub mod detail {
    use super::Text;
    texts! {
        /// Several findings, joined with « ; ».
        LIST = text!("{items}", "{items}");
        PCSC_RUNNING = text!("en marche", "running");
        KEYS_IN_FILES = text!("pas de trousseau utilisable : clés dans {folder} (fichiers lisibles par vous seul)", "no usable keyring: keys in {folder} (files only you can read)");
        KEYS_IN_FILES_BY_CHOICE = text!("key_store = \"file\" : clés dans {folder}", "key_store = \"file\": keys in {folder}");
        KEYS_IN_KEYRING = text!("dans le trousseau du système", "in the system keyring");
        PCSC_ERROR = text!("erreur PC/SC : {error}", "PC/SC error: {error}");
        READERS_LISTED = text!("vus par PC/SC : {readers}", "listed by PC/SC: {readers}");
        PINPAD_USED = text!("le lecteur annonce un clavier : le code porteur s'y saisit, il ne passe pas par l'ordinateur", "the reader has a PIN pad: the code porteur is typed on it and never crosses the computer");
        PINPAD_OFF = text!("le lecteur annonce un clavier, mais la stratégie pinpad = \"off\" fait demander le code porteur dans la fenêtre de l'agent", "the reader has a PIN pad, but the policy pinpad = \"off\" has the code porteur asked for in the agent's dialog");
        PINPAD_NOT_USABLE = text!("le lecteur annonce un clavier que l'agent ne sait pas utiliser (sans vérification directe) : le code porteur est demandé dans la fenêtre de l'agent", "the reader has a PIN pad the agent cannot use (no direct verification): the code porteur is asked for in the agent's dialog");
        PINPAD_QUIRK_LISTED = text!("le lecteur annonce un clavier, mais ce modèle n'en a pas ({entry}) : le code porteur est demandé dans la fenêtre de l'agent", "the reader claims a PIN pad, but this model has none ({entry}): the code porteur is asked for in the agent's dialog");
        NO_READER_LISTED = text!("aucun lecteur vu par PC/SC", "no reader listed by PC/SC");
        CARD_BUSY = text!("la carte est restée occupée par une connexion en cours", "the card stayed in use by a login in progress");
        NO_CARD_ANYWHERE = text!("aucune carte dans aucun lecteur", "no card in any reader");
        NO_ATR = text!("pas d'ATR", "no ATR");
        HELD_EXCLUSIVELY = text!("utilisée en exclusivité par un autre programme", "held exclusively by another program");
        READER_UNAVAILABLE = text!("lecteur indisponible", "reader unavailable");
        CARD_PRESENT = text!("carte présente, ATR {atr}", "card present, ATR {atr}");
        OPEN_FAILED = text!("ATR {atr} (protocoles T={protocols}, octets historiques {historical}) : {error}", "ATR {atr} (protocols T={protocols}, historical bytes {historical}): {error}");
        TYPE_BY_ATR_TABLE = text!("{generation} (reconnue par la table des ATR), émetteur ANS", "{generation} (by ATR table), issuer ANS");
        TYPE_BY_SERIAL = text!("{generation} (reconnue par EF.SN.ICC), émetteur ANS", "{generation} (by EF.SN.ICC), issuer ANS");
        TYPE_LISTED = text!("{label}, émetteur ANS, numéro de carte {serial} ; carte {kind}", "{label}, issuer ANS, card number {serial}; {kind} card");
        TYPE_UNLISTED = text!("ATR {atr} dans aucune table (T={protocols}, octets historiques {historical}) ; émetteur ANS ; lue comme {generation} ; carte {kind}", "ATR {atr} in no table (T={protocols}, historical bytes {historical}); issuer ANS; read as {generation}; {kind} card");
        CONTACTLESS = text!("sans contact : pas de code porteur", "contactless: no code porteur");
        NO_PIN = text!("pas de code porteur", "no code porteur");
        TRIES_LEFT = super::label::TRIES_LEFT;
        CARD_ERROR = text!("erreur de la carte : {error}", "card error: {error}");
        CERTIFICATE_DATES = text!("du {from} au {to}, {issuer}", "{from} → {to}, {issuer}");
        CERTIFICATE_PRODUCTION_CARD = text!("carte de production, configuration de test seulement : du {from} au {to}, {issuer}", "production card, test-only configuration: {from} → {to}, {issuer}");
        CERTIFICATE_HOLDER = text!("{name} ({id}), du {from} au {to}, {issuer}", "{name} ({id}), {from} → {to}, {issuer}");
        CONFIGURATION = text!("{source} ({sites} site(s) configuré(s), port {port}, IGC-Santé {pki})", "{source} ({sites} site(s), port {port}, IGC-Santé {pki})");
        CONFIG_POLICY_SETS = text!("la politique gérée {source} fixe : {keys}", "managed policy {source} sets: {keys}");
        CONFIG_USER_SETS = text!("le fichier de l'utilisateur {path} fixe : {keys}", "user file {path} sets: {keys}");
        CONFIG_NOTHING = text!("rien", "nothing");
        CONFIG_DEFAULTS = text!("valeurs par défaut", "built-in defaults");
        CONFIG_REST_DEFAULTS = text!("le reste : valeurs par défaut", "the rest: built-in defaults");
        CONFIG_USER_SITES_OFF = text!("sites de l'utilisateur désactivés (allow_user_sites = false, {by})", "user sites off (allow_user_sites = false, {by})");
        PKI_PRODUCTION = text!("de production", "production");
        PKI_TEST = text!("de test", "test");
        PKI_BOTH = text!("de production et de test", "production and test");
        SITE_ENDPOINT = text!("{origin} → serveur de connexion {endpoint}", "{origin} → login server {endpoint}");
        SITE_NO_ENDPOINT = text!("{origin} → pas de serveur de connexion mTLS", "{origin} → no mTLS endpoint");
        SITE_NOT_CONFIGURED = text!("{origin} n'est pas dans la configuration", "{origin} is not in the configuration");
        POLICY_NOTHING = text!("aucune politique gérée ne fixe quoi que ce soit", "no managed policy sets anything");
        POLICY_MANAGED = text!("fixé par la politique gérée : {settings}", "set by the managed policy: {settings}");
        POLICY_USER_SITES_OFF = text!("allow_user_sites = false ({by}) : sites gérés seulement, jamais de demande d'autorisation", "allow_user_sites = false ({by}): managed sites only, no consent dialog");
        POLICY_PROBLEM = text!("{source} : {reason} ; à la place : {instead}", "{source}: {reason}; instead: {instead}");
        MACHINE_RENEW = text!("identité de la machine {dir} : le certificat local expire dans moins de {days} jours ; un administrateur lance `cpx-agent install-trust` (ou réinstalle) pour le refaire", "machine identity {dir}: the loopback certificate ends within {days} days; an administrator runs `cpx-agent install-trust` (or reinstalls) to make it anew");
        MACHINE_BROKEN = text!("identité de la machine {dir} : {error} (l'agent se rabat sur celle de l'utilisateur)", "machine identity {dir}: {error} (the agent falls back to the user's own)");
        MACHINE_UNCHECKED = text!("identité de la machine {dir} : {error}", "machine identity {dir}: {error}");
        MACHINE_STORES = text!("identité de la machine {dir} : {stores}", "machine identity {dir}: {stores}");
        USER_NO_CA = text!("identité de l'utilisateur {path} : pas encore d'autorité locale (créée au premier démarrage de l'agent)", "user identity {path}: no local CA yet (made at the agent's first start)");
        USER_STORES = text!("identité de l'utilisateur {path} : {stores}", "user identity {path}: {stores}");
        NO_BROWSER_STORE = text!("{path} : aucun magasin de certificats de navigateur à vérifier", "{path}: no browser store found to check");
        STORE_TRUSTED = text!("{store} : approuvé", "{store}: trusted");
        STORE_NOT_TRUSTED = text!("{store} : NON approuvé", "{store}: NOT trusted");
        STORE_UNREADABLE = text!("{store} : illisible (certutil manquant ?)", "{store}: not readable (certutil missing?)");
        PORT_FREE = text!("127.0.0.1:{port} libre (l'agent n'est pas lancé)", "127.0.0.1:{port} free (the agent is not running)");
        PORT_OURS = text!("127.0.0.1:{port} : l'Agent CPx répond", "127.0.0.1:{port}: Agent CPx answers");
        PORT_TAKEN = text!("127.0.0.1:{port} est pris et ne répond pas comme l'Agent CPx", "127.0.0.1:{port} is taken and does not answer as Agent CPx");
        ENDPOINT_ROOTS = text!("certificats racines du site : {error}", "the site's server roots: {error}");
        WAY_DIRECT_OK = text!("{host}:{port} joint directement, sans proxy ({source})", "{host}:{port} reached directly, without a proxy ({source})");
        WAY_DIRECT_FAILED = text!("{host}:{port} injoignable directement, sans proxy ({source}) : {error}", "{host}:{port} unreachable directly, without a proxy ({source}): {error}");
        WAY_PROXY_OK = text!("tunnel CONNECT vers {host}:{port} ouvert par le proxy {proxy} ({source})", "CONNECT tunnel to {host}:{port} opened through the proxy {proxy} ({source})");
        WAY_PROXY_FAILED = text!("tunnel CONNECT vers {host}:{port} par le proxy {proxy} ({source}) : {error}", "CONNECT tunnel to {host}:{port} through the proxy {proxy} ({source}): {error}");
        ENDPOINT_TLS = text!("{host}:{port} : échec TLS : {error}", "{host}:{port}: TLS failed: {error}");
        ENDPOINT_TLS_SETUP = text!("préparation de TLS impossible : {error}", "TLS setup failed: {error}");
        ENDPOINT_BAD_HOST = text!("nom d'hôte invalide : {host}", "bad host name: {host}");
        ENDPOINT_OK = text!("{host}:{port} répond en TLS avec un certificat approuvé", "{host}:{port} answers TLS with a trusted certificate");
        CLOCK_NOT_MEASURED = text!("non mesurée : le serveur ne répond en HTTP qu'avec la carte", "not measured: the endpoint answers HTTP only with the card");
        CLOCK_SKEW = text!("{skew} s d'écart avec l'en-tête Date du serveur", "{skew} s against the endpoint's Date");
    }
}

/// What `install-trust` and `uninstall-trust` say they did.
pub mod trust {
    use super::Text;
    texts! {
        NEW_CA = text!("nouvelle autorité locale", "new local CA");
        CA_KEPT = text!("autorité locale conservée", "local CA kept");
        REMOVED = text!("{dir} supprimé", "{dir} removed");
        TRUSTED_IN = text!("approuvée dans {store}", "trusted in {store}");
        REMOVED_FROM = text!("retirée de {store}", "removed from {store}");
    }
}

/// Changing and unblocking the code porteur (`cpx-agent pin`, the tray's menu).
pub mod pin_life {
    use super::Text;
    texts! {
        CHANGE_TITLE = text!("Agent CPx — changer le code porteur", "Agent CPx — change the code porteur");
        UNBLOCK_TITLE = text!("Agent CPx — débloquer la carte", "Agent CPx — unblock the card");
        CURRENT_FIELD = text!("Code porteur actuel (4 chiffres)", "Current code porteur (4 digits)");
        NEW_FIELD = text!("Nouveau code porteur (4 chiffres)", "New code porteur (4 digits)");
        NEW_AGAIN_FIELD = text!("Nouveau code porteur, une seconde fois", "New code porteur, once more");
        UNBLOCK_FIELD = text!("Code de déblocage (8 chiffres)", "Unblocking code (8 digits)");
        UNBLOCK_TRIES = text!("Essais du code de déblocage", "Tries of the unblocking code");
        UNBLOCK_LAST_TRY = text!("Dernier essai du code de déblocage : une erreur de plus et la carte devra être remplacée (CPS Info Service). Continuer ?", "Last try of the unblocking code: one more mistake and the card must be replaced (CPS Info Service). Go on?");
        YES_NO = text!("[o/N]", "[y/N]");
        GO_ON = text!("Continuer", "Go on");
        /// The codes typed on a PIN-pad reader's keypad (PC/SC part 10 modify).
        KEYPAD_CHANGE = text!("Sur le clavier du lecteur : saisissez votre code porteur actuel, puis deux fois le nouveau (4 chiffres), en appuyant sur sa touche OK après chacun.", "On the reader's keypad: type your current code porteur, then the new one twice (4 digits), pressing its OK key after each.");
        KEYPAD_TIMEOUT = text!("Le lecteur n'attend pas indéfiniment : s'il cesse d'attendre avant la fin de votre saisie, rien n'est changé ; recommencez depuis le menu de l'Agent CPx.", "The reader does not wait forever: if it stops waiting before you are done, nothing is changed; start again from the Agent CPx menu.");
        KEYPAD_NEW_LATER = text!("Le nouveau code porteur se saisira ensuite sur le clavier du lecteur.", "The new code porteur is typed on the reader's keypad next.");
        KEYPAD_NEW_PIN = text!("Sur le clavier du lecteur : saisissez deux fois votre nouveau code porteur (4 chiffres), en appuyant sur sa touche OK après chacun.", "On the reader's keypad: type your new code porteur twice (4 digits), pressing its OK key after each.");
        CHANGED = text!("Code porteur changé.", "Code porteur changed.");
        UNBLOCKED = text!("Carte débloquée : votre nouveau code porteur est actif.", "Card unblocked: your new code porteur is active.");
    }
}

/// The code porteur prompts (terminal, pinentry; the tray's dialog shares these through [`LABELS`]).
pub mod prompt {
    use super::Text;
    texts! {
        TITLE = text!("Agent CPx — code porteur", "Agent CPx — code porteur (PIN)");
        SITE = text!("Le site", "The site");
        SITE_ASKS = text!("demande à utiliser votre carte CPx.", "asks to use your CPx card.");
        HOLDER = super::label::HOLDER;
        TRIES = text!("Essais restants", "Tries left");
        OF = text!("sur", "of");
        LAST_TRY = text!("Attention : dernier essai. Une erreur de plus bloquera la carte.", "Warning: last try. One more error will block the card.");
        PIN_FIELD = text!("Code porteur (4 chiffres)", "Code porteur (4 digits)");
        SEVERAL_CARDS = text!("Plusieurs cartes CPx sont présentes.", "Several CPx cards are present.");
        USE_CARD_OF = text!("Utiliser la carte de {card} ?", "Use the card of {card}?");
        USE_THIS_CARD = text!("Utiliser cette carte", "Use this card");
        NEXT_CARD = text!("Carte suivante", "Next card");
        OK = text!("Valider", "OK");
        CANCEL = text!("Annuler", "Cancel");
        /// The code porteur typed on a PIN-pad reader's keypad (the reader builds the VERIFY).
        KEYPAD_TITLE = text!("Agent CPx — code porteur sur le lecteur", "Agent CPx — code porteur on the reader");
        KEYPAD_ASK = text!("Saisissez votre code porteur sur le clavier du lecteur, puis appuyez sur sa touche OK.", "Type your code porteur on the reader's keypad, then press its OK key.");
        KEYPAD_CANCEL = text!("Pour annuler, appuyez sur la touche Annuler du lecteur : cette fenêtre ne peut pas arrêter le lecteur.", "To cancel, press the reader's Cancel key: this window cannot stop the reader.");
        KEYPAD_TIMEOUT = text!("Le lecteur n'attend pas indéfiniment : s'il cesse d'attendre avant la fin de votre saisie, recommencez la connexion depuis la page du site.", "The reader does not wait forever: if it stops waiting before you are done, start the login again from the site's page.");
        KEYPAD_WRONG = text!("Code porteur incorrect : saisissez-le de nouveau sur le clavier du lecteur.", "Wrong code porteur: type it again on the reader's keypad.");
        /// A button that only hides the notice (the reader goes on waiting).
        KEYPAD_HIDE = text!("Masquer", "Hide");
        /// One field and its value: « Titulaire : … » / « Holder: … ».
        FIELD = text!("{label} : {value}", "{label}: {value}");
        /// What the terminal prompt ends with, before the typed code: « Code porteur (4 chiffres) : ».
        ASK = text!("{label} :", "{label}:");
    }
}

/// The agent's names and descriptions outside its windows: the command line's, the autostart entry's, the
/// local certificate authority's (these three are written in French, the language of the machine's users).
pub mod names {
    use super::Text;
    texts! {
        /// What `cpx-agent --help` says the program is.
        CLI_ABOUT = text!("Agent CPx: cartes CPS/CPE/CPA/CPF des professionnels de santé", "Agent CPx: the CPS/CPE/CPA/CPF cards of health professionals");
        /// The `Comment` of the Linux autostart entry (`.desktop`).
        AUTOSTART_COMMENT = text!("Carte CPx : état et connexion aux portails de santé", "CPx card: status and login to health portals");
        /// The local certificate authority's common name, followed by the day it was made.
        LOCAL_CA = text!("Agent CPx, autorité locale", "Agent CPx, local authority");
        /// The local certificate authority's organisation.
        LOCAL_CA_ORGANISATION = text!("Agent CPx (ce poste uniquement)", "Agent CPx (this computer only)");
    }
}

/// The words section is complete: every key the tray's pages (ui/) use is in [`LABELS`], every text with
/// words is translated.
#[cfg(test)]
mod words_tests {
    use super::LABELS;

    /// The keys a page uses: `data-t="KEY"` and `data-t-label="KEY"` in its HTML, `t.KEY` in its script
    /// (`t` is what `applyLabels()` returns).
    fn keys_used(name: &str, text: &str) -> Vec<String> {
        let ident = |rest: &str| -> String {
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        };
        let mut keys = Vec::new();
        if name.ends_with(".html") {
            for attr in ["data-t=\"", "data-t-label=\""] {
                keys.extend(text.match_indices(attr).map(|(at, _)| ident(&text[at + attr.len()..])));
            }
        } else if name.ends_with(".js") {
            for (at, _) in text.match_indices("t.") {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$') {
                    continue;
                }
                keys.push(ident(&text[at + 2..]));
            }
        }
        keys.retain(|k| !k.is_empty());
        keys
    }

    #[test]
    fn every_key_the_tray_pages_use_is_in_the_catalogue() {
        let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
        let mut used = 0;
        for entry in std::fs::read_dir(&ui).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for key in keys_used(&name, &text) {
                assert!(LABELS.iter().any(|(k, _)| *k == key), "ui/{name} uses « {key} », not in LABELS");
                used += 1;
            }
        }
        assert!(used > 40, "only {used} keys found in ui/: the scan is broken");
    }

    #[test]
    fn the_scan_finds_keys_in_html_and_scripts() {
        assert_eq!(keys_used("a.html", r#"<p data-t="pin_x"></p><b data-t-label="y">"#), ["pin_x", "y"]);
        assert_eq!(keys_used("a.js", "`${t.pin_of} ${view.t.x} ${cat.y}` + t.z"), ["pin_of", "z"]);
    }

    #[test]
    fn every_text_of_the_words_section_is_translated() {
        use super::{check_title, detail, names, pin_life, prompt, trust};
        for t in [detail::ALL, check_title::ALL, prompt::ALL, pin_life::ALL, trust::ALL, names::ALL].concat()
        {
            // Texts with words in them (not only `{placeholders}`) differ between the languages.
            let mut words = t.en.to_owned();
            while let (Some(a), Some(b)) = (words.find('{'), words.find('}')) {
                words.replace_range(a..=b.max(a), "");
            }
            if words.chars().any(char::is_alphabetic) {
                assert_ne!(t.fr, t.en, "« {} » is not translated", t.en);
            }
        }
    }

    #[test]
    fn labels_are_unique_and_translated() {
        let keys: std::collections::HashSet<_> = LABELS.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), LABELS.len(), "a key twice in LABELS");
        for (k, t) in LABELS {
            assert!(!t.fr.is_empty() && !t.en.is_empty(), "{k}");
        }
    }
}

/// [`LABELS`] in one language, for the tray's pages.
pub fn labels(lang: Lang) -> serde_json::Map<String, serde_json::Value> {
    LABELS.iter().map(|(k, t)| ((*k).to_owned(), t.get(lang).into())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_both_languages_and_a_fix() {
        for code in Code::ALL {
            let e = code.entry();
            for t in [e.message, e.fix] {
                assert!(!t.fr.is_empty() && !t.en.is_empty(), "{code:?}");
                assert_ne!(t.fr, t.en, "{code:?} is not translated");
            }
            let json = serde_json::to_string(&code).unwrap();
            assert!(
                json.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c == '"'),
                "stable code {json}"
            );
        }
    }

    #[test]
    fn docs_errors_md_is_up_to_date() {
        let committed = include_str!("../../docs/errors.md");
        assert_eq!(committed, catalogue_markdown(), "run `cpx-agent errors --markdown > docs/errors.md`");
    }

    #[test]
    fn card_errors_map_to_what_the_user_can_do() {
        assert_eq!(Code::from(&CardError::PinBlocked), Code::PinBlocked);
        assert_eq!(Code::from(&CardError::WrongPin { tries_left: 2 }), Code::PinWrong);
        assert_eq!(Code::from(&CardError::Pcsc(PcscError::ServiceStopped)), Code::PcscServiceStopped);
        let internal = PcscError::Other { code: 0x8010_0001 }; // SCARD_F_INTERNAL_ERROR
        assert_eq!(Code::from(&CardError::Pcsc(internal)), Code::PcscServiceFault);
        assert_eq!(Code::from(&PcscError::Other { code: 0x8010_0022 }), Code::CardCommunication);
        assert_eq!(Code::from(&CardError::Pcsc(PcscError::SharingViolation)), Code::CardInUse);
        assert_eq!(Code::from(&CardError::Pcsc(PcscError::Timeout { millis: 1 })), Code::CardTimeout);
        assert_eq!(
            Code::from(&CardError::NotCpx { atr: String::new(), reason: String::new() }),
            Code::CardNotCpx
        );
        assert_eq!(Code::from(&CardError::ContactlessSignature), Code::Contactless);
        assert_eq!(SlotState::CardReady.text().get(Lang::Fr), "Carte CPS insérée et reconnue");
        assert_eq!(SlotState::CardNotRecognised.text().get(Lang::Fr), "Carte CPS mal insérée / non reconnue");
    }

    #[test]
    fn what_a_card_cannot_do_is_classified_by_its_variant() {
        use cpx_card::{CardError as E, Credential, Generation as G, SignScheme};
        // A card with no code porteur on this interface (a CPS3 read contactless, a CPS4 without one)
        // logs in through a contact reader: CONTACTLESS, whatever its generation.
        assert_eq!(Code::from(&E::NoPinOnInterface), Code::Contactless);
        assert_eq!(Code::about_card(&E::NoPinOnInterface, Some(G::Cps4)), Code::Contactless);
        assert_eq!(Code::about_card(&E::ContactlessSignature, Some(G::Cps3)), Code::Contactless);
        // What the key cannot do, or a digest of the wrong length: UNSUPPORTED.
        let pss = E::SchemeUnsupported { scheme: SignScheme::RsaPssSha256 };
        assert_eq!(Code::from(&pss), Code::Unsupported);
        assert_eq!(Code::about_card(&pss, Some(G::Cps3)), Code::Unsupported);
        let short = E::DigestLength { scheme: SignScheme::RsaPkcs1Sha256, len: 20 };
        assert_eq!(Code::from(&short), Code::Unsupported);
        // A missing key or certificate: no certificate once the card is named, incomplete before.
        let no_key = E::MissingCredential { what: Credential::AuthenticationKey };
        assert_eq!(Code::from(&no_key), Code::CardIncomplete);
        assert_eq!(
            Code::about_card(&no_key, Some(G::Cps4)),
            Code::CardRecognisedNoCertificate(Some(G::Cps4))
        );
        // Any other missing object of a named card: its content could not be read.
        let no_app = E::Missing { what: "ChipDoc application" };
        assert_eq!(Code::about_card(&no_app, Some(G::Cps4)), Code::CardRecognisedUnreadable(Some(G::Cps4)));
    }

    #[test]
    fn a_recognised_card_is_named_whatever_fails_and_never_said_badly_inserted() {
        use cpx_card::{CardError as E, Generation as G};
        let sw = cpx_pcsc::StatusWord(0x6A82);
        let cases = [
            (
                E::malformed("PKCS#15 path", "odd length"),
                "CARD_RECOGNISED_UNREADABLE",
                "Carte CPS3 reconnue, mais son contenu n'a pas pu être lu",
            ),
            (
                E::MissingCredential { what: cpx_card::Credential::AuthenticationCertificate },
                "CARD_RECOGNISED_NO_CERTIFICATE",
                "Carte CPS3 reconnue, mais elle ne contient pas de certificat d'authentification utilisable",
            ),
            (
                E::status("SELECT EF.DIR", sw),
                "CARD_RECOGNISED_REFUSED",
                "Carte CPS3 reconnue, mais elle a refusé une commande",
            ),
        ];
        for (error, name, fr) in cases {
            let code = Code::from(&error.clone().after_recognition(Some(G::Cps3)));
            assert_eq!((code.as_str(), code.entry().message.fr), (name, fr));
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            assert_eq!(code.generation(), Some(Some(G::Cps3)));
            for t in [code.entry().message, code.entry().fix] {
                assert!(!t.fr.contains("mal insérée") && !t.en.contains("badly inserted"), "{name}");
            }
            assert!(code.entry().fix.fr.contains("0 825 85 2000"), "{name}: the helpdesk route");
            // A CPS4, and a variant whose generation is not known yet.
            assert!(Code::from(&error.clone().after_recognition(Some(G::Cps4)))
                .entry()
                .message
                .en
                .starts_with("CPS4 card recognised"));
            assert!(Code::from(&error.clone().after_recognition(None))
                .entry()
                .message
                .fr
                .starts_with("Carte CPx reconnue"));
            // The same failure before recognition keeps its old meaning.
            assert_ne!(Code::from(&error).as_str(), name);
        }
        // A card that went away is still « retirée », even once named.
        assert_eq!(
            Code::from(&E::Pcsc(PcscError::CardRemoved).after_recognition(Some(G::Cps3))),
            Code::CardRemoved
        );
        assert_eq!(Code::about_card(&E::WrongPin { tries_left: 2 }, Some(G::Cps4)), Code::PinWrong);
        assert_eq!(Code::from(&E::PinConditions), Code::PinNotAccepted);
    }

    /// The page client's own table (relying-party/js/cpx-agent.js) says what the catalogue says.
    #[test]
    fn the_page_client_uses_the_catalogue_words() {
        let js = include_str!("../../relying-party/js/cpx-agent.js");
        let quoted = |from: &str, key: &str| -> String {
            let at = from.find(&format!("{key}: \"")).unwrap_or_else(|| panic!("{key} missing"));
            let rest = &from[at + key.len() + 3..];
            rest[..rest.find('"').expect("closing quote")].to_owned()
        };
        for code in [Code::AgentUnreachable, Code::LocalNetworkBlocked, Code::LoopbackNotTrusted] {
            let at = js
                .find(&format!("  {}: {{", code.as_str()))
                .unwrap_or_else(|| panic!("{} not in the page client's table", code.as_str()));
            let entry = code.entry();
            assert_eq!(quoted(&js[at..], "message"), entry.message.fr, "{}", code.as_str());
            assert_eq!(quoted(&js[at..], "fix"), entry.fix.fr, "{}", code.as_str());
        }
    }

    #[test]
    fn names_are_unique_and_listed() {
        let names: std::collections::HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len());
    }

    /// `ALL` is complete (every variant of the table, counted from the source), and every code has its
    /// French and English message and fix and an entry on the helpdesk page.
    #[test]
    fn every_code_is_listed_with_its_texts_and_a_helpdesk_guide() {
        let source = include_str!("messages.rs");
        let table = &source[source.find("\ncodes! {\n").expect("the codes! table")..];
        let table = &table[..table.find("\n}\n").expect("the table's end")];
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.contains(" = \""))
            .collect();
        assert_eq!(rows.len(), Code::ALL.len(), "ALL misses a row of the table");
        for (code, row) in Code::ALL.iter().zip(&rows) {
            assert!(row.contains(&format!("\"{}\"", code.as_str())), "{code:?} is not row « {row} »");
            let e = code.entry();
            for t in [e.message, e.fix] {
                assert!(!t.fr.is_empty() && !t.en.is_empty() && t.fr != t.en, "{code:?}: texts");
            }
            let guide = crate::helpdesk::page::GUIDES.iter().find(|g| g.code == code.as_str());
            assert!(guide.is_some(), "{} has no helpdesk GUIDES entry", code.as_str());
        }
    }

    /// `as_str()` is what serde writes, and the variant's own name in SCREAMING_SNAKE_CASE.
    #[test]
    fn as_str_is_the_serialised_name() {
        for code in Code::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str(), "{code:?}");
            let variant = format!("{code:?}");
            let variant = variant.split('(').next().unwrap_or_default();
            let mut snake = String::new();
            for (i, c) in variant.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_uppercase());
            }
            assert_eq!(code.as_str(), snake, "{code:?}");
        }
    }
}
