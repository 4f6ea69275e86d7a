//! The portal's SQLite file: accounts (argon2 password hashes), card links keyed by the identifiant
//! national (so that a renewed card, with a new certificate, keeps working), and browser sessions.

use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension};

pub struct Db(Connection);

#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub nom: String,
    pub prenom: String,
    pub profession: Option<String>,
    pub email: Option<String>,
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct CardLink {
    pub national_id: String,
    pub id_kind: String,
    pub linked_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("this card is already linked to another account")]
    AlreadyLinked,
    #[error("username already taken")]
    UsernameTaken,
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let c = Connection::open(path)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE IF NOT EXISTS accounts (
                 id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT,
                 nom TEXT NOT NULL, prenom TEXT NOT NULL, profession TEXT, email TEXT, telephone TEXT,
                 code_postal TEXT, ville TEXT, kind TEXT NOT NULL DEFAULT 'pro', created_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS card_links (
                 national_id TEXT PRIMARY KEY, id_kind TEXT NOT NULL,
                 account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                 linked_at INTEGER NOT NULL, last_certificate TEXT);
             CREATE TABLE IF NOT EXISTS sessions (
                 id TEXT PRIMARY KEY, account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
                 pending_identity TEXT, pending_until INTEGER, created_at INTEGER NOT NULL);",
        )?;
        Ok(Self(c))
    }

    fn hash(password: &str) -> Result<String, DbError> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| DbError::Hash(e.to_string()))
    }

    /// Creates an account; `password` None makes a card-only account.
    pub fn create_account(&self, username: &str, password: Option<&str>, nom: &str, prenom: &str, profession: Option<&str>, kind: &str, contact: [Option<&str>; 4]) -> Result<i64, DbError> {
        let hash = password.map(Self::hash).transpose()?;
        let [email, telephone, code_postal, ville] = contact;
        let r = self.0.execute(
            "INSERT INTO accounts (username, password_hash, nom, prenom, profession, email, telephone, code_postal, ville, kind, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![username, hash, nom, prenom, profession, email, telephone, code_postal, ville, kind, now()],
        );
        match r {
            Ok(_) => Ok(self.0.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => Err(DbError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    fn account_from_row(r: &rusqlite::Row) -> rusqlite::Result<Account> {
        Ok(Account { id: r.get(0)?, username: r.get(1)?, nom: r.get(2)?, prenom: r.get(3)?, profession: r.get(4)?, email: r.get(5)?, kind: r.get(6)? })
    }

    const ACCOUNT_COLUMNS: &'static str = "id, username, nom, prenom, profession, email, kind";

    pub fn account(&self, id: i64) -> Result<Option<Account>, DbError> {
        Ok(self.0.query_row(&format!("SELECT {} FROM accounts WHERE id = ?1", Self::ACCOUNT_COLUMNS), [id], Self::account_from_row).optional()?)
    }

    /// The account whose username and password match (constant work whether the user exists or not).
    pub fn check_password(&self, username: &str, password: &str) -> Result<Option<Account>, DbError> {
        let row: Option<(i64, Option<String>)> = self.0.query_row("SELECT id, password_hash FROM accounts WHERE username = ?1", [username], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        // An unknown user costs one hash check too, so timing does not tell which usernames exist.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = || DUMMY.get_or_init(|| Self::hash("dummy password").unwrap_or_default()).clone();
        let (id, hash) = match row {
            Some((id, Some(h))) => (Some(id), h),
            _ => (None, dummy()),
        };
        let ok = PasswordHash::new(&hash).map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false);
        match (ok, id) {
            (true, Some(id)) => self.account(id),
            _ => Ok(None),
        }
    }

    /// The account linked to a national id, if any.
    pub fn linked_account(&self, national_id: &str) -> Result<Option<Account>, DbError> {
        let id: Option<i64> = self.0.query_row("SELECT account_id FROM card_links WHERE national_id = ?1", [national_id], |r| r.get(0)).optional()?;
        match id {
            Some(id) => self.account(id),
            None => Ok(None),
        }
    }

    /// Links a national id to an account; refused when it is linked to another one.
    pub fn link(&self, national_id: &str, id_kind: &str, account_id: i64, certificate_serial: &str) -> Result<(), DbError> {
        if let Some(existing) = self.linked_account(national_id)? {
            if existing.id != account_id {
                return Err(DbError::AlreadyLinked);
            }
        }
        self.0.execute(
            "INSERT INTO card_links (national_id, id_kind, account_id, linked_at, last_certificate) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(national_id) DO UPDATE SET last_certificate = excluded.last_certificate",
            params![national_id, id_kind, account_id, now(), certificate_serial],
        )?;
        Ok(())
    }

    pub fn unlink(&self, account_id: i64) -> Result<usize, DbError> {
        Ok(self.0.execute("DELETE FROM card_links WHERE account_id = ?1", [account_id])?)
    }

    pub fn links(&self, account_id: i64) -> Result<Vec<CardLink>, DbError> {
        let mut st = self.0.prepare("SELECT national_id, id_kind, linked_at FROM card_links WHERE account_id = ?1 ORDER BY linked_at")?;
        let rows = st.query_map([account_id], |r| Ok(CardLink { national_id: r.get(0)?, id_kind: r.get(1)?, linked_at: r.get(2)? }))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn create_session(&self, id: &str) -> Result<(), DbError> {
        self.0.execute("INSERT OR IGNORE INTO sessions (id, created_at) VALUES (?1, ?2)", params![id, now()])?;
        Ok(())
    }

    pub fn session_exists(&self, id: &str) -> Result<bool, DbError> {
        Ok(self.0.query_row("SELECT 1 FROM sessions WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
    }

    pub fn session_account(&self, id: &str) -> Result<Option<Account>, DbError> {
        let a: Option<Option<i64>> = self.0.query_row("SELECT account_id FROM sessions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        match a.flatten() {
            Some(a) => self.account(a),
            None => Ok(None),
        }
    }

    pub fn log_in(&self, session: &str, account_id: i64) -> Result<(), DbError> {
        self.0.execute("UPDATE sessions SET account_id = ?2, pending_identity = NULL, pending_until = NULL WHERE id = ?1", params![session, account_id])?;
        Ok(())
    }

    pub fn log_out(&self, session: &str) -> Result<(), DbError> {
        self.0.execute("DELETE FROM sessions WHERE id = ?1", [session])?;
        Ok(())
    }

    /// Keeps a card identity waiting for the first-time link, for `seconds`.
    pub fn set_pending(&self, session: &str, identity_json: &str, seconds: i64) -> Result<(), DbError> {
        self.0.execute("UPDATE sessions SET pending_identity = ?2, pending_until = ?3 WHERE id = ?1", params![session, identity_json, now() + seconds])?;
        Ok(())
    }

    /// The pending identity of the session, unless expired.
    pub fn pending(&self, session: &str) -> Result<Option<String>, DbError> {
        let row: Option<(Option<String>, Option<i64>)> = self.0.query_row("SELECT pending_identity, pending_until FROM sessions WHERE id = ?1", [session], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        Ok(match row {
            Some((Some(p), Some(until))) if until > now() => Some(p),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_links_and_sessions() {
        let path = std::env::temp_dir().join(format!("cpx-portal-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = Db::open(&path).unwrap();
        let a = db.create_account("amelie", Some("s3cret"), "MARTIN", "AMELIE", Some("Infirmière"), "pro", [None; 4]).unwrap();
        let b = db.create_account("bruno", Some("other"), "B", "B", None, "pro", [None; 4]).unwrap();
        assert!(matches!(db.create_account("amelie", None, "x", "y", None, "pro", [None; 4]), Err(DbError::UsernameTaken)));
        assert_eq!(db.check_password("amelie", "s3cret").unwrap().map(|x| x.id), Some(a));
        assert!(db.check_password("amelie", "wrong").unwrap().is_none());
        assert!(db.check_password("nobody", "s3cret").unwrap().is_none());
        db.link("899700123456", "RPPS", a, "1002").unwrap();
        assert!(matches!(db.link("899700123456", "RPPS", b, "1002"), Err(DbError::AlreadyLinked)));
        db.link("899700123456", "RPPS", a, "2001").unwrap();
        assert_eq!(db.linked_account("899700123456").unwrap().map(|x| x.id), Some(a));
        assert_eq!(db.unlink(a).unwrap(), 1);
        db.link("899700123456", "RPPS", b, "2001").unwrap();
        db.create_session("s1").unwrap();
        db.set_pending("s1", "{}", 600).unwrap();
        assert!(db.pending("s1").unwrap().is_some());
        db.set_pending("s1", "{}", -1).unwrap();
        assert!(db.pending("s1").unwrap().is_none(), "expired");
        let _ = std::fs::remove_file(&path);
    }
}
