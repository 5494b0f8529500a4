//! Policy, privileged accounts, break-glass and budgets end to end against the sample portal,
//! with a real Redis where replicas share budgets (threat model 26, 27).

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::detection::{admin_api, wait_for};
use crate::mfa::*;
use crate::passthrough::{cookie_set, csrf_token};

pub fn profiled_portal(portal: &Portal, rules: &str) -> String {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    format!(
        "{rules}\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
        portal.port,
        profile.display()
    )
}

/// Post a hand-made login form (with the page's CSRF token and cookie).
fn post_login_form(port: u16, form: impl Fn(&str) -> String) -> Response {
    let page = get(port, "/index.php", "");
    let cookies: Vec<String> = page
        .headers_named("set-cookie")
        .into_iter()
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    let body = form(&csrf_token(&page));
    raw(
        port,
        format!(
            "POST /index.php HTTP/1.1\r\nHost: portal.test\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            cookies.join("; "),
            body.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

#[test]
fn a_login_the_gateway_cannot_read_never_reaches_the_portal() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    // Without the marker the portal would still log the user in, behind the gateway's back.
    let unmarked = post_login_form(gw.port, |csrf| {
        format!("csrf_token={csrf}&username=dr.martin&password=martin-demo")
    });
    assert_eq!(unmarked.status, 400, "{}", unmarked.text());
    // Two names: the portal reads one, the gateway would record the other.
    let twice = post_login_form(gw.port, |csrf| {
        format!(
            "login=1&csrf_token={csrf}&username=inf.durand&username=dr.martin&password=martin-demo"
        )
    });
    assert_eq!(twice.status, 400);
    assert_eq!(cookie_set(&twice, "mediboard_session"), None);
    assert_eq!(portal_sessions(&portal), 0, "the portal logged nobody in");
    // PHP reads ` username` as `username` (the last one wins): still two names.
    let folded = post_login_form(gw.port, |csrf| {
        format!("login=1&csrf_token={csrf}&username=inf.durand&password=x&+username=dr.martin&+password=martin-demo")
    });
    assert_eq!(folded.status, 400, "{}", folded.text());
    // A multipart body naming the password field is not read, so it is not let through.
    let boundary = "vigieXboundary";
    let multipart = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"login\"\r\n\r\n1\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\ndr.martin\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nmartin-demo\r\n--{boundary}--\r\n");
    let resp = raw(
        gw.port,
        format!("POST /index.php HTTP/1.1\r\nHost: portal.test\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{multipart}", multipart.len()).as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(portal_sessions(&portal), 0, "the portal logged nobody in");
    // The same name twice is one clear login.
    let same = post_login_form(gw.port, |csrf| {
        format!(
            "login=1&csrf_token={csrf}&username=dr.martin&username=dr.martin&password=martin-demo"
        )
    });
    assert_eq!(same.status, 302, "{}", same.text());
    let mut c = Client::new(gw.port);
    c.cookie = cookie_set(&same, "vigie");
    assert_eq!(
        c.get(PATIENT).status,
        303,
        "and it still needs the second factor"
    );
}

/// Budgets alone: the detector would hold an admin exporting the whole patient list
/// (that is tested in `detection.rs`), which is not what these tests are about.
const TIGHT_BUDGETS: &str = "[detection]\nenabled = false\n[budgets.login]\nrequests = 100000\nper = \"minute\"\n[budgets.source]\nrequests = 1000000\nper = \"minute\"\n[budgets.view]\nrequests = 100000\nper = \"minute\"\n[budgets.export]\nrequests = 2\nper = \"hour\"\nburst = 2\n";

fn export(port: u16, cookie: &str) -> Response {
    get(port, EXPORT, &format!("Cookie: {cookie}\r\n"))
}

#[test]
fn a_budget_holds_across_replicas_and_restarts_with_retry_after() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let extra = format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nsession_key_file = \"{}\"\nreplicas = 2\n{TIGHT_BUDGETS}",
        redis.url(),
        key.display()
    );
    let portals = profiled_portal(&portal, "");
    let a = start_gateway_with(&portals, &extra);
    let b = start_gateway_with(&portals, &extra);
    let login = crate::passthrough::submit_login(a.port, "admin", "admin-demo", None);
    let cookie = cookie_set(&login, "vigie").unwrap();
    assert_eq!(export(a.port, &cookie).status, 200);
    assert_eq!(
        export(b.port, &cookie).status,
        200,
        "one budget, two replicas"
    );
    let third = export(a.port, &cookie);
    assert_eq!(third.status, 429);
    let wait: u64 = third.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1790..=1800).contains(&wait),
        "2 per hour: the next in half an hour, not {wait}"
    );
    assert!(page_text(&third).contains("Limite d'activité atteinte"));
    // Ordinary pages are another class: still open.
    assert_eq!(
        get(b.port, PATIENT, &format!("Cookie: {cookie}\r\n")).status,
        200
    );
    // A restarted replica finds the same budget in Redis.
    drop(a);
    let a2 = start_gateway_with(&portals, &extra);
    assert_eq!(
        export(a2.port, &cookie).status,
        429,
        "a restart does not reset a budget"
    );
    assert!(metrics_with(
        a2.admin_port,
        &["vigie_budget_rejections_total{class=\"export\"} 1"]
    )
    .contains("vigie_budget_rejections_total{class=\"export\"} 1"));
}

