//! What the red team found attacking the pre-login wall with live requests (threat model 36-38),
//! each case against the real PHP 8 portal of `prelogin.rs`: requests in flight across a
//! login, logins held open, split bodies, compressed answers, locks landing mid-request, public
//! paths below the factor, logins outside the login request.

use crate::common::*;
use crate::mfa::Client;
use crate::prelogin::*;

#[test]
fn a_page_in_flight_while_its_session_logs_in_does_not_come_back_signed_in() {
    // threat model 37, found by the red team: with a portal that keeps its session id, a page
    // request sent on the pre-login session just before the login is answered after the
    // portal signed that id in. The login takes the pre-login session; what comes back for a
    // request sent with it is not let out. The profile here has no confirmation page, so the
    // screen of signed-in pages is not what catches it.
    let php = start_php_with(false, 2);
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_variant(&dir, |t| {
        t.replace(
            "[login.confirm]\npage = \"/index.php?m=home\"\npattern = 'class=\"who\">([^<]+)<'\n",
            "",
        ) + "\n[[prelogin.allow]]\npath = \"/index.php\"\nparams = { wait = \"*\" }\n"
    });
    assert!(!std::fs::read_to_string(&profile)
        .unwrap()
        .contains("[login.confirm]"));
    let gw = gateway_on(&php, &profile, FACTOR_REQUIRED);
    let mut c = Client::new(gw.port);
    send(&mut c, "GET", "/index.php", "", b"");
    let cookie = c.cookie.clone();
    let port = gw.port;
    let slow = std::thread::spawn(move || {
        let mut c = Client::new(port);
        c.cookie = cookie;
        send(&mut c, "GET", "/index.php?wait=2500", "", b"")
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    let login = send(&mut c, "POST", "/index.php", &form(ALICE), ALICE.as_bytes());
    assert_eq!(login.status, 302, "{}", login.text());
    let late = slow.join().unwrap();
    assert!(
        !leaks(&late),
        "the page in flight came back signed in: {}",
        late.text()
    );
    assert_eq!(late.status, 303);
    // A page request with a body (held open across a login) is refused outright.
    let mut c = Client::new(gw.port);
    let held = send(&mut c, "GET", "/index.php", "Content-Length: 1\r\n", b"x");
    assert_eq!(held.status, 400);
}

#[test]
fn two_logins_on_one_pre_login_session_never_share_a_portal_session() {
    // threat model 38, found by the red team: alice's login held open (Expect: 100-continue)
    // while bob logs in on the same pre-login session; with a portal that keeps its session id
    // both would land on one portal session. The first login takes the pre-login session: bob's
    // goes without its cookie and gets a portal session of his own.
    use std::io::Write;
    let php = start_php_with(false, 2);
    let gw = php_gateway(&php, false, "");
    let mut c = Client::new(gw.port);
    send(&mut c, "GET", "/index.php", "", b"");
    let cookie = c.cookie.clone().unwrap();
    let mut alice = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    write!(
        alice,
        "POST /index.php HTTP/1.1\r\nHost: localhost:{}\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        gw.port,
        ALICE.len()
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let bob_body = "login=1&username=bob&password=bob-pw";
    let mut b = Client::new(gw.port);
    b.cookie = Some(cookie);
    let bob = send(
        &mut b,
        "POST",
        "/index.php",
        &form(bob_body),
        bob_body.as_bytes(),
    );
    assert_eq!(bob.status, 302, "{}", bob.text());
    alice.write_all(ALICE.as_bytes()).unwrap();
    let mut conn = Conn::from_stream(alice);
    let mut answer = conn.read_response().unwrap();
    if answer.status == 100 {
        answer = conn.read_response().unwrap();
    }
    assert_eq!(answer.status, 302, "{}", answer.text());
    let home = send(&mut b, "GET", "/index.php?m=home", "", b"");
    assert!(
        home.text().contains("AUTHENTICATED-AS bob"),
        "{}",
        home.text()
    );
    assert!(!home.text().contains("AUTHENTICATED-AS alice"));
}

#[test]
fn a_login_body_arriving_in_pieces_is_held_then_sent_whole() {
    // Found by the red team: holding the body with `None` told the portal it had ended, and a
    // login whose body came in two reads hung, then 502.
    use std::io::Write;
    let php = start_php(true);
    let gw = php_gateway(&php, false, "");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    write!(
        s,
        "POST /index.php HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        gw.port,
        ALICE.len(),
        &ALICE[..5]
    )
    .unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.write_all(&ALICE.as_bytes()[5..]).unwrap();
    let answer = Conn::from_stream(s).read_response().expect("an answer");
    assert_eq!(answer.status, 302, "{}", answer.text());
}

#[test]
fn a_compressed_signed_in_page_before_login_is_still_caught() {
    // Found by the red team: the screen read gzip bytes. A portal that compresses (PHP's
    // zlib.output_compression), a profile that allows its token login by mistake, a browser
    // asking for gzip: the request goes without `Accept-Encoding`, the answer is read plain.
    let php = start_php_ini(false, 1, &["zlib.output_compression=1"]);
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_variant(&dir, |t| {
        t + "\n[[prelogin.allow]]\npath = \"/index.php\"\nparams = { auto = \"*\" }\n"
    });
    let gw = gateway_on(&php, &profile, FACTOR_REQUIRED);
    let mut c = Client::new(gw.port);
    let page = send(
        &mut c,
        "GET",
        "/index.php",
        "Accept-Encoding: gzip, deflate\r\n",
        b"",
    );
    assert!(
        page.text().contains("name=\"password\""),
        "read plain: {}",
        page.text()
    );
    let r = send(
        &mut c,
        "GET",
        "/index.php?auto=alice",
        "Accept-Encoding: gzip\r\n",
        b"",
    );
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.text().contains("Sign in first"), "{:?}", r.body);
    assert!(gw.proc.stderr().contains("VIGIE-SIGNED-IN-BEFORE-LOGIN"));
}

#[test]
fn a_lock_during_a_request_in_flight_stays_a_lock() {
    // Found by the red team: a request at the portal when alice was locked wrote her session
    // back with the portal's refreshed cookie, and the locked session lived again.
    let php = start_php_with(true, 2);
    let gw = php_gateway(&php, false, "");
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302);
    let cookie = c.cookie.clone();
    let port = gw.port;
    let in_flight = std::thread::spawn(move || {
        let mut c = Client::new(port);
        c.cookie = cookie;
        // A token login of the same user: the portal renews its session id (a rotation).
        send(&mut c, "GET", "/index.php?auto=alice&wait=2000", "", b"")
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    let out = std::process::Command::new(VIGIE)
        .args(["user", "lock", "alice", "-c", gw.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let late = in_flight.join().unwrap();
    assert!(
        !leaks(&late),
        "the answer for a locked session went out: {}",
        late.text()
    );
    let after = send(&mut c, "GET", "/index.php?m=home", "", b"");
    assert_eq!(
        after.status,
        303,
        "the locked session came back: {}",
        after.text()
    );
}

#[test]
fn a_public_path_sends_a_password_only_session_as_an_anonymous_visitor() {
    // Found by the red team: a rule making a path public let a session past the password but
    // not the factor reach it with the signed-in portal cookie; on a front-controller portal
    // every path runs the whole application.
    let php = start_php(true);
    let rule = "[[rule]]\nname = \"stylesheet\"\npath = \"/style.css\"\nlevel = \"public\"\n";
    let gw = php_gateway(&php, true, rule);
    let (mut c, resp) = sign_in(&gw, ALICE);
    assert_eq!(resp.status, 302);
    let r = send(&mut c, "GET", "/style.css", "", b"");
    assert_eq!(r.status, 200, "{}", gw.proc.stderr());
    assert!(!leaks(&r), "{}", r.text());
    // The rule does not open the wall: below the factor the profile's allowlist still decides
    // (third round: the public path with a token login and an export parameter).
    let export = send(&mut c, "GET", "/style.css?auto=bob&m=export", "", b"");
    assert!(!leaks(&export), "{}", export.text());
    assert!(export
        .header("location")
        .is_some_and(|l| l.starts_with("/.vigie/")));
    let mut nobody = Client::new(gw.port);
    let anon = send(&mut nobody, "GET", "/style.css?auto=bob&m=export", "", b"");
    assert!(!leaks(&anon), "{}", anon.text());
    assert_eq!(anon.header("location"), Some("/index.php"));
    assert!(
        r.text().contains("name=\"password\""),
        "the portal saw nobody: {}",
        r.text()
    );
}

#[test]
fn a_login_outside_the_login_request_is_refused_before_the_password() {
    // Found by the red team: a profile that allows a POST elsewhere (the PHP router runs the
    // application on every path) let a login through without the login request's defences.
    let php = start_php(false);
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_variant(&dir, |t| {
        t.replace(
            "[[prelogin.allow]]\npath = \"/style.css\"",
            "[[prelogin.allow]]\npath = \"/style.css\"\nmethods = [\"GET\", \"POST\"]",
        )
    });
    assert!(std::fs::read_to_string(&profile)
        .unwrap()
        .contains("\"POST\"]"));
    let gw = gateway_on(&php, &profile, FACTOR_REQUIRED);
    let mut c = Client::new(gw.port);
    send(&mut c, "GET", "/index.php", "", b"");
    let r = send(&mut c, "POST", "/style.css", &form(ALICE), ALICE.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let q = send(
        &mut c,
        "GET",
        "/style.css?login=1&username=alice&password=alice-pw",
        "",
        b"",
    );
    assert_eq!(q.status, 400, "{}", q.text());
    assert!(!leaks(&send(&mut c, "GET", "/index.php", "", b"")));
}
