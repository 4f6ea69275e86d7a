//! The portal's mTLS endpoint, where the agent comes with the card: the TLS layer has verified the client
//! certificate against the IGC-Santé anchors; the verifier reads the identity (and checks usage and CRL);
//! the challenge must be one this portal issued, unused, for the origin the agent reports. The answer is a
//! one-time code for the browser session that asked for the challenge.

use cpx_verifier::{ChallengeError, VerifyError};
use serde_json::{json, Value};

use crate::state::Portal;

/// Handles `POST /cpx/login` with the client certificate of the connection.
pub fn login(portal: &Portal, client_cert: Option<&[u8]>, body: &[u8]) -> (u16, Value) {
    let refuse = |code: &str, message: &str| (403, json!({"error": {"code": code, "message": message}}));
    let Some(cert) = client_cert else {
        return refuse("CERTIFICATE_REFUSED", "Aucun certificat de carte présenté.");
    };
    let identity = match portal.verify_card(cert) {
        Ok(id) => id,
        Err(e) => {
            let (code, message) = card_refusal(&e);
            return refuse(code, &message);
        }
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return (400, json!({"error": {"code": "BAD_REQUEST", "message": "JSON attendu"}}));
    };
    let (Some(challenge), Some(origin)) = (req["challenge"].as_str(), req["origin"].as_str()) else {
        return (400, json!({"error": {"code": "BAD_REQUEST", "message": "challenge et origin attendus"}}));
    };
    let session = match portal.challenges.redeem(challenge, origin) {
        Ok(s) => s,
        Err(ChallengeError::Replayed) => {
            return refuse("CHALLENGE_REPLAYED", "Cette tentative de connexion a déjà servi.")
        }
        Err(ChallengeError::Expired) => {
            return refuse("CHALLENGE_EXPIRED", "La tentative de connexion a expiré.")
        }
        Err(ChallengeError::Unknown) => {
            return refuse("CHALLENGE_UNKNOWN", "Tentative de connexion inconnue.")
        }
        Err(ChallengeError::OriginMismatch { .. }) => {
            return refuse("ORIGIN_MISMATCH", "Connexion demandée depuis un autre site.")
        }
    };
    let linked = portal.db.linked_account(&identity.national_id);
    let status = match linked {
        Ok(Some(_)) => "authenticated",
        Ok(None) => "link_required",
        Err(e) => return (500, json!({"error": {"code": "PORTAL_ERROR", "message": e.to_string()}})),
    };
    let holder = json!({"nom": identity.nom, "prenom": identity.prenom});
    let code = portal.issue_code(session, identity);
    (200, json!({"status": status, "code": code, "holder": holder}))
}

/// The code and French message of a refused card certificate.
pub fn card_refusal(e: &VerifyError) -> (&'static str, String) {
    match e {
        VerifyError::Revoked => ("CERTIFICATE_REVOKED", "Certificat de carte révoqué : cette carte a été mise en opposition.".to_owned()),
        VerifyError::RevocationUnknown { .. } | VerifyError::CrlExpired { .. } => (
            "REVOCATION_UNKNOWN",
            format!("Connexion refusée : le portail ne peut pas vérifier que la carte n'est pas révoquée (liste de révocation absente ou périmée). Réessayez plus tard ; si cela persiste, prévenez le support du site. ({e})"),
        ),
        other => ("CERTIFICATE_REFUSED", format!("Certificat de carte refusé : {other}")),
    }
}
