//! Portal sessions end when the gateway's do, the portal's way. The sample portal runs in its
//! strict logout mode (a `POST /logout` with the session's CSRF token, 405 on `GET`, as Django
//! does), and the portal itself is asked how many sessions it still holds.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::passthrough::{cookie_set, submit_login};

/// The sample portal's profile, with the strict portal's logout described.
const STRICT_LOGOUT: &str = r#"[logout]
path = "/logout"
method = "POST"

[logout.token]
field = "csrf_token"
page = "/index.php?m=dPpatients&tab=vw_idx_patients"
pattern = 'name="csrf_token" value="([^"]+)"'

[logout.success]
status = [302]
location = '^/index\.php$'
"#;

/// A gateway in front of `portal` with the sample profile, its `[logout]` replaced by
/// `logout` (the shipped one: a `GET ?logout=-1`).
fn gateway(portal: &Portal, logout: Option<&str>, extra: &str) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml"),
    )
    .unwrap();
    let old = "[logout]\npath = \"/index.php\"\nquery = \"logout=-1\"\n";
    assert!(
        shipped.contains(old),
        "the shipped profile's [logout] moved"
    );
    let profile = shipped.replace(old, logout.unwrap_or(old));
    let path = dir.path().join("profile.toml");
    std::fs::write(&path, profile).unwrap();
    let portals = format!(
        "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 1500\nprofile = \"{}\"\n",
        portal.port,
        path.display()
    );
    (start_gateway_with(&portals, extra), dir)
}

