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
