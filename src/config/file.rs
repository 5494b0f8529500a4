//! The configuration file as written by an operator: serde mirrors of the TOML,
//! with defaults and `deny_unknown_fields` so a typo is an error, never a silent default.
//! [`super::validate`] turns this into the internal [`super::Config`].

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub listener: Vec<ListenerSection>,
    #[serde(default)]
    pub admin: AdminSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub headers: HeadersSection,
    #[serde(default)]
    pub session: SessionSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub assertion: AssertionSection,
    #[serde(default)]
    pub second_factor: SecondFactorSection,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub rule: Vec<RuleSection>,
    #[serde(default)]
    pub privileged: Vec<PrivilegedSection>,
    #[serde(default)]
    pub break_glass: BreakGlassSection,
    #[serde(default)]
    pub budgets: std::collections::BTreeMap<String, BudgetSection>,
    /// `[groups]`: group name -> user names, for users whose groups come from nowhere else.
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub portal: Vec<PortalSection>,
    #[serde(default)]
    pub detection: DetectionSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub console: ConsoleSection,
}

/// `[console]`: the SOC console, on a listener of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    pub address: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub webauthn_rp_id: String,
    pub webauthn_origins: Vec<String>,
    pub require_passkey: bool,
    pub idle_minutes: i64,
    pub session_hours: i64,
    pub soc_groups: Vec<String>,
    pub dpo_groups: Vec<String>,
    pub it_groups: Vec<String>,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            address: None,
            tls_cert: None,
            tls_key: None,
            webauthn_rp_id: "localhost".into(),
            webauthn_origins: Vec::new(),
            require_passkey: true,
            idle_minutes: 15,
            session_hours: 8,
            soc_groups: vec!["soc".into()],
            dpo_groups: vec!["dpo".into()],
            it_groups: vec!["it".into()],
        }
    }
}

/// `[detection]`: the exfiltration detector. Every threshold and weight is optional; the
/// defaults are in `crate::detect::settings` and documented in config/reference.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionSection {
    pub enabled: bool,
    pub hold_minutes: i64,
    pub throttle_seconds: i64,
    pub warmup_hours: i64,
    pub step_up_refusals: i64,
    pub source_factor: f64,
    pub default_prior: f64,
    pub working_hours: Option<String>,
    pub working_days: Vec<String>,
    pub honeytokens: Vec<String>,
    pub scripted_agents: Option<Vec<String>>,
    /// Networks where several people share one address (ward workstations, NAT, terminal
    /// servers): the source-address track ignores them.
    pub shared_networks: Vec<String>,
    pub thresholds: std::collections::BTreeMap<String, f64>,
    pub weights: std::collections::BTreeMap<String, f64>,
    pub actions: std::collections::BTreeMap<String, i64>,
    pub role_priors: std::collections::BTreeMap<String, f64>,
    pub budgets: BudgetsSection,
}

/// `[detection.budgets]`: day and week budgets of distinct patients per identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsSection {
    pub day_allowance: f64,
    pub week_allowance: f64,
    pub week_days: f64,
    pub default: NormalDaySection,
    pub roles: std::collections::BTreeMap<String, NormalDaySection>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct NormalDaySection {
    pub records: f64,
    pub listed: f64,
}

impl Default for BudgetsSection {
    fn default() -> Self {
        let b = crate::detect::settings::Budgets::default();
        Self {
            day_allowance: b.day_allowance,
            week_allowance: b.week_allowance,
            week_days: b.week_days,
            default: NormalDaySection {
                records: b.default.records,
                listed: b.default.listed,
            },
            roles: Default::default(),
        }
    }
}

