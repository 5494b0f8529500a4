//! Portal-login interception and the cookie vault against the real sample portal
//! (threat model 8, 9, 10, 11, 12, 15, 26).

use std::time::Duration;

use crate::common::*;
use crate::passthrough::{cookie_set, csrf_token, submit_login};

const PATIENT: &str = "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=17";

/// The gateway sees nobody: a portal page gets the pre-login wall (threat model 36), a
/// redirect to the login page, never the portal.
pub fn walled(resp: &Response) -> bool {
    resp.status == 303 && resp.header("location") == Some("/index.php")
}

/// Log in through the gateway; returns the gateway cookie (`vigie=…`).
fn login(gw: &Gateway, user: &str, password: &str) -> String {
    let resp = submit_login(gw.port, user, password, None);
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert_eq!(
        cookie_set(&resp, "mediboard_session"),
        None,
        "the portal's session cookie reached the browser"
    );
    let cookie = cookie_set(&resp, "vigie").expect("gateway session cookie");
    let set = resp
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("vigie="))
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    cookie
}

#[test]
fn the_portal_session_stays_in_the_vault() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    assert_eq!(portal_sessions(&portal), 1);

    // The gateway cookie alone opens the portal: the vaulted cookie is re-attached upstream.
    let page = get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("dr.martin") && page.text().contains("data-patient-id=\"17\""));
    assert!(page
        .headers_named("set-cookie")
        .iter()
        .all(|c| !c.starts_with("mediboard_session")));

    // Without it, the wall; and a portal cookie the browser sends is never the portal's key,
    // even one the portal knows (a session opened at the portal directly, or stolen).
    assert!(walled(&get(gw.port, PATIENT, "")));
    let direct = submit_login(portal.port, "inf.durand", "durand-demo", None);
    let real = cookie_set(&direct, "mediboard_session").expect("a portal session");
    let at_portal = get(portal.port, "/index.php", &format!("Cookie: {real}\r\n"));
    assert!(
        at_portal.text().contains("inf.durand"),
        "the cookie opens the portal directly: {}",
        at_portal.text()
    );
    assert!(walled(&get(
        gw.port,
        PATIENT,
        &format!("Cookie: {real}\r\n")
    )));
    // Where the wall lets a visitor through (the login page), the portal sees no session.
    let login_page = get(gw.port, "/index.php", &format!("Cookie: {real}\r\n"));
    assert_eq!(login_page.status, 200);
    assert!(
        !login_page.text().contains("inf.durand"),
        "a browser-supplied portal cookie reached the portal"
    );
    // With a session of the gateway, the vault's cookie is the one sent, not the browser's.
    let mixed = get(
        gw.port,
        "/index.php",
        &format!("Cookie: {cookie}; {real}\r\n"),
    );
    assert!(
        mixed.text().contains("dr.martin") && !mixed.text().contains("inf.durand"),
        "{}",
        mixed.text()
    );

    let metrics = get(gw.admin_port, "/metrics", "").text();
    assert!(
        metrics.contains("vigie_portal_logins_total{portal=\"test\",result=\"success\"} 1"),
        "{metrics}"
    );
}

#[test]
fn failed_logins_are_counted_and_give_no_session() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    for user in ["dr.martin", "nobody"] {
        let resp = submit_login(gw.port, user, "wrong", None);
        assert_eq!(resp.status, 303);
        assert_eq!(resp.header("location"), Some("/.vigie/signin-failed"));
        assert!(
            !resp.text().contains("Connexion"),
            "the portal's answer never reaches the browser"
        );
        assert_eq!(cookie_set(&resp, "vigie").as_deref(), Some("vigie="));
    }
    let failures = "vigie_portal_logins_total{portal=\"test\",result=\"failure\"} 2";
    let metrics = metrics_with(gw.admin_port, &[failures]);
    assert!(metrics.contains(failures), "{metrics}");
    // Each refusal is in the audit trail, as a failure, under the name typed.
    let trail = crate::audit::trail_when(gw.admin_port, "event=login", |e| {
        crate::audit::by_all(e, &["dr.martin", "nobody"])
    });
    for user in ["dr.martin", "nobody"] {
        let entry = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user"] == user)
            .unwrap();
        assert_eq!(entry["fields"]["outcome"], "failure", "{entry}");
    }
    let log = gw.proc.stderr();
    assert!(!log.contains("wrong"), "a password reached the log");
}

