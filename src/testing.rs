//! Test support shared by unit tests that need a real Redis.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private redis-server on a free port, writing its data (append-only file) under a
/// directory of its own; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = RedisServer {
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port and directory (with whatever data is there).
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/install-deps)");
        // Owned by the guard at once, so it is killed and waited for on every path.
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start");
    }

    /// A session store on this server under prefix `t:` (one-minute lifetimes, Redis trusted),
    /// sharing `locked` as its copy of the locked users.
    pub fn store(
        &self,
        locked: std::sync::Arc<crate::identity::locks::LockedUsers>,
    ) -> std::sync::Arc<crate::storage::redis::sessions::RedisStore> {
        let minute = Duration::from_secs(60);
        let life = crate::identity::session::Lifetimes {
            idle: minute,
            absolute: minute,
            anonymous: minute,
        };
        let health = std::sync::Arc::new(crate::storage::shared_state::StateHealth::trusted());
        std::sync::Arc::new(
            crate::storage::redis::sessions::RedisStore::new(
                crate::storage::redis::Redis::One(
                    redis::Client::open(self.url()).expect("a redis:// URL"),
                ),
                "t:",
                life,
                health,
                locked,
            )
            .unwrap()
            // One ring for every replica of a test, as deployments share theirs.
            .sealing_with(std::sync::Arc::new(
                crate::factors::crypto::KeyRing::parse(
                    "test:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                )
                .expect("a valid test key"),
            )),
        )
    }

    /// A synchronous connection, for test set-up and inspection.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
pub mod postgres;

/// `raw`, a request head, read by pingora's own parser from an in-memory stream, as the
/// listener would hand it to the pipeline (no peer address).
pub async fn request_head(raw: &str) -> pingora::proxy::Session {
    let stream = std::io::Cursor::new(raw.as_bytes().to_vec());
    let mut s = pingora::proxy::Session::new_h1(Box::new(stream));
    assert!(s.read_request().await.unwrap(), "pingora read the head");
    s
}

/// A portal profile shipped in `config/profiles/` (`name` with its `.toml`), loaded as the
/// gateway loads it.
pub fn shipped_profile(name: &str) -> crate::config::PortalProfile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/profiles")
        .join(name);
    crate::config::profile::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `method raw_target` as the front stages hand it on: canonical, from a browser at 10.1.2.3
/// (no proxy), over TLS, for `ehr.local`.
pub fn request(method: &str, raw_target: &str) -> crate::pipeline::normalise::Request {
    use crate::pipeline::normalise::{normalise_target, ClientAddress, Request};
    let ip: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    Request {
        method: method.parse().unwrap(),
        target: normalise_target(raw_target).unwrap(),
        host: "ehr.local".into(),
        client: ClientAddress {
            ip,
            peer: ip,
            peer_trusted: false,
        },
        tls: true,
    }
}

/// A configuration with one portal, `ehr` on 127.0.0.1:1, described by the sample portal's
/// profile, in Paris time: `top` goes before the portal (rules, budgets…), `portal_extra` in
/// its table, `more` after it (other portals).
pub fn sample_portal_config(top: &str, portal_extra: &str, more: &str) -> crate::config::Config {
    profiled_config("sample-portal", top, portal_extra, more)
}

/// As [`sample_portal_config`], with another shipped profile (`config/profiles/<profile>.toml`).
pub fn profiled_config(
    profile: &str,
    top: &str,
    portal_extra: &str,
    more: &str,
) -> crate::config::Config {
    let profile = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("config/profiles/{profile}.toml"));
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:1\"\n[policy]\ntime_zone = \"Europe/Paris\"\n{top}\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:1\"\nprofile = \"{}\"\n{portal_extra}\n{more}\n",
        profile.display()
    );
    crate::config::Config::demo_from_toml(std::path::Path::new("t.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Rules the policy and pipeline tests share: an admin area no one reaches, an export that
/// wants a fresh passkey and spends the export budget, no writes from anywhere at night
/// (break-glass lifts it), public static files.
pub const SAMPLE_RULES: &str = r#"
[[rule]]
name = "admin-area"
path = "/admin/**"
deny = true

[[rule]]
name = "export"
path = "/index.php"
query = { raw = "ajax_export*" }
level = "phishing_resistant"
within_minutes = 5
budget = "export"

[[rule]]
name = "no-writes-from-outside"
methods = ["POST", "PUT", "DELETE"]
networks = ["0.0.0.0/0"]
hours = "20:00-07:00"
deny = true
break_glass = true

[[rule]]
name = "static"
path = "/static/**"
level = "public"
"#;

/// Every event logged while it is the subscriber, as the audit layer reads it.
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<crate::audit::Entry>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0
            .lock()
            .unwrap()
            .push(crate::audit::layer::entry(event));
    }
}
