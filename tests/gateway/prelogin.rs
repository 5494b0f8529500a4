//! The pre-login wall against a real PHP 8 portal (threat model 36-38): Debian's `php -S` runs
//! `tests/fixtures/php-portal/index.php`, which reads logins the way PHP reads them. Every
//! patient row it serves carries `PATIENT-` and every signed-in page `AUTHENTICATED-AS`: a
//! response carrying either before the second factor is a leak.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::*;
use crate::mfa::Client;
use crate::passthrough::cookie_set;

/// `php -S` on a free port, killed when dropped.
pub struct PhpPortal {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PhpPortal {
    /// PHP's own record of who is signed in: its session files that hold a user.
    pub fn signed_in_sessions(&self) -> usize {
        std::fs::read_dir(self._dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("sess_"))
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("user|")))
            .count()
    }
}

impl Drop for PhpPortal {
    fn drop(&mut self) {
        // The whole process group: PHP's workers, when there are some, outlive their parent.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/php-portal")
        .join(name)
}

/// The PHP portal; `regenerate`: a new session id at login (else PHP's default, the same id).
pub fn start_php(regenerate: bool) -> PhpPortal {
    start_php_with(regenerate, 1)
}

/// The same with `workers` PHP processes answering at once.
pub fn start_php_with(regenerate: bool, workers: u32) -> PhpPortal {
    start_php_ini(regenerate, workers, &[])
}

/// The same with more php.ini settings (`name=value`).
pub fn start_php_ini(regenerate: bool, workers: u32, ini: &[&str]) -> PhpPortal {
    start_php_env(regenerate, workers, ini, &[])
}

/// The same with more environment (`VIGIE_PHP_STRICT_LOGOUT`).
pub fn start_php_env(
    regenerate: bool,
    workers: u32,
    ini: &[&str],
    more: &[(&str, &str)],
) -> PhpPortal {
    let dir = tempfile::tempdir().unwrap();
    let save_path = format!("session.save_path={}", dir.path().display());
    let mut settings = vec![save_path.as_str(), "variables_order=EGPCS"];
    settings.extend_from_slice(ini);
    let workers = workers.to_string();
    let mut env = vec![
        ("VIGIE_PHP_REGENERATE", if regenerate { "1" } else { "0" }),
        ("PHP_CLI_SERVER_WORKERS", workers.as_str()),
    ];
    env.extend_from_slice(more);
    php_server(&fixture("index.php"), &settings, &env, dir)
}

/// `php -n -S` on a free port with this router script, these ini settings (`name=value`) and
/// environment; `dir` lives as long as the server.
pub fn php_server(
    router: &std::path::Path,
    ini: &[&str],
    env: &[(&str, &str)],
    dir: tempfile::TempDir,
) -> PhpPortal {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let mut args = vec!["-n".to_string()];
    for setting in ini {
        args.extend(["-d".to_string(), setting.to_string()]);
    }
    args.extend([
        "-S".to_string(),
        format!("127.0.0.1:{port}"),
        router.display().to_string(),
    ]);
    let child = Command::new("php")
        .args(&args)
        .envs(env.iter().copied())
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("php-cli is installed (scripts/install-deps)");
    wait_for_port(port);
    PhpPortal {
        port,
        child,
        _dir: dir,
    }
}

/// A gateway in front of the PHP portal; `factor`: second factors required.
pub fn php_gateway(php: &PhpPortal, factor: bool, extra: &str) -> Gateway {
    let portal = format!(
        "[[portal]]\nname = \"php\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 3000\nprofile = \"{}\"\n",
        php.port,
        fixture("profile.toml").display()
    );
    let factor = if factor { FACTOR_REQUIRED } else { "" };
    start_gateway_with(&portal, &format!("{extra}\n{factor}"))
}

/// A leak: the portal's data or a signed-in page of it.
pub fn leaks(r: &Response) -> bool {
    let t = r.text();
    t.contains("PATIENT-") || t.contains("AUTHENTICATED-AS")
}

/// One request with the client's gateway cookie; raw bytes after the head's first line.
pub fn send(c: &mut Client, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
    let cookie = c
        .cookie
        .as_ref()
        .map_or(String::new(), |k| format!("Cookie: {k}\r\n"));
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost:{}\r\n{cookie}{headers}Connection: close\r\n\r\n",
        c.port
    )
    .into_bytes();
    req.extend_from_slice(body);
    let resp = raw(c.port, &req).expect("response");
    if let Some(k) = cookie_set(&resp, "vigie") {
        c.cookie = (k != "vigie=").then_some(k);
    }
    resp
}

