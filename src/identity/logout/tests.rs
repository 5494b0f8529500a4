use super::*;

fn rule(toml_text: &str) -> (Option<LogoutRule>, Vec<String>) {
    let s: Section = toml::from_str(toml_text).expect("section");
    let mut errors = Vec::new();
    let r = build(s, &mut |k, m, _| errors.push(format!("{k}: {m}")));
    (r, errors)
}

#[test]
fn a_plain_logout_link_is_a_get_that_any_2xx_or_3xx_answers() {
    let (r, e) = rule("path = \"/index.php\"\nquery = \"logout=-1\"");
    assert!(e.is_empty(), "{e:?}");
    let r = r.unwrap();
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target(), "/index.php?logout=-1");
    assert!(r.answered_success(302, None));
    assert!(r.answered_success(200, None));
    assert!(!r.answered_success(405, None));
    assert!(!r.answered_success(500, None));
    assert!(r.confirm);
}

#[test]
fn a_django_logout_is_a_post_with_its_token_and_its_redirect() {
    let (r, e) = rule(
        r#"path = "/admin/logout/"
method = "post"
[token]
field = "csrfmiddlewaretoken"
page = "/admin/"
pattern = 'name="csrfmiddlewaretoken" value="([^"]+)"'
cookie = "csrftoken"
header = "X-CSRFToken"
[success]
status = [302, 200]
location = '^/admin/login/'"#,
    );
    assert!(e.is_empty(), "{e:?}");
    let r = r.unwrap();
    assert_eq!(r.method, Method::Post);
    assert!(r.answered_success(302, Some("/admin/login/?next=/admin/")));
    assert!(
        !r.answered_success(302, Some("/admin/")),
        "not the login page"
    );
    assert!(!r.answered_success(302, None));
    assert!(
        !r.answered_success(303, Some("/admin/login/")),
        "not a listed status"
    );
    let t = r.token.unwrap();
    let page = r#"<form><input type="hidden" name="csrfmiddlewaretoken" value="abc123"></form>"#;
    assert_eq!(token_from(&t, Some(page), &[]).as_deref(), Some("abc123"));
    // No token on the page: the cookie's (the last one set wins).
    let cookies = vec![
        ("csrftoken".to_string(), "old".to_string()),
        ("csrftoken".to_string(), "new".to_string()),
    ];
    assert_eq!(
        token_from(&t, Some("<p>none</p>"), &cookies).as_deref(),
        Some("new")
    );
    assert_eq!(token_from(&t, None, &[]), None);
}

#[test]
fn mistakes_are_named() {
    let (_, e) = rule("path = \"/x\"\nmethod = \"DELETE\"");
    assert!(e.iter().any(|m| m.starts_with("logout.method")), "{e:?}");
    let (_, e) = rule("path = \"/x\"\n[token]\nfield = \"t\"\ncookie = \"c\"");
    assert!(
        e.iter().any(|m| m.contains("only sent with a POST")),
        "{e:?}"
    );
    let (_, e) = rule("path = \"/x\"\nmethod = \"POST\"\n[token]\nfield = \"t\"");
    assert!(e.iter().any(|m| m.contains("no source")), "{e:?}");
    let (_, e) = rule("path = \"/x\"\nmethod = \"POST\"\n[token]\nfield = \"t\"\npage = \"/p\"");
    assert!(e.iter().any(|m| m.contains("go together")), "{e:?}");
    let (_, e) = rule(
        "path = \"/x\"\nmethod = \"POST\"\n[token]\nfield = \"t\"\npage = \"/p\"\npattern = \"no group\"",
    );
    assert!(e.iter().any(|m| m.contains("capture group")), "{e:?}");
    let (_, e) = rule("path = \"/x\"\n[success]\nstatus = [405]");
    assert!(
        e.iter().any(|m| m.starts_with("logout.success.status[0]")),
        "{e:?}"
    );
    for query in ["logout", "=-1"] {
        let (_, e) = rule(&format!("path = \"/x\"\nquery = \"{query}\""));
        assert!(
            e.iter().any(|m| m.starts_with("logout.query")),
            "{query}: {e:?}"
        );
    }
    // Either source of the token is enough on its own: a page and its pattern, or a cookie.
    for source in [
        "page = \"/p\"\npattern = \"t=(\\\\w+)\"",
        "cookie = \"csrf\"",
    ] {
        let (r, e) = rule(&format!(
            "path = \"/x\"\nmethod = \"POST\"\n[token]\nfield = \"t\"\n{source}"
        ));
        assert!(e.is_empty() && r.is_some(), "{source}: {e:?}");
    }
    let r: Result<Section, _> = toml::from_str("path = \"/x\"\nverb = \"POST\"");
    assert!(r.is_err(), "unknown keys are refused");
}

#[test]
fn the_logout_request_is_recognised_by_path_and_marker() {
    let (r, _) = rule("path = \"/index.php\"\nquery = \"logout=-1\"");
    let r = r.as_ref();
    assert!(is_logout(r, "/index.php", Some("logout=-1")));
    assert!(is_logout(r, "/index.php", Some("m=x&logout=-1")));
    assert!(!is_logout(r, "/index.php", Some("m=dPpatients")));
    assert!(
        !is_logout(r, "/index.php", Some("logout=0")),
        "the marker's value too"
    );
    assert!(
        !is_logout(r, "/index.php", Some("m=-1")),
        "the marker's name too"
    );
    assert!(!is_logout(r, "/other.php", Some("logout=-1")));
    assert!(!is_logout(None, "/index.php", Some("logout=-1")));
}
