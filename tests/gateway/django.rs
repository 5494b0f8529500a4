//! A real Django 5 admin behind the gateway, with the shipped `django-admin` profile: the
//! portal the logout problem was found on (its logout is a POST with a CSRF token; a GET gets
//! 405). Django itself is asked how many sessions it holds.

use std::process::{Child, Command, Stdio};

use crate::common::*;

struct Django {
    port: u16,
    db: std::path::PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django-portal/portal.py")
}

fn start_django() -> Django {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    let setup = Command::new("python3")
        .arg(script())
        .args(["setup", db.to_str().unwrap()])
        .output()
        .expect("python3 with Django 5 (scripts/install-deps)");
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let port = free_port();
    let child = Command::new("python3")
        .arg(script())
        .args(["serve", db.to_str().unwrap(), &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    Django {
        port,
        db,
        child,
        _dir: dir,
    }
}

impl Django {
    /// The sessions Django holds (signed-in ones: nothing opens one before login).
    fn sessions(&self) -> u64 {
        let out = Command::new("python3")
            .arg(script())
            .args(["sessions", self.db.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

/// Sign in through the gateway with Django's own form; the gateway cookie.
fn sign_in(gw: &Gateway) -> String {
    let host = "portal.test";
    let page = get(gw.port, "/admin/login/?next=/admin/", "");
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf_cookie = crate::passthrough::cookie_set(&page, "csrftoken").expect("csrftoken");
    let text = page.text();
    let token = text
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the login form's token");
    let form =
        format!("csrfmiddlewaretoken={token}&username=alice&password=alice-pw&next=%2Fadmin%2F");
    let resp = raw(gw.port, format!(
        "POST /admin/login/?next=/admin/ HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nCookie: {csrf_cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    ).as_bytes()).unwrap();
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert_eq!(crate::passthrough::cookie_set(&resp, "sessionid"), None);
    crate::passthrough::cookie_set(&resp, "vigie").expect("gateway cookie")
}

#[test]
fn signing_out_ends_the_django_session_with_its_csrf_token() {
    let django = start_django();
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/django-admin.toml");
    let portal = format!(
        "[[portal]]\nname = \"django\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 5000\nprofile = \"{}\"\n",
        django.port,
        profile.display()
    );
    let gw = start_gateway_with(&portal, "[detection]\nenabled = false\n");
    let cookie = sign_in(&gw);
    let host = "portal.test";
    let admin = get(gw.port, "/admin/", &format!("Cookie: {cookie}\r\n"));
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert!(admin.text().contains("Site administration"));
    assert_eq!(django.sessions(), 1);

    let out = raw(gw.port, format!("POST /.vigie/logout HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nSec-Fetch-Site: same-origin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(out.status, 303);
    assert_eq!(
        django.sessions(),
        0,
        "Django still holds the session: {}",
        gw.proc.stderr()
    );

    // The SOC revokes the next one: Django's session ends too.
    let _again = sign_in(&gw);
    assert_eq!(django.sessions(), 1);
    let revoke = format!("POST /api/sessions/revoke?user=alice HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(raw(gw.admin_port, revoke.as_bytes()).unwrap().status, 200);
    let started = std::time::Instant::now();
    while django.sessions() != 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "a revoked session lives on at Django: {}",
            gw.proc.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