#[test]
fn portal_logout_link_ends_both_sessions() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let cookie = login(&gw, "inf.durand", "durand-demo");
    let out = get(
        gw.port,
        "/index.php?logout=-1",
        &format!("Cookie: {cookie}\r\n"),
    );
    assert_eq!(out.status, 302);
    assert!(out
        .headers_named("set-cookie")
        .iter()
        .any(|c| c.starts_with("vigie=;") && c.contains("Max-Age=0")));
    // The portal's answer to its logout (it clears or replaces its session cookie) goes to the
    // vault, not to the browser: the browser never holds a portal session cookie.
    let portal_cookies: Vec<&str> = out
        .headers_named("set-cookie")
        .into_iter()
        .filter(|c| c.starts_with("mediboard_session"))
        .collect();
    assert!(portal_cookies.is_empty(), "{portal_cookies:?}");
    assert_eq!(
        portal_sessions(&portal),
        0,
        "the portal session was not ended"
    );
    let after = get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert!(walled(&after), "the old gateway cookie still works");
}

#[test]
fn a_logout_the_profile_does_not_spell_still_ends_both_sessions() {
    // The profile names `?logout=-1`; the portal, as PHP's `isset`, takes any value. What the
    // portal did (it deleted its session cookie) ends the gateway's session, whatever the
    // request looked like: otherwise it stays signed in with an empty vault.
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    for spelling in ["?logout=1", "?logout", "?m=dPpatients&logout=0"] {
        let cookie = login(&gw, "inf.durand", "durand-demo");
        let out = get(
            gw.port,
            &format!("/index.php{spelling}"),
            &format!("Cookie: {cookie}\r\n"),
        );
        assert!(
            out.headers_named("set-cookie")
                .iter()
                .any(|c| c.starts_with("vigie=;") && c.contains("Max-Age=0")),
            "{spelling}: the gateway cookie stays: {:?}",
            out.headers
        );
        let after = get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
        assert!(
            walled(&after),
            "{spelling}: the old gateway cookie still works"
        );
        assert_eq!(portal_sessions(&portal), 0, "{spelling}");
    }
    let log = gw.proc.wait_for_log("portal_session_ended");
    let ended: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("portal_session_ended"))
        .collect();
    assert_eq!(ended.len(), 3, "{ended:?}");
    assert!(
        ended.iter().all(|l| l.contains("user=\"inf.durand\"")),
        "{ended:?}"
    );
    // A page that only refreshes the portal's cookie ends nothing.
    let cookie = login(&gw, "inf.durand", "durand-demo");
    let page = get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(!walled(&get(
        gw.port,
        PATIENT,
        &format!("Cookie: {cookie}\r\n")
    )));
}

#[test]
fn gateway_logout_is_a_same_origin_post_ending_both_sessions() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    let post = |headers: &str| {
        raw(gw.port, format!("POST /.vigie/logout HTTP/1.1\r\nHost: portal.test\r\nCookie: {cookie}\r\n{headers}Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).unwrap()
    };
    assert_eq!(post("Origin: https://evil.example\r\n").status, 403);
    assert_eq!(post("Sec-Fetch-Site: cross-site\r\n").status, 403);
    assert_eq!(post("").status, 403, "no origin information");
    assert_eq!(
        get(gw.port, "/.vigie/logout", &format!("Cookie: {cookie}\r\n")).status,
        405
    );
    assert_eq!(
        portal_sessions(&portal),
        1,
        "refused logouts changed nothing"
    );

    let out = post("Sec-Fetch-Site: same-origin\r\n");
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/"));
    assert!(out
        .headers_named("set-cookie")
        .iter()
        .any(|c| c.contains("Max-Age=0")));
    assert_eq!(
        portal_sessions(&portal),
        0,
        "the portal session was not ended"
    );
    assert!(walled(&get(
        gw.port,
        PATIENT,
        &format!("Cookie: {cookie}\r\n")
    )));
}

#[test]
fn malformed_or_duplicated_gateway_cookies_mean_no_session() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    let token = cookie.trim_start_matches("vigie=");
    for bad in [
        format!("{cookie}; {cookie}"),
        "vigie".to_string(),
        format!("vigie={}x", token),
        format!("vigie={}", "A".repeat(5000)),
        format!("VIGIE={token}"),
    ] {
        let page = get(gw.port, PATIENT, &format!("Cookie: {bad}\r\n"));
        assert!(walled(&page), "{bad:.60} opened a session");
    }
    // Non-UTF-8 bytes in the cookie header.
    let resp = raw(
        gw.port,
        [
            b"GET / HTTP/1.1\r\nHost: p\r\nCookie: vigie=\xff\xfe\r\nConnection: close\r\n\r\n"
                .as_slice(),
        ]
        .concat()
        .as_slice(),
    )
    .unwrap();
    assert!(resp.status < 500);
}

