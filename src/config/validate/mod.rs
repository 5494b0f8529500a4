//! File config -> validated [`Config`], collecting every error with its place in the file.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diagnostic::{ConfigError, ConfigErrors, Locator};
use super::file::{FileConfig, ListenerSection, PortalSection};
use super::*;

mod console;
mod detection;
mod factors;
pub(crate) mod policy;
mod portal;
mod records;
mod state;

pub(super) fn parse_and_validate(
    path: &Path,
    text: &str,
    demo: bool,
) -> Result<Config, ConfigErrors> {
    parse_and_validate_in(path, path.parent().unwrap_or(Path::new(".")), text, demo)
}

/// The same, relative paths read from `base` (a folded document has no folder of its own).
pub(super) fn parse_and_validate_in(
    path: &Path,
    base: &Path,
    text: &str,
    demo: bool,
) -> Result<Config, ConfigErrors> {
    let loc = Locator::new(path, text);
    let file: FileConfig =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![loc.parse_error(text, &e)]))?;
    let mut v = Validator {
        loc: &loc,
        errors: Vec::new(),
        warnings: Vec::new(),
        base,
        demo,
    };
    let config = v.config(path, file);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(v.errors))
    }
}

struct Validator<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
    base: &'a Path,
    demo: bool,
}

impl Validator<'_> {
    fn err(&mut self, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        let help = (!help.is_empty()).then_some(help);
        self.errors.push(self.loc.error(key, message, help));
    }

    /// Check `value` is within `range`, reporting under `key`.
    fn range(&mut self, key: &str, value: i64, lo: i64, hi: i64, why: &str) -> u64 {
        if value < lo || value > hi {
            self.err(
                key,
                format!("{value} is out of range"),
                format!("use a value from {lo} to {hi}{why}"),
            );
            return lo.max(0) as u64;
        }
        value as u64
    }

    fn config(&mut self, path: &Path, f: FileConfig) -> Config {
        let threads = self.range(
            "server.threads",
            f.server.threads,
            0,
            256,
            " (0 = one per CPU core)",
        ) as usize;
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let mut server = ServerConfig {
            threads,
            work_stealing: f.server.work_stealing,
            grace_period: secs(self.range(
                "server.grace_period_seconds",
                f.server.grace_period_seconds,
                0,
                3600,
                "",
            )),
            graceful_shutdown_timeout: secs(self.range(
                "server.graceful_shutdown_timeout_seconds",
                f.server.graceful_shutdown_timeout_seconds,
                0,
                3600,
                "",
            )),
            upgrade_socket: PathBuf::new(),
        };
        let listeners = self.listeners(&f.listener);
        let admin = self.admin(f.admin.address.as_deref(), &listeners);
        let admin_token = f
            .admin
            .api_token_file
            .as_ref()
            .and_then(|raw| self.secret_file("admin.api_token_file", raw, 24));
        let mut log = self.log(&f.log.format, &f.log.level);
        log.access_buffer_bytes = 1024
            * self.range(
                "log.access_buffer_kib",
                f.log.access_buffer_kib,
                0,
                1024,
                " (KiB; 0 writes each access line at once)",
            ) as usize;
        let l = &f.limits;
        let limits = Limits {
            max_url_bytes: self.range("limits.max_url_bytes", l.max_url_bytes, 256, 65_536, "")
                as usize,
            max_header_bytes: self.range(
                "limits.max_header_bytes",
                l.max_header_bytes,
                1024,
                1_048_575,
                "",
            ) as usize,
            max_header_count: self.range(
                "limits.max_header_count",
                l.max_header_count,
                8,
                256,
                " (the HTTP parser refuses more than 256 headers outright)",
            ) as usize,
            max_body_bytes: self.range("limits.max_body_bytes", l.max_body_bytes, 0, 1 << 40, ""),
            client_body_timeout: secs(self.range(
                "limits.client_body_timeout_seconds",
                l.client_body_timeout_seconds,
                1,
                3600,
                "",
            )),
            keepalive_timeout: secs(self.range(
                "limits.keepalive_timeout_seconds",
                l.keepalive_timeout_seconds,
                0,
                3600,
                " (0 closes the connection after each request)",
            )),
            head_timeout: secs(self.range(
                "limits.head_timeout_seconds",
                l.head_timeout_seconds,
                1,
                3600,
                " (seconds for a whole request head to arrive)",
            )),
            max_connections_per_peer: self.range(
                "limits.max_connections_per_peer",
                l.max_connections_per_peer,
                1,
                1 << 20,
                " (open connections from one address; trusted proxies are exempt)",
            ) as usize,
        };
        let trusted_proxies = self.trusted_proxies(&f.network.trusted_proxies);
        let headers = self.header_rules(&f.headers.strip_request, f.headers.allow_underscores);
        let session = self.session(&f.session);
        let storage = self.storage(&f.storage);
        // Beside the database by default: the state directory, writable, private to the user.
        server.upgrade_socket = match &f.server.upgrade_socket {
            Some(p) => self.base.join(p),
            None => storage
                .database
                .parent()
                .map_or(PathBuf::from("vigie-upgrade.sock"), |d| {
                    d.join("vigie-upgrade.sock")
                }),
        };
        // Absolute: the old and the new gateway may be started from different folders.
        if server.upgrade_socket.is_relative() {
            if let Ok(cwd) = std::env::current_dir() {
                server.upgrade_socket = cwd.join(&server.upgrade_socket);
            }
        }
        let assertion = self.assertion(&f.assertion);
        let replicas = matches!(storage.backend, StorageBackend::Redis { .. })
            || matches!(storage.records, crate::config::Records::Postgres(_));
        if replicas && assertion.key_dir.is_none() {
            self.warnings.push("replicas without [assertion] key_dir: each signs its audit checkpoints with a key of its own, which `vigie audit verify` run elsewhere does not know; give them one key directory".into());
        }
        // Pages show times in the hospital's zone (a wrong name is reported with the policy).
        let zone = policy::zone_named(&f.policy.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let portals = self.portals(&f.portal, &zone);
        let second_factor = self.second_factor(&f.second_factor, &portals);
        let budgets = self.budgets(&f.budgets);
        let policy = self.policy(&f, &portals, &budgets, second_factor.fresh_window);
        let static_groups = self.static_groups(&f.groups);
        let mut detection = self.detection(&f.detection);
        detection.portals = self.portal_detection(&f.portal);
        let alerts = self.alerts(&f.alerts, &storage);
        let console = self.console(&f.console, &listeners, admin, &zone);
        Config {
            console,
            detection,
            alerts,
            source: path.to_path_buf(),
            server,
            listeners,
            admin,
            admin_token,
            log,
            limits,
            trusted_proxies,
            headers,
            session,
            storage,
            assertion,
            second_factor,
            policy,
            budgets,
            static_groups,
            portals,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    fn listeners(&mut self, sections: &[ListenerSection]) -> Vec<ListenerConfig> {
        if sections.is_empty() {
            self.err(
                "listener",
                "no [[listener]] is configured, so the gateway would accept no traffic",
                "add a table such as:\n    [[listener]]\n    address = \"0.0.0.0:8080\"",
            );
        }
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for (i, s) in sections.iter().enumerate() {
            let key = format!("listener[{i}]");
            let Some(address) = self.socket_addr(&format!("{key}.address"), &s.address) else {
                continue;
            };
            if let Some(prev) = seen.insert(address, i) {
                self.err(
                    &format!("{key}.address"),
                    format!("{address} is already used by listener[{prev}]"),
                    "give each listener its own address",
                );
            }
            let hsts = self.range(
                &format!("{key}.hsts_max_age_seconds"),
                s.hsts_max_age_seconds,
                0,
                63_072_000,
                " (0 disables HSTS)",
            );
            let tls = match (&s.tls_cert, &s.tls_key) {
                (None, None) => None,
                (Some(cert), Some(key_file)) => {
                    let cert = self.readable_file(&format!("{key}.tls_cert"), cert);
                    let keyf = self.readable_file(&format!("{key}.tls_key"), key_file);
                    match (cert, keyf) {
                        (Some(cert), Some(key)) => Some(TlsFiles {
                            cert,
                            key,
                            hsts_max_age: hsts,
                        }),
                        _ => continue,
                    }
                }
                _ => {
                    self.err(
                        &key,
                        "tls_cert and tls_key go together",
                        "set both for a TLS listener, or neither for plain HTTP",
                    );
                    continue;
                }
            };
            out.push(ListenerConfig {
                address,
                tls,
                hsts_max_age: hsts,
            });
        }
        out
    }

    fn admin(&mut self, address: Option<&str>, listeners: &[ListenerConfig]) -> Option<SocketAddr> {
        let raw = address?;
        if raw.is_empty() || raw == "off" {
            return None;
        }
        let addr = self.socket_addr("admin.address", raw)?;
        if listeners.iter().any(|l| l.address == addr) {
            self.err(
                "admin.address",
                format!("{addr} is also a proxy listener"),
                "the admin listener (metrics, health) needs its own address, usually on 127.0.0.1",
            );
        }
        Some(addr)
    }

    fn log(&mut self, format: &str, level: &str) -> LogConfig {
        let format = match format {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                self.err(
                    "log.format",
                    format!("unknown log format `{other}`"),
                    "use \"pretty\" (for people) or \"json\" (for log shippers)",
                );
                LogFormat::Pretty
            }
        };
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
            self.err("log.level", format!("`{level}` is not a log filter: {e}"), "use a level (error, warn, info, debug, trace) or directives like \"info,vigie=debug\"");
        }
        LogConfig {
            format,
            level: level.to_string(),
            access_buffer_bytes: 0,
        }
    }

    fn trusted_proxies(&mut self, list: &[String]) -> Vec<IpNet> {
        let nets = self.networks("network.trusted_proxies", list);
        if nets.iter().any(|n| n.prefix_len() < 8) {
            self.warnings.push(
                "network.trusted_proxies holds a network wider than /8: every address in it may \
                 name any client (X-Forwarded-For) and claim https (X-Forwarded-Proto); list only \
                 the load balancers' addresses"
                    .into(),
            );
        }
        nets
    }

    pub(super) fn networks(&mut self, key: &str, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            let parsed = raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => out.push(net),
                Err(_) => self.err(
                    &format!("{key}[{i}]"),
                    format!("`{raw}` is not an IP address or CIDR network"),
                    "write an address (\"10.0.0.5\") or a network (\"10.0.0.0/8\", \"fd00::/8\")",
                ),
            }
        }
        out
    }

    fn header_rules(&mut self, strip: &[String], allow_underscores: bool) -> HeaderRules {
        let mut names = Vec::new();
        for (i, name) in strip.iter().enumerate() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
            {
                self.err(
                    &format!("headers.strip_request[{i}]"),
                    format!("`{name}` is not a header name"),
                    "use letters, digits and dashes, e.g. \"X-Portal-User\"",
                );
            } else {
                names.push(name.to_ascii_lowercase().replace('_', "-"));
            }
        }
        HeaderRules {
            strip_request: names,
            allow_underscores,
        }
    }

    fn socket_addr(&mut self, key: &str, raw: &str) -> Option<SocketAddr> {
        match raw.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    key,
                    format!("`{raw}` is not an IP address with a port"),
                    "write IP:PORT, e.g. \"0.0.0.0:8080\", \"127.0.0.1:9090\" or \"[::]:8443\"",
                );
                None
            }
        }
    }

    /// Upstreams may be names; they are resolved once, at load.
    fn readable_file(&mut self, key: &str, raw: &str) -> Option<PathBuf> {
        let path = self.base.join(raw);
        if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            self.err(
                key,
                format!("`{}` is not a regular file", path.display()),
                "give a PEM file (not a directory, a FIFO or a device)",
            );
            return None;
        }
        match std::fs::File::open(&path) {
            Ok(_) => Some(path),
            Err(e) => {
                self.err(
                    key,
                    format!("cannot read `{}`: {e}", path.display()),
                    "give a readable PEM file; relative paths start from the config file's folder",
                );
                None
            }
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn valid_header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests;