#[test]
fn the_embedded_budget_counts_exactly() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, ""), TIGHT_BUDGETS);
    let login = crate::passthrough::submit_login(gw.port, "admin", "admin-demo", None);
    let cookie = cookie_set(&login, "vigie").unwrap();
    let statuses: Vec<u16> = (0..4).map(|_| export(gw.port, &cookie).status).collect();
    assert_eq!(statuses, vec![200, 200, 429, 429]);
}

#[test]
fn an_export_asked_in_a_form_body_is_slowed_like_one_in_the_url() {
    // The body phase refuses with the same page as the head: `Retry-After` and the quota's
    // words, not the generic error page.
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, ""), TIGHT_BUDGETS);
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    let form = [("raw", "ajax_export_patients_csv")];
    // (The sample portal reads every POST to index.php as its login form: it refuses these
    // itself; the gateway has counted them.)
    for _ in 0..2 {
        let r = c.post_form("/index.php?m=dPpatients", &form);
        assert_ne!(r.status, 429, "{}", r.text());
    }
    let third = c.post_form("/index.php?m=dPpatients", &form);
    assert_eq!(third.status, 429, "{}", third.text());
    let wait: u64 = third
        .header("retry-after")
        .expect("Retry-After on a body-phase 429")
        .parse()
        .unwrap();
    assert!((1790..=1800).contains(&wait), "{wait}");
    assert!(page_text(&third).contains("Limite d'activité atteinte"));
    // The refused form never reached the portal, not even its start: the body is held until
    // judged. Sent in two pieces, the verdict on the last byte.
    let before = crate::held_bodies::heard(&portal);
    let body = "raw=ajax_export_patients_csv&pad=xxxxxxxxxxxxxxxx";
    let head = format!(
        "POST /index.php?m=dPpatients HTTP/1.1\r\nHost: localhost:{}\r\nCookie: {}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        gw.port,
        c.cookie.as_deref().unwrap(),
        body.len()
    );
    let mut conn = Conn::open(gw.port);
    conn.send(head.as_bytes());
    conn.send(&body.as_bytes()[..body.len() - 1]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    conn.send(&body.as_bytes()[body.len() - 1..]);
    let split = conn.read_response().expect("an answer");
    assert_eq!(split.status, 429);
    // Neither its start nor its head: a body pingora can replay is read whole, and judged,
    // before the portal is contacted.
    assert_eq!(
        crate::held_bodies::heard(&portal),
        before,
        "the refused form reached the portal"
    );
    // The access line is written once the answer has left.
    gw.proc.wait_for_log("over_budget");
}

