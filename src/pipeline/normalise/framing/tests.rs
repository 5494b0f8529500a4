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
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            BothLengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            BothLengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            DuplicateContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            InvalidContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            UnsupportedTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            DuplicateTransferEncoding,
        ),
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

#[test]
fn each_limit_is_inclusive_and_the_request_line_is_not_a_header() {
    // A URL of exactly the limit passes; one byte more is refused.
    let url = |n: usize| format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(n - 1));
    assert_eq!(check(&url(100)), Ok(()));
    assert_eq!(check(&url(101)), Err(FramingError::UrlTooLong));
    // Headers of exactly the limit (counted from the request line's end) pass, whatever the
    // request line's length; one byte more is refused.
    let line = format!("GET /{} HTTP/1.1", "a".repeat(90));
    let head = |n: usize| {
        // "\r\nX-A: " + value + "\r\n\r\n" = n bytes.
        format!("{line}\r\nX-A: {}\r\n\r\n", "b".repeat(n - 11))
    };
    assert_eq!(head(400).len() - line.len(), 400);
    assert_eq!(check(&head(400)), Ok(()));
    assert_eq!(check(&head(401)), Err(FramingError::HeadersTooLarge));
    // Exactly the count of header lines passes.
    let five = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(5));
    assert_eq!(check(&five), Ok(()));
}

#[test]
fn every_error_has_its_own_label_for_logs_and_metrics() {
    use FramingError::*;
    let all = [
        (BareLineFeed, "bare_lf"),
        (BothLengthAndChunked, "cl_and_te"),
        (DuplicateContentLength, "duplicate_cl"),
        (InvalidContentLength, "invalid_cl"),
        (DuplicateTransferEncoding, "duplicate_te"),
        (UnsupportedTransferEncoding, "unsupported_te"),
        (UrlTooLong, "url_too_long"),
        (TooManyHeaders, "too_many_headers"),
        (HeadersTooLarge, "headers_too_large"),
    ];
    for (e, label) in all {
        assert_eq!((e.label(), e.to_string()), (label, label.to_string()));
    }
}

#[test]
fn a_content_length_has_at_most_eighteen_digits() {
    // 18 digits always fit a u64; 19 may not, and are refused before anyone parses them.
    let head = |cl: &str| format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
    assert_eq!(check(&head(&"9".repeat(18))), Ok(()));
    assert_eq!(
        check(&head(&"1".repeat(19))),
        Err(FramingError::InvalidContentLength)
    );
}
