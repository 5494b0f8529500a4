//! Configuration: every source (file, demo defaults, CLI overrides) becomes one validated
//! [`Config`]. Nothing downstream of this module parses strings or checks ranges again.

mod diagnostic;
mod file;
pub mod fold;
pub mod profile;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diagnostic::{ConfigError, ConfigErrors};
use ipnet::IpNet;
pub use profile::PortalProfile;

/// The validated configuration of one gateway process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for error messages and reload.
    pub source: PathBuf,
    pub server: ServerConfig,
    pub listeners: Vec<ListenerConfig>,
    pub admin: Option<SocketAddr>,
    /// Bearer token of the admin API (`/api/…`); `None` disables the API.
    pub admin_token: Option<Secret>,
    pub log: LogConfig,
    pub limits: Limits,
    pub trusted_proxies: Vec<IpNet>,
    pub headers: HeaderRules,
    pub session: SessionConfig,
    pub storage: StorageConfig,
    pub assertion: AssertionConfig,
    pub second_factor: SecondFactorConfig,
    pub policy: crate::policy::PolicyConfig,
    pub budgets: BudgetConfig,
    /// Static group membership: user -> groups.
    pub static_groups: std::collections::HashMap<String, Vec<String>>,
    pub portals: Vec<PortalConfig>,
    /// The exfiltration detector.
    pub detection: crate::detect::DetectionConfig,
    /// Where its alerts go.
    pub alerts: crate::alerts::SinkSettings,
    /// The SOC console, when `[console] address` is set.
    pub console: Option<ConsoleConfig>,
    /// Settings that are valid but weaken security; `check-config` prints them, `run` logs them.
    pub warnings: Vec<String>,
}

/// The SOC console: its own listener, its own WebAuthn relying party (analysts reach it from
/// SOC workstations, not through the portal's host), and which local users' groups give
/// which console role.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub address: SocketAddr,
    /// Certificate and key files; `None` only on a loopback address.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub rp_id: String,
    pub origins: Vec<String>,
    /// A passkey after the password (the default); off only where a trusted SSO stands before.
    pub require_passkey: bool,
    pub idle: Duration,
    pub lifetime: Duration,
    pub soc_groups: Vec<String>,
    pub dpo_groups: Vec<String>,
    pub it_groups: Vec<String>,
    /// Times on its pages are in the hospital's zone (`policy.time_zone`).
    pub zone: jiff::tz::TimeZone,
}

/// What a user must prove before binding a first factor to their account (threat model 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentProof {
    /// A one-time code IT hands over in person (`vigie enroll invite USER`).
    Invitation,
    /// Being on one of `trusted_networks` (e.g. the hospital LAN); others need an invitation.
    TrustedNetworks,
    /// Nothing beyond the password: the demo only.
    Open,
}

/// Second factors: TOTP, WebAuthn passkeys, recovery codes.
#[derive(Debug, Clone)]
pub struct SecondFactorConfig {
    /// Whether portals with sessions demand a second factor (off only during a staged rollout).
    pub required: bool,
    /// The AEAD key ring (`ID:BASE64` lines); `None` only in the demo (one random key).
    /// The key ring sealing factor secrets, parsed once at validation (its `Debug` names the
    /// key ids only).
    pub keys: Option<std::sync::Arc<crate::factors::crypto::KeyRing>>,
    pub enrollment: EnrollmentProof,
    pub trusted_networks: Vec<IpNet>,
    /// Members always enroll with an invitation.
    pub privileged_groups: Vec<String>,
    pub invitation_ttl: Duration,
    /// How long an accepted enrollment proof lets the user enroll.
    pub enrollment_window: Duration,
    /// How recent a factor must be to remove a passkey or regenerate recovery codes.
    pub fresh_window: Duration,
    /// Consecutive failures that lock the account.
    pub max_failures: u32,
    pub totp_hash: crate::factors::totp::Hash,
    /// Shown in authenticator apps.
    pub issuer: String,
    pub rp_id: String,
    pub rp_name: String,
    pub origins: Vec<String>,
}

/// One budget: `requests` per `period`, allowing bursts of `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub requests: u32,
    pub period: Duration,
    pub burst: u32,
}

/// Budgets by class, per identity; per source address; for login attempts.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    pub classes: std::collections::HashMap<String, Limit>,
    /// Every request from one address (anonymous ones included).
    pub source: Limit,
    /// Login attempts, per user name and per source address.
    pub login: Limit,
}

/// The signed identity assertion sent to portals with gateway-owned logins.
#[derive(Debug, Clone)]
pub struct AssertionConfig {
    pub issuer: String,
    pub header: String,
    pub lifetime: Duration,
    /// Folder of Ed25519 PEM keys; `None`: one key per process.
    pub key_dir: Option<PathBuf>,
    /// The keys read from `key_dir` at validation (its `Debug` names the key ids only).
    pub keys: Option<std::sync::Arc<crate::identity::assertion::AssertionKeys>>,
}

