//! The access log's JSON line, rendered by hand. Through `tracing`'s JSON formatter (field
//! visitors, `Debug` values, a timestamp formatted from scratch) this one line per request
//! cost about a fifth of a pass-through request's CPU (benches/README.md). The line has the
//! shape of the other JSON events (`timestamp`, `level`, `message`, the fields, `target`)
//! and goes to stderr in one write, like them, or into a shared buffer written when full and
//! at least once a second (`[log] access_buffer_kib`).

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::outcome::{push_masked_path, Outcome};

/// A thread's reusable buffers: the line, the masked path, and the timestamp's
/// second-resolution prefix (formatted once a second).
struct Line {
    buf: Vec<u8>,
    path: String,
    second: u64,
    stamp: String,
}

thread_local! {
    static LINE: RefCell<Line> = RefCell::new(Line::new());
}

/// The log is in JSON, so the pipeline renders access lines here (else they go through
/// `tracing`'s human-readable formatter).
static JSON: AtomicBool = AtomicBool::new(false);
/// Lines waiting for one write, when buffering is on (`BUFFER_LIMIT` > 0).
static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static BUFFER_LIMIT: AtomicUsize = AtomicUsize::new(0);
static FLUSHER: Once = Once::new();

/// Whether access lines are rendered here.
pub fn enabled() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Set once the log subscriber is installed: JSON or not, and how many bytes of lines to
/// gather before writing them (0 writes each line at once). When buffering, a background
/// thread writes what waits at least once a second.
pub fn configure(json: bool, bytes: usize) {
    JSON.store(json, Ordering::Relaxed);
    BUFFER_LIMIT.store(bytes, Ordering::Relaxed);
    if bytes > 0 {
        FLUSHER.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("vigie-access-log".into())
                .spawn(|| loop {
                    std::thread::sleep(Duration::from_secs(1));
                    flush();
                });
        });
    }
}

/// Pingora's shutdown signal turns buffering off and writes what waits, so a restart or a
/// stop loses no access line.
pub struct Drain;

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Drain {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let _ = shutdown.changed().await;
        BUFFER_LIMIT.store(0, Ordering::Relaxed);
        flush();
    }
}

/// Write the buffered lines now.
pub fn flush() {
    let pending = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|e| e.into_inner()));
    if !pending.is_empty() {
        let _ = std::io::stderr().lock().write_all(&pending);
    }
}

/// Write one access line to stderr, or to the buffer.
pub fn write(o: &Outcome<'_>, duration_us: u64) {
    LINE.with(|line| {
        let Ok(mut line) = line.try_borrow_mut() else {
            return;
        };
        line.render(o, duration_us, SystemTime::now());
        let limit = BUFFER_LIMIT.load(Ordering::Relaxed);
        if limit == 0 {
            let _ = std::io::stderr().lock().write_all(&line.buf);
            return;
        }
        let full = {
            let mut pending = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend_from_slice(&line.buf);
            (pending.len() >= limit)
                .then(|| std::mem::replace(&mut *pending, Vec::with_capacity(limit + 512)))
        };
        if let Some(full) = full {
            let _ = std::io::stderr().lock().write_all(&full);
        }
    });
}

impl Line {
    fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
            path: String::with_capacity(128),
            second: u64::MAX,
            stamp: String::new(),
        }
    }

    fn render(&mut self, o: &Outcome<'_>, duration_us: u64, now: SystemTime) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if since.as_secs() != self.second {
            self.second = since.as_secs();
            self.stamp = jiff::Timestamp::from_second(self.second as i64)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_default();
        }
        self.path.clear();
        push_masked_path(&mut self.path, o.path);
        let b = &mut self.buf;
        b.clear();
        b.extend_from_slice(b"{\"timestamp\":\"");
        b.extend_from_slice(self.stamp.as_bytes());
        let _ = write!(b, ".{:06}Z", since.subsec_micros());
        b.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\"");
        text(b, "request_id", o.request_id);
        text(b, "portal", o.portal);
        text(b, "method", o.method);
        text(b, "path", &self.path);
        number(b, "status", u64::from(o.status));
        if let Some(ip) = o.client {
            // An address needs no escaping: written straight into the line.
            let _ = write!(b, ",\"client\":\"{ip}\"");
        }
        text(b, "identity", o.identity);
        for (key, value) in [
            ("rejected", o.rejected),
            ("upstream_error", o.upstream_error),
            ("rule", o.rule),
        ] {
            if let Some(v) = value {
                text(b, key, v);
            }
        }
        number(b, "duration_us", duration_us);
        b.extend_from_slice(b",\"target\":\"vigie::access\"}\n");
    }
}

/// `,"key":"value"` with the value escaped as JSON.
fn text(b: &mut Vec<u8>, key: &str, value: &str) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\":");
    let _ = serde_json::to_writer(&mut *b, value);
}

fn number(b: &mut Vec<u8>, key: &str, value: u64) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\":");
    let _ = serde_json::to_writer(&mut *b, &value);
}

#[cfg(test)]
mod tests;