/// Whether `holds` comes true within a few seconds (portal logouts run in the background).
fn soon(mut holds: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if holds() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Wait (a few seconds at most) until the portal holds `n` sessions.
fn portal_holds(portal: &Portal, n: u64) -> bool {
    soon(|| portal_sessions(portal) == n)
}

/// The patients page a signed-in session lands on, with `cookie`.
fn home(gw: &Gateway, cookie: &str) -> Response {
    let page = "/index.php?m=dPpatients&tab=vw_idx_patients";
    get(gw.port, page, &format!("Cookie: {cookie}\r\n"))
}

fn login(gw: &Gateway, user: &str, password: &str) -> String {
    let resp = submit_login(gw.port, user, password, None);
    assert_eq!(resp.status, 302, "{}", resp.text());
    cookie_set(&resp, "vigie").expect("gateway cookie")
}

fn sign_out(gw: &Gateway, cookie: &str) -> Response {
    raw(gw.port, format!("POST /.vigie/logout HTTP/1.1\r\nHost: portal.test\r\nCookie: {cookie}\r\nSec-Fetch-Site: same-origin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).unwrap()
}

fn admin_post(gw: &Gateway, target: &str) -> Response {
    let req = format!("POST {target} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    raw(gw.admin_port, req.as_bytes()).unwrap()
}

#[test]
fn signing_out_ends_a_strict_portals_session_with_its_token() {
    let portal = start_portal_with(&["--strict-logout"]);
    // The portal is strict: its logout link is refused, so a GET logout ends nothing.
    assert_eq!(get(portal.port, "/index.php?logout=-1", "").status, 405);
    let (gw, _dir) = gateway(&portal, Some(STRICT_LOGOUT), "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    assert_eq!(portal_sessions(&portal), 1);
    let out = sign_out(&gw, &cookie);
    assert_eq!(out.status, 303);
    // The sign-out answers once the portal has: its session is already gone.
    assert_eq!(
        portal_sessions(&portal),
        0,
        "the portal session outlived the sign-out"
    );
    let log = gw.proc.plain_stderr();
    assert!(
        log.contains("event=\"portal_logout\"") && log.contains("outcome=\"done\""),
        "{log}"
    );
}

#[test]
fn a_logout_the_portal_refuses_is_retried_logged_and_alerted() {
    // The shipped profile logs out by GET; this portal wants a POST with a token.
    let portal = start_portal_with(&["--strict-logout"]);
    let (gw, _dir) = gateway(&portal, None, "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    assert_eq!(sign_out(&gw, &cookie).status, 303);
    assert_eq!(
        portal_sessions(&portal),
        1,
        "the portal refused the GET logout"
    );
    let log = gw.proc.plain_stderr();
    assert!(log.contains("outcome=\"failed\""), "{log}");
    assert!(log.contains("answered the logout 405"), "{log}");
    assert!(log.contains("VIGIE-PORTAL-LOGOUT-FAILED"), "{log}");
    let metrics = get(gw.admin_port, "/metrics", "").text();
    assert!(
        metrics.contains("vigie_portal_logouts_total{portal=\"test\",result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[test]
fn revoking_or_locking_ends_the_portal_sessions_too() {
    let portal = start_portal_with(&["--strict-logout"]);
    let (gw, _dir) = gateway(&portal, Some(STRICT_LOGOUT), "");
    let first = login(&gw, "dr.martin", "martin-demo");
    let _second = login(&gw, "dr.martin", "martin-demo");
    let other = login(&gw, "inf.durand", "durand-demo");
    assert_eq!(portal_sessions(&portal), 3);

    // The SOC revokes one session by its fingerprint.
    let listed = raw(gw.admin_port, format!("GET /api/sessions?user=dr.martin HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    let fp = listed["sessions"][0]["session"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = admin_post(
        &gw,
        &format!("/api/sessions/revoke?user=dr.martin&session={fp}"),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(
        portal_holds(&portal, 2),
        "a revoked session's portal session lives on"
    );

    // A lock ends the rest of the user's sessions, at the portal too; others' stay.
    let locked = admin_post(&gw, "/api/users/lock?user=dr.martin&reason=badge%20stolen");
    assert_eq!(locked.status, 200, "{}", locked.text());
    assert!(
        portal_holds(&portal, 1),
        "a locked user's portal session lives on"
    );
    let page = home(&gw, &other);
    assert_eq!(page.status, 200, "another user's session was ended");
    assert!(page.text().contains("inf.durand"));
    let stale = home(&gw, &first);
    assert_eq!(stale.status, 303);
}

#[test]
fn the_portals_own_logout_form_ends_both_sessions() {
    let portal = start_portal_with(&["--strict-logout"]);
    let (gw, _dir) = gateway(&portal, Some(STRICT_LOGOUT), "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    let page = home(&gw, &cookie);
    let text = page.text();
    let token = text
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the strict portal's logout form")
        .to_string();
    let form = format!("csrf_token={token}");
    let out = raw(gw.port, format!("POST /logout HTTP/1.1\r\nHost: portal.test\r\nCookie: {cookie}\r\nOrigin: http://portal.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}", form.len()).as_bytes()).unwrap();
    assert_eq!(out.status, 302, "{}", out.text());
    assert!(portal_holds(&portal, 0));
    assert!(out
        .headers_named("set-cookie")
        .iter()
        .any(|c| c.starts_with("vigie=;")));
    // The gateway finds the portal's session already ended: no second logout, no false alarm.
    let noted = || gw.proc.plain_stderr().contains("outcome=\"already_ended\"");
    assert!(soon(noted), "{}", gw.proc.plain_stderr());
    let log = gw.proc.plain_stderr();
    assert!(!log.contains("outcome=\"failed\""), "{log}");
    assert!(!log.contains("VIGIE-PORTAL-LOGOUT-FAILED"), "{log}");
}

#[test]
fn a_logout_the_portal_refused_still_ends_the_portal_session() {
    // A stale link (`GET /logout`) to a portal whose logout is a POST: the portal answers
    // 404 and ends nothing; the gateway's session ends, and it ends the portal's its way.
    let portal = start_portal_with(&["--strict-logout"]);
    let (gw, _dir) = gateway(&portal, Some(STRICT_LOGOUT), "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    let out = get(gw.port, "/logout", &format!("Cookie: {cookie}\r\n"));
    assert_eq!(out.status, 404, "{}", out.text());
    assert!(
        portal_holds(&portal, 0),
        "the portal session outlived the logout"
    );
    let after = home(&gw, &cookie);
    assert_eq!(after.status, 303, "the gateway session outlived the logout");
}

/// The PHP fixture's profile with its strict logout described (a POST with the token its
/// pages show).
fn strict_php_profile(dir: &std::path::Path) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(crate::prelogin::fixture("profile.toml")).unwrap();
    let old = "[logout]\npath = \"/index.php\"\nquery = \"logout=1\"\n";
    assert!(
        shipped.contains(old),
        "the fixture profile's [logout] moved"
    );
    let strict = r#"[logout]
path = "/index.php"
query = "logout=1"
method = "POST"

[logout.token]
field = "token"
page = "/index.php?m=home"
pattern = 'name="token" value="([0-9a-f]+)"'

[logout.success]
status = [302]
location = '^/index\.php$'
"#;
    let path = dir.join("php-strict.toml");
    std::fs::write(&path, shipped.replace(old, strict)).unwrap();
    path
}

fn strict_php() -> crate::prelogin::PhpPortal {
    crate::prelogin::start_php_env(true, 1, &[], &[("VIGIE_PHP_STRICT_LOGOUT", "1")])
}

fn php_gateway(php: &crate::prelogin::PhpPortal, profile: &std::path::Path) -> Gateway {
    let portal = format!(
        "[[portal]]\nname = \"php\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 3000\nprofile = \"{}\"\n",
        php.port,
        profile.display()
    );
    start_gateway_with(&portal, "")
}

/// Wait (a few seconds at most) until PHP holds `n` signed-in sessions.
fn php_holds(php: &crate::prelogin::PhpPortal, n: usize) -> bool {
    soon(|| php.signed_in_sessions() == n)
}

#[test]
fn a_real_php_portal_with_a_strict_logout_is_signed_out_on_sign_out_and_revoke() {
    let php = strict_php();
    assert_eq!(get(php.port, "/index.php?logout=1", "").status, 405);
    let dir = tempfile::tempdir().unwrap();
    let gw = php_gateway(&php, &strict_php_profile(dir.path()));
    let (c, resp) = crate::prelogin::sign_in(&gw, crate::prelogin::ALICE);
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert_eq!(php.signed_in_sessions(), 1, "PHP holds alice's session");
    let cookie = c.cookie.clone().unwrap();
    assert_eq!(sign_out(&gw, &cookie).status, 303);
    assert_eq!(php.signed_in_sessions(), 0, "PHP still holds the session");

    // The SOC revokes the next one.
    let (_c, resp) = crate::prelogin::sign_in(&gw, crate::prelogin::ALICE);
    assert_eq!(resp.status, 302);
    assert_eq!(php.signed_in_sessions(), 1);
    let revoked = admin_post(&gw, "/api/sessions/revoke?user=alice");
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert!(php_holds(&php, 0), "PHP still holds a revoked session");
    assert!(
        !gw.proc.plain_stderr().contains("outcome=\"failed\""),
        "{}",
        gw.proc.plain_stderr()
    );
}

#[test]
fn a_login_refused_for_another_users_portal_session_leaves_no_session_at_php() {
    // threat model 38: carol's password opens alice's session at the portal; the gateway
    // refuses the login, and the portal session it opened is logged out, not left behind.
    let php = strict_php();
    let dir = tempfile::tempdir().unwrap();
    let gw = php_gateway(&php, &strict_php_profile(dir.path()));
    let (_c, resp) = crate::prelogin::sign_in(&gw, "login=1&username=carol&password=carol-pw");
    assert_eq!(resp.header("location"), Some("/.vigie/signin-failed"));
    assert!(
        php_holds(&php, 0),
        "the refused login's portal session lives on"
    );
}
