use super::*;

#[test]
fn host_port_is_stripped_and_junk_refused() {
    assert_eq!(
        strip_port("portal.local:8080").as_deref(),
        Some("portal.local")
    );
    assert_eq!(strip_port("[::1]:8080").as_deref(), Some("[::1]"));
    assert_eq!(strip_port("portal").as_deref(), Some("portal"));
    assert_eq!(strip_port("evil/host"), None);
    assert_eq!(strip_port("a b"), None);
}

#[test]
fn absolute_form_must_agree_with_host() {
    let mut r = pingora::http::RequestHeader::build("GET", b"http://a/x", None).unwrap();
    r.insert_header("Host", "b").unwrap();
    assert_eq!(
        host_of(&r, Some("a")).unwrap_err().reason,
        Reason::HostMismatch
    );
    r.insert_header("Host", "A").unwrap();
    assert_eq!(host_of(&r, Some("a")).unwrap(), "a");
}

/// `raw`, a request head, read by pingora as the listener would, then normalised.
async fn normalised(raw: &str, trusted: &[&str]) -> Result<Request, Refusal> {
    let s = crate::testing::request_head(raw).await;
    let trusted: Vec<IpNet> = trusted.iter().map(|n| n.parse().unwrap()).collect();
    run(&s, &Limits::default(), &trusted)
}

#[tokio::test]
async fn only_the_methods_a_portal_serves_pass_in_their_one_spelling() {
    for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let r = normalised(&format!("{m} /a HTTP/1.1\r\nHost: ehr\r\n\r\n"), &[]).await;
        assert_eq!(r.map(|r| r.method.to_string()), Ok(m.to_string()));
    }
    for m in ["TRACE", "PROPFIND", "get"] {
        let r = normalised(&format!("{m} /a HTTP/1.1\r\nHost: ehr\r\n\r\n"), &[]).await;
        assert_eq!(r.unwrap_err().reason, Reason::MethodNotAllowed, "{m}");
    }
}

#[tokio::test]
async fn https_is_believed_from_a_trusted_proxy_only() {
    // The in-memory stream has no peer address: the gateway reads it as 0.0.0.0.
    let https = "GET /a HTTP/1.1\r\nHost: ehr\r\nX-Forwarded-Proto: https\r\n\r\n";
    let plain = "GET /a HTTP/1.1\r\nHost: ehr\r\n\r\n";
    let tls = |r: Result<Request, Refusal>| r.unwrap().tls;
    assert!(tls(normalised(https, &["0.0.0.0/32"]).await));
    assert!(!tls(normalised(https, &[]).await), "a client's own claim");
    assert!(!tls(normalised(plain, &["0.0.0.0/32"]).await));
    let r = normalised("GET /a//b?q=1 HTTP/1.1\r\nHost: EHR:8443\r\n\r\n", &[]).await;
    let r = r.unwrap();
    assert_eq!(
        (r.target.path.as_str(), r.target.query.as_deref()),
        ("/a/b", Some("q=1"))
    );
    assert_eq!(r.host, "ehr");
}

#[test]
fn a_host_is_required_from_http_1_1_only() {
    let mut r = pingora::http::RequestHeader::build("GET", b"/x", None).unwrap();
    assert_eq!(host_of(&r, None).unwrap_err().reason, Reason::MissingHost);
    r.set_version(http::Version::HTTP_10);
    assert_eq!(host_of(&r, None).unwrap(), "");
}
