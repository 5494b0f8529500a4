//! A body the gateway refuses never reaches the portal, not even the request's head: the
//! portal would run its script with an empty body (threat model 36). Counted by the sample
//! portal itself, on the head of every request other than GET and HEAD.

use crate::common::*;
use crate::mfa::Client;
use crate::policy::{profiled_portal, NO_EXPORTS};

/// Requests other than GET and HEAD whose head reached the portal, and the form bytes it read.
pub fn heard(portal: &Portal) -> (u64, u64) {
    let s: serde_json::Value =
        serde_json::from_slice(&get(portal.port, "/status", "").body).unwrap();
    (
        s["posts"].as_u64().unwrap(),
        s["form_bytes"].as_u64().unwrap(),
    )
}

#[test]
fn a_refused_body_never_reaches_the_portal_not_even_its_head() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, NO_EXPORTS), "");
    let start = heard(&portal);

    // Before login: a login form with a field the profile does not know.
    let body = "login=1&username=nobody&password=x&zzz=1";
    let req = format!(
        "POST /index.php HTTP/1.1\r\nHost: localhost:{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        gw.port,
        body.len()
    );
    let refused = raw(gw.port, req.as_bytes()).expect("an answer");
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(
        heard(&portal),
        start,
        "the refused login reached the portal"
    );
    // The same, empty; declared larger than any login; asking for a go-ahead (which the
    // gateway gives itself, then reads and refuses); with an expectation nobody meets.
    let login = |headers: &str, body: &str| {
        let req = format!(
            "POST /index.php HTTP/1.1\r\nHost: localhost:{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n{headers}Connection: close\r\n\r\n{body}",
            gw.port
        );
        raw(gw.port, req.as_bytes()).expect("an answer")
    };
    assert_eq!(login("Content-Length: 0\r\n", "").status, 400);
    // Asking for an upgrade changes nothing: the gateway forwards none.
    let upgrade = login("Content-Length: 0\r\nUpgrade: foo\r\n", "");
    assert_eq!(upgrade.status, 400, "{}", upgrade.text());
    let large = login("Content-Length: 65537\r\n", "");
    assert_eq!(large.status, 413, "{}", large.text());
    let cl = format!("Content-Length: {}\r\n", body.len());
    let mut conn = Conn::open(gw.port);
    conn.send(
        format!(
            "POST /index.php HTTP/1.1\r\nHost: localhost:{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\n{cl}Expect: 100-continue\r\n\r\n",
            gw.port
        )
        .as_bytes(),
    );
    let go_ahead = conn.read_response().expect("a go-ahead");
    assert_eq!(go_ahead.status, 100);
    conn.send(body.as_bytes());
    assert_eq!(conn.read_response().expect("an answer").status, 400);
    let odd = login(&format!("{cl}Expect: x\r\n"), body);
    assert_eq!(odd.status, 417, "{}", odd.text());
    assert_eq!(heard(&portal), start, "a refused login reached the portal");

    // Signed in (the login itself reached the portal, whole): a form a rule denies.
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    let (bodies, bytes) = heard(&portal);
    assert_eq!(bodies, start.0 + 1, "the login");
    assert!(bytes > start.1, "the login's body");
    let denied = c.post_form(
        "/index.php?m=dPpatients",
        &[("raw", "ajax_export_patients_csv")],
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    assert_eq!(
        heard(&portal),
        (bodies, bytes),
        "the denied form reached the portal"
    );

    // Another form goes on, whole: read first, then replayed to the portal (which answers
    // for itself: the sample portal takes every POST for its login form).
    let ok = c.post_form("/index.php?m=dPpatients", &[("note", "ok")]);
    assert!(ok.text().contains("Jeton CSRF invalide"), "{}", ok.text());
    let (bodies, bytes) = (bodies + 1, bytes + "note=ok".len() as u64);
    assert_eq!(heard(&portal), (bodies, bytes), "the allowed form, whole");
    // After a go-ahead too, given by the gateway (the portal is not asked for another).
    let mut conn = Conn::open(gw.port);
    conn.send(
        format!(
            "POST /index.php?m=dPpatients HTTP/1.1\r\nHost: localhost:{}\r\nCookie: {}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n",
            gw.port,
            c.cookie.as_deref().unwrap()
        )
        .as_bytes(),
    );
    assert_eq!(conn.read_response().expect("a go-ahead").status, 100);
    conn.send(b"note=ok");
    let ok = conn.read_response().expect("the portal's answer");
    assert!(ok.text().contains("Jeton CSRF invalide"), "{}", ok.text());
    let (bodies, bytes) = (bodies + 1, bytes + 7);
    assert_eq!(heard(&portal), (bodies, bytes), "after a go-ahead, whole");

    // Past 64 KiB (more than pingora replays) the body is only held back until judged: the
    // portal hears the head, then a closed connection, never the body (README, Policy).
    let large = format!("note={}&raw=ajax%5Fexport_patients_csv", "x".repeat(70_000));
    let denied = c.post(
        "/index.php?m=dPpatients",
        "application/x-www-form-urlencoded",
        &large,
    );
    assert_eq!(denied.status, 403, "{}", denied.text());
    // (The head may be there or not: the portal's connection is cut as the verdict comes.)
    let (heads, read) = heard(&portal);
    assert!(
        heads <= bodies + 1 && read == bytes,
        "past 64 KiB: {heads} {read}"
    );
    let bodies = heads;

    // A login posted over a signed-in session ends it, and the portal hears nothing of it.
    let over = c.post_form(
        "/index.php",
        &[
            ("login", "1"),
            ("username", "admin"),
            ("password", "admin-demo"),
        ],
    );
    assert_eq!(over.status, 409, "{}", over.text());
    assert_eq!(heard(&portal), (bodies, bytes), "the login over a session");
}