impl Default for DetectionSection {
    fn default() -> Self {
        let d = crate::detect::DetectionConfig::default();
        Self {
            enabled: d.enabled,
            hold_minutes: d.hold_minutes as i64,
            throttle_seconds: d.throttle_seconds as i64,
            warmup_hours: d.warmup_hours as i64,
            step_up_refusals: d.step_up_refusals as i64,
            source_factor: d.source_factor,
            default_prior: d.default_prior,
            working_hours: None,
            working_days: Vec::new(),
            honeytokens: Vec::new(),
            scripted_agents: None,
            shared_networks: Vec::new(),
            thresholds: Default::default(),
            weights: Default::default(),
            actions: Default::default(),
            role_priors: Default::default(),
            budgets: Default::default(),
        }
    }
}

/// `[alerts]`: where detector alerts go.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    pub jsonl: Option<String>,
    /// Keep alerts in the SQLite database (`storage.database`) for the SOC console and API.
    pub store: Option<bool>,
    pub syslog: Option<SyslogSection>,
    pub webhook: Option<WebhookSection>,
    /// Stored alerts (with their history and sealed patients) are kept this many days.
    pub retention_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSection {
    pub address: String,
    #[serde(default = "udp")]
    pub transport: String,
    #[serde(default = "json")]
    pub format: String,
    #[serde(default = "authpriv")]
    pub facility: String,
    #[serde(default = "vigie")]
    pub app_name: String,
}

fn udp() -> String {
    "udp".into()
}
fn json() -> String {
    "json".into()
}
fn authpriv() -> String {
    "authpriv".into()
}
fn vigie() -> String {
    "vigie".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: String,
    /// Header name -> value; a value `env:NAME` is read from the environment.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default = "ten")]
    pub timeout_seconds: i64,
    #[serde(default = "five")]
    pub max_attempts: i64,
    #[serde(default = "half_second")]
    pub backoff_ms: i64,
}

fn ten() -> i64 {
    10
}
fn five() -> i64 {
    5
}
fn half_second() -> i64 {
    500
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecondFactorSection {
    pub required: bool,
    pub key_file: Option<String>,
    pub key_env: Option<String>,
    pub enrollment: String,
    pub trusted_networks: Vec<String>,
    pub privileged_groups: Vec<String>,
    pub invitation_ttl_hours: i64,
    pub enrollment_window_minutes: i64,
    pub fresh_minutes: i64,
    pub max_failures: i64,
    pub totp_algorithm: String,
    pub issuer: String,
    pub webauthn_rp_id: String,
    pub webauthn_rp_name: String,
    pub webauthn_origins: Vec<String>,
}

impl Default for SecondFactorSection {
    fn default() -> Self {
        Self {
            required: true,
            key_file: None,
            key_env: None,
            enrollment: "invitation".into(),
            trusted_networks: Vec::new(),
            privileged_groups: Vec::new(),
            invitation_ttl_hours: 72,
            enrollment_window_minutes: 15,
            fresh_minutes: 5,
            max_failures: 10,
            totp_algorithm: "SHA1".into(),
            issuer: "Vigie".into(),
            webauthn_rp_id: "localhost".into(),
            webauthn_rp_name: "Vigie".into(),
            webauthn_origins: Vec::new(),
        }
    }
}

/// `[[rule]]`: one access rule; the first that matches decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub name: String,
    #[serde(default)]
    pub portals: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: Option<String>,
    pub path_regex: Option<String>,
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub networks: Vec<String>,
    pub hours: Option<String>,
    #[serde(default)]
    pub days: Vec<String>,
    pub level: Option<String>,
    pub within_minutes: Option<i64>,
    pub budget: Option<String>,
    #[serde(default)]
    pub deny: bool,
    #[serde(default)]
    pub break_glass: bool,
}

/// `[[privileged]]`: the policy pack of privileged groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivilegedSection {
    pub name: String,
    pub groups: Vec<String>,
    #[serde(default = "phishing_resistant")]
    pub level: String,
    pub idle_timeout_minutes: Option<i64>,
    pub absolute_timeout_hours: Option<i64>,
    pub max_sessions: Option<i64>,
    #[serde(default = "revoke_oldest")]
    pub on_excess: String,
    #[serde(default = "quarter")]
    pub budget_scale: f64,
    #[serde(default)]
    pub networks: Vec<String>,
    pub hours: Option<String>,
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default = "five")]
    pub export_within_minutes: i64,
}