/// Who checks the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMode {
    /// The portal's own login form (described by its profile) is the first factor.
    Portal,
    /// The gateway logs people in (local users) and tells the portal who they are in headers.
    Gateway {
        user_header: String,
        groups_header: String,
    },
}

/// A secret read from a file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where shared state lives.
#[derive(Clone)]
pub enum StorageBackend {
    /// Process memory (sessions, counters): one node, nothing to install.
    Embedded,
    /// Redis, shared by every replica.
    Redis {
        /// The server, or the first of the cluster's nodes.
        url: String,
        /// A Redis Cluster's nodes; empty for one server.
        cluster: Vec<String>,
        /// Every key's prefix; with a cluster, it carries the hash tag.
        prefix: String,
        /// The operator vouches that Redis persists its data (it refuses `CONFIG GET`).
        vouched_persistent: bool,
        /// With `rediss://`: whom to trust, and who this gateway is.
        tls: RedisTls,
    },
}

/// Where durable records live (`[storage] records`).
#[derive(Clone, Debug)]
pub enum Records {
    /// The `database` file: one gateway.
    Sqlite,
    /// PostgreSQL, shared by every replica.
    Postgres(Box<crate::storage::postgres::PgSettings>),
}

/// TLS to Redis (`rediss://`): PEM bytes read at validation.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// The CA that signed Redis's certificate; the system's roots when `None`.
    pub ca: Option<Vec<u8>>,
    /// This gateway's certificate and private key.
    pub client: Option<(Vec<u8>, Secret)>,
}

#[derive(Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Replicas sharing Redis (1 when embedded).
    pub replicas: u32,
    /// Sessions seen by this replica stay usable this long into a Redis outage.
    pub outage_grace: Duration,
    /// How long the audit trail is kept; `None`: for ever.
    pub audit_retention: Option<Duration>,
    /// How often a signed checkpoint of the audit chain is kept and logged.
    pub audit_checkpoint: Duration,
    /// The SQLite file of durable data (users, and with `records = "sqlite"` locks, holds,
    /// alerts and factors; embedded sessions).
    pub database: PathBuf,
    /// Where locks, holds, alerts and factors are kept.
    pub records: Records,
    /// Key that signs session cookies. Replicas sharing Redis must share it; `None` means
    /// a random key per process (embedded only).
    pub session_key: Option<Vec<u8>>,
}

impl std::fmt::Debug for StorageConfig {
    // The key is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            StorageBackend::Embedded => "embedded".to_string(),
            StorageBackend::Redis { prefix, .. } => format!("redis (prefix {prefix})"),
        };
        f.debug_struct("StorageConfig")
            .field("backend", &backend)
            .field("records", &self.records)
            .field("session_key", &self.session_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Gateway sessions.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Cookie name; on TLS listeners it is sent as `__Host-<name>`.
    pub cookie_name: String,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Lifetime of a pre-login session (it only holds the portal's pre-login cookies).
    pub anonymous_timeout: Duration,
    pub max_sessions: usize,
    pub max_anonymous_sessions: usize,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Worker threads for each service (already resolved: never 0).
    pub threads: usize,
    /// One work-stealing runtime per service (Pingora's default), or one runtime per thread.
    pub work_stealing: bool,
    pub grace_period: Duration,
    pub graceful_shutdown_timeout: Duration,
    /// Where `vigie run --upgrade` receives the listening sockets of the process it replaces.
    pub upgrade_socket: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub address: SocketAddr,
    pub tls: Option<TlsFiles>,
    /// HSTS max-age for requests that came over TLS: this listener's own, or a trusted
    /// proxy's that says so (`X-Forwarded-Proto: https`); 0 disables it.
    pub hsts_max_age: u64,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `Strict-Transport-Security` max-age sent on this listener; 0 disables it.
    pub hsts_max_age: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `vigie=debug,pingora=warn`.
    pub level: String,
    /// JSON access lines are gathered up to this many bytes (and at most a second) before one
    /// write; 0 writes each line at once.
    pub access_buffer_bytes: usize,
}

/// Request size and time limits enforced before anything else looks at a request.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
    pub max_header_count: usize,
    pub max_body_bytes: u64,
    pub client_body_timeout: Duration,
    pub keepalive_timeout: Duration,
    /// A request head must arrive whole within this time of the connection (or, on a reused
    /// connection, of its first byte); else the connection is closed (threat model 41).
    pub head_timeout: Duration,
    /// Open connections one direct peer may hold; trusted proxies are exempt.
    pub max_connections_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let f = file::LimitsSection::default();
        Self {
            max_url_bytes: f.max_url_bytes as usize,
            max_header_bytes: f.max_header_bytes as usize,
            max_header_count: f.max_header_count as usize,
            max_body_bytes: f.max_body_bytes as u64,
            client_body_timeout: Duration::from_secs(f.client_body_timeout_seconds as u64),
            keepalive_timeout: Duration::from_secs(f.keepalive_timeout_seconds as u64),
            head_timeout: Duration::from_secs(f.head_timeout_seconds as u64),
            max_connections_per_peer: f.max_connections_per_peer as usize,
        }
    }
}