pub fn form(body: &str) -> String {
    format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    )
}

/// Second factors required, enrollment open (the tests enroll nobody: the factor is a wall).
pub const FACTOR_REQUIRED: &str = "[second_factor]\nrequired = true\nenrollment = \"open\"\n";

pub const ALICE: &str = "login=1&username=alice&password=alice-pw";

/// A login through the PHP portal's form, as a browser sends it.
pub fn sign_in(gw: &Gateway, body: &str) -> (Client, Response) {
    let mut c = Client::new(gw.port);
    let page = send(&mut c, "GET", "/index.php", "", b"");
    assert_eq!(page.status, 200, "{}", page.text());
    let resp = send(&mut c, "POST", "/index.php", &form(body), body.as_bytes());
    (c, resp)
}

/// Login bodies in the shapes PHP (or a careless reader) takes as a form, each with alice's
/// right password. Every one is either refused or read as alice's login; none gives a
/// response with portal data, and none leaves a session that reaches it before the factor.
fn shapes() -> Vec<(&'static str, String, Vec<u8>)> {
    let mp = |ct: &str, names: [&str; 3]| {
        let b = format!(
            "--XB\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n1\r\n--XB\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\nalice\r\n--XB\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\nalice-pw\r\n--XB--\r\n",
            names[0], names[1], names[2]
        );
        (
            format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()),
            b.into_bytes(),
        )
    };
    let typed = |ct: &str, body: &str| {
        (
            format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", body.len()),
            body.as_bytes().to_vec(),
        )
    };
    let chunked = {
        let mut b = Vec::new();
        for piece in ALICE.as_bytes().chunks(7) {
            b.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            b.extend_from_slice(piece);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"0\r\n\r\n");
        (
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
                .to_string(),
            b,
        )
    };
    let big = format!("{ALICE}&dialog={}", "x".repeat(70 * 1024));
    let many = format!("{ALICE}{}", "&login=1".repeat(1000));
    let mut out: Vec<(&str, (String, Vec<u8>))> = vec![
        ("text/plain", typed("text/plain", ALICE)),
        (
            "no content type",
            (format!("Content-Length: {}\r\n", ALICE.len()), ALICE.into()),
        ),
        (
            "json",
            typed(
                "application/json",
                r#"{"login":1,"username":"alice","password":"alice-pw"}"#,
            ),
        ),
        (
            "multipart",
            mp(
                "multipart/form-data; boundary=XB",
                ["login", "username", "password"],
            ),
        ),
        (
            "multipart quoted boundary",
            mp(
                "multipart/form-data; boundary=\"XB\"",
                ["login", "username", "password"],
            ),
        ),
        (
            "multipart upper case",
            mp(
                "MULTIPART/FORM-DATA; BOUNDARY=XB",
                ["login", "username", "password"],
            ),
        ),
        (
            "multipart folded names",
            mp(
                "multipart/form-data; boundary=XB",
                ["login", "user name", "pass.word"],
            ),
        ),
        (
            "comma after the type",
            typed("application/x-www-form-urlencoded, text/plain", ALICE),
        ),
        (
            "space before the parameter",
            typed("application/x-www-form-urlencoded ;charset=utf-8", ALICE),
        ),
        ("gzip", {
            let (h, b) = typed("application/x-www-form-urlencoded", ALICE);
            (format!("{h}Content-Encoding: gzip\r\n"), b)
        }),
        (
            "two user names",
            typed(
                "application/x-www-form-urlencoded",
                "login=1&username=bob&password=alice-pw&username=alice",
            ),
        ),
        (
            "user name as an array",
            typed(
                "application/x-www-form-urlencoded",
                "login=1&username[]=alice&password=alice-pw",
            ),
        ),
        (
            "an action beside the login",
            typed(
                "application/x-www-form-urlencoded",
                &format!("{ALICE}&m=export"),
            ),
        ),
        (
            "not UTF-8",
            typed(
                "application/x-www-form-urlencoded",
                "login=1&username=alice%FF&password=alice-pw",
            ),
        ),
        (
            "too many fields",
            typed("application/x-www-form-urlencoded", &many),
        ),
        (
            "oversized",
            typed("application/x-www-form-urlencoded", &big),
        ),
        // PHP's own server reads a chunked body as empty: the gateway wants a length (411).
        ("chunked", chunked),
        // Shapes PHP and the gateway both read as alice's login: accepted, then the factor.
        (
            "parameters and case",
            typed("Application/X-WWW-Form-Urlencoded; charset=UTF-8", ALICE),
        ),
        (
            "percent-encoded names",
            typed(
                "application/x-www-form-urlencoded",
                "%6Cogin=1&%75sername=alice&pass%77ord=alice-pw",
            ),
        ),
        (
            "password first",
            typed(
                "application/x-www-form-urlencoded",
                "password=alice-pw&username=alice&login=1",
            ),
        ),
    ];
    out.drain(..).map(|(name, (h, b))| (name, h, b)).collect()
}

