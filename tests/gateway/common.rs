//! Test harness: real processes on free loopback ports, a raw HTTP/1.1 client, and an
//! echo upstream that shows exactly what a portal would receive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod process;
pub use process::*;

/// The sample portal on a free port.
pub struct Portal {
    pub port: u16,
    proc: Proc,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl Portal {
    /// Stop the portal and start it again on its port: it forgets every session it had.
    pub fn restart(&mut self) {
        self.proc.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.proc = spawn_vigie(&args, &self.dir);
        self.proc.wait_listening(&[self.port], "the sample portal");
    }
}

pub fn start_portal() -> Portal {
    start_portal_with(&[])
}

/// The sample portal with extra flags (e.g. `--session-before-login`).
pub fn start_portal_with(flags: &[&str]) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["sample-portal", "--listen", &listen];
    if !flags.contains(&"--patients") {
        args.extend_from_slice(&["--patients", "300"]);
    }
    args.extend_from_slice(flags);
    let mut proc = spawn_vigie(&args, &dir);
    proc.wait_listening(&[port], "the sample portal");
    Portal {
        port,
        proc,
        dir,
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// A gateway started from a config text; `{upstream}` in `extra_portal` is replaced.
pub struct Gateway {
    pub port: u16,
    pub admin_port: u16,
    pub proc: Proc,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
}

/// Start a gateway in front of `upstream_port`, with extra TOML appended (limits, etc.).
pub fn start_gateway(upstream_port: u16, extra: &str) -> Gateway {
    let portal = format!("[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{upstream_port}\"\nread_timeout_ms = 1500\nconnect_timeout_ms = 500\n");
    start_gateway_with(&portal, extra)
}

/// A gateway in front of `upstream_port` using a shipped portal profile (`config/profiles/NAME`).
pub fn start_profiled_gateway(upstream_port: u16, profile: &str, extra: &str) -> Gateway {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/profiles")
        .join(profile);
    let portal = format!(
        "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{upstream_port}\"\nread_timeout_ms = 1500\nprofile = \"{}\"\n",
        path.display()
    );
    start_gateway_with(&portal, extra)
}

/// A gateway's configuration written into a fresh directory, on free ports; not started.
pub struct Prepared {
    pub port: u16,
    pub admin_port: u16,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

pub fn prepare_gateway(portals: &str, extra: &str) -> Prepared {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The OS may hand the same free port out twice in a row.
    let admin_port = std::iter::repeat_with(free_port)
        .find(|p| *p != port)
        .unwrap();
    let token = dir.path().join("admin.token");
    std::fs::write(&token, ADMIN_TOKEN).unwrap();
    let extra = with_second_factor(extra, dir.path(), port);
    let text = format!(
        "[server]\nthreads = 1\ngrace_period_seconds = 0\ngraceful_shutdown_timeout_seconds = 1\n\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n\n[admin]\naddress = \"127.0.0.1:{admin_port}\"\napi_token_file = \"{}\"\n\n{extra}\n\n{portals}",
        token.display()
    );
    let config = dir.path().join("vigie.toml");
    std::fs::write(&config, text).unwrap();
    Prepared {
        port,
        admin_port,
        config,
        dir,
    }
}

impl Prepared {
    /// Run `vigie run` on it, without waiting for its ports.
    pub fn spawn(&self) -> Proc {
        spawn_vigie(&["run", "-c", self.config.to_str().unwrap()], &self.dir)
    }
}

pub fn start_gateway_with(portals: &str, extra: &str) -> Gateway {
    start_prepared(prepare_gateway(portals, extra))
}

/// Run a prepared gateway and wait for its ports.
fn start_prepared(prepared: Prepared) -> Gateway {
    let Prepared {
        port,
        admin_port,
        config,
        dir,
    } = prepared;
    let mut proc = spawn_vigie(&["run", "-c", config.to_str().unwrap()], &dir);
    proc.wait_listening(&[port, admin_port], "the gateway");
    Gateway {
        port,
        admin_port,
        proc,
        config,
        _dir: dir,
    }
}

/// The same with `threads` worker threads: requests run truly at once (races).
pub fn start_gateway_threads(portals: &str, extra: &str, threads: usize) -> Gateway {
    let prepared = prepare_gateway(portals, extra);
    let text = std::fs::read_to_string(&prepared.config).unwrap();
    let text = text.replacen("threads = 1\n", &format!("threads = {threads}\n"), 1);
    std::fs::write(&prepared.config, text).unwrap();
    start_prepared(prepared)
}

impl Gateway {
    /// Stop the process and start it again on the same configuration and state directory.
    pub fn restart(&mut self) {
        // The old process is killed and reaped before the new one binds its ports.
        self.proc.kill();
        self.proc = spawn_vigie(&["run", "-c", self.config.to_str().unwrap()], &self._dir);
        self.proc
            .wait_listening(&[self.port, self.admin_port], "the restarted gateway");
    }
}

/// Run the `vigie` command line; it must succeed. Returns its standard output.
pub fn vigie_ok<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = Command::new(VIGIE).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vigie failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh second-factor key ring file in `dir`; returns its path.
/// The tests' key ring: one for every gateway, as the replicas of a deployment share theirs
/// (they seal factors and session vaults in the Redis they share).
/// A session key file in `dir` (the one every replica of a test shares).
pub fn session_key_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("session.key");
    std::fs::write(&path, "0123456789abcdef0123456789abcdef-shared-by-replicas").unwrap();
    path
}

pub fn factor_key_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("factor.keys");
    let key = "test-key:dGVzdHMtb25seS1mYWN0b3Ita2V5LTMyLWJ5dGVzISE=";
    std::fs::write(&path, format!("{key}\n")).unwrap();
    path
}

/// Every gateway needs a `[second_factor]` key ring and WebAuthn origin. Tests that exercise
/// second factors write their own `[second_factor]` section (a key ring and the origin are
/// added to it unless given); the older tests of session mechanics run with the second factor
/// off, as during a staged rollout.
fn with_second_factor(extra: &str, dir: &std::path::Path, port: u16) -> String {
    let mut lines = String::new();
    let has = |key: &str| extra.lines().any(|l| l.trim_start().starts_with(key));
    if !has("key_file") {
        lines += &format!("key_file = \"{}\"\n", factor_key_file(dir).display());
    }
    if !has("webauthn_origins") {
        lines += &format!("webauthn_origins = [\"http://localhost:{port}\"]\n");
    }
    let extra = if extra.contains("[second_factor]") {
        extra.replace("[second_factor]", &format!("[second_factor]\n{lines}"))
    } else {
        format!("{extra}\n\n[second_factor]\nrequired = false\n{lines}")
    };
    // Tests log in many times from one address; budget tests set their own.
    if extra.contains("[budgets") {
        extra
    } else {
        format!("{extra}\n{GENEROUS_BUDGETS}")
    }
}

/// Budgets no ordinary test reaches.
pub const GENEROUS_BUDGETS: &str = "[budgets.login]\nrequests = 100000\nper = \"minute\"\n[budgets.source]\nrequests = 1000000\nper = \"minute\"\n[budgets.view]\nrequests = 100000\nper = \"minute\"\n[budgets.export]\nrequests = 1000\nper = \"minute\"\n";

/// The admin API token every test gateway is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection, for keep-alive and raw-bytes tests.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        Conn::from_stream(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    pub fn from_stream(s: TcpStream) -> Conn {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            reader: BufReader::new(s),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Read one response; `None` if the server closed the connection first.
    pub fn read_response(&mut self) -> Option<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body).ok()?;
            resp.body = body;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let n = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                resp.body.extend_from_slice(&chunk[..n]);
            }
        } else if status >= 200 && status != 204 && status != 304 {
            let _ = self.reader.read_to_end(&mut resp.body);
        }
        Some(resp)
    }

    /// True when the server has closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// The sample portal's count of its own open sessions (its `/status`).
