//! Measure what happened, not what was asked: an answer to a visitor not yet past the password
//! is read before it leaves. If the portal shows it as somebody's signed-in page (the profile's
//! `[login.confirm]` pattern finds a user), the portal took the visitor for a user the gateway
//! never saw log in — a token login the profile forgot to block, a "remember me" the portal
//! kept elsewhere — and the page is replaced, the pre-login session ended, the SOC told.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::http::ResponseHeader;

use crate::identity::token::SessionId;

use crate::config::PortalProfile;

/// Pre-login pages are login forms: small. A larger answer is cut, never passed unread.
const MAX_SCREENED: usize = 1024 * 1024;

/// The page a screened answer is replaced with (its headers are already on their way).
fn wall(login_page: &str) -> Bytes {
    let page = login_page
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    Bytes::from(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vigie</title></head><body><p>Connectez-vous d'abord. / Sign in first.</p><p><a href=\"{page}\">{page}</a></p></body></html>"
    ))
}

/// A pre-login answer being read.
#[derive(Debug, Default)]
pub struct Screen {
    held: Vec<u8>,
    cut: bool,
}

/// What the end of a screened answer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing of a signed-in page: the answer goes out as the portal wrote it.
    Clean,
    /// A signed-in page: replaced, and the SOC told.
    SignedIn,
    /// Not read (encoded, or over the size a login page has): replaced all the same.
    Unreadable,
}

/// Whether to screen this answer: a page to someone below the password, on a profile that
/// says how a signed-in page names its user. Streams become chunked: the answer is held.
pub fn start(profile: &PortalProfile, resp: &mut ResponseHeader, head: bool) -> Option<Screen> {
    profile.login.confirm.as_ref()?;
    let status = resp.status.as_u16();
    if head || status < 200 || status == 204 || status == 304 {
        return None;
    }
    let textual = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| {
            let t = t.to_ascii_lowercase();
            t.starts_with("text/") || t.contains("json") || t.contains("xml")
        });
    if !textual {
        return None;
    }
    // The request went without `Accept-Encoding`; a portal that compresses anyway sends what
    // the screen cannot read: it does not go out.
    let encoded = resp
        .headers
        .get("content-encoding")
        .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
    resp.remove_header("content-encoding");
    resp.remove_header("content-length");
    resp.remove_header("content-range");
    let _ = resp.insert_header("transfer-encoding", "chunked");
    Some(Screen {
        held: Vec::new(),
        cut: encoded,
    })
}

impl Screen {
    /// Hold every chunk; at the end, release the whole answer or the wall page.
    pub fn on_body(
        &mut self,
        profile: &PortalProfile,
        body: &mut Option<Bytes>,
        end: bool,
    ) -> Option<Verdict> {
        if let Some(chunk) = body.take() {
            if self.held.len() + chunk.len() > MAX_SCREENED {
                self.cut = true;
            } else {
                self.held.extend_from_slice(&chunk);
            }
        }
        if !end {
            return None;
        }
        if self.cut {
            *body = Some(wall(&profile.prelogin.login_page));
            return Some(Verdict::Unreadable);
        }
        let signed_in = profile.login.confirm.as_ref().is_some_and(|c| {
            c.pattern
                .captures(&String::from_utf8_lossy(&self.held))
                .and_then(|m| m.get(1))
                .is_some_and(|u| !u.as_str().trim().is_empty())
        });
        if signed_in {
            *body = Some(wall(&profile.prelogin.login_page));
            Some(Verdict::SignedIn)
        } else {
            *body = Some(Bytes::from(std::mem::take(&mut self.held)));
            Some(Verdict::Clean)
        }
    }
}

/// Pre-login sessions a login POST took for itself (threat model 37). A portal that keeps its
/// session id at login signs that very id in: a request of the same pre-login session already
/// on its way to the portal would come back with a signed-in page, and one that presents the
/// id afterwards (a replica's cache) must not carry the portal cookie. Both are recognised here.
/// In-process: another replica's in-flight requests are left to the screen above.
static TAKEN: once_cell::sync::Lazy<Mutex<HashMap<SessionId, Instant>>> =
    once_cell::sync::Lazy::new(|| Mutex::new(HashMap::new()));

/// Longer than any upstream read: an entry older than this has nothing left in flight.
const TAKEN_FOR: Duration = Duration::from_secs(600);

/// A login took this pre-login session.
pub fn take(id: SessionId) {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    taken.retain(|_, at| now.duration_since(*at) < TAKEN_FOR);
    taken.insert(id, now);
}

/// Whether a login took this pre-login session.
pub fn taken(id: &SessionId) -> bool {
    TAKEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(id)
        .is_some_and(|at| at.elapsed() < TAKEN_FOR)
}