#[test]
fn every_login_shape_php_reads_is_counted_and_nothing_passes_before_the_factor() {
    // threat model 36, both portal variants (37: one keeps its session id at login).
    for regenerate in [true, false] {
        let php = start_php(regenerate);
        let shapes = shapes();
        // The source's login budget is exactly the number of shapes: every one is counted.
        let budget = format!(
            "[budgets.login]\nrequests = {}\nper = \"hour\"\n[budgets.source]\nrequests = 100000\nper = \"minute\"\n",
            shapes.len()
        );
        let gw = php_gateway(&php, true, &budget);
        let mut accepted = 0;
        for (name, headers, body) in &shapes {
            let mut c = Client::new(gw.port);
            let page = send(&mut c, "GET", "/index.php", "", b"");
            assert!(
                page.status == 200 && !leaks(&page),
                "{name}: {}",
                page.text()
            );
            let resp = send(&mut c, "POST", "/index.php", headers, body);
            assert!(
                !leaks(&resp),
                "{name}: the login's answer leaked: {}",
                resp.text()
            );
            match resp.status {
                400 | 411 | 413 => {}
                302 => {
                    accepted += 1;
                    assert_eq!(resp.header("location"), Some("/index.php?m=home"), "{name}");
                    assert_eq!(resp.header("content-length"), Some("0"), "{name}");
                }
                s => panic!("{name}: {s} {}", resp.text()),
            }
            for target in [
                "/index.php",
                "/index.php?m=home",
                "/index.php?m=export",
                "/x.php",
            ] {
                let r = send(&mut c, "GET", target, "", b"");
                assert!(
                    !leaks(&r),
                    "{name}: {target} leaked before the factor: {}",
                    r.text()
                );
                assert!(
                    r.status == 303 || (r.status == 200 && target == "/index.php"),
                    "{name}: {target}: {}",
                    r.status
                );
            }
        }
        assert_eq!(accepted, 3, "the three shapes both read as alice's login");
        // Every shape was counted against the source: the next attempt is over budget.
        let (_, over) = sign_in(&gw, ALICE);
        assert_eq!(over.status, 429, "{}", over.text());
    }
}

