//! The gateway's own forms: reading a posted body, a field of it, and where to return after.

use pingora::proxy::Session;

use super::endpoints::LOGIN_PATH;
use super::refusal::{Reason, Refusal};
use crate::http::normalise_target;

/// Read a request body up to `max` bytes.
pub async fn read_body(session: &mut Session, max: usize) -> Result<Vec<u8>, Refusal> {
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|_| Refusal::framing(400, Reason::BodyIo))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(Refusal::framing(413, Reason::FormTooLarge));
        }
    }
    Ok(body)
}

/// A form field's value (the first), or empty.
pub fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or(String::new(), |(_, v)| v.clone())
}

/// Only a same-origin relative path is followed after login (threat model 14): `//evil`,
/// `/\evil`, `https:evil`, `evil@host`, encoded slashes and `javascript:` all become `/`.
pub fn safe_return(raw: &str) -> String {
    if !raw.starts_with('/')
        || raw.starts_with("//")
        || raw.contains('\\')
        || raw.starts_with(LOGIN_PATH)
    {
        return "/".into();
    }
    match normalise_target(raw) {
        Ok(t) if t.authority.is_none() && !t.path.starts_with("//") => t.to_uri(),
        _ => "/".into(),
    }
}
