//! Message framing and size checks on the raw request head, before anything trusts it.
//!
//! Pingora already refuses most malformed requests; these checks close the gaps an
//! attacker would aim at behind a proxy (threat model 1, 4, 5): a request carrying both
//! `Transfer-Encoding` and `Content-Length` (Pingora would drop the length and go on),
//! duplicated or signed lengths, any coding but a single `chunked`, and bare-LF line endings.

use std::fmt;

/// What the raw head says about framing and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    BareLineFeed,
    BothLengthAndChunked,
    DuplicateContentLength,
    InvalidContentLength,
    DuplicateTransferEncoding,
    UnsupportedTransferEncoding,
    UrlTooLong,
    TooManyHeaders,
    HeadersTooLarge,
}

impl FramingError {
    /// The status answered; framing errors close the connection as well.
    pub fn status(self) -> u16 {
        match self {
            Self::UrlTooLong => 414,
            Self::TooManyHeaders | Self::HeadersTooLarge => 431,
            _ => 400,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::BareLineFeed => "bare_lf",
            Self::BothLengthAndChunked => "cl_and_te",
            Self::DuplicateContentLength => "duplicate_cl",
            Self::InvalidContentLength => "invalid_cl",
            Self::DuplicateTransferEncoding => "duplicate_te",
            Self::UnsupportedTransferEncoding => "unsupported_te",
            Self::UrlTooLong => "url_too_long",
            Self::TooManyHeaders => "too_many_headers",
            Self::HeadersTooLarge => "headers_too_large",
        }
    }
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Size limits checked here.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
    pub max_header_count: usize,
}

/// Check a raw HTTP/1 request head (request line, header lines, final blank line).
pub fn check_head(raw: &[u8], limits: HeadLimits) -> Result<(), FramingError> {
    // Bare LF: every '\n' must follow a '\r'.
    if raw
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
    {
        return Err(FramingError::BareLineFeed);
    }
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let url_len = request_line
        .split(|&b| b == b' ')
        .nth(1)
        .map_or(0, <[u8]>::len);
    if url_len > limits.max_url_bytes {
        return Err(FramingError::UrlTooLong);
    }
    if raw.len() - request_line.len() > limits.max_header_bytes {
        return Err(FramingError::HeadersTooLarge);
    }
    let (mut count, mut cl, mut te) = (0usize, 0usize, 0usize);
    for line in lines.filter(|l| !l.is_empty()) {
        count += 1;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let value = trim(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            cl += 1;
            if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
                return Err(FramingError::InvalidContentLength);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te += 1;
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(FramingError::UnsupportedTransferEncoding);
            }
        }
    }
    if count > limits.max_header_count {
        return Err(FramingError::TooManyHeaders);
    }
    match (cl, te) {
        (0 | 1, 0) | (0, 1) => Ok(()),
        (_, 0) => Err(FramingError::DuplicateContentLength),
        (0, _) => Err(FramingError::DuplicateTransferEncoding),
        _ => Err(FramingError::BothLengthAndChunked),
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b" \t".contains(b))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b" \t".contains(b))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests;
