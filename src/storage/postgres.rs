//! PostgreSQL for durable records (`[storage] records = "postgres"`): locks, holds, alerts,
//! second factors and their counters, local users, shared by every replica and kept by the hospital's
//! own database service (its backups, its replication).
//!
//! One [`Pg`] per process owns the pool and a small runtime of its own, on its own thread.
//! Every call goes through it with one deadline and one retry: callers on Pingora's runtimes
//! await it, synchronous callers (the alert sink thread, the detector's hold writes) block on
//! it, and neither kind can starve the other or run a connection on a runtime that stops.
//! A call broken by a lost connection is made once more on a fresh one: every statement here
//! is written so that running it twice changes nothing more than running it once (upserts,
//! conditional updates, deletes); a claim whose first try landed answers "already used".

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};

pub mod alerts;
pub mod audit;
pub mod epoch;
pub mod factors;
pub mod holds;
pub mod import;
pub mod locks;
mod migrations;
pub mod tokens;
pub mod users;

/// How long one call (connection, statements, the retry) may take before it fails.
const DEADLINE: Duration = Duration::from_secs(5);
/// Connections per replica: the records are small and the statements short.
const POOL_SIZE: usize = 8;

/// `[storage] postgres_*`, checked at validation.
#[derive(Clone)]
pub struct PgSettings {
    /// Parsed from `postgres_url`, with the password from `postgres_password_file`.
    pub config: tokio_postgres::Config,
    /// `postgres_ca_file`: the CA that signed the server's certificate (system roots if unset).
    pub ca: Option<Vec<u8>>,
    /// Where the server is (user, hosts, database, sslmode), for messages: never a password.
    pub shown: String,
}

impl std::fmt::Debug for PgSettings {
    // The parsed config carries the password: only the URL without it is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL at {at}: {message}")]
    Unavailable { at: String, message: String },
    #[error("PostgreSQL at {at} did not answer within {}s", DEADLINE.as_secs())]
    Timeout { at: String },
    #[error("PostgreSQL TLS: {0}")]
    Tls(String),
    #[error("cannot start the PostgreSQL runtime: {0}")]
    Runtime(String),
    #[error("the PostgreSQL schema is at version {found}, newer than this Vigie knows ({known}): run the newer Vigie, or restore a backup made before the upgrade")]
    TooNew { found: i32, known: i32 },
    #[error("PostgreSQL schema migration {version} ({name}) failed: {message}")]
    Migration {
        version: i32,
        name: &'static str,
        message: String,
    },
}

impl From<PgError> for crate::identity::store::StoreError {
    fn from(e: PgError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// The pool and the runtime its connections live on. Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    rt: tokio::runtime::Handle,
    at: Arc<str>,
    /// This records database's own name, made with its schema: a database emptied or
    /// replaced has another.
    instance: Arc<str>,
    /// Dropped with the last clone: the runtime's thread then ends.
    _stop: Arc<std::sync::mpsc::SyncSender<()>>,
}

impl Pg {
    /// Connect, and bring the schema up to date (under an advisory lock, so replicas starting
    /// together do not race). Fails when the server cannot be reached: a gateway that would
    /// lose its locks and alerts must not start.
    pub fn connect(settings: &PgSettings) -> Result<(Self, Vec<&'static str>), PgError> {
        let tls = tls(settings.ca.as_deref(), settings.config.get_ssl_mode())?;
        let manager = Manager::from_config(
            settings.config.clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let (rt, stop) = runtime()?;
        let pool = {
            // The pool spawns its connections on the runtime it is built in.
            let _in_rt = rt.enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(DEADLINE))
                .create_timeout(Some(DEADLINE))
                .build()
                .map_err(|e| PgError::Unavailable {
                    at: settings.shown.clone(),
                    message: e.to_string(),
                })?
        };
        let mut pg = Self {
            pool,
            rt,
            at: settings.shown.as_str().into(),
            instance: "".into(),
            _stop: Arc::new(stop),
        };
        let applied = pg.block(migrations::migrate)??;
        let instance: String = pg.block(|c| async move {
            Ok(c.query_one("SELECT id FROM vigie_instance", &[])
                .await?
                .get(0))
        })?;
        pg.instance = instance.into();
        Ok((pg, applied))
    }