#[test]
fn privileged_accounts_get_their_pack_from_the_role_the_portal_shows() {
    let portal = start_portal();
    let pack = "[[privileged]]\nname = \"admins\"\ngroups = [\"admin\"]\nlevel = \"second_factor\"\nmax_sessions = 1\n";
    // A staged rollout: everyone else still gets in with the password alone.
    let gw = start_gateway_with(
        &profiled_portal(&portal, pack),
        "[second_factor]\nrequired = false\nenrollment = \"open\"\n",
    );
    let mut doctor = Client::login(gw.port, "dr.martin", "martin-demo");
    assert!(doctor.opens_patient());
    // The portal shows "Administrateur": the profile maps it to the admin group, whose
    // pack asks for a second factor.
    let mut first = Client::login(gw.port, "admin", "admin-demo");
    let wall = first.get(PATIENT);
    assert_eq!(wall.status, 303);
    assert!(location(&wall).starts_with("/.vigie/factor"));
    // Enrollment is open for the others, but the pack makes the admin privileged: only an
    // invitation binds a factor (the password alone could otherwise bind its own).
    let enroll = first.get("/.vigie/enroll");
    assert!(
        enroll.text().contains("name=\"invitation\""),
        "{}",
        enroll.text()
    );
    assert_eq!(first.get("/.vigie/enroll/totp").status, 303);
    let start = first.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 403, "{}", start.text());
    let mut doctor_enrolls = Client::login(gw.port, "dr.martin", "martin-demo");
    assert!(doctor_enrolls
        .get("/.vigie/enroll")
        .text()
        .contains("choose-totp"));
    let (secret, _) = enroll_totp(&mut first, Some(&invite(&gw, "admin")));
    assert!(first.opens_patient());
    // A password alone neither logs the admin out nor fills the cap…
    let mut second = Client::login(gw.port, "admin", "admin-demo");
    assert!(
        first.opens_patient(),
        "a password-only login does not count"
    );
    // …but a second full session ends the oldest.
    let ok = second.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&secret, 1)), ("return", PATIENT)],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(second.opens_patient());
    assert!(
        crate::sessions::walled(&first.get(PATIENT)),
        "the oldest session ended"
    );
    assert!(gw.proc.stderr().contains("session_cap"));
}

#[test]
fn a_privileged_cap_can_refuse_the_newcomer_instead() {
    let portal = start_portal();
    let refuse = "[[privileged]]\nname = \"admins\"\ngroups = [\"admin\"]\nlevel = \"second_factor\"\nmax_sessions = 1\non_excess = \"refuse\"\n";
    let gw = start_gateway_with(
        &profiled_portal(&portal, refuse),
        "[second_factor]\nenrollment = \"open\"\n",
    );
    let mut one = Client::login(gw.port, "admin", "admin-demo");
    let (secret, _) = enroll_totp(&mut one, Some(&invite(&gw, "admin")));
    let mut two = Client::login(gw.port, "admin", "admin-demo");
    let refused = two.post_form("/.vigie/factor/totp", &[("code", &code(&secret, 1))]);
    assert_eq!(refused.status, 409);
    assert!(page_text(&refused).contains("Trop de sessions ouvertes"));
    assert!(one.opens_patient(), "the first session is kept");
}

