//! Minimal synchronous Chrome DevTools Protocol client for integration tests.
//!
//! Launches Debian's headless `chromium` (override with `$CHROMIUM`) with a
//! throw-away profile, attaches to its page target over a websocket and offers
//! a few blocking helpers. Every round trip is bounded by [`TIMEOUT`], so a
//! hung browser fails the test instead of hanging it.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::{Message, WebSocket};

/// Bound for browser start-up, one CDP call, and a page load.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// How many CDP events are kept in [`Browser::events`].
const MAX_EVENTS: usize = 1000;
/// `--no-sandbox` is needed when running as root; the rest keeps chromium quiet.
const CHROMIUM_FLAGS: &str = "--headless=new --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-default-apps --remote-debugging-port=0 --window-size=1200,900";
const POLL: Duration = Duration::from_millis(50);

/// The chromium process plus its temp dir; killed and removed on drop.
struct Proc {
    child: Child,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Helper processes may still write to the profile for a moment.
        for _ in 0..40 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            sleep(POLL);
        }
    }
}

/// A headless chromium driven over CDP through its (single) page target.
pub struct Browser {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Recent CDP events (`{"method", "params"}`), oldest first.
    pub events: VecDeque<Value>,
    /// Kept only to be dropped with the browser: kills chromium, removes its profile.
    _proc: Proc,
}

impl Browser {
    /// Starts chromium and connects to its `about:blank` page.
    pub fn launch() -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "cdp-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("profile"))?;
        // stderr goes to a file: no pipe to drain, and a log to show on failure.
        let log = dir.join("stderr.log");
        let bin = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
        let child = Command::new(&bin)
            .args(CHROMIUM_FLAGS.split_whitespace())
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawning {bin:?}"))?;
        let mut proc = Proc { child, dir };

        // Wait for "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…".
        let deadline = Instant::now() + TIMEOUT;
        let port: u16 = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let found = text
                .split("DevTools listening on ws://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split('/').next()?.parse().ok());
            if let Some(port) = found {
                break port;
            }
            let tail = || text.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            if let Some(status) = proc.child.try_wait()? {
                bail!("chromium exited early ({status}); stderr tail:\n{}", tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "no DevTools line from chromium in {TIMEOUT:?}; stderr tail:\n{}",
                    tail()
                );
            }
            sleep(POLL);
        };

        // Find the page target (it can take a moment to be listed).
        let page_id = loop {
            let list: Value = serde_json::from_str(&http_get(port, "/json/list")?)?;
            let page = list
                .as_array()
                .and_then(|targets| targets.iter().find(|t| t["type"] == "page")?["id"].as_str());
            if let Some(id) = page {
                break id.to_string();
            }
            if Instant::now() > deadline {
                bail!("no page target in /json/list: {list}");
            }
            sleep(POLL);
        };

        // The URL from /json/list echoes our Host header, so build it ourselves.
        let url = format!("ws://127.0.0.1:{port}/devtools/page/{page_id}");
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| anyhow!("websocket handshake with {url}: {e}"))?;
        Ok(Browser {
            ws,
            next_id: 0,
            events: VecDeque::new(),
            _proc: proc,
        })
    }
}

impl Browser {
    /// Sends a command and waits for its reply; returns `result` or the CDP error.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(msg.to_string()))
            .with_context(|| format!("CDP {method}: send"))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("CDP {method}: no reply within {TIMEOUT:?}");
            }
            self.ws.get_ref().set_read_timeout(Some(left))?;
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(frame)) => bail!("CDP {method}: websocket closed: {frame:?}"),
                Ok(_) => continue, // ping/pong/binary
                Err(e) => return Err(e).with_context(|| format!("CDP {method}: read reply")),
            };
            let mut reply: Value = serde_json::from_str(text.as_str())?;
            if reply["id"].as_u64() == Some(id) {
                if let Some(err) = reply.get("error") {
                    bail!("CDP {method} failed: {} ({err})", err["message"]);
                }
                return Ok(reply["result"].take());
            }
            if reply.get("method").is_some() {
                if self.events.len() >= MAX_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(reply);
            }
        }
    }

    /// Navigates the page and waits until the new document has fully loaded.
    pub fn navigate(&mut self, url: &str) -> Result<()> {
        self.call("Page.enable", json!({}))?;
        // Mark the old document so we can tell when it has been replaced.
        self.eval("window.__cdpOldDocument = true")?;
        let nav = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(err) = nav["errorText"].as_str().filter(|e| !e.is_empty()) {
            bail!("navigate to {url}: {err}");
        }
        // No loaderId means a same-document (fragment) navigation.
        let cond = if nav.get("loaderId").is_some() {
            "!window.__cdpOldDocument && document.readyState === 'complete'"
        } else {
            "document.readyState === 'complete'"
        };
        self.wait_for(cond, TIMEOUT)
            .with_context(|| format!("loading {url}"))
    }

    /// Evaluates `js` (awaiting promises) and returns its value as JSON;
    /// a thrown exception or rejected promise becomes an `Err`.
    pub fn eval(&mut self, js: &str) -> Result<Value> {
        let mut r = self.call(
            "Runtime.evaluate",
            json!({
                "expression": js,
                "returnByValue": true,
                "awaitPromise": true,
                "userGesture": true,
            }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let e = &ex["exception"];
            let msg = e["description"].as_str().map(str::to_string);
            let msg = msg.unwrap_or_else(|| match &e["value"] {
                Value::Null => ex["text"].to_string(),
                v => v.to_string(),
            });
            bail!("JS exception in `{js}`: {msg}");
        }
        Ok(r["result"]["value"].take())
    }

    /// Polls every 50 ms until `js_condition` is truthy. Errors while polling
    /// (e.g. during a navigation) count as "not yet" and are reported on timeout.
    pub fn wait_for(&mut self, js_condition: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let expr = format!("!!(\n{js_condition}\n)");
        loop {
            let last = match self.eval(&expr) {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(v) => format!("last value: {v}"),
                Err(e) => format!("last error: {e:#}"),
            };
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for `{js_condition}` ({last})");
            }
            sleep(POLL);
        }
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let b64 = shot["data"].as_str().context("no screenshot data")?;
        let png = base64::engine::general_purpose::STANDARD.decode(b64)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Adds a CTAP2 platform authenticator with resident keys and user
    /// verification that approves every request; returns its id.
    pub fn add_virtual_authenticator(&mut self) -> Result<String> {
        self.call("WebAuthn.enable", json!({}))?;
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        let r = self.call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": options }),
        )?;
        let id = r["authenticatorId"]
            .as_str()
            .context("no authenticatorId")?;
        Ok(id.to_string())
    }
}

/// Minimal HTTP/1.1 GET against the DevTools HTTP endpoint. Chromium keeps the
/// connection open (and answers HTTP/1.0 with nothing), so honour Content-Length.
fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(TIMEOUT))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).with_context(|| format!("GET {path}"))?;
        if n == 0 {
            bail!("GET {path}: connection closed early");
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        if head.split(' ').nth(1) != Some("200") {
            bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
        }
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")?
                    .trim()
                    .parse()
                    .ok()
            })
            .context("no Content-Length")?;
        if body.len() >= len {
            return Ok(body[..len].to_string());
        }
    }
}