#[test]
fn a_new_session_id_at_every_login() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let first = login(&gw, "dr.martin", "martin-demo");
    // Log in again from the same browser, which still presents the first cookie: the first
    // session ends (threat model 38), and the new login starts over.
    let resp = submit_login(gw.port, "admin", "admin-demo", Some(&first));
    assert_eq!(resp.status, 409, "{}", resp.text());
    assert!(
        walled(&get(gw.port, PATIENT, &format!("Cookie: {first}\r\n"))),
        "the replaced session survived"
    );
    let second = login(&gw, "admin", "admin-demo");
    assert_ne!(first, second);
    assert!(get(gw.port, PATIENT, &format!("Cookie: {second}\r\n"))
        .text()
        .contains("admin"));
}

#[test]
fn the_gateway_cookie_and_browser_portal_cookies_never_reach_the_portal() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_profiled_gateway(echo.port, "sample-portal.toml", "");
    // Before login only the profile's pre-login cookies pass (the CSRF cookie).
    let resp = get(
        gw.port,
        "/index.php",
        "Cookie: vigie=abc; lang=fr; mediboard_session=forged; mediboard_csrf=t; __Host-vigie=def\r\n",
    );
    let head = resp.text().to_ascii_lowercase();
    assert!(head.contains("cookie: mediboard_csrf=t\r\n"), "{head}");
    assert!(
        !head.contains("vigie") && !head.contains("forged"),
        "{head}"
    );
}

#[test]
fn mediboard_alternate_credential_entry_points_are_refused() {
    let echo = Echo::start(Duration::ZERO);
    let gw = start_profiled_gateway(echo.port, "mediboard.toml", "");
    for target in [
        "/index.php?login=admin:secret",
        "/index.php?m=x&TOKEN=abc",
        "/index.php?ldap_guid=1",
        "/index.php?%6Cogin=admin:x",
    ] {
        let resp = get(gw.port, target, "");
        assert_eq!(resp.status, 403, "{target}");
    }
    assert_eq!(
        get(
            gw.port,
            "/index.php",
            "Authorization: Basic YWRtaW46c2VjcmV0\r\n"
        )
        .status,
        403
    );
    assert!(echo.requests().is_empty(), "{:?}", echo.requests());
    // An ordinary parameter is not a credential: not refused, only walled before login.
    assert!(walled(&get(gw.port, "/index.php?m=dPpatients", "")));
}

fn vigie_session(gw: &Gateway, args: &[&str]) -> (bool, serde_json::Value) {
    let out = std::process::Command::new(VIGIE)
        .arg("session")
        .args(args)
        .arg("-c")
        .arg(&gw.config)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

#[test]
fn admins_list_and_revoke_sessions_through_the_admin_api() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let (first, second) = (
        login(&gw, "dr.martin", "martin-demo"),
        login(&gw, "dr.martin", "martin-demo"),
    );
    let other = login(&gw, "admin", "admin-demo");
    let alive = |c: &str| !walled(&get(gw.port, PATIENT, &format!("Cookie: {c}\r\n")));

    let (ok, listed) = vigie_session(&gw, &["list", "--user", "dr.martin"]);
    assert!(ok);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions
        .iter()
        .all(|s| s["level"] == "password" && s["client_ip"] == "127.0.0.1"));

    // The API needs the bearer token.
    let denied = raw(gw.admin_port, b"POST /api/sessions/revoke?user=dr.martin HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(denied.status, 401);
    assert!(alive(&first) && alive(&second));

    // Revoke one session by fingerprint: which one is not known to the test, so check both ways.
    let fp = sessions[0]["session"].as_str().unwrap();
    let (ok, one) = vigie_session(&gw, &["revoke", "--user", "dr.martin", "--session", fp]);
    assert!(ok && one["revoked"] == 1, "{one}");
    assert_eq!(
        [alive(&first), alive(&second)]
            .iter()
            .filter(|a| **a)
            .count(),
        1
    );

    let (ok, all) = vigie_session(&gw, &["revoke", "--user", "dr.martin"]);
    assert!(ok && all["revoked"] == 1, "{all}");
    assert!(!alive(&first) && !alive(&second));
    assert!(alive(&other), "another user's session was touched");
    gw.proc.wait_for_log("sessions_revoked");
}