    /// Run `job` on a pooled connection, from async code.
    pub async fn run<T, F, Fut>(&self, job: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: Fn(Object) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let call = self.call(job);
        match self.rt.spawn(call).await {
            Ok(r) => r,
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// Run `job` on a pooled connection, blocking this thread until it is done. Never call
    /// this from the pool's own runtime (nothing in Vigie does: jobs do not call back).
    pub fn block<T, F, Fut>(&self, job: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: Fn(Object) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let call = self.call(job);
        self.rt.spawn(async move {
            let _ = tx.send(call.await);
        });
        match rx.recv_timeout(DEADLINE + Duration::from_secs(1)) {
            Ok(r) => r,
            Err(_) => Err(PgError::Timeout {
                at: self.at.to_string(),
            }),
        }
    }

    /// Run `work` (not a pool call: a copy from Redis, say) on the pool's runtime, waiting
    /// at most `deadline` for it.
    pub fn wait<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
        deadline: Duration,
    ) -> Result<T, PgError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(tokio::time::timeout(deadline, work).await);
        });
        match rx.recv() {
            Ok(Ok(v)) => Ok(v),
            _ => Err(PgError::Timeout {
                at: self.at.to_string(),
            }),
        }
    }

    /// The call itself, under the deadline: a connection broken on the way is replaced and
    /// the job run once more.
    fn call<T, F, Fut>(&self, job: F) -> impl Future<Output = Result<T, PgError>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(Object) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let at = self.at.clone();
        async move {
            let attempts = async {
                let mut last = (String::new(), false);
                for _ in 0..2 {
                    let conn = match pool.get().await {
                        Ok(c) => c,
                        Err(e) => {
                            last = (e.to_string(), false);
                            continue;
                        }
                    };
                    match job(conn).await {
                        Ok(v) => return Ok(v),
                        Err(e) if lost(&e) => {
                            // A failover or restart ends every connection at once, and the
                            // pool's idle ones may not know yet: drop them all, so the retry
                            // opens a fresh one instead of taking the next dead one.
                            pool.retain(|_, _| false);
                            last = (e.to_string(), false);
                        }
                        // The server answered: it refused the statement.
                        Err(e) => return Err((message(&e), true)),
                    }
                }
                Err(last)
            };
            let (result, up) = match tokio::time::timeout(DEADLINE, attempts).await {
                Ok(Ok(v)) => (Ok(v), true),
                Ok(Err((message, answered))) => (
                    Err(PgError::Unavailable {
                        at: at.to_string(),
                        message,
                    }),
                    answered,
                ),
                Err(_) => (Err(PgError::Timeout { at: at.to_string() }), false),
            };
            crate::metrics::METRICS
                .store_up
                .with_label_values(&["postgres"])
                .set(i64::from(up));
            result
        }
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> PgError {
        PgError::Unavailable {
            at: self.at.to_string(),
            message: e.to_string(),
        }
    }

    /// Where this pool connects, without credentials.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// The records database's own name (see [`Pg::connect`]).
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

/// Whether the connection was lost (worth a fresh one) rather than the statement refused:
/// closed, broken in transit, or ended by the server (SQLSTATE class 08, connection
/// exception; 57, an administrator's or a restart's termination, as in a failover).
fn lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The server's message with its SQLSTATE, never the statement's parameters.
fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The pool's runtime, on a thread of its own that lives until the sender is dropped.
fn runtime() -> Result<(tokio::runtime::Handle, std::sync::mpsc::SyncSender<()>), PgError> {
    let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("vigie-postgres".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = handle_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = handle_tx.send(Ok(rt.handle().clone()));
            // Drive the connections until every handle is gone.
            rt.block_on(async {
                let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            });
        })
        .map_err(|e| PgError::Runtime(e.to_string()))?;
    match handle_rx.recv() {
        Ok(Ok(handle)) => Ok((handle, stop_tx)),
        Ok(Err(e)) => Err(PgError::Runtime(e)),
        Err(_) => Err(PgError::Runtime("its thread ended at start".into())),
    }
}

/// TLS as the URL's `sslmode` asks. `require` means what libpq calls `verify-full`: the
/// certificate is checked against `ca` (else the system's roots) and must name the host, so a
/// machine in the middle cannot pose as the database. `prefer` (the default, meant for a
/// server on the same host) encrypts when the server offers it without checking who it is,
/// as libpq does; validation warns about it for any other host.
fn tls(
    ca: Option<&[u8]>,
    mode: tokio_postgres::config::SslMode,
) -> Result<postgres_native_tls::MakeTlsConnector, PgError> {
    let mut builder = native_tls::TlsConnector::builder();
    if mode != tokio_postgres::config::SslMode::Require {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    if let Some(pem) = ca {
        let cert =
            native_tls::Certificate::from_pem(pem).map_err(|e| PgError::Tls(e.to_string()))?;
        builder.add_root_certificate(cert);
    }
    let connector = builder.build().map_err(|e| PgError::Tls(e.to_string()))?;
    Ok(postgres_native_tls::MakeTlsConnector::new(connector))
}

pub use migrations::schema_version;

#[cfg(test)]
mod tests;
