//! Gateway-owned login for portals that trust an identity header: local users (argon2id in
//! SQLite), identity headers and a signed assertion, JWKS, safe return paths (threat model 6,
//! 13, 14, 15, 16, 32).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::passthrough::cookie_set;

struct Setup {
    echo: Echo,
    dir: tempfile::TempDir,
    extra: String,
    portal: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("vigie.sqlite");
        Self::with_storage(dir, &format!("database = \"{}\"", db.display()))
    }

    /// Gateways and the CLI with `storage` lines in `[storage]`.
    fn with_storage(dir: tempfile::TempDir, storage: &str) -> Setup {
        let echo = Echo::start(Duration::ZERO);
        let keys = dir.path().join("keys");
        vigie_ok(["keys", "generate", "--dir", keys.to_str().unwrap()]);
        let extra = format!(
            "[storage]\n{storage}\n\n[assertion]\nissuer = \"vigie-test\"\nkey_dir = \"{}\"\n",
            keys.display()
        );
        let portal = format!(
            "[[portal]]\nname = \"records\"\nupstream = \"127.0.0.1:{}\"\nlogin = \"gateway\"\n",
            echo.port
        );
        // A config for the CLI, naming the same database.
        std::fs::write(
            dir.path().join("cli.toml"),
            format!(
                "[[listener]]\naddress = \"127.0.0.1:1\"\n[admin]\naddress = \"off\"\n{extra}\n{portal}\n[second_factor]\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost:1\"]\n",
                factor_key_file(dir.path()).display()
            ),
        )
        .unwrap();
        Setup {
            echo,
            dir,
            extra,
            portal,
        }
    }

    fn user(&self, args: &[&str], stdin: &str) -> bool {
        let mut child = Command::new(VIGIE)
            .arg("user")
            .args(args)
            .arg("-c")
            .arg(self.dir.path().join("cli.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait().unwrap().success()
    }

    fn gateway(&self) -> Gateway {
        start_gateway_with(&self.portal, &self.extra)
    }
}

fn post_login(gw: &Gateway, form: &str, headers: &str) -> Response {
    raw(
        gw.port,
        format!(
            "POST /.vigie/login HTTP/1.1\r\nHost: records.test\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

const SAME: &str = "Sec-Fetch-Site: same-origin\r\n";

/// The assertion the portal received (in the echoed request head), verified as a portal
/// would, with the keys the gateway publishes.
fn verified_assertion(gw: &Gateway, head: &str) -> vigie::identity::assertion::AssertionClaims {
    let token = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-vigie-assertion: ")
                .then(|| l[19..].trim().to_string())
        })
        .expect("assertion header");
    let jwks: serde_json::Value =
        serde_json::from_slice(&get(gw.port, "/.well-known/jwks.json", "").body).unwrap();
    let keys: Vec<(String, String)> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(
                (k["kty"].as_str(), k["alg"].as_str()),
                (Some("OKP"), Some("EdDSA"))
            );
            (
                k["kid"].as_str().unwrap().to_string(),
                k["x"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let claims =
        vigie::identity::assertion::verify(&token, &keys, "vigie-test", "records").unwrap();
    assert!(
        vigie::identity::assertion::verify(&token, &keys, "vigie-test", "another-portal").is_err()
    );
    claims
}

#[test]
fn nobody_reaches_the_portal_without_a_gateway_login() {
    let s = Setup::new();
    assert!(s.user(
        &["add", "alice", "--groups", "clinicians,night"],
        "correct horse battery\n"
    ));
    let gw = s.gateway();
    let first = get(gw.port, "/records?id=1", "X-Remote-User: admin\r\n");
    assert_eq!(first.status, 303);
    assert_eq!(
        first.header("location"),
        Some("/.vigie/login?return=%2Frecords%3Fid%3D1")
    );
    let post = raw(gw.port, b"POST /records HTTP/1.1\r\nHost: r\r\nX-Remote-User: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(post.status, 401);
    assert!(
        s.echo.requests().is_empty(),
        "an anonymous request reached the portal"
    );

    let page = get(gw.port, "/.vigie/login?return=%2Frecords", "");
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("name=\"password\"")
            && crate::mfa::page_text(&page).contains("value=\"/records\"")
    );
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
}

#[test]
fn logged_in_requests_carry_identity_headers_and_a_verifiable_assertion() {
    let s = Setup::new();
    assert!(s.user(
        &["add", "alice", "--groups", "clinicians,night"],
        "correct horse battery\n"
    ));
    let gw = s.gateway();
    assert_eq!(
        post_login(
            &gw,
            "username=alice&password=correct+horse+battery&return=%2Frecords",
            "Origin: https://evil.example\r\n"
        )
        .status,
        403
    );
    let ok = post_login(
        &gw,
        "username=alice&password=correct+horse+battery&return=%2Frecords%3Fid%3D1",
        SAME,
    );
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), Some("/records?id=1"));
    let cookie = cookie_set(&ok, "vigie").unwrap();

    let resp = get(
        gw.port,
        "/records?id=1",
        &format!("Cookie: {cookie}\r\nX-Remote-User: admin\r\nX-Vigie-Assertion: forged\r\n"),
    );
    let head = resp.text();
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-remote-user: alice\r\n"), "{head}");
    assert!(
        !lower.contains("admin") && !lower.contains("forged"),
        "client identity leaked through: {head}"
    );
    assert!(
        lower.contains("x-remote-groups: clinicians,night\r\n"),
        "{head}"
    );
    let claims = verified_assertion(&gw, &head);
    assert_eq!(
        (claims.sub.as_str(), claims.acr.as_str()),
        ("alice", "password")
    );
    assert_eq!(claims.groups, vec!["clinicians", "night"]);
    assert!(claims.exp - claims.iat <= 60);
}

#[test]
fn failures_look_alike_and_return_paths_stay_on_site() {
    let s = Setup::new();
    assert!(s.user(&["add", "alice"], "correct horse battery\n"));
    let gw = s.gateway();
    let wrong = post_login(
        &gw,
        "username=alice&password=nope-nope-nope&return=%2F",
        SAME,
    );
    let unknown = post_login(
        &gw,
        "username=mallory&password=nope-nope-nope&return=%2F",
        SAME,
    );
    assert_eq!((wrong.status, unknown.status), (200, 200));
    assert_eq!(
        wrong.body, unknown.body,
        "unknown user and wrong password must look the same"
    );
    assert!(cookie_set(&wrong, "vigie").is_none() && cookie_set(&unknown, "vigie").is_none());

    for evil in [
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "https%3Aevil.example",
        "javascript%3Aalert(1)",
        "%2F%252F%252Fevil",
    ] {
        let resp = post_login(
            &gw,
            &format!("username=alice&password=correct+horse+battery&return={evil}"),
            SAME,
        );
        assert_eq!(resp.status, 303);
        assert_eq!(resp.header("location"), Some("/"), "{evil}");
    }
    // Disabled users are refused like any wrong password.
    assert!(s.user(&["disable", "alice"], ""));
    let refused = post_login(
        &gw,
        "username=alice&password=correct+horse+battery&return=%2F",
        SAME,
    );
    assert_eq!(refused.status, 200);
    assert!(cookie_set(&refused, "vigie").is_none());
}

#[test]
fn users_survive_a_gateway_restart() {
    let s = Setup::new();
    assert!(s.user(
        &["add", "bob", "--groups", "admins"],
        "a long enough password\n"
    ));
    assert!(
        !s.user(&["add", "bob"], "another long password\n"),
        "duplicate user accepted"
    );
    assert!(
        !s.user(&["add", "carol"], "short\n"),
        "weak password accepted"
    );
    const FIRST: &str = "username=bob&password=a+long+enough+password&return=%2F";
    const SECOND: &str = "username=bob&password=the+replacement+password&return=%2F";
    let signs_in = |gw: &Gateway, form: &str| {
        let r = post_login(gw, form, SAME);
        r.status == 303 && cookie_set(&r, "vigie").is_some_and(|c| c != "vigie=")
    };
    // Bob signs in, and his password changes, while a gateway runs...
    let gw = s.gateway();
    assert!(signs_in(&gw, FIRST));
    assert!(s.user(&["passwd", "bob"], "the replacement password\n"));
    assert!(!signs_in(&gw, FIRST), "the old password still works");
    assert!(signs_in(&gw, SECOND));
    // ...and after a restart on the same state, the change holds.
    drop(gw);
    let gw = s.gateway();
    assert!(signs_in(&gw, SECOND), "bob is unknown after the restart");
    assert!(!signs_in(&gw, FIRST), "the old password came back");
}

/// With `records = "postgres"`, users live in PostgreSQL: two gateways with state
/// directories of their own know the same users, and a change made by the command line
/// reaches both.
#[test]
fn users_in_postgres_are_known_to_every_gateway() {
    let db = crate::postgres_db::PgDatabase::create();
    let s = Setup::with_storage(
        tempfile::tempdir().unwrap(),
        &format!("records = \"postgres\"\npostgres_url = \"{}\"", db.url()),
    );
    assert!(s.user(&["add", "bob"], "a long enough password\n"));
    assert_eq!(db.sql("SELECT username FROM users"), "bob");
    let (a, b) = (s.gateway(), s.gateway());
    let login = |gw: &Gateway| {
        let r = post_login(
            gw,
            "username=bob&password=a+long+enough+password&return=%2F",
            SAME,
        );
        cookie_set(&r, "vigie").is_some_and(|c| c != "vigie=")
    };
    assert!(login(&a) && login(&b));
    assert!(s.user(&["disable", "bob"], ""));
    assert!(!login(&a) && !login(&b), "a disabled user signed in");
}

#[test]
fn disabling_a_user_ends_their_live_sessions() {
    let s = Setup::new();
    assert!(s.user(&["add", "alice"], "correct horse battery\n"));
    let gw = s.gateway();
    let ok = post_login(
        &gw,
        "username=alice&password=correct+horse+battery&return=%2Fr",
        SAME,
    );
    let cookie = cookie_set(&ok, "vigie").unwrap();
    assert_eq!(
        get(gw.port, "/r", &format!("Cookie: {cookie}\r\n")).status,
        200
    );
    // Use the running gateway's own config: it names the admin API and its token.
    let out = Command::new(VIGIE)
        .args(["user", "disable", "alice", "-c"])
        .arg(&gw.config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("\"revoked\":1"),
        "{said}"
    );
    assert_eq!(
        get(gw.port, "/r", &format!("Cookie: {cookie}\r\n")).status,
        303,
        "a disabled user's session survived"
    );
}

#[test]
fn local_users_prove_a_second_factor_before_the_portal_hears_of_them() {
    let s = Setup::new();
    assert!(s.user(
        &["add", "alice", "--groups", "clinicians"],
        "correct horse battery\n"
    ));
    assert!(s.user(
        &["add", "chief", "--groups", "admin"],
        "chief of the ward 1\n"
    ));
    let factor = "[second_factor]\nenrollment = \"open\"\nprivileged_groups = [\"admin\"]\n";
    let gw = start_gateway_with(&s.portal, &format!("{}\n{factor}", s.extra));
    let login = |user: &str, password: &str| {
        let form = format!(
            "username={user}&password={}&return=%2Frecords",
            password.replace(' ', "+")
        );
        let ok = post_login(&gw, &form, SAME);
        assert_eq!(ok.status, 303);
        let mut c = crate::mfa::Client::new(gw.port);
        c.cookie = cookie_set(&ok, "vigie");
        c
    };
    let mut alice = login("alice", "correct horse battery");
    let wall = alice.get("/records?id=1");
    assert_eq!(wall.status, 303);
    assert!(crate::mfa::location(&wall).starts_with("/.vigie/factor"));
    assert!(
        s.echo.requests().is_empty(),
        "the portal heard of a password-only session"
    );
    crate::mfa::enroll_totp(&mut alice, None);
    let through = alice.get("/records?id=1");
    let head = through.text();
    assert!(
        head.to_ascii_lowercase()
            .contains("x-remote-user: alice\r\n"),
        "{head}"
    );
    let claims = verified_assertion(&gw, &head);
    assert_eq!(
        claims.acr, "second_factor",
        "the assertion tells the portal how the user signed in"
    );

    // A privileged account needs an invitation even where enrollment is open.
    let mut chief = login("chief", "chief of the ward 1");
    let enroll = chief.get("/.vigie/enroll");
    assert!(
        enroll.text().contains("name=\"invitation\""),
        "{}",
        enroll.text()
    );
    assert_eq!(chief.get("/.vigie/enroll/totp").status, 303);
}
