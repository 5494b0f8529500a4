//! The processes a test runs: `vigie` itself (gateway, sample portal, commands) on free
//! loopback ports, killed when dropped, with their logs shown when the test fails.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const VIGIE: &str = env!("CARGO_BIN_EXE_vigie");

/// A free port that no other caller in this test process was given. The OS may hand a port
/// out again before the first taker binds it; two tests' servers would then share one port,
/// one test talking to the other's server until that one stops.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// The inodes of the sockets listening on 127.0.0.1:`port` (or any address), from the kernel's
/// table.
fn listening_inodes(port: u16) -> Vec<String> {
    let suffix = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 9 && f[1].ends_with(&suffix) && f[3] == "0A")
        .map(|f| f[9].clone())
        .collect()
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Proc {
    child: Child,
    pub stderr_path: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what each of its processes said last: a failure seen once
        // under load is then explained by its own run, not guessed at afterwards.
        if std::thread::panicking() {
            let log = self.plain_stderr();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!(
                "--- last lines of {} ---\n{tail}",
                self.stderr_path.display()
            );
        }
    }
}

impl Proc {
    /// Stop it now (and reap it); `Gateway::restart` starts it again.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether this process holds the socket listening on `port`.
    pub fn listens_on(&self, port: u16) -> bool {
        let inodes = listening_inodes(port);
        let Ok(fds) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| {
                let l = l.to_string_lossy();
                inodes.iter().any(|i| l == format!("socket:[{i}]"))
            })
        })
    }

    /// Wait until this process listens on every one of `ports`. An answer on a port is not
    /// enough: another test's server may hold it, and this process would have failed to bind.
    pub fn wait_listening(&mut self, ports: &[u16], what: &str) {
        self.wait_listening_within(ports, what, Duration::from_secs(20))
    }

    pub fn wait_listening_within(&mut self, ports: &[u16], what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if ports.iter().all(|p| self.listens_on(*p)) {
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let others: Vec<u16> = ports
                    .iter()
                    .copied()
                    .filter(|p| !listening_inodes(*p).is_empty())
                    .collect();
                let state = exited.map_or("still running".to_string(), |s| s.to_string());
                panic!(
                    "{what} is not listening on {ports:?} ({state}; held by another process: {others:?}):\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a signal (`libc::SIGHUP`, `SIGTERM`…).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill({sig})");
    }

    /// Its exit status, if it exits within `within`.
    pub fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Its log (colour-free) once it holds `needle`: for a line written after the answer
    /// has gone (an access line, a background task's).
    pub fn wait_for_log(&self, needle: &str) -> String {
        wait_for(&format!("{needle:?} in the log"), || {
            let log = self.plain_stderr();
            log.contains(needle).then_some(log)
        })
    }

    /// Its log without the terminal's colours, so `status=404` reads as written.
    pub fn plain_stderr(&self) -> String {
        let mut out = String::new();
        let mut rest = self.stderr();
        while let Some(i) = rest.find('\x1b') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let end = tail.find('m').map_or(tail.len(), |e| e + 1);
            rest = tail[end..].to_string();
        }
        out + &rest
    }
}

/// `f`'s first `Some`, tried every 50 ms for up to 10 s: for what a process writes or stores
/// just after it has answered.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_for_port(port: u16) {
    assert!(port_up(port), "nothing listens on port {port} after 20 s");
}

pub fn port_up(port: u16) -> bool {
    port_up_within(port, Duration::from_secs(20))
}

pub fn port_up_within(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Run `vigie` with these arguments, its stderr kept in `dir`.
pub fn spawn_vigie(args: &[&str], dir: &tempfile::TempDir) -> Proc {
    let stderr_path = dir.path().join(format!("stderr-{}.log", free_port()));
    // A configuration with its own `[log]` section is run with it; the others at info.
    let own_log = args
        .windows(2)
        .find(|w| w[0] == "-c")
        .and_then(|w| std::fs::read_to_string(w[1]).ok())
        .is_some_and(|text| text.contains("\n[log]"));
    let mut command = Command::new(VIGIE);
    match own_log {
        true => command.env_remove("VIGIE_LOG"),
        false => command.env("VIGIE_LOG", "info,pingora=warn"),
    };
    let child = command
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("spawn vigie");
    Proc { child, stderr_path }
}
