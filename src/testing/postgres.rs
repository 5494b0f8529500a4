//! A throwaway database on the machine's PostgreSQL, dropped (with its connections) at the
//! end of the test. Shared by the unit tests and, through `#[path]`, the integration tests.
//!
//! The server is the one at `VIGIE_TEST_POSTGRES` (a libpq URL of a user allowed to create
//! databases), by default `postgres://postgres@127.0.0.1:5432/postgres`. `.ci/run` starts
//! the machine's PostgreSQL when it is not running.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct PgDatabase {
    pub name: String,
    admin: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn admin_url() -> String {
    std::env::var("VIGIE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let admin = admin_url();
        let name = format!(
            "vigie_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand_suffix()
        );
        if let Err(e) = psql(&admin, &format!("CREATE DATABASE {name}")) {
            panic!(
                "these tests need PostgreSQL at {admin} (a user that may create databases): {e}\n\
                 start it (`pg_ctlcluster 15 main start`) or set VIGIE_TEST_POSTGRES"
            );
        }
        PgDatabase { name, admin }
    }

    /// The URL a gateway is configured with (no password: the test server trusts loopback).
    pub fn url(&self) -> String {
        let base = self
            .admin
            .rsplit_once('/')
            .map_or(self.admin.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }

    /// Run SQL in the test's database; its output, rows as `a|b` lines.
    pub fn sql(&self, sql: &str) -> String {
        psql(&self.url(), sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The database dropped under its connections (a lost server, a wrong restore).
    #[allow(dead_code)]
    pub fn gone(&self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .unwrap();
    }

    /// Made again, empty.
    #[allow(dead_code)]
    pub fn back(&self) {
        psql(&self.admin, &format!("CREATE DATABASE {}", self.name)).unwrap();
    }

    /// What `pg_dump` of the database holds (schema and rows); the integration tests scan it.
    #[allow(dead_code)]
    pub fn dump(&self) -> Vec<u8> {
        let out = Command::new("pg_dump")
            .arg(self.url())
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl PgDatabase {
    /// The database replaced by a `pg_dump` taken earlier (a restore from a backup).
    #[allow(dead_code)]
    pub fn restore(&self, dump: &[u8]) {
        use std::io::Write;
        self.gone();
        self.back();
        let mut psql = Command::new("psql")
            .args([self.url().as_str(), "-q", "-v", "ON_ERROR_STOP=1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql");
        psql.stdin.take().unwrap().write_all(dump).unwrap();
        assert!(
            psql.wait().unwrap().success(),
            "the dump could not be restored"
        );
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