#[test]
fn a_portal_session_opened_before_login_is_vaulted_too() {
    // PHP-style portal: the session cookie comes with the login page and holds the CSRF token.
    let portal = start_portal_with(&["--session-before-login"]);
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let page = get(gw.port, "/index.php", "");
    assert_eq!(
        cookie_set(&page, "mediboard_session"),
        None,
        "the pre-login portal cookie reached the browser"
    );
    let pre_login = cookie_set(&page, "vigie").expect("a pre-login gateway session holds it");
    let token = csrf_token(&page);
    let form = format!("login=1&csrf_token={token}&username=dr.martin&password=martin-demo");
    let post = |cookie: &str| {
        raw(gw.port, format!("POST /index.php HTTP/1.1\r\nHost: p\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}", form.len()).as_bytes()).unwrap()
    };
    // Without the gateway cookie the portal does not see its pre-login session: CSRF fails,
    // and the gateway shows its own refusal instead of the portal's answer.
    let refused = post("");
    assert_eq!(refused.header("location"), Some("/.vigie/signin-failed"));
    let ok = post(&format!("Cookie: {pre_login}\r\n"));
    assert_eq!(ok.status, 302, "{}", ok.text());
    assert_eq!(cookie_set(&ok, "mediboard_session"), None);
    let session = cookie_set(&ok, "vigie").unwrap();
    assert_ne!(session, pre_login, "the session id must change at login");
    assert!(get(gw.port, PATIENT, &format!("Cookie: {session}\r\n"))
        .text()
        .contains("dr.martin"));
    assert!(
        walled(&get(gw.port, PATIENT, &format!("Cookie: {pre_login}\r\n"))),
        "the pre-login session survived"
    );
}

/// A portal that answers a pre-login visitor with a new session id (it restarted and forgot
/// the old one, or took a login the gateway did not see) did not get that session from the
/// gateway: the new portal session is dropped unseen and the pre-login session ends.
#[test]
fn a_pre_login_session_the_portal_replaces_ends() {
    let mut portal = start_portal_with(&["--session-before-login"]);
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let page = get(gw.port, "/index.php", "");
    let pre_login = cookie_set(&page, "vigie").expect("a pre-login session");
    let with_it = format!("Cookie: {pre_login}\r\n");
    let again = get(gw.port, "/index.php", &with_it);
    assert_eq!(cookie_set(&again, "vigie"), None, "the same session, kept");
    portal.restart();
    let replaced = get(gw.port, "/index.php", &with_it);
    assert_eq!(replaced.status, 200);
    assert_eq!(cookie_set(&replaced, "mediboard_session"), None);
    assert_eq!(cookie_set(&replaced, "vigie").as_deref(), Some("vigie="));
    assert!(gw.proc.stderr().contains("pre_login_session_replaced"));
    // The old cookie names nothing now: the next page opens a new pre-login session.
    let fresh = get(gw.port, "/index.php", &with_it);
    let new = cookie_set(&fresh, "vigie").expect("a new pre-login session");
    assert!(new != pre_login && new != "vigie=", "{new}");
}