/// A `multipart/form-data` body of `(name, filename, content)` parts, and its content type.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        let file = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        body.extend_from_slice(
            format!("--vigie\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--vigie--\r\n");
    ("multipart/form-data; boundary=vigie".to_string(), body)
}

/// Post `body` as one signed-in browser would, written from another thread: the gateway may
/// answer (and close) before the upload ends. The answer, if one came.
/// Another user's login (admin's) posted as form parts ahead of `file`.
fn admin_login_ahead_of(file: &[u8]) -> (String, Vec<u8>) {
    multipart(&[
        ("login", None, b"1"),
        ("username", None, b"admin"),
        ("password", None, b"admin-demo"),
        ("scan", Some("scan.pdf"), file),
    ])
}

fn upload(c: &Client, target: &str, (content_type, body): (String, Vec<u8>)) -> Option<Response> {
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: localhost:{}\r\nCookie: {}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        c.port,
        c.cookie.as_deref().unwrap(),
        body.len()
    );
    let stream = std::net::TcpStream::connect(("127.0.0.1", c.port)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        use std::io::Write;
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let answer = Conn::from_stream(stream).read_response();
    let _ = sending.join();
    answer
}

/// What the portal has read, once it has stopped reading (nothing new for 300 ms).
fn settled(portal: &Portal) -> (u64, u64) {
    let mut last = heard(portal);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = heard(portal);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[test]
fn an_upload_past_the_hold_never_shows_the_portal_a_login_or_an_unjudged_parameter() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, NO_EXPORTS), "");
    let c = Client::login(gw.port, "dr.martin", "martin-demo");
    let file = vec![b'A'; 4_300_000];
    let tail = vec![b'B'; 300_000];
    const TARGET: &str = "/index.php?m=dPpatients&tab=vw_idx_patients";

    // A signed-in session posts another user's login ahead of a file larger than the gateway
    // holds back: under mod_php the portal would log that user in on this session's portal
    // cookie from the parts of the body it got, whatever the gateway answered at the end.
    let before = settled(&portal);
    let login = admin_login_ahead_of(&file);
    if let Some(refused) = upload(&c, TARGET, login) {
        assert_eq!(refused.status, 400, "{}", refused.text());
    }
    let after = settled(&portal);
    assert_eq!(after.1, before.1, "the login's bytes reached the portal");

    // A part a rule denies, after the first 4 MiB have gone on: the bytes that would show it
    // to the portal do not go.
    let note: &[u8] = b"x";
    let parts = |raw: Option<&'static [u8]>| {
        let mut p = vec![("note", None, note), ("scan", Some("scan.pdf"), &file[..])];
        p.extend(raw.map(|r| ("raw", None, r)));
        p.push(("scan2", Some("scan2.pdf"), &tail[..]));
        multipart(&p)
    };
    let denied = parts(Some(b"ajax_export_patients_csv"));
    let needle = b"ajax_export_patients_csv";
    let raw_end = denied
        .1
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len();
    let before = settled(&portal);
    if let Some(refused) = upload(&c, TARGET, denied) {
        assert_eq!(refused.status, 403, "{}", refused.text());
    }
    // (How much of what went before is read depends on when the portal's connection is cut.)
    let read = settled(&portal).1 - before.1;
    assert!(
        read < raw_end as u64,
        "the denied part reached the portal: {read} of {raw_end}"
    );

    // The same upload without it goes on whole.
    let allowed = parts(None);
    let len = allowed.1.len() as u64;
    let before = settled(&portal);
    let answer = upload(&c, TARGET, allowed).expect("the portal's answer");
    // (The portal answers for itself: the sample portal takes every POST for its login form.)
    assert!(
        answer.text().contains("Jeton CSRF invalide"),
        "{}",
        answer.text()
    );
    assert_eq!(
        settled(&portal).1 - before.1,
        len,
        "the allowed upload, whole"
    );
}

