use super::*;

fn wall(toml_text: &str) -> PreLogin {
    let s: Section = toml::from_str(toml_text).unwrap();
    let mut errors = Vec::new();
    let p = build(Some(&s), "/index.php", &mut |k, m, _| {
        errors.push(format!("{k}: {m}"))
    });
    assert!(errors.is_empty(), "{errors:?}");
    p.unwrap()
}

const SAMPLE: &str = r#"
login_page = "/index.php"
cookies = ["csrf"]
[[allow]]
path = "/index.php"
params = { lang = "fr*" }
[[allow]]
path = "/static/**"
any_params = true
"#;

#[test]
fn only_named_requests_pass() {
    let w = wall(SAMPLE);
    let ok = |m: &str, p: &str, q: Option<&str>| w.allows(QueryReading::Last, m, p, q);
    assert!(ok("GET", "/index.php", None));
    assert!(ok("HEAD", "/index.php", Some("")));
    assert!(ok("GET", "/index.php", Some("lang=fr")));
    assert!(ok("GET", "/static/a/b.css", Some("v=3&m=x")));
    for (m, p, q) in [
        ("GET", "/index.php", Some("m=dPpatients")),
        ("GET", "/index.php", Some("lang=fr&raw=export")),
        ("GET", "/index.php", Some("lang=en")),
        ("GET", "/index.php", Some("lang=fr&lang=en")),
        ("GET", "/index.php", Some("lang[]=fr")),
        ("GET", "/index.php", Some("l.ang=fr")),
        ("POST", "/index.php", None),
        ("PUT", "/static/x", None),
        ("GET", "/api/x", None),
        ("GET", "/index.phpx", None),
    ] {
        assert!(!ok(m, p, q), "{m} {p} {q:?}");
    }
}

#[test]
fn repeats_are_read_the_portal_s_way() {
    let w = wall(SAMPLE);
    // PHP keeps the last: `lang=en&lang=fr` is `fr`.
    assert!(w.allows(
        QueryReading::Last,
        "GET",
        "/index.php",
        Some("lang=en&lang=fr")
    ));
    // A servlet keeps the first: the same query is `en`.
    assert!(!w.allows(
        QueryReading::First,
        "GET",
        "/index.php",
        Some("lang=en&lang=fr")
    ));
    // PHP folds `lang ` and ` lang` to `lang`, so they are the named parameter.
    assert!(w.allows(QueryReading::Last, "GET", "/index.php", Some("+lang=fr")));
    assert!(!w.allows(QueryReading::Last, "GET", "/index.php", Some("+lang=en")));
}

#[test]
fn a_profile_without_a_wall_or_with_a_wide_one_is_refused() {
    let mut errors = Vec::new();
    assert!(build(None, "/login", &mut |k, _, _| errors.push(k.to_string())).is_none());
    let s: Section = toml::from_str("[[allow]]\npath = \"/**\"\n").unwrap();
    build(Some(&s), "/login", &mut |k, _, _| {
        errors.push(k.to_string())
    });
    assert_eq!(
        errors,
        ["prelogin", "prelogin.allow[0].path", "prelogin.login_page"]
    );
}

/// The login POST's own query may carry only the parameters the profile names, each once as
/// the portal reads it; before login only the named browser cookies reach the portal.
#[test]
fn the_login_post_carries_only_named_parameters_and_cookies() {
    let w = wall(&format!("login_params = [\"login\"]\n{SAMPLE}"));
    for ok in [None, Some(""), Some("login=1"), Some("login=1&login=2")] {
        assert!(w.login_query_ok(QueryReading::Last, ok), "{ok:?}");
    }
    for refused in ["m=dPpatients", "login=1&raw=1", "login[]=1", "lang=fr"] {
        assert!(
            !w.login_query_ok(QueryReading::Last, Some(refused)),
            "{refused}"
        );
    }
    assert!(w.cookie_allowed("csrf"));
    for refused in ["PHPSESSID", "remember", "csr", ""] {
        assert!(!w.cookie_allowed(refused), "{refused}");
    }
}

