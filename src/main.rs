//! The `vigie` command line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vigie::config::Config;

mod audit_commands;
mod explain;
mod inspect;
mod operate;
mod soc_commands;
mod state_commands;
mod token_commands;
use inspect::{explain, simulate};

/// glibc malloc cost about 10% of the CPU per proxied request (perf, benches/README.md);
/// mimalloc's thread-local free lists remove most of it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Vigie: second-factor gateway and exfiltration detector for hospital portals.
///
/// Vigie sits in front of an unmodified clinical portal as a reverse proxy. Start with
/// `vigie demo` to see it in front of the bundled sample portal.
#[derive(Parser)]
#[command(name = "vigie", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a configuration file.
    Run {
        /// The configuration file (see config/reference.toml for every key).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Replace a running gateway without closing its ports: take its listening sockets
        /// (`[server] upgrade_socket`) once it is sent SIGQUIT, while it drains.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a configuration file and what the start depends on (certificates, writable
    /// paths, overlapping addresses), and exit: 0 when valid, 2 with every problem listed.
    CheckConfig {
        /// The configuration file to check.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Also bind every address (before a start: not beside a gateway already running).
        #[arg(long)]
        preflight: bool,
    },
    /// Reload a running gateway's configuration (as SIGHUP does), through its admin API: 0
    /// when reloaded, 2 when the file is invalid, 1 when the gateway refused or is unreachable.
    Reload {
        /// The running gateway's configuration file (the one to reload).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Health check for containers and scripts: 0 when the gateway is ready (`/readyz`
    /// answers 200), 1 otherwise.
    Health {
        /// The gateway's admin address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
        /// Only check that the process serves (`/healthz`), not that it is ready.
        #[arg(long)]
        live: bool,
    },
    /// Show the policy's decision for one described request, and the rule that made it.
    Explain {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request: a path (`/index.php?m=x`) or a full URL (its host picks the portal).
        #[arg(long)]
        url: String,
        /// The user (omit for an anonymous request).
        #[arg(long)]
        user: Option<String>,
        /// The user's groups, comma-separated.
        #[arg(long, default_value = "")]
        groups: String,
        /// The client's address.
        #[arg(long, default_value = "127.0.0.1")]
        ip: std::net::IpAddr,
        /// When: RFC 3339 (`2026-11-23T22:30:00+01:00`) or unix seconds; default now.
        #[arg(long)]
        time: Option<String>,
        /// The session is in break-glass.
        #[arg(long)]
        break_glass: bool,
    },
    /// Simulate days of clinical work and a set of exfiltration attacks through the gateway and
    /// the sample portal, on a simulated clock; print what the detector caught and when.
    Simulate {
        /// Days simulated; the attacks run on the last one, after the others' warm-up.
        #[arg(long, default_value_t = 3)]
        days: u32,
        /// Clinicians at work (nurses day and night, physicians, admissions clerks).
        #[arg(long, default_value_t = 40)]
        clinicians: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Also write the report as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Run the embedded demo: the sample portal with the gateway in front of it. Nothing to install.
    Demo {
        /// Where the gateway listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where the sample portal listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        portal_listen: SocketAddr,
        /// Where metrics and health endpoints listen.
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
    },
    /// List or revoke a user's sessions on a running gateway (through its admin API).
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Manage local users (for portals with gateway-owned logins). Passwords are read from
    /// standard input, never from the command line.
    User {
        /// The gateway's configuration (for the path of its database).
        #[arg(short, long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the Ed25519 keys that sign identity assertions, and the key ring that seals
    /// second-factor secrets.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The gateway's database: bring its schema up to date (every start does it too, under
    /// the database's lock, so replicas never race), e.g. before an upgrade window.
    Storage {
        #[command(subcommand)]
        action: StorageAction,
    },
    /// Second-factor enrollment: invitations IT hands over in person, and what a user has
    /// enrolled (through the running gateway's admin API).
    Enroll {
        /// The running gateway's configuration (for its admin address and API token).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[command(subcommand)]
        action: EnrollAction,
    },
    /// The SOC's alert queue, through the running gateway's admin API: list with filters,
    /// show one with its history, acknowledge, investigate, close, assign, annotate.
    Alerts {
        /// The running gateway's configuration (for its admin address and API token).
        #[arg(short, long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: soc_commands::AlertsAction,
    },
    /// The detector's holds (sessions kept from the portal pending review): list, release.
    Holds {
        #[arg(short, long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: soc_commands::HoldsAction,
    },
    /// Per-person API tokens for automation: each names its holder, carries one console role
    /// (soc, dpo, it) and expires; kept as a keyed digest only.
    Tokens {
        #[arg(short, long, value_name = "FILE", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: token_commands::TokensAction,
    },
    /// The tamper-evident audit trail: verify its chains, export a range.
    Audit {
        #[command(subcommand)]
        action: audit_commands::AuditAction,
    },
    /// Run only the sample portal: a stand-in legacy EHR with fictitious patients.
    SamplePortal {
        /// Where the portal listens.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// How many fictitious patients to generate (ids 1..=N).
        #[arg(long, default_value_t = vigie::sample_portal::DEFAULT_PATIENTS)]
        patients: u32,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Open the portal session on the login page, as PHP portals do (CSRF token kept in it).
        #[arg(long)]
        session_before_login: bool,
        /// Log out only by a POST carrying the session's CSRF token (405 on GET), as Django does.
        #[arg(long)]
        strict_logout: bool,
    },
}

#[derive(Subcommand)]
enum StorageAction {
    /// Apply the schema migrations the database lacks, and say which; with
    /// `records = "postgres"`, copy the file's records (and Redis's factors) there once.
    Migrate {
        /// The gateway's configuration (for the path of its database).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The PostgreSQL records database is meant to be a new one (the old one was emptied
        /// or replaced on purpose): take it as this gateway's, without copying the file again.
        #[arg(long)]
        new_records: bool,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password (12 characters or more) is read from standard input.
    Add {
        username: String,
        /// Comma-separated groups, e.g. `clinicians,admins`.
        #[arg(long, default_value = "")]
        groups: String,
    },
    /// Set a user's password, read from standard input.
    Passwd { username: String },
    /// Refuse a user's logins from now on.
    Disable { username: String },
    /// Allow a disabled user again.
    Enable { username: String },
    /// List users (never their hashes).
    List,
    /// Lock an account (portal or local user) and end its sessions on every replica, through
    /// the running gateway's admin API. Locked users cannot log in until unlocked.
    Lock {
        username: String,
        #[arg(long, default_value = "locked by an administrator")]
        reason: String,
    },
    /// Lift an account lock (after an in-person identity check), through the admin API.
    Unlock { username: String },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Write a new signing key into DIR; it signs from the next start, older keys stay published.
    Generate {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print a new second-factor key line (ID:BASE64). To rotate, put it first in the key
    /// file and keep the old lines: records re-seal under the new key as they are read.
    FactorKey {
        /// The key's id (default: factor-<unix time>).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Subcommand)]
enum EnrollAction {
    /// Issue a one-time enrollment code for USER (also resets a lost factor when used).
    /// Hand it over in person, after checking the user's identity.
    Invite { username: String },
    /// Show what USER has enrolled (never the secrets).
    Status { username: String },
    /// Issue a one-time code for an analyst's first SOC console passkey (`[console]`).
    /// Hand it over in person; the analyst types it after their password.
    Analyst { username: String },
}

#[derive(Subcommand)]
enum SessionAction {
    /// Show a user's live sessions (fingerprint, level, address, times).
    List {
        /// The running gateway's configuration (for its admin address and API token).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        user: String,
    },
    /// End a user's sessions on every replica: all of them, or one named by its fingerprint.
    Revoke {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        user: String,
        /// Fingerprint of one session, as `vigie session list` shows it.
        #[arg(long)]
        session: Option<String>,
    },
}

const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

fn main() -> ExitCode {
    // First of all: a SIGHUP while the configuration is read (seconds, for a large one) is
    // noted for the gateway, not fatal.
    vigie::lifecycle::signals::hold_hangup();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config, preflight } => operate::check_config(&config, preflight),
        Command::Health { admin, live } => operate::health(admin, live),
        Command::Reload { config } => admin_command(&config, "POST", "/api/reload"),
        Command::Run { config, upgrade } => match Config::load(&config) {
            Ok(config) => operate::run(config, None, upgrade),
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(2)
            }
        },
        Command::Session { action } => session_command(action),
        Command::Explain {
            config,
            method,
            url,
            user,
            groups,
            ip,
            time,
            break_glass,
        } => explain(
            &config,
            &method,
            &url,
            user.as_deref(),
            &groups,
            ip,
            time.as_deref(),
            break_glass,
        ),
        Command::User { config, action } => state_commands::user_command(config, action),
        Command::Audit { action } => audit_commands::run(action),
        Command::Tokens { config, action } => token_commands::run(config, action),
        Command::Alerts { config, action } => soc_commands::alerts(config, action),
        Command::Holds { config, action } => soc_commands::holds(config, action),
        Command::Storage {
            action:
                StorageAction::Migrate {
                    config,
                    new_records,
                },
        } => state_commands::storage_migrate(&config, new_records),
        Command::Keys {
            action: KeysAction::Generate { dir },
        } => keys_generate(&dir),
        Command::Keys {
            action: KeysAction::FactorKey { id },
        } => {
            let id = id.unwrap_or_else(|| key_stamp().replace("key-", "factor-"));
            println!("{}", vigie::factors::crypto::KeyRing::generate_line(&id));
            ExitCode::SUCCESS
        }
        Command::Enroll { config, action } => {
            let (method, target) = match &action {
                EnrollAction::Invite { username } => (
                    "POST",
                    format!("/api/users/invite?user={}", encode(username)),
                ),
                EnrollAction::Status { username } => (
                    "GET",
                    format!("/api/users/factors?user={}", encode(username)),
                ),
                EnrollAction::Analyst { username } => (
                    "POST",
                    format!("/api/console/invite?user={}", encode(username)),
                ),
            };
            admin_command(&config, method, &target)
        }
        Command::Simulate {
            days,
            clinicians,
            seed,
            json,
        } => simulate(days, clinicians, seed, json.as_deref()),
        Command::Demo {
            listen,
            portal_listen,
            admin_listen,
        } => demo(listen, portal_listen, admin_listen),
        Command::SamplePortal {
            listen,
            patients,
            threads,
            session_before_login,
            strict_logout,
        } => {
            vigie::telemetry::init(&vigie::config::LogConfig {
                format: vigie::config::LogFormat::Pretty,
                level: "info,pingora=warn".into(),
                access_buffer_bytes: 0,
            });
            eprintln!("sample portal on http://{listen}/ ({patients} fictitious patients)");
            let mut portal = vigie::sample_portal::SamplePortal::new(patients);
            if session_before_login {
                portal = portal.with_session_before_login();
            }
            if strict_logout {
                portal = portal.with_strict_logout();
            }
            // A portal whose port is taken stops, rather than live on answering nothing
            // (Pingora tries a taken port for 30 s, then panics in its service thread only).
            if let Err(e) = std::net::TcpListener::bind(listen) {
                eprintln!("error: sample portal {listen}: cannot listen: {e}");
                std::process::exit(1);
            }
            operate::exit_if_listeners_fail();
            vigie::server::sample_portal_only(&listen.to_string(), portal, threads.max(1))
                .run_forever()
        }
    }
}

fn keys_generate(dir: &Path) -> ExitCode {
    let name = format!("{}.pem", key_stamp());
    let path = dir.join(&name);
    let written = std::fs::create_dir_all(dir).and_then(|_| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&vigie::identity::assertion::generate_pem())
    });
    match written {
        Ok(()) => {
            println!(
                "{}: new signing key (kid {})",
                path.display(),
                name.trim_end_matches(".pem")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

/// `key-<unix seconds, 12 digits>`: names sort in creation order, and the newest signs.
fn key_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("key-{secs:012}")
}

/// Call the admin API of the gateway described by a config file; print its JSON answer.
fn session_command(action: SessionAction) -> ExitCode {
    let (path, method, target) = match &action {
        SessionAction::List { config, user } => (
            config,
            "GET",
            format!("/api/sessions?user={}", encode(user)),
        ),
        SessionAction::Revoke {
            config,
            user,
            session,
        } => {
            let one = session
                .as_ref()
                .map_or(String::new(), |s| format!("&session={}", encode(s)));
            (
                config,
                "POST",
                format!("/api/sessions/revoke?user={}{one}", encode(user)),
            )
        }
    };
    admin_command(path, method, &target)
}

/// Call the admin API of the gateway a config file describes; print its JSON answer.
fn admin_command(path: &Path, method: &str, target: &str) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (Some(admin), Some(token)) = (config.admin, &config.admin_token) else {
        eprintln!(
            "error: {} enables no admin API: set admin.address and admin.api_token_file",
            path.display()
        );
        return ExitCode::from(2);
    };
    match admin_call(admin, method, target, &token.0) {
        Ok((status, body)) => {
            println!("{}", body.trim_end());
            if status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: cannot reach the admin API at {admin}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `a, b,,c` -> `["a", "b", "c"]`: group lists on the command line.
fn comma_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn admin_call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: &[u8],
) -> std::io::Result<(u16, String)> {
    admin_call_with(addr, method, target, token, b"")
}

/// The same with a form body (notes travel in it, not in the address).
fn admin_call_with(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: &[u8],
    form: &[u8],
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer ")
        .into_bytes();
    req.extend_from_slice(token);
    req.extend_from_slice(
        format!(
            "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            form.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(form);
    stream.write_all(&req)?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

fn demo(listen: SocketAddr, portal: SocketAddr, admin: SocketAddr) -> ExitCode {
    // The embedded defaults and the command line, folded before validation: the demo meets
    // the same checks as any configuration, and runs from any directory.
    let database = std::env::temp_dir().join(format!("vigie-demo-{}.sqlite", std::process::id()));
    let layers =
        vigie::config::fold::Layers::text(Path::new("config/demo.toml (embedded)"), DEMO_CONFIG)
            .demo()
            .set("listener.0.address", listen.to_string())
            .set("admin.address", admin.to_string())
            // The demo keeps its durable state (account locks, alerts) in a file of its own.
            .set("storage.database", database.display().to_string())
            .set("portal.0.upstream", portal.to_string())
            // Passkeys need a host name (not an IP) as relying party: the demo is opened at localhost.
            .set("second_factor.webauthn_rp_id", "localhost")
            .set(
                "second_factor.webauthn_origins",
                vec![toml::Value::from(format!(
                    "http://localhost:{}",
                    listen.port()
                ))],
            );
    let mut config = match layers.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // One key ring for the invitation made now and the gateway that reads it.
    config
        .second_factor
        .keys
        .get_or_insert_with(|| std::sync::Arc::new(vigie::factors::crypto::KeyRing::ephemeral()));
    let invitation = match vigie::server::invite_before_start(&config, "admin") {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: the demo administrator's invitation: {e:#}");
            return ExitCode::from(1);
        }
    };
    println!("Vigie demo");
    println!(
        "  open        http://localhost:{}/   (the sample portal, through the gateway)",
        listen.port()
    );
    println!("  then        enroll an authenticator app or a passkey when asked (demo: no invitation needed,");
    println!("              except for admin: privileged accounts always need one, see below)");
    println!("  portal      http://{portal}/   (direct, for comparison)");
    println!("  metrics     http://{admin}/metrics   health: /healthz /readyz");
    println!("  accounts    (fictitious patients only)");
    for a in vigie::sample_portal::data::ACCOUNTS {
        println!(
            "              {:<12} password {:<14} {}",
            a.username,
            a.password,
            a.role.label()
        );
    }
    println!("  invitation  {invitation}   (admin's one-time enrollment code; a real deployment hands it over in person: `vigie enroll invite USER`)");
    println!("  stop with Ctrl-C");
    operate::run(config, Some(portal), false)
}