/// Red team (issue 21): forms the gateway would have taken for no form at all, so none of
/// their parameters met a rule, while the portal reads them. Refused on their head: measured
/// at the portal, which hears nothing of them.
#[test]
fn a_form_the_gateway_cannot_read_from_its_head_never_reaches_the_portal() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, NO_EXPORTS), "");
    let c = Client::login(gw.port, "dr.martin", "martin-demo");
    const TARGET: &str = "/index.php?m=dPpatients&tab=vw_idx_patients";
    let export: &[u8] = b"ajax_export_patients_csv";

    // Declared past PHP's post_max_size (8 MiB): PHP reads none of it, but a portal with a
    // larger limit (the sample portal has none) reads the login and the export in it.
    let file = vec![b'A'; 8_500_000];
    // Sent, the portal hears nothing of it, and the answer (if any came before the
    // connection closed) is a 413.
    let unheard = |form: (String, Vec<u8>), what: &str| {
        let before = settled(&portal);
        let refused = upload(&c, TARGET, form);
        assert_eq!(settled(&portal), before, "{what} reached the portal");
        if let Some(refused) = refused {
            assert_eq!(refused.status, 413, "{what}: {}", refused.text());
        }
    };
    for parts in [
        [("raw", None, export), ("scan", Some("scan.pdf"), &file[..])],
        [("scan", Some("scan.pdf"), &file[..]), ("raw", None, export)],
    ] {
        unheard(multipart(&parts), "the oversized form");
    }
    let signed_in = portal_sessions(&portal);
    let login = admin_login_ahead_of(&file);
    unheard(login, "the oversized login");
    assert_eq!(
        portal_sessions(&portal),
        signed_in,
        "the portal logged someone in"
    );

    // A content type the gateway cannot read as text, or two of them.
    let (_, body) = multipart(&[("raw", None, export)]);
    let post = |content_type: &[u8]| {
        let mut req = format!(
            "POST {TARGET} HTTP/1.1\r\nHost: localhost:{}\r\nCookie: {}\r\nSec-Fetch-Site: same-origin\r\n",
            c.port,
            c.cookie.as_deref().unwrap()
        )
        .into_bytes();
        req.extend_from_slice(content_type);
        req.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(&body);
        raw(c.port, &req).expect("an answer")
    };
    for content_type in [
        &b"Content-Type: multipart/form-data; boundary=vigie; charset=\xe9\r\n"[..],
        b"Content-Type: multipart/form-data; boundary=vig\xc3\xa9\r\n",
        b"Content-Type: text/plain\r\nContent-Type: multipart/form-data; boundary=vigie\r\n",
    ] {
        let before = settled(&portal);
        let refused = post(content_type);
        let shown = String::from_utf8_lossy(content_type);
        assert_eq!(settled(&portal), before, "{shown} reached the portal");
        assert_eq!(refused.status, 400, "{shown}: {}", refused.text());
    }
    // The same form with a content type the gateway reads meets the rule.
    let denied = post(b"Content-Type: multipart/form-data; boundary=vigie\r\n");
    assert_eq!(denied.status, 403, "{}", denied.text());
    gw.proc.wait_for_log("content_type_unreadable");
}
