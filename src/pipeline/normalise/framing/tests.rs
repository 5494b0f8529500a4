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