pub fn portal_sessions(portal: &Portal) -> u64 {
    let v: serde_json::Value =
        serde_json::from_slice(&get(portal.port, "/status", "").body).unwrap();
    v["sessions"].as_u64().unwrap()
}

/// Send raw bytes on a fresh connection and read one response.
pub fn raw(port: u16, bytes: &[u8]) -> Option<Response> {
    let mut c = Conn::open(port);
    c.send(bytes);
    c.read_response()
}

/// A simple GET with optional extra header lines (each ending in \r\n).
pub fn get(port: u16, target: &str, extra_headers: &str) -> Response {
    let start = Instant::now();
    raw(port, format!("GET {target} HTTP/1.1\r\nHost: portal.test\r\n{extra_headers}Connection: close\r\n\r\n").as_bytes())
        // The time tells a connection closed unanswered from a read that timed out.
        .unwrap_or_else(|| panic!("no response to GET {target} after {:?}", start.elapsed()))
}

/// An upstream that answers every request with the request head it received, and records it.
pub struct Echo {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Echo {
    pub fn start(delay: Duration) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || echo_connection(stream, record, delay));
            }
        });
        Echo { port, seen }
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn echo_connection(stream: TcpStream, record: Arc<Mutex<Vec<String>>>, delay: Duration) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let len = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        record.lock().unwrap().push(head.clone());
        std::thread::sleep(delay);
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: keep-alive, X-Upstream-Secret\r\nX-Upstream-Secret: 10.9.8.7\r\n\r\n{head}",
            head.len()
        );
        if reader.get_mut().write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A private redis-server on a free port, killed when dropped; tests can stop and restart it.