fn phishing_resistant() -> String {
    "phishing_resistant".into()
}
fn revoke_oldest() -> String {
    "revoke_oldest".into()
}
fn quarter() -> f64 {
    0.25
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakGlassSection {
    pub duration_minutes: i64,
    pub budget_scale: f64,
    pub fresh_minutes: i64,
}

impl Default for BreakGlassSection {
    fn default() -> Self {
        Self {
            duration_minutes: 30,
            budget_scale: 10.0,
            fresh_minutes: 5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    pub time_zone: String,
}

impl Default for PolicySection {
    fn default() -> Self {
        Self {
            time_zone: "system".into(),
        }
    }
}

/// `[budgets.CLASS]`: `requests` per `per` ("second", "minute", "hour", "day"), with `burst`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    pub requests: i64,
    pub per: String,
    pub burst: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    pub backend: String,
    pub redis_url: Option<String>,
    /// A Redis Cluster's nodes (some or all), instead of `redis_url`.
    pub redis_cluster_urls: Option<Vec<String>>,
    pub redis_prefix: String,
    pub session_key_file: Option<String>,
    pub database: String,
    /// How many replicas share Redis: a replica that loses Redis enforces this share of each
    /// budget alone.
    pub replicas: i64,
    /// How long sessions this replica saw stay usable while Redis is unreachable.
    pub outage_grace_seconds: i64,
    /// Audit entries and break-glass records are kept this many days (0: kept for ever).
    pub audit_retention_days: i64,
    /// How often each writer signs a checkpoint of its audit chain.
    pub audit_checkpoint_seconds: i64,
    /// Vouch that Redis keeps its data on disk, where it refuses `CONFIG GET` (managed Redis).
    pub redis_persistence: bool,
    /// Redis ACL user (with `redis_password_file`); the default user when unset.
    pub redis_username: Option<String>,
    /// A file holding the Redis password (`requirepass` or the ACL user's).
    pub redis_password_file: Option<String>,
    /// With `rediss://`: the CA (PEM) that signed Redis's certificate (system roots if unset).
    pub redis_ca_file: Option<String>,
    /// With `rediss://`: this gateway's certificate and key (PEM), for a Redis that asks for
    /// one (`tls-auth-clients yes`, Redis's default).
    pub redis_client_cert_file: Option<String>,
    pub redis_client_key_file: Option<String>,
    /// Where durable records live: "sqlite" (the `database` file) or "postgres".
    pub records: String,
    /// With `records = "postgres"`: postgres://USER@HOST:PORT/DB?sslmode=require.
    pub postgres_url: Option<String>,
    /// A file holding the PostgreSQL password (out of the URL).
    pub postgres_password_file: Option<String>,
    /// The CA (PEM) that signed PostgreSQL's certificate (system roots if unset).
    pub postgres_ca_file: Option<String>,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            redis_url: None,
            redis_cluster_urls: None,
            redis_prefix: "vigie:".into(),
            session_key_file: None,
            database: "vigie.sqlite".into(),
            replicas: 1,
            outage_grace_seconds: 120,
            audit_retention_days: 365,
            audit_checkpoint_seconds: 60,
            redis_persistence: false,
            redis_username: None,
            redis_password_file: None,
            redis_ca_file: None,
            redis_client_cert_file: None,
            redis_client_key_file: None,
            records: "sqlite".into(),
            postgres_url: None,
            postgres_password_file: None,
            postgres_ca_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSection {
    pub cookie_name: String,
    pub idle_timeout_seconds: i64,
    pub absolute_timeout_seconds: i64,
    pub anonymous_timeout_seconds: i64,
    pub max_sessions: i64,
    pub max_anonymous_sessions: i64,
}

impl Default for SessionSection {
    fn default() -> Self {
        Self {
            cookie_name: "vigie".into(),
            idle_timeout_seconds: 1800,
            absolute_timeout_seconds: 12 * 3600,
            anonymous_timeout_seconds: 600,
            max_sessions: 100_000,
            max_anonymous_sessions: 20_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub threads: i64,
    pub work_stealing: bool,
    pub grace_period_seconds: i64,
    pub graceful_shutdown_timeout_seconds: i64,
    pub upgrade_socket: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            threads: 0,
            work_stealing: true,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 10,
            upgrade_socket: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    pub address: String,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    #[serde(default = "default_hsts")]
    pub hsts_max_age_seconds: i64,
}

fn default_hsts() -> i64 {
    31_536_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    pub address: Option<String>,
    pub api_token_file: Option<String>,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            address: Some("127.0.0.1:9090".into()),
            api_token_file: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    pub format: String,
    pub level: String,
    pub access_buffer_kib: i64,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: "pretty".into(),
            level: "info".into(),
            access_buffer_kib: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_url_bytes: i64,
    pub max_header_bytes: i64,
    pub max_header_count: i64,
    pub max_body_bytes: i64,
    pub client_body_timeout_seconds: i64,
    pub keepalive_timeout_seconds: i64,
    pub head_timeout_seconds: i64,
    pub max_connections_per_peer: i64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_url_bytes: 8192,
            max_header_bytes: 32 * 1024,
            max_header_count: 100,
            max_body_bytes: 16 * 1024 * 1024,
            client_body_timeout_seconds: 30,
            keepalive_timeout_seconds: 60,
            head_timeout_seconds: 10,
            max_connections_per_peer: 256,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersSection {
    pub strip_request: Vec<String>,
    pub allow_underscores: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSection {
    pub name: String,
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    pub upstream: String,
    #[serde(default)]
    pub upstream_tls: bool,
    pub upstream_sni: Option<String>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: i64,
    #[serde(default = "default_read_timeout")]
    pub read_timeout_ms: i64,
    #[serde(default = "default_read_timeout")]
    pub write_timeout_ms: i64,
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: i64,
    #[serde(default)]
    pub case_insensitive_paths: bool,
    pub profile: Option<String>,
    #[serde(default = "portal_login")]
    pub login: String,
    /// The name shown on the gateway's pages for this portal (default: `name`).
    pub display_name: Option<String>,
    /// A PNG, JPEG, GIF or WebP shown beside it.
    pub logo_file: Option<String>,
    /// The help desk's number or extension, on every refusal page.
    pub help_desk: Option<String>,
    #[serde(default = "user_header")]
    pub identity_header_user: String,
    #[serde(default = "groups_header")]
    pub identity_header_groups: String,
    /// `[portal.detection]`: this portal's own detection settings.
    #[serde(default)]
    pub detection: PortalDetectionSection,
}

/// Per-portal detection: off for a portal without patient data, or other signal weights
/// (a portal whose API clients are scripts by design).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PortalDetectionSection {
    pub enabled: Option<bool>,
    pub weights: std::collections::BTreeMap<String, f64>,
}

fn portal_login() -> String {
    "portal".into()
}
fn user_header() -> String {
    "X-Remote-User".into()
}
fn groups_header() -> String {
    "X-Remote-Groups".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssertionSection {
    pub issuer: String,
    pub header: String,
    pub lifetime_seconds: i64,
    pub key_dir: Option<String>,
}

impl Default for AssertionSection {
    fn default() -> Self {
        Self {
            issuer: "vigie".into(),
            header: "X-Vigie-Assertion".into(),
            lifetime_seconds: 60,
            key_dir: None,
        }
    }
}

fn default_hosts() -> Vec<String> {
    vec!["*".into()]
}
fn default_connect_timeout() -> i64 {
    2_000
}
fn default_read_timeout() -> i64 {
    30_000
}
fn default_idle_timeout() -> i64 {
    60
}
