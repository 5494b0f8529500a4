use super::*;

fn names() -> Vec<String> {
    vec!["PHPSESSID".into(), "mediboard".into()]
}

#[test]
fn browser_copies_of_session_and_gateway_cookies_never_go_upstream() {
    let vault = vec![VaultedCookie {
        name: "PHPSESSID".into(),
        value: "real".into(),
    }];
    let h = upstream_cookie_header(
        ["lang=fr; PHPSESSID=forged; vigie=tok", "csrf=abc; junk"].into_iter(),
        &["vigie".to_string(), "__Host-vigie".to_string()],
        &names(),
        &vault,
        None,
    );
    assert_eq!(h.as_deref(), Some("PHPSESSID=real; lang=fr; csrf=abc"));
    // Before login only the named ones: a "remember me" cookie signs no one in.
    let pre = upstream_cookie_header(
        ["lang=fr; remember=tok; csrf=abc; PHPSESSID=forged"].into_iter(),
        &["vigie".to_string()],
        &names(),
        &vault,
        Some(&["csrf".to_string()]),
    );
    assert_eq!(pre.as_deref(), Some("PHPSESSID=real; csrf=abc"));
    assert_eq!(
        upstream_cookie_header(
            ["vigie=t; __Host-vigie=u"].into_iter(),
            &["vigie".to_string(), "__Host-vigie".to_string()],
            &names(),
            &[],
            None
        ),
        None
    );
}

#[test]
fn set_cookie_classification() {
    let n = names();
    assert_eq!(
        classify_set_cookie("PHPSESSID=abc; path=/; HttpOnly", &n),
        Some(SetCookie::Store(VaultedCookie {
            name: "PHPSESSID".into(),
            value: "abc".into()
        }))
    );
    assert_eq!(
        classify_set_cookie(
            "PHPSESSID=deleted; expires=Thu, 01-Jan-1970 00:00:01 GMT",
            &n
        ),
        Some(SetCookie::Delete("PHPSESSID".into()))
    );
    assert_eq!(
        classify_set_cookie("mediboard=; Max-Age=0", &n),
        Some(SetCookie::Delete("mediboard".into()))
    );
    assert_eq!(classify_set_cookie("csrf=1; path=/", &n), None);
    assert_eq!(classify_set_cookie("garbage", &n), None);
    let mut vault = vec![];
    apply(&mut vault, classify_set_cookie("PHPSESSID=a", &n).unwrap());
    apply(&mut vault, classify_set_cookie("PHPSESSID=b", &n).unwrap());
    assert_eq!(
        vault,
        vec![VaultedCookie {
            name: "PHPSESSID".into(),
            value: "b".into()
        }]
    );
    apply(&mut vault, SetCookie::Delete("PHPSESSID".into()));
    assert!(vault.is_empty());
}

/// Each way a portal deletes its session cookie empties that slot of the vault, and only that
/// one; a cookie set with a future expiry or a positive age is kept, whatever its case.
#[test]
fn every_spelling_of_a_deleted_cookie_and_no_other() {
    let n = names();
    let del = Some(SetCookie::Delete("PHPSESSID".into()));
    for header in [
        "PHPSESSID=",
        "PHPSESSID=Deleted",
        "PHPSESSID=x; Max-Age=0",
        "PHPSESSID=x; path=/; max-age=-1",
        "PHPSESSID=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        " PHPSESSID = x ; MAX-AGE=0",
    ] {
        assert_eq!(classify_set_cookie(header, &n), del, "{header}");
    }
    for header in [
        "PHPSESSID=x; Max-Age=3600",
        "PHPSESSID=x; Expires=Thu, 01 Jan 2037 00:00:00 GMT",
        "PHPSESSID=x; Max-Age=01",
        "PHPSESSID=x; Comment=1970",
    ] {
        let kept = SetCookie::Store(VaultedCookie {
            name: "PHPSESSID".into(),
            value: "x".into(),
        });
        assert_eq!(classify_set_cookie(header, &n), Some(kept), "{header}");
    }
    let mut vault = vec![];
    apply(&mut vault, classify_set_cookie("mediboard=m", &n).unwrap());
    apply(&mut vault, classify_set_cookie("PHPSESSID=p", &n).unwrap());
    apply(&mut vault, classify_set_cookie("PHPSESSID=", &n).unwrap());
    let only = VaultedCookie {
        name: "mediboard".into(),
        value: "m".into(),
    };
    assert_eq!(vault, vec![only]);
}

/// Every spelling a portal reads as its session cookie (PHP's `.`, ` `, `[` folding, an array,
/// another case, a comma-split value) is dropped; the vault's copy is the only one that goes.
#[test]
fn no_spelling_of_a_session_cookie_goes_upstream() {
    let sessions = ["mediboard_session".to_string()];
    let vault = [VaultedCookie {
        name: "mediboard_session".into(),
        value: "real".into(),
    }];
    for spelling in [
        "mediboard.session=stolen",
        "mediboard session=stolen",
        "mediboard[session=stolen",
        "mediboard_session[x]=stolen",
        "Mediboard_Session=stolen",
        "mediboard%5Fsession=stolen",
        "mediboard%2esession=stolen",
        "lang=fr, mediboard.session=stolen",
        "foo, mediboard_session=stolen",
        "mediboard+session=stolen",
        "+mediboard_session=stolen",
        ",mediboard_session=stolen",
        "VIGIE=t",
    ] {
        let header = format!("{spelling}; csrf=abc");
        let out = upstream_cookie_header(
            [header.as_str()].into_iter(),
            &["vigie".to_string()],
            &sessions,
            &vault,
            None,
        );
        assert_eq!(
            out.as_deref(),
            Some("mediboard_session=real; csrf=abc"),
            "{spelling}"
        );
    }
    // Names that only look alike still go: the portal reads them as other cookies.
    let out = upstream_cookie_header(
        ["mediboard_sessions=1; mediboard=2; lang=fr,en"].into_iter(),
        &["vigie".to_string()],
        &sessions,
        &[],
        None,
    );
    assert_eq!(
        out.as_deref(),
        Some("mediboard_sessions=1; mediboard=2; lang=fr,en")
    );
}

/// The vaulted cookie goes first: however many cookies the browser sends, PHP (which reads
/// the first `max_input_vars` and keeps the first of a name) finds the portal's session.
#[test]
fn the_portal_finds_its_session_however_many_cookies_the_browser_sends() {
    let many: Vec<String> = (0..1200).map(|i| format!("c{i}=1")).collect();
    let header = many.join("; ");
    let vault = [VaultedCookie {
        name: "mediboard_session".into(),
        value: "real".into(),
    }];
    let out = upstream_cookie_header(
        [header.as_str()].into_iter(),
        &["vigie".to_string()],
        &["mediboard_session".to_string()],
        &vault,
        None,
    )
    .unwrap();
    let php = crate::http::read_cookies(
        &crate::http::RequestSpec::php(),
        out.as_bytes(),
        &crate::http::Wanted::names(["mediboard_session"]),
    );
    assert_eq!(php.scalar("mediboard_session").as_deref(), Some("real"));
}