/// Only the head on which PHP and WSGI agree is read: a plain urlencoded form, unencoded (or
/// `identity`); each refusal names its reason for the SOC (a stable label) and its status.
#[test]
fn a_login_head_is_read_only_as_a_plain_form() {
    let form = Some("application/x-www-form-urlencoded");
    for ok in [
        (form, None),
        (
            Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            None,
        ),
        (form, Some(" Identity ")),
    ] {
        assert_eq!(login_head_ok(ok.0, ok.1), Ok(()), "{ok:?}");
    }
    for (ct, ce, why) in [
        (form, Some("gzip"), Unreadable::Encoded),
        (None, None, Unreadable::ContentType),
        (
            Some("multipart/form-data; boundary=x"),
            None,
            Unreadable::ContentType,
        ),
        (Some("application/json"), None, Unreadable::ContentType),
        (
            Some("application/x-www-form-urlencoded, text/plain"),
            None,
            Unreadable::ContentType,
        ),
        (
            Some("application/x-www-form-urlencodedx"),
            None,
            Unreadable::ContentType,
        ),
    ] {
        assert_eq!(login_head_ok(ct, ce), Err(why), "{ct:?} {ce:?}");
    }
    let labels = [
        (Unreadable::ContentType, "login_content_type", 400),
        (Unreadable::Encoded, "login_encoded", 400),
        (Unreadable::TooLarge, "login_too_large", 413),
        (Unreadable::NotUtf8, "login_not_utf8", 400),
        (Unreadable::TooManyFields, "login_too_many_fields", 400),
        (Unreadable::UnknownField, "login_field_unknown", 400),
        (Unreadable::Query, "login_query", 400),
        (Unreadable::NoUser, "login_form_ambiguous", 400),
    ];
    for (why, reason, status) in labels {
        assert_eq!((why.reason(), why.status()), (reason, status), "{why:?}");
    }
}

/// The one reading of a login form before the second factor: every field named by the
/// profile, one user name (repeated only if equal), a password and the marker; each other
/// shape is refused with its reason, so the portal never reads a login the gateway did not.
#[test]
fn a_login_form_is_read_one_way_or_refused() {
    let p = crate::testing::shipped_profile("sample-portal.toml");
    let read = |body: &str| read_login(&p, body.as_bytes());
    let ok = "login=1&username=dr.martin&password=s3cret&csrf_token=t";
    assert_eq!(read(ok).as_deref(), Ok("dr.martin"));
    // PHP's decoding: `+` a space, `%xx` a byte; empty pieces and nameless fields skipped.
    let spelled = "&login=1&user%6eame=dr+m%C3%A9lanie&&=x&password=p";
    assert_eq!(read(spelled).as_deref(), Ok("dr mélanie"));
    assert_eq!(
        read("login&username=a&password").as_deref(),
        Ok("a"),
        "no `=`"
    );
    assert_eq!(
        read("login=1&username=a&username=a&password=p").as_deref(),
        Ok("a")
    );
    let too_many = format!("{ok}{}", "&csrf_token=t".repeat(MAX_FIELDS));
    let long_name = format!("login=1&password=p&username={}", "a".repeat(257));
    for (body, why) in [
        (
            "login=1&username=a&username=b&password=p",
            Unreadable::NoUser,
        ),
        ("login=1&username[]=a&password=p", Unreadable::NoUser),
        ("login=1&username=a%0Ab&password=p", Unreadable::NoUser),
        (long_name.as_str(), Unreadable::NoUser),
        ("login=1&username=+&password=p", Unreadable::NoUser),
        ("username=a&password=p", Unreadable::NoUser),
        ("login=1&username=a", Unreadable::NoUser),
        ("login=1&password=p", Unreadable::NoUser),
        (
            "login=1&username=a&password=p&m=dPpatients",
            Unreadable::UnknownField,
        ),
        ("login=1&username=%FF&password=p", Unreadable::NotUtf8),
        ("login=1&%FF=a&username=a&password=p", Unreadable::NotUtf8),
        (too_many.as_str(), Unreadable::TooManyFields),
    ] {
        assert_eq!(read(body), Err(why), "{}", &body[..body.len().min(60)]);
    }
    // Exactly the limit is read.
    let at_limit = format!("{ok}{}", "&csrf_token=t".repeat(MAX_FIELDS - 4));
    assert_eq!(read(&at_limit).as_deref(), Ok("dr.martin"));
    assert_eq!(
        read(&format!("login=1&password=p&username={}", "é".repeat(256))).map(|u| u.len()),
        Ok(512)
    );
}
