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
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_url_bytes: 100,
        max_header_bytes: 400,
        max_header_count: 5,
    };

    fn check(head: &str) -> Result<(), FramingError> {
        check_head(head.as_bytes(), LIMITS)
    }

    #[test]
    fn ordinary_requests_pass() {
        assert_eq!(check("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Ok(()));
        assert_eq!(
            check("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
            Ok(())
        );
        assert_eq!(
            check("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"),
            Ok(())
        );
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        use FramingError::*;
        for (head, err) in [
            ("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", BothLengthAndChunked),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", BothLengthAndChunked),
            ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", DuplicateContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", DuplicateContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", InvalidContentLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", UnsupportedTransferEncoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n", UnsupportedTransferEncoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", DuplicateTransferEncoding),
            ("POST / HTTP/1.1\nHost: a\n\n", BareLineFeed),
            ("POST / HTTP/1.1\r\nHost: a\n\r\n", BareLineFeed),
        ] {
            assert_eq!(check(head), Err(err), "{head:?}");
        }
    }

    #[test]
    fn size_limits_map_to_414_and_431() {
        let long_url = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        assert_eq!(check(&long_url).map_err(FramingError::status), Err(414));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(6));
        assert_eq!(check(&many).map_err(FramingError::status), Err(431));
        let big = format!("GET / HTTP/1.1\r\nX-A: {}\r\n\r\n", "b".repeat(400));
        assert_eq!(check(&big).map_err(FramingError::status), Err(431));
    }
}