/// It keeps its data in an append-only file under a directory of its own (Vigie refuses a
/// Redis that keeps nothing on disk), which tests can also wipe.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// Extra arguments of every start.
    args: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(&["--appendonly", "yes"])
    }

    /// With other settings, e.g. `["--appendonly", "no"]` for a Redis that persists nothing.
    pub fn start_with(args: &[&str]) -> RedisServer {
        Self::start_with_port(|_| args.iter().map(|a| a.to_string()).collect())
    }

    /// With settings that name its port (`--port 0 --tls-port PORT`: TLS only).
    pub fn start_with_port(args: impl Fn(u16) -> Vec<String>) -> RedisServer {
        // A free port can be taken again before redis-server binds it, and a cluster node
        // also needs port + 10000 (its bus) under 65536: another port is tried then.
        for _ in 0..5 {
            let port = std::iter::repeat_with(free_port)
                .find(|p| *p < 55_000)
                .unwrap();
            let mut r = RedisServer {
                port,
                child: None,
                dir: tempfile::tempdir().unwrap(),
                args: args(port),
            };
            r.spawn();
            if port_up_within(port, Duration::from_secs(8)) {
                return r;
            }
            r.stop();
        }
        panic!("redis-server did not start on five free ports");
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

    /// Start again with the data it had written.
    pub fn restart(&mut self) {
        self.spawn();
        wait_for_port(self.port);
    }

    fn spawn(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(&self.args)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/install-deps installs it)");
        self.child = Some(child);
    }

    /// Start again without any of its data (a disk lost, a volume not mounted).
    pub fn restart_empty(&mut self) {
        self.stop();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
        self.restart();
    }

    /// One command, answered as text (test set-up and inspection).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed with redis-server");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The admin `/metrics` text once it contains every `needle` (metrics of a request are recorded
/// just after its response is sent, so a client can be faster than the counter).
pub fn metrics_with(admin_port: u16, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let text = get(admin_port, "/metrics", "").text();
        if needles.iter().all(|n| text.contains(n)) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
