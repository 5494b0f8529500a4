//! File config -> validated [`Config`], collecting every error with its place in the file.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diagnostic::{ConfigError, ConfigErrors, Locator};
use super::file::{FileConfig, ListenerSection, PortalSection};
use super::*;

pub(super) fn parse_and_validate(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let loc = Locator::new(path, text);
    let file: FileConfig =
        toml::from_str(text).map_err(|e| ConfigErrors(vec![loc.parse_error(text, &e)]))?;
    let mut v = Validator {
        loc: &loc,
        errors: Vec::new(),
        base: path.parent().unwrap_or(Path::new(".")),
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
    base: &'a Path,
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
        let server = ServerConfig {
            threads,
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
        };
        let listeners = self.listeners(&f.listener);
        let admin = self.admin(f.admin.address.as_deref(), &listeners);
        let admin_token = f
            .admin
            .api_token_file
            .as_ref()
            .and_then(|raw| self.secret_file("admin.api_token_file", raw, 24));
        let log = self.log(&f.log.format, &f.log.level);
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
        };
        let trusted_proxies = self.trusted_proxies(&f.network.trusted_proxies);
        let headers = self.header_rules(&f.headers.strip_request, f.headers.allow_underscores);
        let session = self.session(&f.session);
        let storage = self.storage(&f.storage);
        let assertion = self.assertion(&f.assertion);
        let portals = self.portals(&f.portal);
        Config {
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
            portals,
        }
    }

    fn assertion(&mut self, a: &super::file::AssertionSection) -> AssertionConfig {
        if !valid_header_name(&a.header) {
            self.err(
                "assertion.header",
                format!("`{}` is not a header name", a.header),
                "e.g. \"X-Vigie-Assertion\"",
            );
        }
        let lifetime = secs(self.range(
            "assertion.lifetime_seconds",
            a.lifetime_seconds,
            5,
            3600,
            "",
        ));
        let key_dir = a.key_dir.as_ref().map(|d| self.base.join(d));
        if let Some(dir) = &key_dir {
            if let Err(e) = crate::identity::assertion::AssertionKeys::load_dir(dir) {
                self.err(
                    "assertion.key_dir",
                    e.to_string(),
                    "keys are Ed25519 PEM files; `vigie keys generate --dir DIR` makes one",
                );
            }
        }
        AssertionConfig {
            issuer: a.issuer.clone(),
            header: a.header.clone(),
            lifetime,
            key_dir,
        }
    }

    /// Read a secret file of at least `min` bytes (surrounding white space ignored).
    fn secret_file(&mut self, key: &str, raw: &str, min: usize) -> Option<Secret> {
        let path = self.base.join(raw);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.trim_ascii().len() >= min => {
                Some(Secret(bytes.trim_ascii().to_vec()))
            }
            Ok(_) => {
                self.err(
                    key,
                    format!("`{}` holds fewer than {min} bytes", path.display()),
                    "fill it with random bytes, e.g. `openssl rand -hex 32 > FILE`",
                );
                None
            }
            Err(e) => {
                self.err(
                    key,
                    format!("cannot read `{}`: {e}", path.display()),
                    format!("give a readable file of at least {min} random bytes"),
                );
                None
            }
        }
    }

    fn storage(&mut self, s: &super::file::StorageSection) -> StorageConfig {
        let session_key = s
            .session_key_file
            .as_ref()
            .and_then(|raw| self.secret_file("storage.session_key_file", raw, 32))
            .map(|s| s.0);
        let backend = match s.backend.as_str() {
            "embedded" => StorageBackend::Embedded,
            "redis" => {
                let url = s.redis_url.clone().unwrap_or_default();
                if !(url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("unix://"))
                {
                    self.err(
                        "storage.redis_url",
                        format!("`{url}` is not a Redis URL"),
                        "write redis://HOST:PORT/DB, e.g. \"redis://10.0.0.5:6379/0\"",
                    );
                }
                if s.session_key_file.is_none() {
                    self.err("storage.session_key_file", "replicas sharing Redis need one shared session key", "point session_key_file at a file of at least 32 random bytes, the same on every replica");
                }
                StorageBackend::Redis {
                    url,
                    prefix: s.redis_prefix.clone(),
                }
            }
            other => {
                self.err(
                    "storage.backend",
                    format!("unknown storage backend `{other}`"),
                    "use \"embedded\" (one node) or \"redis\" (several replicas)",
                );
                StorageBackend::Embedded
            }
        };
        StorageConfig {
            backend,
            session_key,
            database: self.base.join(&s.database),
        }
    }

    fn session(&mut self, s: &super::file::SessionSection) -> SessionConfig {
        let name_ok = !s.cookie_name.is_empty()
            && s.cookie_name.len() <= 64
            && s.cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !s.cookie_name.starts_with("__");
        if !name_ok {
            self.err(
                "session.cookie_name",
                format!("`{}` is not a usable cookie name", s.cookie_name),
                "use letters, digits, `-` and `_`; the `__Host-` prefix is added on TLS listeners",
            );
        }
        let idle = self.range(
            "session.idle_timeout_seconds",
            s.idle_timeout_seconds,
            60,
            86_400,
            "",
        );
        let absolute = self.range(
            "session.absolute_timeout_seconds",
            s.absolute_timeout_seconds,
            300,
            7 * 86_400,
            "",
        );
        if absolute < idle {
            self.err(
                "session.absolute_timeout_seconds",
                format!("{absolute} is shorter than the idle timeout ({idle})"),
                "the absolute limit must be at least the idle limit",
            );
        }
        SessionConfig {
            cookie_name: s.cookie_name.clone(),
            idle_timeout: secs(idle),
            absolute_timeout: secs(absolute),
            anonymous_timeout: secs(self.range(
                "session.anonymous_timeout_seconds",
                s.anonymous_timeout_seconds,
                30,
                3600,
                "",
            )),
            max_sessions: self.range("session.max_sessions", s.max_sessions, 1, 10_000_000, "")
                as usize,
            max_anonymous_sessions: self.range(
                "session.max_anonymous_sessions",
                s.max_anonymous_sessions,
                1,
                10_000_000,
                "",
            ) as usize,
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
            out.push(ListenerConfig { address, tls });
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
        }
    }

    fn trusted_proxies(&mut self, list: &[String]) -> Vec<IpNet> {
        let mut out = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            let parsed = raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => out.push(net),
                Err(_) => self.err(
                    &format!("network.trusted_proxies[{i}]"),
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

    fn portals(&mut self, sections: &[PortalSection]) -> Vec<PortalConfig> {
        if sections.is_empty() {
            self.err(
                "portal",
                "no [[portal]] is configured, so there is nothing to protect",
                "add a table such as:\n    [[portal]]\n    name = \"ehr\"\n    upstream = \"127.0.0.1:8081\"",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut hosts: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, p) in sections.iter().enumerate() {
            let key = format!("portal[{i}]");
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.err(
                    &format!("{key}.name"),
                    format!("`{}` is not a valid portal name", p.name),
                    "use letters, digits, `-` and `_` (it appears in metrics labels)",
                );
            } else if let Some(prev) = names.insert(&p.name, i) {
                self.err(
                    &format!("{key}.name"),
                    format!("portal name `{}` is already used by portal[{prev}]", p.name),
                    "give each portal a unique name",
                );
            }
            if p.hosts.is_empty() {
                self.err(
                    &format!("{key}.hosts"),
                    "the host list is empty, so no request can reach this portal",
                    "list the host names clients use, or \"*\" for any host",
                );
            }
            let mut portal_hosts = Vec::new();
            for (j, h) in p.hosts.iter().enumerate() {
                let h = h.to_ascii_lowercase();
                let hkey = format!("{key}.hosts[{j}]");
                if h != "*" && !valid_host(&h) {
                    self.err(&hkey, format!("`{h}` is not a host name"), "write a host without scheme or port, e.g. \"ehr.hospital.local\", or \"*\"");
                    continue;
                }
                if let Some(prev) = hosts.insert(h.clone(), i) {
                    self.err(
                        &hkey,
                        format!("host `{h}` is already served by portal[{prev}]"),
                        "each host name (and the \"*\" catch-all) belongs to one portal",
                    );
                }
                portal_hosts.push(h);
            }
            let upstream = self.upstream(&format!("{key}.upstream"), &p.upstream);
            let upstream_tls = if p.upstream_tls {
                let sni = p.upstream_sni.clone().or_else(|| {
                    let host = p
                        .upstream
                        .rsplit_once(':')
                        .map_or(p.upstream.as_str(), |(h, _)| h);
                    (host.parse::<std::net::IpAddr>().is_err()).then(|| host.to_string())
                });
                if sni.is_none() {
                    self.err(
                        &format!("{key}.upstream_sni"),
                        "the portal speaks TLS but no certificate name is known",
                        "set upstream_sni to the name on the portal's certificate",
                    );
                }
                sni
            } else {
                if p.upstream_sni.is_some() {
                    self.err(
                        &format!("{key}.upstream_sni"),
                        "upstream_sni is set but upstream_tls is false",
                        "set upstream_tls = true, or remove upstream_sni",
                    );
                }
                None
            };
            let ms = |v: &mut Self, k: &str, val: i64, hi: i64| {
                Duration::from_millis(v.range(&format!("{key}.{k}"), val, 1, hi, " milliseconds"))
            };
            let connect_timeout = ms(self, "connect_timeout_ms", p.connect_timeout_ms, 60_000);
            let read_timeout = ms(self, "read_timeout_ms", p.read_timeout_ms, 3_600_000);
            let write_timeout = ms(self, "write_timeout_ms", p.write_timeout_ms, 3_600_000);
            let idle_timeout = secs(self.range(
                &format!("{key}.idle_timeout_seconds"),
                p.idle_timeout_seconds,
                0,
                3600,
                "",
            ));
            let profile = p.profile.as_ref().and_then(|raw| {
                let path = self.base.join(raw);
                match super::profile::load(&path) {
                    Ok(profile) => Some(std::sync::Arc::new(profile)),
                    Err(errors) => {
                        // The profile's own errors name its file; say which portal uses it too.
                        let key = format!("{key}.profile");
                        let msg = format!(
                            "the portal profile `{}` is invalid (see below)",
                            path.display()
                        );
                        self.errors.push(self.loc.error(&key, msg, None));
                        self.errors.extend(errors.0);
                        None
                    }
                }
            });
            let login = match p.login.as_str() {
                "portal" => LoginMode::Portal,
                "gateway" => {
                    for (k, v) in [
                        ("identity_header_user", &p.identity_header_user),
                        ("identity_header_groups", &p.identity_header_groups),
                    ] {
                        if !valid_header_name(v) {
                            self.err(
                                &format!("{key}.{k}"),
                                format!("`{v}` is not a header name"),
                                "e.g. \"X-Remote-User\"",
                            );
                        }
                    }
                    if p.profile.is_some() {
                        self.err(&format!("{key}.login"), "a portal either logs people in itself (profile) or trusts the gateway's login, not both", "remove `profile`, or set login = \"portal\"");
                    }
                    LoginMode::Gateway {
                        user_header: p.identity_header_user.clone(),
                        groups_header: p.identity_header_groups.clone(),
                    }
                }
                other => {
                    self.err(&format!("{key}.login"), format!("unknown login mode `{other}`"), "use \"portal\" (the portal's own form, with a profile) or \"gateway\" (local users, identity headers)");
                    LoginMode::Portal
                }
            };
            if let Some(upstream) = upstream {
                out.push(PortalConfig {
                    name: p.name.clone(),
                    hosts: portal_hosts,
                    upstream,
                    upstream_tls,
                    connect_timeout,
                    read_timeout,
                    write_timeout,
                    idle_timeout,
                    case_insensitive_paths: p.case_insensitive_paths,
                    profile,
                    login,
                });
            }
        }
        out
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
    fn upstream(&mut self, key: &str, raw: &str) -> Option<SocketAddr> {
        if let Ok(a) = raw.parse::<SocketAddr>() {
            return Some(a);
        }
        if !raw.contains(':') {
            self.err(
                key,
                format!("`{raw}` has no port"),
                "write HOST:PORT, e.g. \"10.1.2.3:80\" or \"ehr.internal:8443\"",
            );
            return None;
        }
        match raw.to_socket_addrs().map(|mut it| it.next()) {
            Ok(Some(a)) => Some(a),
            _ => {
                self.err(
                    key,
                    format!("`{raw}` does not resolve to an address"),
                    "check the host name, or write the portal's IP:PORT",
                );
                None
            }
        }
    }

    fn readable_file(&mut self, key: &str, raw: &str) -> Option<PathBuf> {
        let path = self.base.join(raw);
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
mod tests {
    use super::*;

    const MINIMAL: &str = "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n";

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml(Path::new("test.toml"), text)
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.listeners[0].address, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.admin, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(c.portals[0].hosts, vec!["*"]);
        assert_eq!(c.limits.max_header_count, 100);
        assert!(c.server.threads >= 1);
    }

    #[test]
    fn typo_in_key_names_line_and_suggests_fix() {
        let text = MINIMAL.replace("address = \"127", "adress = \"127");
        let errs = load(&text).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].position.map(|p| p.0), Some(2));
        assert!(
            errs[0].message.contains("unknown field `adress`"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].help.as_deref(), Some("did you mean `address`?"));
    }

    #[test]
    fn every_semantic_error_is_reported_with_its_line() {
        let text = "[server]\nthreads = 999\n\n[[listener]]\naddress = \"0.0.0.0:80800\"\n\n[network]\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1\"\nhosts = [\"a b\"]\n";
        let errs = load(text).unwrap_err().0;
        let found: Vec<(String, usize)> = errs
            .iter()
            .map(|e| (e.key.clone(), e.position.unwrap().0))
            .collect();
        assert!(found.contains(&("server.threads".into(), 2)), "{found:?}");
        assert!(
            found.contains(&("listener[0].address".into(), 5)),
            "{found:?}"
        );
        assert!(
            found.contains(&("network.trusted_proxies[1]".into(), 8)),
            "{found:?}"
        );
        assert!(
            found.contains(&("portal[0].hosts[0]".into(), 13)),
            "{found:?}"
        );
        assert!(
            found.contains(&("portal[0].upstream".into(), 12)),
            "{found:?}"
        );
    }

    #[test]
    fn conflicting_hosts_and_missing_tls_files_are_errors() {
        let text = format!(
            "{MINIMAL}\n[[portal]]\nname = \"lab\"\nupstream = \"127.0.0.1:8082\"\n\n[[listener]]\naddress = \"127.0.0.1:8443\"\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n"
        );
        let errs = load(&text).unwrap_err().0;
        assert!(errs
            .iter()
            .any(|e| e.key == "portal[1].hosts[0]" && e.message.contains("already served")));
        assert!(errs.iter().any(|e| e.key == "listener[1].tls_cert"));
        assert!(errs.iter().any(|e| e.key == "listener[1].tls_key"));
    }

    #[test]
    fn bad_log_settings_and_wrong_types_are_errors() {
        let errs = load(&format!("{MINIMAL}[log]\nformat = \"xml\"\n"))
            .unwrap_err()
            .0;
        assert_eq!(errs[0].key, "log.format");
        let errs = load("[limits]\nmax_url_bytes = \"big\"\n").unwrap_err().0;
        assert!(
            errs[0].message.contains("invalid type"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].position.map(|p| p.0), Some(2));
    }

    #[test]
    fn empty_file_explains_what_is_missing() {
        let errs = load("").unwrap_err().0;
        assert!(errs.iter().any(|e| e.key == "listener"));
        assert!(errs.iter().any(|e| e.key == "portal"));
    }
}
