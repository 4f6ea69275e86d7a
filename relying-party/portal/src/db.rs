//! The portal's SQLite file: accounts (argon2 password hashes), card links keyed by the identifiant
//! national (so that a renewed card, with a new certificate, keeps working), and browser sessions (idle
//! and absolute lifetimes). The connection is behind a lock taken for each query only: the password hash
//! (argon2, tens of milliseconds on purpose) is checked outside it, so that one login does not hold up
//! every other request.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OptionalExtension};

pub struct Db(Mutex<Connection>);

/// How long a browser session lives: `idle` seconds without a request, `absolute` seconds at most.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: i64,
    pub absolute: i64,
}

impl Default for SessionLimits {
    /// 30 minutes idle, 12 hours in all (a working day).
    fn default() -> Self {
        Self { idle: 30 * 60, absolute: 12 * 3600 }
    }
}

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

/// What an account is created with.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountFields<'a> {
    pub username: &'a str,
    /// None makes a card-only account.
    pub password: Option<&'a str>,
    pub nom: &'a str,
    pub prenom: &'a str,
    pub profession: Option<&'a str>,
    /// "pro" (made by an administrator) or "liberal" (registered with a card).
    pub kind: &'a str,
    pub email: Option<&'a str>,
    pub telephone: Option<&'a str>,
    pub code_postal: Option<&'a str>,
    pub ville: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct CardLink {
    pub national_id: String,
    pub id_kind: String,
    pub linked_at: i64,
}