#[test]
fn a_failed_login_empties_the_pre_login_vault_even_when_the_portal_signed_in() {
    // threat model 37: the portal keeps its session id, and answers this login with its home
    // page (200) instead of the redirect the profile calls success: the gateway judges it a
    // failure, shows its own page, and drops the portal session it held for the visitor.
    let php = start_php(false);
    let gw = php_gateway(&php, true, "");
    let mut c = Client::new(gw.port);
    send(&mut c, "GET", "/index.php", "", b"");
    let pre_login = c.cookie.clone();
    assert!(
        pre_login.is_some(),
        "the portal's pre-login session is vaulted"
    );
    let body = format!("{ALICE}&dialog=1");
    let resp = send(&mut c, "POST", "/index.php", &form(&body), body.as_bytes());
    assert_eq!(resp.status, 303, "{}", resp.text());
    // The pre-login session that held the now signed-in portal cookie is gone, even for a
    // browser that kept its cookie.
    c.cookie = pre_login;
    for target in ["/index.php", "/index.php?m=home"] {
        let r = send(&mut c, "GET", target, "", b"");
        assert!(!leaks(&r), "{target}: {}", r.text());
    }
    assert_eq!(resp.header("location"), Some("/.vigie/signin-failed"));
    assert!(!leaks(&resp));
    let page = send(&mut c, "GET", "/.vigie/signin-failed", "", b"");
    assert!(
        crate::mfa::page_text(&page).contains("href=\"/index.php\""),
        "a way back to the login page: {}",
        page.text()
    );
    let login_page = send(&mut c, "GET", "/index.php", "", b"");
    assert_eq!(login_page.status, 200);
    assert!(
        !leaks(&login_page) && login_page.text().contains("name=\"password\""),
        "the portal session the login opened is held by nobody: {}",
        login_page.text()
    );
    // A wrong password: the same page, the same empty vault.
    let (mut c, wrong) = sign_in(&gw, "login=1&username=alice&password=nope");
    assert_eq!(wrong.header("location"), Some("/.vigie/signin-failed"));
    assert!(c.cookie.is_none(), "the pre-login session ended");
    assert!(!leaks(&send(&mut c, "GET", "/index.php", "", b"")));
}

#[test]
fn a_portal_that_keeps_its_session_id_still_meets_the_second_factor() {
    // threat model 37: PHP's default keeps the pre-login id; success is the profile's redirect,
    // not a new cookie. The factor is then required for everything of the portal...
    let php = start_php(false);
    let gw = php_gateway(&php, true, "");
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert!(
        cookie_set(&resp, "portal").is_none(),
        "the portal's cookie stays in the vault"
    );
    for target in ["/index.php", "/index.php?m=home", "/index.php?m=export"] {
        let r = send(&mut c, "GET", target, "", b"");
        assert_eq!(r.status, 303, "{target}");
        assert!(
            r.header("location").unwrap().starts_with("/.vigie/"),
            "{target}"
        );
    }
    // ...and, without a factor required, the carried-over cookie is the signed-in session.
    let gw = php_gateway(&php, false, "");
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302);
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        home.text()
    );
}

