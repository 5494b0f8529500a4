use super::*;

use crate::testing::shipped_profile as profile;

#[test]
fn login_forms_are_recognised_by_their_marker() {
    let p = profile("sample-portal.toml");
    assert!(is_login_candidate("POST") && !is_login_candidate("GET"));
    assert_eq!(
        classify(&p, None, b"login=1&username=dr.martin&password=x"),
        Attempt::Login("dr.martin".into())
    );
    assert_eq!(
        classify(&p, None, b"username=dr.martin&password=x"),
        Attempt::Ambiguous,
        "a password without the marker: refused, not ignored"
    );
    assert_eq!(
        classify(&p, None, b"m=dPpatients&note=x"),
        Attempt::NotLogin
    );
    assert_eq!(
        classify(&p, None, b"login=1&username=&password=x"),
        Attempt::Ambiguous
    );
    assert_eq!(
        classify(
            &p,
            None,
            b"login=1&username=evil%0d%0aFAKE%20LOG&password=x"
        ),
        Attempt::Login("evilFAKE LOG".into())
    );
}

#[test]
fn forms_are_read_as_php_reads_them() {
    let p = profile("sample-portal.toml");
    let a = |body: &[u8]| classify(&p, None, body);
    assert_eq!(
        a(b"login=1&username=a&username=a&password=x"),
        Attempt::Login("a".into())
    );
    for ambiguous in [
        &b"login=1&username=a&username=b&password=x"[..],
        b"login=1&username=a&password=x&+username=b",
        b"login=1&username=a&password=x&username%00junk=b",
        b"login=1&username[]=a&password=x",
        b"login=1&username=a&password[]=x",
    ] {
        assert_eq!(
            a(ambiguous),
            Attempt::Ambiguous,
            "{}",
            String::from_utf8_lossy(ambiguous)
        );
    }
    let multipart = b"--b\r\nContent-Disposition: form-data; name=\"PASSWORD\"\r\n\r\nx\r\n--b--";
    assert_eq!(
        classify(&p, Some("multipart/form-data; boundary=b"), multipart),
        Attempt::Ambiguous
    );
    assert_eq!(
        classify(&p, Some("application/json"), br#"{"password":"x"}"#),
        Attempt::Ambiguous
    );
    for quoted in [
        &b"--b\r\nContent-Disposition: form-data; name='password'\r\n\r\nx\r\n--b--"[..],
        b"--b\r\ncontent-disposition: form-data; name=\" password\"\r\n\r\nx\r\n--b--",
        b"--b\r\nContent-Disposition:form-data;name=password\r\n\r\nx\r\n--b--",
        b"--b\r\nContent-Disposition: form-data;\r\n\tname='password'\r\n\r\nx\r\n--b--",
        b"--b\r\nX-Other: y\r\ncontent-DISPOSITION : form-data; name=password\r\n\r\nx\r\n--b--",
    ] {
        assert_eq!(
            classify(&p, Some("multipart/form-data; boundary=b"), quoted),
            Attempt::Ambiguous,
            "{}",
            String::from_utf8_lossy(quoted)
        );
    }
    let upload =
        b"--b\r\nContent-Disposition: form-data; name=\"doc\"\r\n\r\nmy password is\r\n--b--";
    assert_eq!(
        classify(&p, Some("multipart/form-data; boundary=b"), upload),
        Attempt::NotLogin,
        "a part's content is not its name"
    );
    assert_eq!(
        classify(&p, Some("application/json"), br#"{"note":"x"}"#),
        Attempt::NotLogin
    );
    // Case-insensitive portals key users in lower case.
    let mut m = p.clone();
    m.login.case_insensitive_users = true;
    let mut general = p.clone();
    general.login.collation = crate::identity::collation::Collation::parse("utf8mb4_general_ci");
    for variant in ["Élise", "ELISE  ", "elise"] {
        let body = format!("login=1&username={variant}&password=x");
        assert_eq!(
            classify(&general, None, body.as_bytes()),
            Attempt::Login("elise".into()),
            "{variant}"
        );
    }
    assert_eq!(
        classify(&m, None, b"login=1&username=ALICE&password=x"),
        Attempt::Login("alice".into())
    );
    assert_eq!(
        blocked(
            &profile("mediboard.toml"),
            Some("+login=victim%3Apw"),
            false,
            std::iter::empty()
        ),
        Some(Blocked::CredentialInQuery)
    );
}

#[test]
fn success_is_the_profile_s_status_and_location() {
    let p = profile("sample-portal.toml");
    let into = Some("/index.php?m=dPpatients&tab=vw_idx_patients");
    assert!(login_succeeded(&p, 302, into), "no new cookie needed");
    assert!(!login_succeeded(&p, 200, into), "the login page again");
    assert!(
        !login_succeeded(&p, 302, Some("/index.php")),
        "back to the form"
    );
    assert!(!login_succeeded(&p, 302, None));
}

#[test]
fn credentials_in_cookies_are_blocked_where_php_reads_them() {
    let p = profile("mediboard.toml");
    for names in [
        &["login"][..],
        &["a", "LOGIN"],
        &["to%6Ben"],
        &["ldap.guid"],
    ] {
        assert_eq!(
            blocked(&p, None, false, names.iter().copied()),
            Some(Blocked::CredentialInCookie),
            "{names:?}"
        );
    }
    assert_eq!(
        blocked(&p, None, false, ["mediboard", "lang"].into_iter()),
        None
    );
    let sample = profile("sample-portal.toml");
    assert_eq!(blocked(&sample, None, false, ["login"].into_iter()), None);
}

#[test]
fn mediboard_alternate_logins_are_blocked_in_every_spelling() {
    let p = profile("mediboard.toml");
    for q in [
        "login=admin:pw",
        "LOGIN=admin:pw",
        "m=x&token=abc",
        "%6Cogin=admin:pw",
        "login[]=admin",
        "ldap.guid=1",
        "ldap_guid=1",
        "a=1&Token=z",
    ] {
        assert_eq!(
            blocked(&p, Some(q), false, std::iter::empty()),
            Some(Blocked::CredentialInQuery),
            "{q}"
        );
    }
    assert_eq!(
        blocked(
            &p,
            Some("m=dPpatients&tab=vw_idx_patients"),
            false,
            std::iter::empty()
        ),
        None
    );
    assert_eq!(
        blocked(&p, None, true, std::iter::empty()),
        Some(Blocked::AuthorizationHeader)
    );
    assert!(is_logout(&p, "/index.php", Some("logout=-1")));
    assert!(!is_logout(&p, "/index.php", Some("m=dPpatients")));
}
