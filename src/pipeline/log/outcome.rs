//! What one finished request looked like, and the path as logs may show it: identifier-like
//! segments masked (they can be patient identifiers).

use std::time::Instant;

/// Replace every path segment that contains a digit with `:id`.
pub fn masked_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_masked_path(&mut out, path);
    out
}

/// [`masked_path`] appended to `out`.
pub fn push_masked_path(out: &mut String, path: &str) {
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if seg.bytes().any(|b| b.is_ascii_digit()) {
            out.push_str(":id");
        } else {
            out.push_str(seg);
        }
    }
}

/// What one finished request looked like.
pub struct Outcome<'a> {
    pub request_id: &'a str,
    pub portal: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub client: Option<std::net::IpAddr>,
    pub identity: &'a str,
    pub rejected: Option<&'a str>,
    pub upstream_error: Option<&'a str>,
    /// The policy rule that decided, if one did.
    pub rule: Option<&'a str>,
    /// The session was in break-glass: the request is also written to the audit log.
    pub break_glass: bool,
    pub started: Instant,
}

#[cfg(test)]
mod tests;
