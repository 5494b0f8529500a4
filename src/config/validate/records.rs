//! `[storage] records` and the PostgreSQL settings: the URL parsed and its password read now,
//! so a mistake stops `check-config`, not the first alert.

use std::str::FromStr;

use super::*;
use crate::config::Records;
use crate::storage::postgres::PgSettings;

impl Validator<'_> {
    pub(super) fn records(&mut self, s: &crate::config::file::StorageSection) -> Records {
        let pg_keys = [
            ("storage.postgres_url", s.postgres_url.is_some()),
            (
                "storage.postgres_password_file",
                s.postgres_password_file.is_some(),
            ),
            ("storage.postgres_ca_file", s.postgres_ca_file.is_some()),
        ];
        match s.records.as_str() {
            "sqlite" => {
                for (key, set) in pg_keys {
                    if set {
                        self.err(
                            key,
                            "set, but records = \"sqlite\"",
                            "set records = \"postgres\" to keep records in PostgreSQL, or remove the setting",
                        );
                    }
                }
                Records::Sqlite
            }
            "postgres" => self
                .postgres(s)
                .map_or(Records::Sqlite, |p| Records::Postgres(Box::new(p))),
            other => {
                self.err(
                    "storage.records",
                    format!("unknown records store `{other}`"),
                    "use \"sqlite\" (the database file, one gateway) or \"postgres\" (shared by replicas)",
                );
                Records::Sqlite
            }
        }
    }

    fn postgres(&mut self, s: &crate::config::file::StorageSection) -> Option<PgSettings> {
        let Some(url) = &s.postgres_url else {
            self.err(
                "storage.postgres_url",
                "records = \"postgres\" needs the server",
                "e.g. postgres_url = \"postgres://vigie@db.internal:5432/vigie?sslmode=require\"",
            );
            return None;
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            self.err(
                "storage.postgres_url",
                "not a postgres:// URL",
                "write postgres://USER@HOST:PORT/DATABASE?sslmode=require",
            );
            return None;
        }
        let mut config = match tokio_postgres::Config::from_str(url) {
            Ok(c) => c,
            Err(e) => {
                self.err(
                    "storage.postgres_url",
                    format!("cannot be read: {e}"),
                    "write postgres://USER@HOST:PORT/DATABASE?sslmode=require",
                );
                return None;
            }
        };
        if config.get_user().is_none() {
            self.err(
                "storage.postgres_url",
                "names no user",
                "write postgres://USER@HOST:PORT/DATABASE",
            );
        }
        if config.get_dbname().is_none() {
            self.err(
                "storage.postgres_url",
                "names no database",
                "give Vigie a database of its own: postgres://USER@HOST:PORT/vigie",
            );
        }
        match (&s.postgres_password_file, config.get_password().is_some()) {
            (Some(_), true) => self.err(
                "storage.postgres_url",
                "the URL carries a password, and postgres_password_file is set too",
                "keep the password in postgres_password_file only, out of the URL",
            ),
            (Some(raw), false) => {
                if let Some(p) = self.secret_file("storage.postgres_password_file", raw, 1) {
                    config.password(p.0);
                }
            }
            (None, true) => self.warnings.push("storage.postgres_url carries the PostgreSQL password: anyone who reads the configuration has it; move it to postgres_password_file (mode 0600)".into()),
            (None, false) => {}
        }
        let tls = config.get_ssl_mode() != tokio_postgres::config::SslMode::Disable;
        let local = config.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => true,
        });
        if config.get_ssl_mode() != tokio_postgres::config::SslMode::Require && !local {
            self.warnings.push(format!(
                "storage.postgres_url: sslmode is not `require`, so locks, alerts and sealed factors may cross the network in clear to {}; add ?sslmode=require",
                shown(&config)
            ));
        }
        let ca = match (&s.postgres_ca_file, tls) {
            (Some(_), false) => {
                self.err(
                    "storage.postgres_ca_file",
                    "set, but the URL has sslmode=disable",
                    "use sslmode=require to reach PostgreSQL over TLS, or remove the setting",
                );
                None
            }
            (Some(raw), true) => {
                let path = self.base.join(raw);
                match std::fs::read(&path) {
                    Ok(bytes) if bytes.windows(10).any(|w| w == b"-----BEGIN") => Some(bytes),
                    Ok(_) => {
                        self.err(
                            "storage.postgres_ca_file",
                            format!("`{}` is not PEM", path.display()),
                            "give the PEM file of the CA that signed the server's certificate",
                        );
                        None
                    }
                    Err(e) => {
                        self.err(
                            "storage.postgres_ca_file",
                            format!("cannot read `{}`: {e}", path.display()),
                            "give a readable PEM file",
                        );
                        None
                    }
                }
            }
            (None, _) => None,
        };
        Some(PgSettings {
            shown: shown(&config),
            config,
            ca,
        })
    }
}

/// Where the server is, for messages and logs, made from the parsed settings rather than
/// the text: a password may sit in the user part or in the query (`?password=`), and neither
/// must ever be shown.
fn shown(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(i).or(config.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let user = config.get_user().map_or(String::new(), |u| format!("{u}@"));
    let db = config.get_dbname().unwrap_or("");
    let mode = match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => "?sslmode=disable",
        tokio_postgres::config::SslMode::Require => "?sslmode=require",
        _ => "",
    };
    format!("postgres://{user}{}/{db}{mode}", hosts.join(","))
}
