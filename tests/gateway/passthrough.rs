//! The sample portal behind the gateway reads exactly as it does directly.

use crate::common::*;

/// Submit the portal's login form on `port` the way a browser does: fetch the form (CSRF
/// cookie + hidden token), post it with the cookies received plus `extra_cookie`. Returns the portal's (or
/// gateway's) answer to the POST.
pub fn submit_login(port: u16, user: &str, password: &str, extra_cookie: Option<&str>) -> Response {
    let page = get(port, "/index.php", "");
    assert_eq!(page.status, 200);
    let mut cookies: Vec<String> = page
        .headers_named("set-cookie")
        .into_iter()
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("mediboard_csrf=")),
        "login page sets its CSRF cookie"
    );
    if let Some(c) = extra_cookie {
        cookies.push(c.to_string());
    }
    let token = csrf_token(&page);
    let form = format!("login=1&csrf_token={token}&username={user}&password={password}");
    raw(
        port,
        format!(
            "POST /index.php HTTP/1.1\r\nHost: portal.test\r\nOrigin: http://portal.test\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            cookies.join("; "),
            form.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// The hidden CSRF token of the portal's login form.
pub fn csrf_token(page: &Response) -> String {
    let text = page.text();
    let after = text
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .expect("login form with a CSRF token");
    after.split('"').next().unwrap().to_string()
}

/// The `name=value` a response sets for cookie `name`, if any.
pub fn cookie_set(resp: &Response, name: &str) -> Option<String> {
    resp.headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// Log in to the portal directly or through a gateway without a profile; returns the
/// `Cookie:` value of the portal session.
pub fn portal_login(port: u16, user: &str, password: &str) -> String {
    let resp = submit_login(port, user, password, None);
    assert_eq!(resp.status, 302, "login refused: {}", resp.text());
    cookie_set(&resp, "mediboard_session").expect("portal sets its session cookie")
}

#[test]
fn patient_page_and_csv_export_read_the_same_through_the_gateway() {
    let portal = start_portal();
    let gw = start_gateway(portal.port, "");
    let session = portal_login(gw.port, "admin", "admin-demo");
    let cookie = format!("Cookie: {session}\r\n");

    let page = "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=17";
    let via = get(gw.port, page, &cookie);
    let direct = get(portal.port, page, &cookie);
    assert_eq!(via.status, 200);
    assert!(via.text().contains("data-patient-id=\"17\""));
    assert_eq!(via.body, direct.body);

    // The portal keeps the "current patient" in its session: a page without patient_id shows it.
    let current = get(
        gw.port,
        "/index.php?m=dPpatients&tab=vw_full_patients",
        &cookie,
    );
    assert!(
        current.text().contains("data-patient-id=\"17\""),
        "{}",
        current.text()
    );

    let export = "/index.php?m=dPpatients&raw=ajax_export_patients_csv";
    let via = get(gw.port, export, &cookie);
    let direct = get(portal.port, export, &cookie);
    assert_eq!(via.status, 200);
    assert_eq!(via.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(via
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(
        via.text().lines().count(),
        301,
        "header line + 300 patients"
    );
    assert_eq!(via.body, direct.body);
    assert!(via.header("x-request-id").is_some_and(|id| id.len() == 16));
}

#[test]
fn portal_login_rules_still_apply_through_the_gateway() {
    let portal = start_portal();
    let gw = start_gateway(portal.port, "");
    // Wrong password: the portal's own answer comes back (200 with an error message).
    let page = get(gw.port, "/index.php", "");
    let csrf = page.headers_named("set-cookie")[0]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = csrf_token(&page);
    let post = |form: String, cookie: &str| {
        raw(
            gw.port,
            format!("POST /index.php HTTP/1.1\r\nHost: p\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}", form.len()).as_bytes(),
        )
        .unwrap()
    };
    let bad = post(
        format!("login=1&csrf_token={token}&username=admin&password=wrong"),
        &format!("Cookie: {csrf}\r\n"),
    );
    assert_eq!(bad.status, 200);
    assert!(bad.text().contains("Identifiant ou mot de passe incorrect"));
    // Without the CSRF cookie the portal refuses the form.
    let no_csrf = post(
        format!("login=1&csrf_token={token}&username=admin&password=admin-demo"),
        "",
    );
    assert_eq!(no_csrf.status, 403);
    // A clinician is refused the admin export by the portal itself.
    let session = portal_login(gw.port, "inf.durand", "durand-demo");
    let export = get(
        gw.port,
        "/index.php?m=dPpatients&raw=ajax_export_patients_csv",
        &format!("Cookie: {session}\r\n"),
    );
    assert_eq!(export.status, 403);
}

#[test]
fn json_api_and_keep_alive_through_the_gateway() {
    let portal = start_portal();
    let gw = start_gateway(portal.port, "");
    let session = portal_login(gw.port, "dr.martin", "martin-demo");
    let mut conn = Conn::open(gw.port);
    for offset in [10, 20] {
        conn.send(format!("GET /api/dossierpatient/patients?offset={offset}&limit=5 HTTP/1.1\r\nHost: p\r\nCookie: {session}\r\n\r\n").as_bytes());
        let resp = conn.read_response().expect("keep-alive response");
        assert_eq!(resp.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["patients"].as_array().unwrap().len(), 5);
        assert_eq!(v["patients"][0]["id"], offset + 1);
    }
    let anonymous = get(gw.port, "/api/dossierpatient/patients", "");
    assert_eq!(anonymous.status, 401);
}

#[test]
fn access_log_carries_no_patient_identifiers() {
    let portal = start_portal();
    let gw = start_gateway(portal.port, "");
    let session = portal_login(gw.port, "dr.martin", "martin-demo");
    let cookie = format!("Cookie: {session}\r\n");
    assert_eq!(
        get(
            gw.port,
            "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=4242",
            &cookie
        )
        .status,
        404
    );
    assert_eq!(
        get(gw.port, "/api/dossierpatient/patients/293", &cookie).status,
        200
    );
    // Access lines are written once each answer has gone: wait for both requests' lines.
    gw.proc.wait_for_log("path=/index.php status=404");
    let log = gw
        .proc
        .wait_for_log("path=/api/dossierpatient/patients/:id status=200");
    assert!(
        !log.contains("4242") && !log.contains("/293"),
        "patient id in the access log:\n{log}"
    );
    assert!(!log.contains("martin-demo"), "password in the log");
}