/// Which client request headers never reach a portal.
#[derive(Debug, Clone, Default)]
pub struct HeaderRules {
    /// Extra names (lower case, `_` folded to `-`) stripped on top of the built-in identity list.
    pub strip_request: Vec<String>,
    /// Whether header names containing `_` are forwarded. Off by default: CGI-style
    /// portals read `X_Remote_User` and `X-Remote-User` as the same variable.
    pub allow_underscores: bool,
}

#[derive(Debug, Clone)]
pub struct PortalConfig {
    pub name: String,
    /// Lower-case host names this portal answers for; `*` is the catch-all.
    pub hosts: Vec<String>,
    pub upstream: SocketAddr,
    /// SNI and certificate name when the portal speaks TLS.
    pub upstream_tls: Option<String>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub idle_timeout: Duration,
    pub case_insensitive_paths: bool,
    /// How the portal logs people in; without a profile the portal is proxied without sessions.
    pub profile: Option<std::sync::Arc<PortalProfile>>,
    pub login: LoginMode,
    /// The name (and logo) on every gateway page in front of this portal.
    pub brand: std::sync::Arc<crate::pages::Brand>,
}

impl PortalConfig {
    /// A plain portal for unit tests.
    #[cfg(test)]
    pub fn for_tests(name: &str, hosts: &[&str]) -> Self {
        Self {
            name: name.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            upstream: "127.0.0.1:1".parse().expect("literal address"),
            upstream_tls: None,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            case_insensitive_paths: false,
            profile: None,
            login: LoginMode::Portal,
            brand: crate::pages::Brand::neutral(),
        }
    }

    /// Whether the gateway holds sessions for this portal (and so demands second factors).
    pub fn holds_sessions(&self) -> bool {
        self.profile.is_some() || matches!(self.login, LoginMode::Gateway { .. })
    }

    /// The path policy reads for `path` (the profile's front controller, else `path`).
    pub fn policy_path<'a>(&'a self, path: &'a str) -> &'a str {
        match &self.profile {
            Some(p) => p.script_path(path),
            None => path,
        }
    }

    /// How the portal's script reads requests (its profile's `[request]`; PHP 8's defaults).
    pub fn request_spec(&self) -> &crate::http::RequestSpec {
        static DEFAULT: std::sync::LazyLock<crate::http::RequestSpec> =
            std::sync::LazyLock::new(crate::http::RequestSpec::php);
        self.profile.as_ref().map_or(&DEFAULT, |p| &p.request)
    }

    /// How the portal reads a repeated query parameter (from its profile; PHP-like by default).
    pub fn query_reading(&self) -> crate::policy::matcher::QueryReading {
        self.profile
            .as_ref()
            .map_or(Default::default(), |p| p.query_reading)
    }

    /// What the policy reads of this portal for one request.
    pub fn policy_view<'a>(&'a self, f: &crate::policy::Facts) -> crate::policy::PortalView<'a> {
        crate::policy::PortalView {
            name: &self.name,
            holds_sessions: self.holds_sessions(),
            reading: self.query_reading(),
            class: self.class_of(f.method, f.path, f.query),
        }
    }

    /// The endpoint class of a request, from the profile (`view` when none matches).
    pub fn class_of(&self, method: &str, path: &str, query: Option<&str>) -> &str {
        let reading = self.query_reading();
        self.profile
            .as_ref()
            .and_then(|p| {
                p.classes
                    .iter()
                    .find(|c| c.matcher.matches(method, path, query, reading))
            })
            .map_or(crate::policy::DEFAULT_CLASS, |c| c.name.as_str())
    }
}

impl Config {
    /// Whether these groups make an account privileged, however it was declared:
    /// `second_factor.privileged_groups` or a `[[privileged]]` pack. Such accounts always
    /// need an invitation to enroll, and the detector watches them more closely.
    pub fn is_privileged(&self, groups: &[String]) -> bool {
        groups
            .iter()
            .any(|g| self.second_factor.privileged_groups.contains(g))
            || self.policy.pack_for(groups).is_some()
    }

    /// The groups `[groups]` gives `user` (canonical), its names keyed the portal's way by `key`.
    pub fn groups_of(&self, user: &str, key: impl Fn(&str) -> String) -> Vec<String> {
        self.static_groups
            .iter()
            .filter(|(u, _)| key(u) == user)
            .flat_map(|(_, g)| g.iter().cloned())
            .collect()
    }

    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        fold::Layers::file(path)?.validate()
    }

    /// Parse and validate TOML text; `path` is used in messages and to resolve relative file paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        validate::parse_and_validate(path, text, false)
    }

    /// The embedded demo's configuration: the only one allowed to run without a factor key
    /// (it makes a random one; enrolled factors die with the process).
    pub fn demo_from_toml(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
        fold::Layers::text(path, text).demo().validate()
    }
}
