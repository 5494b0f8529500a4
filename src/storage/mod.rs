//! Where Vigie keeps what must outlive a request: the embedded SQLite file ([`sqlite`]) and
//! its stores, and the health of the state shared through Redis ([`shared_state`]).

pub mod holds;
pub mod open;
pub mod postgres;
pub mod redis;
pub mod session_key;
pub mod sessions;
pub mod shared_state;
pub mod sqlite;
pub mod tokens;
pub mod users;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    #[error("invalid user name `{0}`: use 1 to 64 letters, digits, `.`, `_`, `-` or `@`")]
    BadUserName(String),
    #[error("password too short: at least 12 characters")]
    WeakPassword,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Open(#[from] sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
}
