use super::*;

fn path(raw: &str) -> String {
    normalise(raw).unwrap_or_else(|e| panic!("{raw}: {e}")).path
}

#[test]
fn attack_23_bypasses_reach_the_admin_rule_or_are_refused() {
    for raw in [
        "//admin",
        "/%61dmin",
        "/admin;x",
        "/pub/%2e%2e/admin",
        "/pub/../admin",
        "/./admin",
        "/pub/%2E%2E/admin",
        "http://portal/admin",
    ] {
        assert_eq!(path(raw), "/admin", "{raw}");
    }
    assert_eq!(path("/admin/..;/"), "/");
    assert_eq!(path("/admin/"), "/admin/");
    for (raw, err) in [
        ("/%2561dmin", TargetError::DoubleEncoding),
        // The escape assembled by decoding: `%25` then `%32%65` is `%2e` (found by the
        // fixed-point property test, `/%25%610`).
        ("/pub/%25%32%65%25%32%65/admin", TargetError::DoubleEncoding),
        ("/%25%610", TargetError::DoubleEncoding),
        ("/%25%36%31dmin", TargetError::DoubleEncoding),
        ("/admin%2f", TargetError::EncodedSeparator),
        ("/admin%2F..", TargetError::EncodedSeparator),
        ("/admin%5c", TargetError::EncodedSeparator),
        ("\\admin", TargetError::NotOriginForm),
        ("/pub\\..\\admin", TargetError::Backslash),
        ("/%C0%AFadmin", TargetError::InvalidUtf8),
        ("/%E0%80%AF", TargetError::InvalidUtf8),
        ("/%c1%9c", TargetError::InvalidUtf8),
        ("/a%00b", TargetError::ControlByte),
        ("/a%zz", TargetError::BadPercent),
        ("/a%4", TargetError::BadPercent),
        ("/a#frag", TargetError::Fragment),
        ("http://u:p@host/admin", TargetError::UserInfo),
        ("*", TargetError::NotOriginForm),
        ("admin", TargetError::NotOriginForm),
        ("ftp://host/admin", TargetError::NotOriginForm),
        ("", TargetError::Empty),
    ] {
        assert_eq!(normalise(raw), Err(err), "{raw}");
    }
}

#[test]
fn dot_segments_never_climb_above_root() {
    assert_eq!(path("/../../etc/passwd"), "/etc/passwd");
    assert_eq!(path("/a/b/../../../c"), "/c");
    assert_eq!(path("/a/b/.."), "/a/");
    assert_eq!(path("/"), "/");
}

#[test]
fn query_is_kept_raw_but_control_bytes_are_refused() {
    let t = normalise("/index.php?m=dPpatients&tab=vw_full_patients&patient_id=12").unwrap();
    assert_eq!(t.path, "/index.php");
    assert_eq!(
        t.query.as_deref(),
        Some("m=dPpatients&tab=vw_full_patients&patient_id=12")
    );
    assert_eq!(normalise("/x?a=%00"), Err(TargetError::ControlByte));
    assert_eq!(
        normalise("/x?a=%0d%0aSet-Cookie:x"),
        Err(TargetError::ControlByte)
    );
    assert!(
        normalise("/x?a=%zz").is_ok(),
        "the portal judges its own query syntax"
    );
}

#[test]
fn absolute_form_yields_authority() {
    let t = normalise("HTTP://Portal.Example:8080/a?b=1").unwrap();
    assert_eq!(t.authority.as_deref(), Some("portal.example:8080"));
    assert_eq!(t.path, "/a");
    assert_eq!(t.to_uri(), "/a?b=1");
    assert_eq!(normalise("http://h").unwrap().path, "/");
    assert_eq!(normalise("http://h?x=1").unwrap().to_uri(), "/?x=1");
}

#[test]
fn forwarded_form_is_canonical_and_unambiguous() {
    assert_eq!(
        normalise("/%61dmin;jsessionid=1/x%20y").unwrap().to_uri(),
        "/admin/x%20y"
    );
    assert_eq!(normalise("/caf%C3%A9").unwrap().to_uri(), "/caf%C3%A9");
    assert_eq!(normalise("/a%3Bb").unwrap().to_uri(), "/a%3Bb");
    assert_eq!(normalise("/a%3Fb").unwrap().to_uri(), "/a%3Fb");
    assert_eq!(normalise("/100%25").unwrap().to_uri(), "/100%25");
}