#[test]
fn a_signed_in_login_as_someone_else_ends_the_session() {
    // threat model 38.
    let php = start_php(true);
    // Two login attempts an hour from this address.
    let budget = "[budgets.login]\nrequests = 2\nper = \"hour\"\n";
    let gw = php_gateway(&php, false, budget);
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302);
    let before = c.cookie.clone();
    // Ordinary forms of the portal, posted to the login script: forwarded, the session lives
    // on, and no login budget is spent on them.
    let note = "m=note&text=ward+round";
    for _ in 0..3 {
        let r = send(&mut c, "POST", "/index.php", &form(note), note.as_bytes());
        assert!(r.text().contains("note saved"), "{}", r.text());
        assert_eq!(c.cookie, before);
    }
    let (_, second) = sign_in(&gw, "login=1&username=bob&password=bob-pw");
    assert_eq!(second.status, 302, "the notes spent login budget");
    let (_, third) = sign_in(&gw, ALICE);
    assert_eq!(third.status, 429, "the budget is two attempts");
    // From another site, the login over the session is refused and ends nothing.
    let bob = "login=1&username=bob&password=bob-pw";
    let cross = format!("Origin: http://evil.test\r\n{}", form(bob));
    let r = send(&mut c, "POST", "/index.php", &cross, bob.as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(c.cookie, before);
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        home.text()
    );
    // A multipart login in the quoting PHP also reads (third round): refused, session kept.
    let mp = "--B\r\nContent-Disposition: form-data; name='login'\r\n\r\n1\r\n--B\r\nContent-Disposition: form-data; name='username'\r\n\r\nbob\r\n--B\r\nContent-Disposition: form-data; name='password'\r\n\r\nbob-pw\r\n--B--\r\n";
    let head = format!(
        "Sec-Fetch-Site: same-origin\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n",
        mp.len()
    );
    let r = send(&mut c, "POST", "/index.php", &head, mp.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        home.text()
    );
    // bob's password over alice's session from her own page: refused, and alice's session is
    // over.
    let same = format!("Sec-Fetch-Site: same-origin\r\n{}", form(bob));
    let r = send(&mut c, "POST", "/index.php", &same, bob.as_bytes());
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(!r.text().contains("AUTHENTICATED-AS bob"));
    c.cookie = before;
    let after = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert_eq!(
        after.status, 303,
        "the old cookie no longer signs anyone in"
    );
    assert!(gw.proc.stderr().contains("login_over_session"));
}

#[test]
fn a_portal_that_names_another_user_ends_the_login_and_alerts() {
    // threat model 38: carol's password opens alice's portal session (the fixture's quirk).
    let php = start_php(true);
    let gw = php_gateway(&php, false, "");
    let (mut c, resp) = sign_in(&gw, "login=1&username=carol&password=carol-pw");
    assert_eq!(
        resp.header("location"),
        Some("/.vigie/signin-failed"),
        "{}",
        resp.text()
    );
    assert!(!leaks(&resp));
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(!leaks(&home), "{}", home.text());
    let log = gw.proc.stderr();
    assert!(log.contains("VIGIE-IDENTITY-MISMATCH"), "{log}");
    assert!(log.contains("identity_mismatch"), "{log}");
}

#[test]
fn random_pre_login_traffic_never_gets_portal_data() {
    // A property over request sequences: whatever a visitor with alice's password sends,
    // in any order, nothing of the portal outside the allowlist reaches them before the
    // factor. Seeded, bounded (loopback only).
    use rand::{Rng, SeedableRng};
    let php = start_php(false);
    let gw = php_gateway(&php, true, "");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5EED);
    let paths = [
        "/index.php",
        "/",
        "/x.php",
        "/index.php/a",
        "/style.css",
        "/INDEX.PHP",
    ];
    let queries = [
        "",
        "?m=home",
        "?m=export",
        "?lang=fr",
        "?logout=1",
        "?m[]=export",
        "?+m=export",
    ];
    let bodies = [
        ALICE,
        "login=1&username=alice&password=alice-pw&dialog=1",
        "m=export",
        "login=1&username=alice&password=wrong",
        "username=alice&password=alice-pw",
    ];
    let types = [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ];
    let mut c = Client::new(gw.port);
    for step in 0..150 {
        let target = format!(
            "{}{}",
            paths[rng.random_range(0..paths.len())],
            queries[rng.random_range(0..queries.len())]
        );
        let resp = if rng.random_bool(0.5) {
            send(&mut c, "GET", &target, "", b"")
        } else {
            let body = bodies[rng.random_range(0..bodies.len())];
            let ct = types[rng.random_range(0..types.len())];
            let head = format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", body.len());
            send(&mut c, "POST", &target, &head, body.as_bytes())
        };
        assert!(!leaks(&resp), "step {step}: {target}: {}", resp.text());
        if rng.random_bool(0.1) {
            c.cookie = None;
        }
    }
}

