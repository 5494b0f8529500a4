//! Local users for gateway-owned logins: argon2id hashes in SQLite.

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

pub struct UserStore {
    conn: Mutex<Connection>,
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
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let conn = super::sqlite::open(path)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
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
        let conn = self.conn.lock().expect("db lock");
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO users (username, password_hash, groups, created, updated) VALUES (?1, ?2, ?3, ?4, ?4)",
            params![username, hash, groups.join(","), Self::now()],
        )?;
        if inserted == 0 {
            return Err(StorageError::UserExists(username.to_string()));
        }
        Ok(())
    }

    pub fn set_password(&self, username: &str, password: &str) -> Result<(), StorageError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        self.update_one(
            username,
            "UPDATE users SET password_hash = ?2, updated = ?3 WHERE username = ?1",
            &hash,
        )
    }

    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), StorageError> {
        self.update_one(
            username,
            "UPDATE users SET disabled = ?2, updated = ?3 WHERE username = ?1",
            &disabled,
        )
    }

    /// Run an update of one user's row (`?1` user, `?2` value, `?3` now); the user must exist.
    fn update_one(
        &self,
        username: &str,
        sql: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<(), StorageError> {
        let n = self
            .conn
            .lock()
            .expect("db lock")
            .execute(sql, params![username, value, Self::now()])?;
        (n == 1)
            .then_some(())
            .ok_or_else(|| StorageError::NoSuchUser(username.to_string()))
    }

    pub fn list(&self) -> Result<Vec<User>, StorageError> {
        let conn = self.conn.lock().expect("db lock");
        let mut stmt = conn
            .prepare("SELECT username, groups, disabled, created FROM users ORDER BY username")?;
        let rows = stmt.query_map([], |r| {
            let groups: String = r.get(1)?;
            Ok(User {
                username: r.get(0)?,
                groups: groups
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect(),
                disabled: r.get(2)?,
                created: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The user, if the password matches and the account is enabled. Unknown, disabled and
    /// wrong-password cases take the same time and give the same answer. Blocking: call it
    /// off the async workers.
    pub fn verify(&self, username: &str, password: &str) -> Result<Option<User>, StorageError> {
        let row: Option<(String, String, bool, i64)> = {
            let conn = self.conn.lock().expect("db lock");
            conn.query_row(
                "SELECT password_hash, groups, disabled, created FROM users WHERE username = ?1",
                params![username],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
        };
        let Some((hash, groups, disabled, created)) = row else {
            verify_hash(password, &DUMMY_HASH);
            return Ok(None);
        };
        let ok = verify_hash(password, &hash);
        Ok((ok && !disabled).then(|| User {
            username: username.to_string(),
            groups: groups
                .split(',')
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect(),
            disabled,
            created,
        }))
    }
}

#[cfg(test)]
mod tests;
