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