fn vigie_user(gw: &Gateway, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(VIGIE)
        .arg("user")
        .args(args)
        .arg("-c")
        .arg(&gw.config)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_locked_account_loses_its_sessions_and_cannot_log_in_until_unlocked() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let cookie = login(&gw, "dr.martin", "martin-demo");
    let (ok, said) = vigie_user(
        &gw,
        &["lock", "dr.martin", "--reason", "badge reported stolen"],
    );
    assert!(ok && said.contains("\"sessions_ended\":1"), "{said}");
    assert!(walled(&get(
        gw.port,
        PATIENT,
        &format!("Cookie: {cookie}\r\n")
    )));

    // The lock logs the portal session out in the background: wait for it, so the count
    // below moves only if the portal hears of the locked login.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while portal_sessions(&portal) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the locked user's portal session lives on"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The gateway refuses the login before the portal sees it, exactly as a wrong password
    // is refused: the answer says nothing of whether the password was right.
    let before = portal_sessions(&portal);
    let refused = submit_login(gw.port, "dr.martin", "martin-demo", None);
    let wrong = submit_login(gw.port, "dr.martin", "not-the-password", None);
    for r in [&refused, &wrong] {
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/.vigie/signin-failed"));
        assert_eq!(cookie_set(r, "vigie").as_deref(), Some("vigie="));
        assert_eq!(cookie_set(r, "mediboard_session"), None);
    }
    assert_eq!(
        portal_sessions(&portal),
        before,
        "the portal saw the locked login"
    );
    // Other users are unaffected; IT lifts the lock after an in-person identity check.
    login(&gw, "inf.durand", "durand-demo");
    let (ok, said) = vigie_user(&gw, &["unlock", "dr.martin"]);
    assert!(ok && said.contains("\"unlocked\":true"), "{said}");
    login(&gw, "dr.martin", "martin-demo");
    gw.proc.wait_for_log("account_locked");
    gw.proc.wait_for_log("account_unlocked");
}

#[test]
fn a_lock_holds_for_every_spelling_the_portal_s_collation_takes_as_one() {
    // threat model 39: the sample portal's profile, declared with Mediboard's collation. IT
    // locks `DR.Martin ` (as the help desk typed it); the login as `dr.martin` is refused.
    let portal = start_portal();
    let dir = tempfile::tempdir().unwrap();
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let text = std::fs::read_to_string(shipped).unwrap().replace(
        "marker_field = \"login\"\n",
        "marker_field = \"login\"\ncollation = \"utf8mb4_general_ci\"\n",
    );
    assert!(text.contains("collation"));
    let profile = dir.path().join("sample-general-ci.toml");
    std::fs::write(&profile, text).unwrap();
    let gw = start_gateway_with(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
            portal.port,
            profile.display()
        ),
        "",
    );
    let (ok, said) = vigie_user(&gw, &["lock", "DR.Martin ", "--reason", "test"]);
    assert!(ok && said.contains("\"user\":\"dr.martin\""), "{said}");
    let refused = submit_login(gw.port, "dr.martin", "martin-demo", None);
    assert_eq!(
        refused.header("location"),
        Some("/.vigie/signin-failed"),
        "a variant spelling escaped the lock"
    );
}

/// Threat model 32: a restart of a single gateway (an upgrade, a renewed certificate) signs
/// nobody out, and brings back no session that ended before it.
#[test]
fn a_restart_keeps_signed_in_sessions_and_brings_back_no_ended_one() {
    let portal = start_portal();
    let mut gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let kept = login(&gw, "dr.martin", "martin-demo");
    let ended = login(&gw, "inf.durand", "durand-demo");
    let out = raw(gw.port, format!("POST /.vigie/logout HTTP/1.1\r\nHost: portal.test\r\nCookie: {ended}\r\nSec-Fetch-Site: same-origin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(out.status, 303);

    // Another process (an IT command, a backup) opening and closing the database while the
    // gateway runs must not cost the gateway what it writes next.
    let db = gw.config.with_file_name("vigie.sqlite");
    let other = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = other
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "the signed-in session is in the file");
    drop(other);
    let late = login(&gw, "sec.bernard", "bernard-demo");

    gw.restart();
    let page = get(
        gw.port,
        &format!("{PATIENT}&late=1"),
        &format!("Cookie: {late}\r\n"),
    );
    assert_eq!(
        page.status,
        200,
        "written after the other process left: {}",
        page.text()
    );
    let page = get(gw.port, PATIENT, &format!("Cookie: {kept}\r\n"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("dr.martin") && page.text().contains("data-patient-id=\"17\""),
        "the portal session came back from the vault"
    );
    assert!(walled(&get(
        gw.port,
        PATIENT,
        &format!("Cookie: {ended}\r\n")
    )));
    assert!(
        gw.proc
            .stderr()
            .contains("signed-in sessions kept from the last run"),
        "{}",
        gw.proc.stderr()
    );
}
