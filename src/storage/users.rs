//! Local users for gateway-owned logins: argon2id hashes, in the SQLite file or (with
//! `records = "postgres"`) in PostgreSQL, so every replica knows the same users.

use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use once_cell::sync::Lazy;
use rusqlite::{params, Connection, OptionalExtension};

use super::StorageError;

/// A user as listed (never with the hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub groups: Vec<String>,
    pub disabled: bool,
    pub created: i64,
}

/// A user's row as stored: (password hash, groups joined by commas, disabled, created).
pub type UserRow = (String, String, bool, i64);

/// Where the rows live. The hashing and the rules stay in [`UserStore`].
pub trait UserRows: Send + Sync {
    /// Insert a new user; `false` if the name is taken.
    fn insert(
        &self,
        username: &str,
        hash: &str,
        groups: &str,
        now: i64,
    ) -> Result<bool, StorageError>;
    /// Replace the password hash; `false` if there is no such user.
    fn set_hash(&self, username: &str, hash: &str, now: i64) -> Result<bool, StorageError>;
    /// `false` if there is no such user.
    fn set_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool, StorageError>;
    /// Every user, by name: (name, row).
    fn list(&self) -> Result<Vec<(String, UserRow)>, StorageError>;
    fn get(&self, username: &str) -> Result<Option<UserRow>, StorageError>;
}

pub struct UserStore {
    rows: Box<dyn UserRows>,
}

/// Users in the SQLite file.
struct SqliteUsers {
    conn: Mutex<Connection>,
}

impl UserRows for SqliteUsers {
    fn insert(
        &self,
        username: &str,
        hash: &str,
        groups: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let n = self.conn.lock().expect("db lock").execute(
            "INSERT OR IGNORE INTO users (username, password_hash, groups, created, updated) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![username, hash, groups, now],
        )?;
        Ok(n == 1)
    }

    fn set_hash(&self, username: &str, hash: &str, now: i64) -> Result<bool, StorageError> {
        let n = self.conn.lock().expect("db lock").execute(
            "UPDATE users SET password_hash = ?2, updated = ?3 WHERE username = ?1",
            params![username, hash, now],
        )?;
        Ok(n == 1)
    }

    fn set_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<bool, StorageError> {
        let n = self.conn.lock().expect("db lock").execute(
            "UPDATE users SET disabled = ?2, updated = ?3 WHERE username = ?1",
            params![username, disabled, now],
        )?;
        Ok(n == 1)
    }

    fn list(&self) -> Result<Vec<(String, UserRow)>, StorageError> {
        let conn = self.conn.lock().expect("db lock");
        let mut stmt = conn.prepare(
            "SELECT username, password_hash, groups, disabled, created FROM users ORDER BY username",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get(&self, username: &str) -> Result<Option<UserRow>, StorageError> {
        let conn = self.conn.lock().expect("db lock");
        Ok(conn
            .query_row(
                "SELECT password_hash, groups, disabled, created FROM users WHERE username = ?1",
                params![username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
    }
}

fn user(username: String, (_, groups, disabled, created): UserRow) -> User {
    User {
        username,
        groups: groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        disabled,
        created,
    }
}

/// Verified against when the user does not exist, so an unknown name costs as much time
/// as a wrong password (threat model 16).
static DUMMY_HASH: Lazy<String> =
    Lazy::new(|| hash_password("dummy password for timing equality").expect("hashing works"));

fn hash_password(password: &str) -> Result<String, StorageError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StorageError::Hash(e.to_string()))
}

fn verify_hash(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Whether `username` has the shape of a local user's name (1 to 64 letters, digits, `.`,
/// `_`, `-` or `@`): what is not is refused before any lookup, and never logged.
pub fn valid_name(username: &str) -> bool {
    check_name(username).is_ok()
}

fn check_name(username: &str) -> Result<(), StorageError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        StorageError::BadUserName(
            username
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect(),
        )
    })
}

fn check_password(password: &str) -> Result<(), StorageError> {
    (password.chars().count() >= 12)
        .then_some(())
        .ok_or(StorageError::WeakPassword)
}

impl UserStore {
    /// The users of the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let conn = super::sqlite::open(path)?;
        Ok(Self::new(Box::new(SqliteUsers {
            conn: Mutex::new(conn),
        })))
    }

    pub fn new(rows: Box<dyn UserRows>) -> Self {
        Self { rows }
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    pub fn add(
        &self,
        username: &str,
        password: &str,
        groups: &[String],
    ) -> Result<(), StorageError> {
        check_name(username)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        if !self
            .rows
            .insert(username, &hash, &groups.join(","), Self::now())?
        {
            return Err(StorageError::UserExists(username.to_string()));
        }
        Ok(())
    }

    pub fn set_password(&self, username: &str, password: &str) -> Result<(), StorageError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let found = self.rows.set_hash(username, &hash, Self::now())?;
        found
            .then_some(())
            .ok_or_else(|| StorageError::NoSuchUser(username.to_string()))
    }

    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), StorageError> {
        let found = self.rows.set_disabled(username, disabled, Self::now())?;
        found
            .then_some(())
            .ok_or_else(|| StorageError::NoSuchUser(username.to_string()))
    }

    pub fn list(&self) -> Result<Vec<User>, StorageError> {
        Ok(self
            .rows
            .list()?
            .into_iter()
            .map(|(name, row)| user(name, row))
            .collect())
    }

    /// The user as kept now (no password check): the console re-reads its analysts with it.
    pub fn find(&self, username: &str) -> Result<Option<User>, StorageError> {
        Ok(self
            .rows
            .get(username)?
            .map(|row| user(username.to_string(), row)))
    }

    /// The user, if the password matches and the account is enabled. Unknown, disabled and
    /// wrong-password cases take the same time and give the same answer. Blocking: call it
    /// off the async workers.
    pub fn verify(&self, username: &str, password: &str) -> Result<Option<User>, StorageError> {
        let Some(row) = self.rows.get(username)? else {
            verify_hash(password, &DUMMY_HASH);
            return Ok(None);
        };
        let ok = verify_hash(password, &row.0);
        let disabled = row.2;
        Ok((ok && !disabled).then(|| user(username.to_string(), row)))
    }
}

#[cfg(test)]
pub(crate) mod tests;
