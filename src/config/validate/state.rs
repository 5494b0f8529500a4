//! Validation of sessions, storage and identity assertions.

use super::*;

impl Validator<'_> {
    pub(super) fn assertion(
        &mut self,
        a: &crate::config::file::AssertionSection,
    ) -> AssertionConfig {
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
        let keys = key_dir.as_ref().and_then(|dir| {
            match crate::identity::assertion::AssertionKeys::load_dir(dir) {
                Ok(keys) => Some(std::sync::Arc::new(keys)),
                Err(e) => {
                    self.err(
                        "assertion.key_dir",
                        e.to_string(),
                        "keys are Ed25519 PEM files; `vigie keys generate --dir DIR` makes one",
                    );
                    None
                }
            }
        });
        AssertionConfig {
            issuer: a.issuer.clone(),
            header: a.header.clone(),
            lifetime,
            key_dir,
            keys,
        }
    }

    /// The CA and client certificate files of `rediss://`, read now (a file that cannot be read
    /// stops `check-config`, not the first connection). Without TLS they are refused: they
    /// would protect nothing.
    fn redis_tls(
        &mut self,
        s: &crate::config::file::StorageSection,
        tls: bool,
    ) -> crate::config::RedisTls {
        let files = [
            ("storage.redis_ca_file", &s.redis_ca_file),
            ("storage.redis_client_cert_file", &s.redis_client_cert_file),
            ("storage.redis_client_key_file", &s.redis_client_key_file),
        ];
        if !tls {
            for (key, file) in files {
                if file.is_some() {
                    self.err(
                        key,
                        "set, but redis_url is not rediss://",
                        "use a rediss:// URL to reach Redis over TLS, or remove the setting",
                    );
                }
            }
            return Default::default();
        }
        let mut pem = |key: &str, raw: &Option<String>| {
            let path = self.base.join(raw.as_ref()?);
            match std::fs::read(&path) {
                Ok(bytes) if bytes.windows(10).any(|w| w == b"-----BEGIN") => Some(bytes),
                Ok(_) => {
                    self.err(
                        key,
                        format!("`{}` is not PEM", path.display()),
                        "give a PEM file (-----BEGIN …)",
                    );
                    None
                }
                Err(e) => {
                    self.err(
                        key,
                        format!("cannot read `{}`: {e}", path.display()),
                        "give a readable PEM file",
                    );
                    None
                }
            }
        };
        let ca = pem(files[0].0, files[0].1);
        let cert = pem(files[1].0, files[1].1);
        let key = pem(files[2].0, files[2].1);
        let client = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, Secret(key))),
            (None, None) => None,
            _ => {
                if s.redis_client_cert_file.is_some() != s.redis_client_key_file.is_some() {
                    self.err(
                        "storage.redis_client_cert_file",
                        "a client certificate needs its key, and a key its certificate",
                        "set both redis_client_cert_file and redis_client_key_file, or neither",
                    );
                }
                None
            }
        };
        crate::config::RedisTls { ca, client }
    }

    /// Read a secret file of at least `min` bytes (surrounding white space ignored).
    pub(super) fn secret_file(&mut self, key: &str, raw: &str, min: usize) -> Option<Secret> {
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

    /// A Redis URL checked, with the password from `redis_password_file` put in it.
    fn redis_url(
        &mut self,
        key: &str,
        url: &str,
        s: &crate::config::file::StorageSection,
    ) -> String {
        let mut url = url.to_string();
        let scheme = ["redis://", "rediss://"]
            .into_iter()
            .find(|p| url.starts_with(p));
        if scheme.is_none() && !url.starts_with("unix://") {
            self.err(
                key,
                format!("`{url}` is not a Redis URL"),
                "write redis://HOST:PORT/DB, or rediss://HOST:PORT/DB for TLS, e.g. \"rediss://redis.internal:6380/0\"",
            );
        }
        let has_credentials = |u: &str, p: &str| {
            u[p.len()..]
                .split('/')
                .next()
                .is_some_and(|a| a.contains('@'))
        };
        if let Some(raw) = &s.redis_password_file {
            let password = self.secret_file("storage.redis_password_file", raw, 1);
            match (password, scheme) {
                (Some(_), Some(p)) if has_credentials(&url, p) => {
                    self.err(
                        key,
                        "the URL carries credentials, and redis_password_file is set too",
                        "keep the password in redis_password_file only, out of the URL",
                    );
                }
                (Some(password), Some(p)) => {
                    let user = s.redis_username.as_deref().unwrap_or("");
                    let secret = String::from_utf8_lossy(&password.0);
                    url = format!(
                        "{p}{}:{}@{}",
                        userinfo_encode(user),
                        userinfo_encode(&secret),
                        &url[p.len()..]
                    );
                }
                (Some(_), None) => self.err(
                    "storage.redis_password_file",
                    "a password is only sent over redis:// or rediss://",
                    "use a redis://HOST:PORT/DB URL",
                ),
                (None, _) => {}
            }
        } else if scheme.is_some_and(|p| has_credentials(&url, p)) {
            self.warnings.push(format!("{key} carries the Redis credentials: anyone who reads the configuration has them; move the password to redis_password_file (mode 0600)"));
        } else if s.redis_username.is_some() {
            self.err(
                "storage.redis_username",
                "an ACL user needs its password",
                "set redis_password_file to a file holding the user's password",
            );
        }
        url
    }

    pub(super) fn storage(&mut self, s: &crate::config::file::StorageSection) -> StorageConfig {
        let session_key = s
            .session_key_file
            .as_ref()
            .and_then(|raw| self.secret_file("storage.session_key_file", raw, 32))
            .map(|s| s.0);
        let backend = match s.backend.as_str() {
            "embedded" => {
                if s.redis_cluster_urls.is_some() {
                    self.err(
                        "storage.redis_cluster_urls",
                        "set, but backend = \"embedded\"",
                        "set backend = \"redis\" to share state through the cluster, or remove the setting",
                    );
                }
                StorageBackend::Embedded
            }
            "redis" => {
                let (url, cluster) = match (&s.redis_url, &s.redis_cluster_urls) {
                    (Some(_), Some(_)) => {
                        self.err(
                            "storage.redis_cluster_urls",
                            "set together with redis_url",
                            "name one server in redis_url, or a cluster's nodes in redis_cluster_urls, not both",
                        );
                        (String::new(), Vec::new())
                    }
                    (None, Some(seeds)) if seeds.is_empty() => {
                        self.err(
                            "storage.redis_cluster_urls",
                            "names no node",
                            "list one or more of the cluster's nodes, e.g. [\"redis://10.0.0.1:6379\", \"redis://10.0.0.2:6379\"]",
                        );
                        (String::new(), Vec::new())
                    }
                    (None, Some(seeds)) => {
                        let key = "storage.redis_cluster_urls";
                        if seeds.iter().any(|u| u.starts_with("rediss://"))
                            && !seeds.iter().all(|u| u.starts_with("rediss://"))
                        {
                            self.err(key, "mixes redis:// and rediss://", "reach every node the same way: all rediss:// (TLS) or all redis://");
                        }
                        // A cluster has one database, 0: `SELECT` is refused.
                        let db = |u: &str| {
                            let rest = u.split_once("://").map_or(u, |(_, r)| r);
                            rest.split_once('/').map(|(_, d)| d.to_string())
                        };
                        if let Some(bad) = seeds
                            .iter()
                            .find(|u| db(u).is_some_and(|d| !d.is_empty() && d != "0"))
                        {
                            self.err(
                                key,
                                format!("`{bad}` names a database other than 0"),
                                "a Redis Cluster has only database 0: write redis://HOST:PORT",
                            );
                        }
                        let seeds: Vec<String> =
                            seeds.iter().map(|u| self.redis_url(key, u, s)).collect();
                        (seeds[0].clone(), seeds)
                    }
                    (url, None) => (
                        self.redis_url("storage.redis_url", url.as_deref().unwrap_or(""), s),
                        Vec::new(),
                    ),
                };
                if s.session_key_file.is_none() {
                    self.err("storage.session_key_file", "replicas sharing Redis need one shared session key", "point session_key_file at a file of at least 32 random bytes, the same on every replica");
                }
                let tls = self.redis_tls(s, url.starts_with("rediss://"));
                if !cluster.is_empty() && (tls.ca.is_some() || tls.client.is_some()) {
                    self.err(
                        match tls.ca.is_some() {
                            true => "storage.redis_ca_file",
                            false => "storage.redis_client_cert_file",
                        },
                        "a Redis Cluster's certificates are checked against the system's roots only",
                        "add the CA to the system's trust store (update-ca-certificates), and remove redis_ca_file and redis_client_cert_file",
                    );
                }
                // In a cluster, one hash tag puts every key of Vigie's in one slot.
                let prefix = match cluster.is_empty() || s.redis_prefix.contains('{') {
                    true => s.redis_prefix.clone(),
                    false => format!("{{{}}}", s.redis_prefix),
                };
                StorageBackend::Redis {
                    url,
                    cluster,
                    prefix,
                    vouched_persistent: s.redis_persistence,
                    tls,
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
        let replicas = self.range("storage.replicas", s.replicas, 1, 64, "") as u32;
        let outage_grace = secs(self.range(
            "storage.outage_grace_seconds",
            s.outage_grace_seconds,
            0,
            3600,
            " (0: sessions fail closed as soon as Redis is unreachable)",
        ));
        let days = self.range(
            "storage.audit_retention_days",
            s.audit_retention_days,
            0,
            36_500,
            " (0: kept for ever)",
        );
        let checkpoint = self.range(
            "storage.audit_checkpoint_seconds",
            s.audit_checkpoint_seconds,
            1,
            86_400,
            "",
        );
        StorageConfig {
            replicas,
            outage_grace,
            audit_checkpoint: secs(checkpoint),
            audit_retention: (days > 0).then(|| std::time::Duration::from_secs(days * 86_400)),
            backend,
            session_key,
            database: self.base.join(&s.database),
            records: self.records(s),
        }
    }

    pub(super) fn session(&mut self, s: &crate::config::file::SessionSection) -> SessionConfig {
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
}

/// Percent-encode a URL's user or password (everything but RFC 3986's unreserved characters).
fn userinfo_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
