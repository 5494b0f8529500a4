use super::*;

fn req(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("POST", b"/.vigie/logout", None).unwrap();
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).unwrap();
    }
    r
}

#[test]
fn cross_site_posts_are_refused() {
    assert!(same_origin(&req(&[
        ("Host", "ehr"),
        ("Sec-Fetch-Site", "same-origin")
    ])));
    assert!(!same_origin(&req(&[
        ("Host", "ehr"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Origin", "http://ehr")
    ])));
    assert!(same_origin(&req(&[
        ("Host", "ehr:8080"),
        ("Origin", "https://ehr:8080")
    ])));
    assert!(!same_origin(&req(&[
        ("Host", "ehr"),
        ("Origin", "https://evil.example")
    ])));
    assert!(!same_origin(&req(&[("Host", "ehr"), ("Origin", "null")])));
    assert!(same_origin(&req(&[
        ("Host", "ehr"),
        ("Referer", "http://ehr/index.php")
    ])));
    assert!(!same_origin(&req(&[
        ("Host", "ehr"),
        ("Referer", "http://ehr.evil/x")
    ])));
    assert!(
        !same_origin(&req(&[("Host", "ehr")])),
        "no origin information"
    );
}

#[test]
fn session_cookies_are_taken_out_of_responses() {
    let mut r = ResponseHeader::build(302, None).unwrap();
    r.append_header("Set-Cookie", "mediboard_session=abc; Path=/; HttpOnly")
        .unwrap();
    r.append_header("Set-Cookie", "lang=fr; Path=/").unwrap();
    let changes = take_session_cookies(&mut r, &["mediboard_session".to_string()]);
    assert_eq!(changes.len(), 1);
    let left: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(left, vec!["lang=fr; Path=/"]);
}