#[test]
fn break_glass_lifts_a_denial_with_a_fresh_passkey_a_reason_and_an_alert() {
    let portal = start_portal();
    let rule = "[[rule]]\nname = \"records-closed\"\npath = \"/index.php\"\nquery = { tab = \"vw_full_patients\" }\ndeny = true\nbreak_glass = true\n";
    let sink = tempfile::tempdir().unwrap();
    let jsonl = sink.path().join("siem.jsonl");
    let gw = start_gateway_with(
        &profiled_portal(&portal, rule),
        &format!(
            "[second_factor]\nenrollment = \"open\"\n[alerts]\njsonl = \"{}\"\n",
            jsonl.display()
        ),
    );
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    enroll_totp(&mut c, None);
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut c, &gw, &mut key).status, 200);

    let denied = c.get(PATIENT);
    assert_eq!(denied.status, 403);
    let text = page_text(&denied);
    assert!(
        text.contains("Accès refusé par la politique de sécurité"),
        "{text}"
    );
    let link = text
        .split("id=\"notice-link\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a break-glass link")
        .to_string();
    assert!(link.starts_with("/.vigie/break-glass?return="), "{link}");
    // A fresh passkey first: the TOTP session is sent to the prompt.
    let ask = c.get(&link);
    assert_eq!(ask.status, 303);
    assert!(location(&ask).starts_with("/.vigie/factor"));
    let mut answer = passkey_sign_in(&mut c, &gw, &mut key);
    answer["return"] = link.clone().into();
    let signed = c.post_json("/.vigie/passkey/auth/finish", &answer);
    assert_eq!(signed.status, 200, "{}", signed.text());
    let form = c.get(&link);
    assert_eq!(form.status, 200, "{}", form.text());
    assert!(form.text().contains("name=\"reason\""));
    let short = c.post_form(
        "/.vigie/break-glass",
        &[("reason", "urgent"), ("return", PATIENT)],
    );
    assert!(page_text(&short).contains("au moins 15 caractères"));
    let reason = "Arrêt cardiaque en salle 12, dossier requis";
    let on = c.post_form(
        "/.vigie/break-glass",
        &[("reason", reason), ("return", PATIENT)],
    );
    assert_eq!(on.status, 303, "{}", on.text());
    assert!(c.opens_patient(), "the denial is lifted");
    // The request's mark is written with its access line, once its answer has gone.
    let log = gw.proc.wait_for_log("break_glass_request");
    let alert = log
        .lines()
        .find(|l| l.contains("vigie::alert") && l.contains("break_glass"))
        .expect("an alert");
    assert!(alert.contains("high"), "{alert}");
    assert!(!log.contains("cardiaque"), "no free text in the logs");
    // The session list says there is a reason, not what it says: the review reads it through
    // /api/break-glass, which is audited (below).
    let sessions = get(
        gw.admin_port,
        "/api/sessions?user=dr.martin",
        &format!("Authorization: Bearer {ADMIN_TOKEN}\r\n"),
    );
    assert!(
        !sessions.text().contains("cardiaque"),
        "{}",
        sessions.text()
    );
    assert!(
        sessions.text().contains("\"break_glass_reason_chars\":43"),
        "{}",
        sessions.text()
    );
    assert!(log.contains("break_glass_request"), "requests are marked");
    assert!(metrics_with(
        gw.admin_port,
        &["vigie_break_glass_total{portal=\"ehr\"} 1"]
    )
    .contains("vigie_break_glass_total{portal=\"ehr\"} 1"));

    // The record the review needs outlives the session, its reason sealed at rest.
    // Each reading is audited, an empty one too: counted, since the wait below may read more
    // than once before the record is there.
    let readings = std::cell::Cell::new(0);
    let reviews = || {
        readings.set(readings.get() + 1);
        admin_api(gw.admin_port, "GET", "/api/break-glass?user=dr.martin")["break_glass"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    wait_for("the break-glass record", || {
        (reviews().len() == 1).then_some(())
    });
    admin_api(gw.admin_port, "POST", "/api/sessions/revoke?user=dr.martin");
    assert!(!c.opens_patient(), "the session is over");
    // Its end is in the trail beside its start: how, and before its deadline.
    let ended =
        crate::audit::trail_when(gw.admin_port, "event=break_glass_ended", |e| !e.is_empty());
    let end = &ended["entries"][0];
    assert_eq!(end["user"], "dr.martin", "{ended}");
    assert_eq!(end["fields"]["ended_by"], "revoked");
    assert_eq!(end["fields"]["early"], true);
    let kept = reviews();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["reason"], reason);
    assert_eq!(kept[0]["portal"], "ehr");
    assert_eq!(
        end["fields"]["record"], kept[0]["id"],
        "the end names its use"
    );
    // The SIEM hears of the start and the end, never the reason.
    let sent = wait_for("the start and the end in the SIEM's sink", || {
        let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
        let has = |e: &str| text.contains(&format!("\"action\":\"{e}\""));
        (has("break_glass") && has("break_glass_ended")).then_some(text)
    });
    assert!(!sent.contains("cardiaque"), "the reason reached the SIEM");
    assert!(kept[0]["until"].as_i64().unwrap() > kept[0]["at_us"].as_i64().unwrap() / 1_000_000);
    let db = gw.config.with_file_name("vigie.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
    assert!(String::from_utf8_lossy(&bytes).contains("dr.martin"));
    assert!(
        !bytes.windows(9).any(|w| w == b"cardiaque"),
        "the reason is readable in the file"
    );
    // Reading the reasons is itself in the trail.
    wait_for("the review in the trail", || {
        let v = admin_api(
            gw.admin_port,
            "GET",
            "/api/audit?event=break_glass_reviewed",
        );
        (v["entries"].as_array().map_or(0, Vec::len) == readings.get()).then_some(())
    });
}

#[test]
fn explain_and_check_config_speak_to_it() {
    let portal = start_portal();
    let rules = "[[rule]]\nname = \"everything\"\npath = \"/**\"\nlevel = \"second_factor\"\n\n[[rule]]\nname = \"export\"\npath = \"/index.php\"\nquery = { raw = \"ajax_export*\" }\nlevel = \"phishing_resistant\"\nbudget = \"export\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.toml");
    let keys = factor_key_file(dir.path());
    std::fs::write(
        &path,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[second_factor]\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost:1\"]\n{}",
            keys.display(),
            profiled_portal(&portal, rules)
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let out = vigie_ok(["check-config", "-c", config]);
    assert!(
        out.contains("rule[1] `export` is never reached: rule[0] `everything` comes first"),
        "{out}"
    );
    let text = vigie_ok([
        "explain",
        "-c",
        config,
        "--url",
        "/index.php?m=dPpatients&raw=ajax_export_patients_csv",
        "--user",
        "admin",
        "--groups",
        "admin",
        "--ip",
        "10.1.2.3",
        "--time",
        "2026-11-23T10:00:00+01:00",
    ]);
    assert!(text.contains("decision  ALLOW"), "{text}");
    assert!(
        text.contains("rule      everything"),
        "first match wins: {text}"
    );
    assert!(text.contains("requires  second_factor"), "{text}");
    assert!(
        text.contains("budget    export"),
        "the profile's class: {text}"
    );
    assert!(
        text.contains("pre-login sign-in wall: 303 to `/index.php`"),
        "{text}"
    );
    let login_page = vigie_ok(["explain", "-c", config, "--url", "/index.php"]);
    assert!(
        login_page.contains("pre-login reaches the portal (on the profile's [prelogin] allowlist)"),
        "{login_page}"
    );
    let bad = vigie_ok(["explain", "-c", config, "--url", "/%2561dmin"]);
    assert!(bad.contains("REFUSED before policy"));

    // A profile without a pre-login allowlist is refused, naming the key and the fix.
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/generic-form.toml"),
    )
    .unwrap();
    let cut = shipped.split("\n[prelogin]").next().unwrap();
    let open_profile = dir.path().join("open.toml");
    std::fs::write(&open_profile, cut).unwrap();
    let main = dir.path().join("open-vigie.toml");
    std::fs::write(
        &main,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[second_factor]\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost:1\"]\n[[portal]]\nname = \"p\"\nupstream = \"127.0.0.1:2\"\nprofile = \"{}\"\n",
            keys.display(),
            open_profile.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(VIGIE)
        .args(["check-config", "-c", main.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("`prelogin`") && said.contains("[[prelogin.allow]]"),
        "{said}"
    );
}

#[test]
fn only_logins_spend_the_login_budget() {
    let portal = start_portal();
    let budgets = "[budgets.login]\nrequests = 2\nper = \"minute\"\nburst = 2\n[budgets.source]\nrequests = 100000\nper = \"minute\"\n[budgets.view]\nrequests = 100000\nper = \"minute\"\n";
    let gw = start_gateway_with(&profiled_portal(&portal, ""), budgets);
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    // Mediboard posts every form to index.php: none of these is a login attempt.
    for _ in 0..5 {
        let form = c.post_form("/index.php?m=dPpatients", &[("note", "ok")]);
        assert_ne!(form.status, 429);
    }
    let _second = Client::login(gw.port, "dr.martin", "martin-demo");
    let third = crate::passthrough::submit_login(gw.port, "dr.martin", "martin-demo", None);
    assert_eq!(third.status, 429, "the third login in a minute");
}

#[test]
fn an_unlock_clears_a_throttle_in_progress_and_says_what_it_cleared() {
    let portal = start_portal();
    // Behind a trusted proxy, so that the user's throttle is met from several sources.
    let budgets = "[network]\ntrusted_proxies = [\"127.0.0.1\"]\n[budgets.login]\nrequests = 2\nper = \"hour\"\nburst = 2\n[budgets.source]\nrequests = 100000\nper = \"minute\"\n[budgets.view]\nrequests = 100000\nper = \"minute\"\n";
    let gw = start_gateway_with(&profiled_portal(&portal, ""), budgets);
    let login = |from: u8, password: &str| {
        let mut c = Client::new(gw.port);
        c.headers = format!("X-Forwarded-For: 10.0.0.{from}\r\n");
        let page = c.get("/index.php");
        let token = crate::passthrough::csrf_token(&page);
        let csrf = crate::passthrough::cookie_set(&page, "mediboard_csrf").unwrap();
        c.headers += &format!("Cookie: {csrf}\r\n");
        c.post_form(
            "/index.php",
            &[
                ("login", "1"),
                ("csrf_token", &token),
                ("username", "dr.martin"),
                ("password", password),
            ],
        )
        .status
    };
    assert_eq!(login(1, "wrong"), 303);
    assert_eq!(login(2, "wrong"), 303);
    assert_eq!(
        login(3, "martin-demo"),
        429,
        "the name is throttled, not locked"
    );
    // The helpdesk clears it; the answer says what there was to clear.
    let said = vigie_ok([
        "user",
        "unlock",
        "dr.martin",
        "-c",
        gw.config.to_str().unwrap(),
    ]);
    let said: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(said["unlocked"], false, "{said}");
    assert_eq!(said["cleared"]["login_throttle"], true, "{said}");
    assert_eq!(login(4, "martin-demo"), 302, "the throttle was cleared");
}

/// A rule refusing the sample portal's patient export, however it is asked.
pub const NO_EXPORTS: &str = "[[rule]]\nname = \"no-exports\"\npath = \"/index.php\"\nquery = { raw = \"ajax_export*\" }\ndeny = true\n";

#[test]
fn routing_parameters_in_a_form_body_meet_the_same_rules() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, NO_EXPORTS), "");
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    assert_eq!(c.get(EXPORT).status, 403, "in the URL");
    // PHP's $_REQUEST reads the body too: the same export asked in a form is refused.
    let posted = c.post_form(
        "/index.php?m=dPpatients",
        &[("raw", "ajax_export_patients_csv")],
    );
    assert_eq!(posted.status, 403, "{}", posted.text());
    assert!(
        page_text(&posted).contains("Accès refusé"),
        "the gateway's refusal"
    );
    assert!(
        !page_text(&posted).contains("/.vigie/break-glass"),
        "no-exports has no break-glass: nothing to offer"
    );
    // The refusal's reason is in its access line, written once the answer has gone.
    gw.proc.wait_for_log("policy_denied");
    // As PHP reads it: in a multipart body, or after 64 KiB of form (issue 15).
    let multipart = "--x\r\nContent-Disposition: form-data; name='raw'\r\n\r\najax_export_patients_csv\r\n--x--\r\n";
    let posted = c.post(
        "/index.php?m=dPpatients",
        "multipart/form-data; boundary=x",
        multipart,
    );
    assert!(
        page_text(&posted).contains("Accès refusé"),
        "multipart: {}",
        posted.text()
    );
    let large = format!("note={}&raw=ajax%5Fexport_patients_csv", "x".repeat(70_000));
    let posted = c.post(
        "/index.php?m=dPpatients",
        "application/x-www-form-urlencoded",
        &large,
    );
    assert!(
        page_text(&posted).contains("Accès refusé"),
        "past 64 KiB: {}",
        posted.text()
    );
    // Another form goes through to the portal (which answers for itself).
    let other = c.post_form("/index.php?m=dPpatients", &[("note", "ok")]);
    assert!(
        !page_text(&other).contains("Accès refusé"),
        "{}",
        other.text()
    );
}

#[test]
fn a_decoy_past_the_portals_max_input_vars_never_reaches_it() {
    let portal = start_portal();
    let gw = start_gateway_with(&profiled_portal(&portal, NO_EXPORTS), "");
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    // PHP reads the first 1,000 pairs only: the export's `raw` is what the script sees, and
    // a `raw=view` past the cut would have been the one a rule reading every pair met.
    let decoy = format!("{EXPORT}{}&raw=view", "&a".repeat(1000));
    let r = c.get(&decoy);
    assert_eq!(r.status, 414, "{}", r.text());
    gw.proc.wait_for_log("too_many_parameters");
    // A long query the script reads whole still goes to the portal.
    let long = c.get(&format!("/index.php?m=dPpatients{}", "&a".repeat(998)));
    assert_eq!(long.status, 200, "{}", long.text());
}
