//! Per-person API tokens for automation (`vigie tokens create|list|revoke`): each names its
//! holder, carries one console role, expires, and is kept as a keyed digest only (the
//! [`KeyRing`]'s, so a copy of the database opens nothing). The admin API acts in the
//! holder's name and within the role; the old shared token still works, with a warning.
//!
//! A token reads `vgt_<id>_<secret>`: the id finds the row, the secret is compared (as a
//! keyed digest, in constant time).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, OptionalExtension};
use subtle::ConstantTimeEq;

use super::StorageError;
use crate::console::roles::Role;
use crate::factors::crypto::KeyRing;

const PURPOSE: &str = "vigie/api-token";

/// What a token's digest covers: the secret and the row (id, holder, role, expiry), so an
/// edited row (another holder, a wider role, a later expiry) matches nothing.
fn material(row: &TokenRow, secret: &str) -> Vec<u8> {
    serde_json::json!([row.id, row.name, row.role, row.expires, secret])
        .to_string()
        .into_bytes()
}

/// A token as kept (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub digest: String,
    /// Unix seconds.
    pub created: i64,
    pub expires: i64,
    pub revoked: bool,
}

pub trait TokenRows: Send + Sync {
    fn insert(&self, row: &TokenRow) -> Result<(), StorageError>;
    fn get(&self, id: &str) -> Result<Option<TokenRow>, StorageError>;
    fn list(&self) -> Result<Vec<TokenRow>, StorageError>;
    /// `false` when there is no such token.
    fn revoke(&self, id: &str) -> Result<bool, StorageError>;
}

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub role: Role,
    pub id: String,
}

pub struct ApiTokens {
    rows: Arc<dyn TokenRows>,
    keys: Arc<KeyRing>,
}

pub fn parse_role(s: &str) -> Option<Role> {
    match s {
        "soc" => Some(Role::Soc),
        "dpo" => Some(Role::Dpo),
        "it" => Some(Role::It),
        _ => None,
    }
}

impl ApiTokens {
    pub fn new(rows: Arc<dyn TokenRows>, keys: Arc<KeyRing>) -> Self {
        Self { rows, keys }
    }

    /// A new token for `name` in `role`, valid `days`; the token text (shown once) and its id.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        days: u32,
        now: i64,
    ) -> Result<(String, String), StorageError> {
        let id = format!("{:08x}", rand::random::<u32>());
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let mut row = TokenRow {
            id: id.clone(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            digest: String::new(),
            created: now,
            expires: now + i64::from(days) * 86_400,
            revoked: false,
        };
        row.digest = self
            .keys
            .digests(PURPOSE, &material(&row, &secret))
            .swap_remove(0);
        self.rows.insert(&row)?;
        Ok((format!("vgt_{id}_{secret}"), id))
    }

    /// The holder of `token`, if it is one of ours, unrevoked and unexpired at `now`.
    pub fn check(&self, token: &str, now: i64) -> Result<Option<Holder>, StorageError> {
        let Some((id, secret)) = token
            .strip_prefix("vgt_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(row) = self.rows.get(id)? else {
            // The same work as for a known id: no timing tells which ids exist.
            let _ = self.keys.digests(PURPOSE, secret.as_bytes());
            return Ok(None);
        };
        let matches = self
            .keys
            .digests(PURPOSE, &material(&row, secret))
            .iter()
            .any(|d| bool::from(d.as_bytes().ct_eq(row.digest.as_bytes())));
        let role = parse_role(&row.role);
        Ok(match (matches && !row.revoked && now < row.expires, role) {
            (true, Some(role)) => Some(Holder {
                name: row.name,
                role,
                id: row.id,
            }),
            _ => None,
        })
    }

    pub fn list(&self) -> Result<Vec<TokenRow>, StorageError> {
        self.rows.list()
    }

    pub fn revoke(&self, id: &str) -> Result<bool, StorageError> {
        self.rows.revoke(id)
    }
}

/// Tokens in the SQLite file.
pub struct SqliteTokens(Mutex<rusqlite::Connection>);

impl SqliteTokens {
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        Ok(Self(Mutex::new(crate::storage::sqlite::open(path)?)))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        digest: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        revoked: r.get(6)?,
    })
}

const COLUMNS: &str = "id, name, role, digest, created, expires, revoked";

impl TokenRows for SqliteTokens {
    fn insert(&self, t: &TokenRow) -> Result<(), StorageError> {
        self.conn().execute(
            "INSERT INTO api_tokens (id, name, role, digest, created, expires, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t.id, t.name, t.role, t.digest, t.created, t.expires, t.revoked],
        )?;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<TokenRow>, StorageError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    fn list(&self) -> Result<Vec<TokenRow>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created"
        ))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke(&self, id: &str) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "UPDATE api_tokens SET revoked = 1, digest = 'revoked' WHERE id = ?1",
            [id],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_speaks_for_its_holder_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let rows = Arc::new(SqliteTokens::open(&dir.path().join("vigie.sqlite")).unwrap());
        let keys = Arc::new(KeyRing::ephemeral());
        let tokens = ApiTokens::new(rows.clone(), keys.clone());
        let (token, id) = tokens.create("siem-bot", Role::Soc, 30, 1_000).unwrap();
        let holder = tokens.check(&token, 1_001).unwrap().unwrap();
        assert_eq!((holder.name.as_str(), holder.role), ("siem-bot", Role::Soc));
        assert!(
            tokens.check(&token, 1_000 + 30 * 86_400).unwrap().is_none(),
            "expired"
        );
        // Another secret with the same id, another ring, a shape of our own: nothing.
        let forged = format!("vgt_{id}_{}", "0".repeat(64));
        assert!(tokens.check(&forged, 1_001).unwrap().is_none());
        let elsewhere = ApiTokens::new(rows.clone(), Arc::new(KeyRing::ephemeral()));
        assert!(elsewhere.check(&token, 1_001).unwrap().is_none());
        for junk in [
            "",
            "vgt_",
            "vgt_zz_x",
            &token[..token.len() - 1],
            "Bearer x",
        ] {
            assert!(tokens.check(junk, 1_001).unwrap().is_none(), "{junk}");
        }
        // Only a digest is kept.
        let listed = tokens.list().unwrap();
        assert!(!listed[0].digest.contains(&token[13..]));
        // The row edited by someone who can write the database: a wider role, another
        // holder, a later expiry; each matches nothing.
        let conn = rusqlite::Connection::open(dir.path().join("vigie.sqlite")).unwrap();
        for (sql, back) in [
            (
                "UPDATE api_tokens SET role = 'it'",
                "UPDATE api_tokens SET role = 'soc'",
            ),
            (
                "UPDATE api_tokens SET name = 'ivan.it'",
                "UPDATE api_tokens SET name = 'siem-bot'",
            ),
            (
                "UPDATE api_tokens SET expires = expires + 86400",
                "UPDATE api_tokens SET expires = expires - 86400",
            ),
        ] {
            conn.execute(sql, []).unwrap();
            assert!(tokens.check(&token, 1_001).unwrap().is_none(), "{sql}");
            conn.execute(back, []).unwrap();
        }
        assert!(tokens.check(&token, 1_001).unwrap().is_some());
        assert!(tokens.revoke(&id).unwrap());
        assert!(tokens.check(&token, 1_001).unwrap().is_none(), "revoked");
        conn.execute("UPDATE api_tokens SET revoked = 0", [])
            .unwrap();
        assert!(
            tokens.check(&token, 1_001).unwrap().is_none(),
            "a revocation is not undone"
        );
        assert!(!tokens.revoke("00000000").unwrap());
    }
}