/// What a new session holds.
pub enum SessionState<'a> {
    LoggedIn(i64),
    /// A verified card identity (JSON) waiting for its first-time link.
    PendingLink {
        identity_json: &'a str,
        seconds: i64,
    },
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
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

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
        // Files made before sessions expired have no last_seen column.
        let has_last_seen =
            c.prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'last_seen'")?.exists([])?;
        if !has_last_seen {
            c.execute_batch("ALTER TABLE sessions ADD COLUMN last_seen INTEGER")?;
        }
        Ok(Self(Mutex::new(c)))
    }

    fn hash(password: &str) -> Result<String, DbError> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DbError::Hash(e.to_string()))
    }

    /// Creates an account.
    pub fn create_account(&self, a: &AccountFields) -> Result<i64, DbError> {
        let hash = a.password.map(Self::hash).transpose()?;
        let AccountFields {
            username,
            nom,
            prenom,
            profession,
            kind,
            email,
            telephone,
            code_postal,
            ville,
            ..
        } = *a;
        let c = self.conn();
        let r = c.execute(
            "INSERT INTO accounts (username, password_hash, nom, prenom, profession, email, telephone, code_postal, ville, kind, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![username, hash, nom, prenom, profession, email, telephone, code_postal, ville, kind, now()],
        );
        match r {
            Ok(_) => Ok(c.last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(DbError::UsernameTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn account_from_row(r: &rusqlite::Row) -> rusqlite::Result<Account> {
        Ok(Account {
            id: r.get(0)?,
            username: r.get(1)?,
            nom: r.get(2)?,
            prenom: r.get(3)?,
            profession: r.get(4)?,
            email: r.get(5)?,
            kind: r.get(6)?,
        })
    }

    const ACCOUNT_COLUMNS: &'static str = "id, username, nom, prenom, profession, email, kind";

    fn account_in(c: &Connection, id: i64) -> Result<Option<Account>, DbError> {
        Ok(c.query_row(
            &format!("SELECT {} FROM accounts WHERE id = ?1", Self::ACCOUNT_COLUMNS),
            [id],
            Self::account_from_row,
        )
        .optional()?)
    }

    pub fn account(&self, id: i64) -> Result<Option<Account>, DbError> {
        Self::account_in(&self.conn(), id)
    }

    /// The account whose username and password match (constant work whether the user exists or not).
    /// The database lock is held for the two lookups, not while the hash is checked.
    pub fn check_password(&self, username: &str, password: &str) -> Result<Option<Account>, DbError> {
        let row: Option<(i64, Option<String>)> = self
            .conn()
            .query_row("SELECT id, password_hash FROM accounts WHERE username = ?1", [username], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        // An unknown user costs one hash check too, so timing does not tell which usernames exist.
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = || DUMMY.get_or_init(|| Self::hash("dummy password").unwrap_or_default()).clone();
        let (id, hash) = match row {
            Some((id, Some(h))) => (Some(id), h),
            _ => (None, dummy()),
        };
        #[cfg(test)]
        tests::while_hashing(self);
        let ok = PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        match (ok, id) {
            (true, Some(id)) => self.account(id),
            _ => Ok(None),
        }
    }

    fn linked_account_in(c: &Connection, national_id: &str) -> Result<Option<Account>, DbError> {
        let id: Option<i64> = c
            .query_row("SELECT account_id FROM card_links WHERE national_id = ?1", [national_id], |r| {
                r.get(0)
            })
            .optional()?;
        match id {
            Some(id) => Self::account_in(c, id),
            None => Ok(None),
        }
    }

    /// The account linked to a national id, if any.
    pub fn linked_account(&self, national_id: &str) -> Result<Option<Account>, DbError> {
        Self::linked_account_in(&self.conn(), national_id)
    }

    /// Links a national id to an account; refused when it is linked to another one (checked and written
    /// under one lock).
    pub fn link(
        &self,
        national_id: &str,
        id_kind: &str,
        account_id: i64,
        certificate_serial: &str,
    ) -> Result<(), DbError> {
        let c = self.conn();
        if let Some(existing) = Self::linked_account_in(&c, national_id)? {
            if existing.id != account_id {
                return Err(DbError::AlreadyLinked);
            }
        }
        c.execute(
            "INSERT INTO card_links (national_id, id_kind, account_id, linked_at, last_certificate) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(national_id) DO UPDATE SET last_certificate = excluded.last_certificate",
            params![national_id, id_kind, account_id, now(), certificate_serial],
        )?;
        Ok(())
    }

    pub fn unlink(&self, account_id: i64) -> Result<usize, DbError> {
        Ok(self.conn().execute("DELETE FROM card_links WHERE account_id = ?1", [account_id])?)
    }

    pub fn links(&self, account_id: i64) -> Result<Vec<CardLink>, DbError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT national_id, id_kind, linked_at FROM card_links WHERE account_id = ?1 ORDER BY linked_at",
        )?;
        let rows = st.query_map([account_id], |r| {
            Ok(CardLink { national_id: r.get(0)?, id_kind: r.get(1)?, linked_at: r.get(2)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A new session (a random id the caller made), empty.
    pub fn create_session(&self, id: &str) -> Result<(), DbError> {
        let now = now();
        self.conn().execute(
            "INSERT OR IGNORE INTO sessions (id, created_at, last_seen) VALUES (?1, ?2, ?2)",
            params![id, now],
        )?;
        Ok(())
    }

    /// Whether the session exists and has not expired at `at`; a live one is marked as seen, an expired
    /// one is deleted (with every other expired session).
    pub fn touch_session(&self, id: &str, limits: SessionLimits, at: i64) -> Result<bool, DbError> {
        let c = self.conn();
        c.execute(
            "DELETE FROM sessions WHERE created_at <= ?1 - ?2 OR COALESCE(last_seen, created_at) <= ?1 - ?3",
            params![at, limits.absolute, limits.idle],
        )?;
        Ok(c.execute("UPDATE sessions SET last_seen = ?2 WHERE id = ?1", params![id, at])? == 1)
    }

    pub fn session_account(&self, id: &str) -> Result<Option<Account>, DbError> {
        let c = self.conn();
        let a: Option<Option<i64>> =
            c.query_row("SELECT account_id FROM sessions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        match a.flatten() {
            Some(a) => Self::account_in(&c, a),
            None => Ok(None),
        }
    }

    /// Ends session `old` (if any) and makes `new` in its place, logged in to `account_id` or holding a
    /// card identity that waits `seconds` for its first-time link: the session id changes whenever what
    /// the session may do changes, so that an id planted in the browser beforehand is worth nothing.
    pub fn replace_session(
        &self,
        old: Option<&str>,
        new: &str,
        state: SessionState<'_>,
    ) -> Result<(), DbError> {
        let mut c = self.conn();
        let tx = c.transaction()?;
        if let Some(old) = old {
            tx.execute("DELETE FROM sessions WHERE id = ?1", [old])?;
        }
        let now = now();
        match state {
            SessionState::LoggedIn(account_id) => tx.execute("INSERT INTO sessions (id, account_id, created_at, last_seen) VALUES (?1, ?2, ?3, ?3)", params![new, account_id, now])?,
            SessionState::PendingLink { identity_json, seconds } => tx.execute(
                "INSERT INTO sessions (id, pending_identity, pending_until, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![new, identity_json, now + seconds, now],
            )?,
        };
        tx.commit()?;
        Ok(())
    }

    pub fn log_out(&self, session: &str) -> Result<(), DbError> {
        self.conn().execute("DELETE FROM sessions WHERE id = ?1", [session])?;
        Ok(())
    }

    /// Keeps a card identity waiting for the first-time link, for `seconds`.
    #[cfg(test)]
    pub fn set_pending(&self, session: &str, identity_json: &str, seconds: i64) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE sessions SET pending_identity = ?2, pending_until = ?3 WHERE id = ?1",
            params![session, identity_json, now() + seconds],
        )?;
        Ok(())
    }

    /// The pending identity of the session, unless expired.
    pub fn pending(&self, session: &str) -> Result<Option<String>, DbError> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn()
            .query_row("SELECT pending_identity, pending_until FROM sessions WHERE id = ?1", [session], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(match row {
            Some((Some(p), Some(until))) if until > now() => Some(p),
            _ => None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;

    type Hook = Box<dyn Fn(&Db)>;

    thread_local! {
        /// Called by `check_password` of this thread right before the hash is checked.
        static WHILE_HASHING: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    pub(crate) fn while_hashing(db: &Db) {
        WHILE_HASHING.with(|h| {
            if let Some(f) = h.borrow().as_ref() {
                f(db);
            }
        });
    }

    /// Runs `f` (in this thread) while this thread's password checks hash.
    pub(crate) fn set_while_hashing(f: Option<Hook>) {
        WHILE_HASHING.with(|h| *h.borrow_mut() = f);
    }

    #[test]
    fn sessions_expire_when_idle_and_at_their_lifetime() {
        let path = std::env::temp_dir().join(format!("cpx-portal-sessions-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = Db::open(&path).unwrap();
        let limits = SessionLimits { idle: 60, absolute: 600 };
        let t0 = now();
        db.create_session("idle").unwrap();
        assert!(db.touch_session("idle", limits, t0 + 30).unwrap());
        assert!(db.touch_session("idle", limits, t0 + 80).unwrap(), "50 s after the last request");
        assert!(!db.touch_session("idle", limits, t0 + 141).unwrap(), "61 s without a request");
        assert!(!db.touch_session("idle", limits, t0 + 142).unwrap(), "deleted");
        db.create_session("busy").unwrap();
        for at in (t0..t0 + 600).step_by(50) {
            assert!(db.touch_session("busy", limits, at).unwrap(), "used every 50 s, at {}", at - t0);
        }
        assert!(
            !db.touch_session("busy", limits, t0 + 600).unwrap(),
            "12 hours (here 600 s) at most, however busy"
        );
        assert!(!db.touch_session("never-made", limits, t0).unwrap());
        // A new id replaces the old one when the session logs in.
        let a = db
            .create_account(&AccountFields {
                username: "amelie",
                nom: "MARTIN",
                prenom: "AMELIE",
                kind: "pro",
                ..Default::default()
            })
            .unwrap();
        db.create_session("before").unwrap();
        db.replace_session(Some("before"), "after", SessionState::LoggedIn(a)).unwrap();
        assert!(!db.touch_session("before", limits, now()).unwrap());
        assert!(db.touch_session("after", limits, now()).unwrap());
        assert_eq!(db.session_account("after").unwrap().map(|x| x.id), Some(a));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn an_older_file_gets_the_last_seen_column() {
        let path = std::env::temp_dir().join(format!("cpx-portal-old-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE sessions (id TEXT PRIMARY KEY, account_id INTEGER, pending_identity TEXT, pending_until INTEGER, created_at INTEGER NOT NULL); INSERT INTO sessions (id, created_at) VALUES ('old', 0);").unwrap();
        let db = Db::open(&path).unwrap();
        db.create_session("new").unwrap();
        assert!(db.touch_session("new", SessionLimits::default(), now()).unwrap());
        assert!(
            !db.touch_session("old", SessionLimits::default(), now()).unwrap(),
            "a session of 1970 has expired"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn accounts_links_and_sessions() {
        let path = std::env::temp_dir().join(format!("cpx-portal-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = Db::open(&path).unwrap();
        let a = db
            .create_account(&AccountFields {
                username: "amelie",
                password: Some("s3cret"),
                nom: "MARTIN",
                prenom: "AMELIE",
                profession: Some("Infirmière"),
                kind: "pro",
                ..Default::default()
            })
            .unwrap();
        let b = db
            .create_account(&AccountFields {
                username: "bruno",
                password: Some("other"),
                nom: "B",
                prenom: "B",
                kind: "pro",
                ..Default::default()
            })
            .unwrap();
        assert!(matches!(
            db.create_account(&AccountFields {
                username: "amelie",
                nom: "x",
                prenom: "y",
                kind: "pro",
                ..Default::default()
            }),
            Err(DbError::UsernameTaken)
        ));
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
