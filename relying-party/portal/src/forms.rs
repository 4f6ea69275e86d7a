//! What the portal reads from a browser's request before any database call: form fields
//! (`application/x-www-form-urlencoded`), the session cookie, and the first-time linking form. A library
//! module so that the fuzz target `portal_form` reaches it (docs/fuzzing.md); nothing here may panic.

/// `application/x-www-form-urlencoded` fields (the WHATWG decoding: `+` is a space, `%XX` a byte, a `%`
/// not followed by two hex digits is kept as it is, bytes that are not UTF-8 become U+FFFD).
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// The first field named `name`, trimmed; empty when absent.
pub fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
}

/// The session cookie's name. The `__Host-` prefix makes browsers accept it only when set `Secure`, with
/// `Path=/` and no `Domain`, by this very host over HTTPS: a sibling subdomain or a plain-HTTP answer
/// cannot plant a session id in the professional's browser.
pub const SESSION_COOKIE: &str = "__Host-cpx_session";

/// The session cookie's value in a `Cookie` header (`a=1; __Host-cpx_session=…; b=2`), if any. A cookie
/// named without the prefix is not the session.
pub fn session_cookie(cookie: &str) -> Option<&str> {
    cookie.split(';').find_map(|kv| kv.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// The first-time linking form's new account (« Créer mon compte »), checked.
#[derive(Debug, PartialEq, Eq)]
pub struct NewAccount<'a> {
    /// E-mail address.
    pub mail: &'a str,
    /// Telephone number, optional.
    pub telephone: Option<&'a str>,
    /// Postal code.
    pub code_postal: &'a str,
    /// Town.
    pub ville: &'a str,
}

impl<'a> NewAccount<'a> {
    /// The fields `mail`, `telephone` (optional), `code_postal` (5 digits) and `ville`; the error is the
    /// page's message.
    pub fn from_form(f: &'a [(String, String)]) -> Result<Self, &'static str> {
        let (mail, tel, cp, ville) =
            (field(f, "mail"), field(f, "telephone"), field(f, "code_postal"), field(f, "ville"));
        if !mail.contains('@') || mail.len() < 3 {
            return Err("Adresse mail invalide.");
        }
        if cp.len() != 5 || !cp.bytes().all(|b| b.is_ascii_digit()) || ville.is_empty() {
            return Err("Code postal (5 chiffres) et ville sont obligatoires.");
        }
        Ok(Self { mail, telephone: (!tel.is_empty()).then_some(tel), code_postal: cp, ville })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_without_panicking() {
        let pairs = |body: &str| form(body.as_bytes());
        let owned =
            |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        // A `%` followed by a multi-byte character used to slice inside it and panic.
        assert_eq!(pairs("username=%aé&password=x"), owned(&[("username", "%aé"), ("password", "x")]));
        assert_eq!(pairs("username=%&password=%"), owned(&[("username", "%"), ("password", "%")]));
        assert_eq!(pairs("username=%G1&password=%é"), owned(&[("username", "%G1"), ("password", "%é")]));
        assert_eq!(pairs("a=mot+de%2Bpasse+%C3%A9"), owned(&[("a", "mot de+passe é")]));
        assert_eq!(pairs("a=%FF"), owned(&[("a", "\u{FFFD}")]));
        assert!(pairs("").is_empty());
    }

    #[test]
    fn the_session_cookie_among_others() {
        assert_eq!(session_cookie("theme=dark; __Host-cpx_session=abc; x=1"), Some("abc"));
        assert_eq!(session_cookie("__Host-cpx_session="), Some(""));
        assert_eq!(session_cookie("cpx_session=abc"), None, "the name without its prefix");
        assert_eq!(session_cookie("__Host-cpx_sessionx=abc"), None);
        assert_eq!(session_cookie("x__Host-cpx_session=abc"), None);
        assert_eq!(session_cookie(""), None);
    }

    #[test]
    fn the_new_account_form_is_checked() {
        let f = form(b"mail=+a%40b.fr&telephone=&code_postal=75001&ville=Paris");
        assert_eq!(
            NewAccount::from_form(&f),
            Ok(NewAccount { mail: "a@b.fr", telephone: None, code_postal: "75001", ville: "Paris" })
        );
        assert!(NewAccount::from_form(&form(b"mail=ab&code_postal=75001&ville=Paris")).is_err());
        assert!(
            NewAccount::from_form(&form("mail=a@b&code_postal=７5001&ville=Paris".as_bytes())).is_err(),
            "digits are ASCII digits"
        );
        assert!(NewAccount::from_form(&form(b"mail=a@b&code_postal=75001&ville=+")).is_err());
    }
}