#[test]
fn a_signed_in_page_served_before_login_is_replaced_and_alerted() {
    // Measure what happened (threat model 36): a profile that allows the portal's token login by
    // mistake (`?auto=NAME`). The portal signs the visitor in and answers with alice's home
    // page; the gateway reads the answer, sees a signed-in page, and replaces it.
    let php = start_php(false);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("loose.toml");
    let text = std::fs::read_to_string(fixture("profile.toml")).unwrap()
        + "\n[[prelogin.allow]]\npath = \"/index.php\"\nparams = { auto = \"*\" }\n";
    std::fs::write(&profile, text).unwrap();
    let portal = format!(
        "[[portal]]\nname = \"php\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 3000\nprofile = \"{}\"\n",
        php.port,
        profile.display()
    );
    let gw = start_gateway_with(&portal, FACTOR_REQUIRED);
    let mut c = Client::new(gw.port);
    let r = send(&mut c, "GET", "/index.php?auto=alice", "", b"");
    assert_eq!(r.status, 200);
    assert!(!leaks(&r), "{}", r.text());
    assert!(r.text().contains("Sign in first"), "{}", r.text());
    // The pre-login session that took the signed-in portal cookie is over.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let again = send(&mut c, "GET", "/index.php", "", b"");
    assert!(!leaks(&again), "{}", again.text());
    assert!(
        again.text().contains("name=\"password\""),
        "{}",
        again.text()
    );
    let log = gw.proc.stderr();
    assert!(log.contains("VIGIE-SIGNED-IN-BEFORE-LOGIN"), "{log}");
    // The login page itself, unsigned, goes out as the portal wrote it.
    let mut fresh = Client::new(gw.port);
    let page = send(&mut fresh, "GET", "/index.php", "", b"");
    assert!(page.text().contains("name=\"password\""), "{}", page.text());
}

#[test]
fn a_portal_session_rotated_to_another_user_ends_the_gateway_session() {
    // threat model 38: signed in as alice, a page of the portal signs bob in (a token login from
    // inside) and gives a new session id. The gateway asks the portal who this is now, ends
    // alice's session, replaces bob's page and alerts.
    let php = start_php(true);
    let gw = php_gateway(&php, false, "");
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302);
    let alice = c.cookie.clone();
    let r = send(&mut c, "GET", "/index.php?auto=bob", "", b"");
    assert!(!r.text().contains("AUTHENTICATED-AS bob"), "{}", r.text());
    assert_eq!(r.header("location"), Some("/.vigie/signin-failed"));
    c.cookie = alice;
    let after = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert_eq!(after.status, 303, "alice's gateway session ended");
    assert!(gw.proc.stderr().contains("identity_mismatch_on_rotation"));
    // A rotation for the same user is an ordinary refresh.
    let (mut c, _) = sign_in(&gw, ALICE);
    let same = send(&mut c, "GET", "/index.php?auto=alice", "", b"");
    assert!(
        same.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        same.text()
    );
    let home = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS alice"),
        "{}",
        home.text()
    );
}

/// A profile of the PHP portal changed by `edit` (text in, text out), in `dir`.
pub fn profile_variant(dir: &tempfile::TempDir, edit: impl Fn(String) -> String) -> PathBuf {
    let path = dir.path().join("variant.toml");
    let text = edit(std::fs::read_to_string(fixture("profile.toml")).unwrap());
    std::fs::write(&path, text).unwrap();
    path
}

pub fn gateway_on(php: &PhpPortal, profile: &std::path::Path, extra: &str) -> Gateway {
    let portal = format!(
        "[[portal]]\nname = \"php\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 5000\nprofile = \"{}\"\n",
        php.port,
        profile.display()
    );
    start_gateway_with(&portal, extra)
}
