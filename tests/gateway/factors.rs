//! Second factors end to end, against the real sample portal: the wall after the password,
//! enrollment proofs, TOTP, recovery codes, passkeys over HTTP, throttling and locks
//! (threat model 17-22).

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::detection::wait_for;
use crate::mfa::*;

/// Exports need a passkey sign-in.
const EXPORT_RULE: &str = "[[rule]]\nname = \"export-passkey\"\npath = \"/index.php\"\nquery = { raw = \"ajax_export*\" }\nlevel = \"phishing_resistant\"\n";

#[test]
fn a_password_alone_opens_nothing_and_enrollment_needs_the_invitation() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    // The portal accepted the password, but nothing reaches it before a second factor.
    let wall = c.get(PATIENT);
    assert_eq!(wall.status, 303);
    assert!(
        location(&wall).starts_with("/.vigie/factor?return="),
        "{}",
        location(&wall)
    );
    let post = c.post_form("/index.php?m=dPpatients", &[("x", "1")]);
    assert_eq!(post.status, 401);
    // No factor yet: the prompt sends the user to enrollment, which asks for the invitation.
    let prompt = c.get(&location(&wall));
    assert_eq!(prompt.status, 303);
    assert!(location(&prompt).starts_with("/.vigie/enroll"));
    let enroll = c.get(&location(&prompt));
    assert!(
        enroll.text().contains("name=\"invitation\""),
        "{}",
        enroll.text()
    );
    assert!(!enroll.text().contains("passkey-register"));
    // Someone holding only the password cannot reach the factor binding (threat model 20).
    assert_eq!(c.get("/.vigie/enroll/totp").status, 303);
    let start = c.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 403);
    let bad = c.post_form(
        "/.vigie/enroll/invitation",
        &[("invitation", "abcd-efgh-jkmn")],
    );
    assert!(page_text(&bad).contains("Code d'invitation incorrect ou expiré"));

    let invitation = invite(&gw, "dr.martin");
    let before = c.cookie.clone();
    let (secret, codes) = enroll_totp(&mut c, Some(&invitation));
    assert_ne!(c.cookie, before, "a new session id after each step");
    assert!(c.opens_patient(), "enrolled and verified");
    // The codes stay on their page through a change of language, until the user says they
    // kept them; then they are gone.
    let switched = c.get("/.vigie/codes?return=%2F&lang=en");
    assert_eq!(listed_codes(&switched), codes, "{}", switched.text());
    let kept = c.post_form("/.vigie/codes", &[("return", PATIENT)]);
    assert_eq!((kept.status, location(&kept).as_str()), (303, PATIENT));
    assert_eq!(c.get("/.vigie/codes").status, 303);
    // The invitation was single use.
    let mut other = Client::login(gw.port, "dr.martin", "martin-demo");
    let reuse = other.post_form("/.vigie/enroll/invitation", &[("invitation", &invitation)]);
    assert!(page_text(&reuse).contains("Code d'invitation incorrect"));

    // Secrets never appear in the log; the database holds them sealed.
    let log = gw.proc.stderr();
    let b32 = totp_rs::Secret::Raw(secret.clone())
        .to_encoded()
        .to_string();
    for secret_text in [b32.as_str(), invitation.as_str(), codes[0].as_str()] {
        assert!(!log.contains(secret_text), "a secret reached the log");
    }
    assert!(log.contains("factor_enrolled"), "enrollment is audited");
    let db = std::fs::read(gw.config.parent().unwrap().join("vigie.sqlite")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_slice()));
    assert!(!db.windows(b32.len()).any(|w| w == b32.as_bytes()));
}

#[test]
fn trusted_networks_skip_the_invitation_only_inside() {
    let portal = start_portal();
    let gw = mfa_gateway(
        &portal,
        "enrollment = \"trusted-networks\"\ntrusted_networks = [\"10.20.0.0/16\"]",
        "[network]\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let mut outside = Client::login(gw.port, "dr.martin", "martin-demo");
    outside.headers = "X-Forwarded-For: 192.0.2.7\r\n".into();
    assert!(outside
        .get("/.vigie/enroll")
        .text()
        .contains("name=\"invitation\""));
    let mut inside = Client::login(gw.port, "dr.martin", "martin-demo");
    inside.headers = "X-Forwarded-For: 10.20.3.4\r\n".into();
    let page = inside.get("/.vigie/enroll");
    assert!(page.text().contains("passkey-register") && page.text().contains("choose-totp"));
    enroll_totp(&mut inside, None);
    assert!(inside.opens_patient());
}

#[test]
fn one_totp_code_wins_once_among_fifty_parallel_submissions() {
    let portal = start_portal();
    // Four worker threads: the submissions are served truly at once.
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let gw = start_gateway_threads(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
            portal.port,
            profile.display()
        ),
        "[second_factor]\nenrollment = \"open\"\nmax_failures = 100\n",
        4,
    );
    let mut first = Client::login(gw.port, "dr.martin", "martin-demo");
    let (secret, _) = enroll_totp(&mut first, None);
    // Fifty sessions of the account (an attacker who saw the code, and the user), each
    // submitting the same code at once: only the store's atomic step claim can stop them.
    let sessions: Vec<Client> = (0..50)
        .map(|_| Client::login(gw.port, "dr.martin", "martin-demo"))
        .collect();
    // The enrollment used the current step; the next one is within tolerance.
    let next = code(&secret, 1);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = sessions
        .into_iter()
        .map(|mut c| {
            let (next, barrier) = (next.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                c.post_form(
                    "/.vigie/factor/totp",
                    &[("code", &next), ("return", PATIENT)],
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [303, 200, 429].contains(s)),
        "{statuses:?}"
    );
    // The attempt throttle answers most of them (429) before any code is read; those it let
    // through raced for the step: more than one, or nothing was raced here (the store's own
    // claim is raced fifty-fold in `factors::store::tests::contention`, on every backend).
    let raced = statuses.iter().filter(|s| **s != 429).count();
    assert!(raced >= 2, "only {raced} reached the code: {statuses:?}");
}

#[test]
fn malformed_codes_are_refused_cleanly_and_not_counted() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"\nmax_failures = 3", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let (secret, _) = enroll_totp(&mut c, None);
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    for bad in [
        "12345",
        "1234567",
        "123  456",
        "12 3456",
        "123\t456",
        "123_456",
        "１２３４５６",
        "12345\0",
        "-12345",
        "",
    ] {
        let resp = c.post_form("/.vigie/factor/totp", &[("code", bad)]);
        assert_eq!(resp.status, 400, "{bad:?}");
        assert!(
            page_text(&resp).contains("Le code comporte 6 chiffres"),
            "{bad:?}"
        );
        // The error is tied to the field, which has the focus again.
        let text = resp.text();
        assert!(
            text.contains("aria-invalid=\"true\"")
                && text.contains("aria-describedby=\"form-error code-help\""),
            "{text}"
        );
    }
    let array = c.post(
        "/.vigie/factor/totp",
        "application/x-www-form-urlencoded",
        "code[]=123456",
    );
    assert_eq!(array.status, 400);
    let json = c.post(
        "/.vigie/factor/totp",
        "application/json",
        "{\"code\":123456}",
    );
    assert_eq!(json.status, 415);
    let json = c.post("/.vigie/factor/totp", "application/json", "[123456]");
    assert_eq!(json.status, 415);
    // None of these counted towards the lock (max_failures = 3), and none opened anything.
    assert!(!c.opens_patient());
    // The first well-formed wrong code is the first failure counted: two are left.
    let first = c.post_form("/.vigie/factor/totp", &[("code", wrong_code(&secret))]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(
        page_text(&first).contains("encore 2 codes erronés"),
        "malformed codes were counted: {}",
        page_text(&first)
    );
}

#[test]
fn failures_from_many_sources_and_sessions_lock_the_account() {
    let portal = start_portal();
    let gw = mfa_gateway(
        &portal,
        "enrollment = \"open\"\nmax_failures = 3",
        "[network]\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let (secret, _) = enroll_totp(&mut c, None);
    let wrong = wrong_code(&secret);
    let mut s1 = Client::login(gw.port, "dr.martin", "martin-demo");
    let mut s2 = Client::login(gw.port, "dr.martin", "martin-demo");
    s1.headers = "X-Forwarded-For: 10.0.0.1\r\n".into();
    s2.headers = "X-Forwarded-For: 10.0.0.2\r\n".into();
    assert_eq!(
        s1.post_form("/.vigie/factor/totp", &[("code", wrong)])
            .status,
        200
    );
    let second = s2.post_form("/.vigie/factor/totp", &[("code", wrong)]);
    assert!(
        second.text().contains("compte sera verrouillé"),
        "warned before the lock"
    );
    s1.headers = "X-Forwarded-For: 10.0.0.3\r\n".into();
    let locked = s1.post_form("/.vigie/factor/totp", &[("code", wrong)]);
    assert_eq!(locked.status, 423);
    assert!(locked.text().contains("Compte verrouillé"));
    // Every session of the account ended, the one past its second factor too; a new login is
    // refused.
    let verified = c.get(PATIENT);
    assert_eq!(
        (verified.status, verified.header("location")),
        (303, Some("/index.php")),
        "the verified session outlived the lock"
    );
    let walled = s2.get(PATIENT);
    assert_eq!(
        (walled.status, walled.header("location")),
        (303, Some("/index.php")),
        "anonymous again: sent to the portal's login page"
    );
    assert!(s2.get("/index.php").text().contains("Connexion"));
    let refused = crate::passthrough::submit_login(gw.port, "dr.martin", "martin-demo", None);
    assert_eq!(
        refused.header("location"),
        Some("/.vigie/signin-failed"),
        "a locked account's login is refused like any failed one"
    );
    assert!(gw.proc.stderr().contains("account_lock"));

    // IT unlocks after an in-person check: the count starts again from zero.
    let config = gw.config.to_str().unwrap();
    vigie_ok(["user", "unlock", "dr.martin", "-c", config]);
    let mut again = Client::login(gw.port, "dr.martin", "martin-demo");
    let one = again.post_form("/.vigie/factor/totp", &[("code", wrong)]);
    assert_eq!(one.status, 200);
    assert!(
        page_text(&one).contains("encore 2 codes erronés"),
        "failures were reset by the unlock: {}",
        one.text()
    );
}

#[test]
fn recovery_codes_work_once_and_never_satisfy_a_passkey_rule() {
    let portal = start_portal();
    let step_up = "";
    let gw = start_gateway_with(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n{step_up}",
            portal.port,
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles/sample-portal.toml")
                .display()
        ),
        &format!("{EXPORT_RULE}\n[second_factor]\nenrollment = \"open\"\n"),
    );
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    let (_, codes) = enroll_totp(&mut c, None);
    let mut s = Client::login(gw.port, "admin", "admin-demo");
    let used = s.post_form(
        "/.vigie/factor/recovery",
        &[("code", &codes[3]), ("return", PATIENT)],
    );
    assert_eq!(used.status, 303, "{}", used.text());
    assert!(s.opens_patient());
    // The export needs a passkey: the recovery code is not enough, and is not offered.
    let export = s.get(EXPORT);
    assert_eq!(export.status, 303);
    let prompt = s.get(&location(&export));
    assert!(
        page_text(&prompt).contains("clé d'accès"),
        "{}",
        prompt.text()
    );
    assert!(!prompt.text().contains("/.vigie/factor/recovery"));
    // Single use.
    let mut t = Client::login(gw.port, "admin", "admin-demo");
    let again = t.post_form("/.vigie/factor/recovery", &[("code", &codes[3])]);
    assert_eq!(again.status, 200);
    assert!(again.text().contains("Code incorrect ou déjà utilisé"));
    assert!(!t.opens_patient());
}

#[test]
fn passkeys_over_http_enroll_sign_in_and_satisfy_the_export_rule() {
    let portal = start_portal();
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let gw = start_gateway_with(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
            portal.port,
            profile.display()
        ),
        &format!("{EXPORT_RULE}\n[second_factor]\n"),
    );
    let mut auth = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let mut c = Client::login(gw.port, "admin", "admin-demo");
    let invitation = invite(&gw, "admin");
    c.post_form("/.vigie/enroll/invitation", &[("invitation", &invitation)]);
    let done = register_passkey(&mut c, &gw, &mut auth);
    assert_eq!(done.status, 200, "{}", done.text());
    let next: serde_json::Value = serde_json::from_slice(&done.body).unwrap();
    assert!(next["redirect"]
        .as_str()
        .unwrap()
        .starts_with("/.vigie/codes"));
    assert_eq!(
        listed_codes(&c.get(next["redirect"].as_str().unwrap())).len(),
        10
    );
    assert!(c.opens_patient());
    // Registration alone is not a passkey sign-in: the export still asks for one.
    assert_eq!(c.get(EXPORT).status, 303);

    // A new login: the prompt offers the passkey; signing in with it opens the export.
    let mut s = Client::login(gw.port, "admin", "admin-demo");
    let prompt = s.get(&format!("/.vigie/factor?return={}", "%2F"));
    assert!(prompt.text().contains("passkey-auth"), "{}", prompt.text());
    assert!(prompt
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let answer = passkey_sign_in(&mut s, &gw, &mut auth);
    let before = s.cookie.clone();
    let ok = s.post_json("/.vigie/passkey/auth/finish", &answer);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_ne!(s.cookie, before, "new session id");
    let export = s.get(EXPORT);
    assert_eq!(export.status, 200);
    assert!(export.header("content-type").unwrap().contains("csv"));

    // The same answer again, in another session: its challenge was consumed.
    let mut t = Client::login(gw.port, "admin", "admin-demo");
    let replay = t.post_json("/.vigie/passkey/auth/finish", &answer);
    assert_eq!(replay.status, 400);
    // Malformed CBOR, and a cross-site post.
    let mut garbage = passkey_sign_in(&mut t, &gw, &mut auth);
    garbage["credential"]["response"]["authenticatorData"] = "AAAA".into();
    assert_eq!(
        t.post_json("/.vigie/passkey/auth/finish", &garbage).status,
        400
    );
    let cross = raw(
        gw.port,
        format!(
            "POST /.vigie/passkey/auth/start HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            t.cookie.clone().unwrap()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(cross.status, 403);
    assert!(!t.opens_patient());
}

#[test]
fn pages_follow_the_browser_language_and_the_switch() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    c.headers = "Accept-Language: en-GB,en;q=0.9,fr;q=0.5\r\n".into();
    let en = c.get("/.vigie/enroll");
    assert!(
        en.text().contains("Enter the invitation code"),
        "{}",
        en.text()
    );
    assert!(en.text().contains("<html lang=\"en\">"));
    let fr = c.get("/.vigie/enroll?lang=fr");
    assert!(page_text(&fr).contains("Saisissez le code d'invitation"));
    assert!(fr
        .header("set-cookie")
        .unwrap()
        .starts_with("vigie_lang=fr"));
    assert!(fr
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    assert!(!fr
        .header("content-security-policy")
        .unwrap()
        .contains("script-src"));
}

#[test]
fn an_invitation_resets_a_lost_factor() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let (old, _) = enroll_totp(&mut c, None);
    // Phone lost: with only the password, enrollment now demands an invitation.
    let mut s = Client::login(gw.port, "dr.martin", "martin-demo");
    let page = s.get("/.vigie/enroll");
    assert!(page.text().contains("name=\"invitation\""));
    assert!(page_text(&page).contains("remplacera vos moyens de vérification"));
    assert_eq!(s.get("/.vigie/enroll/totp").status, 303);
    let invitation = invite(&gw, "dr.martin");
    let (new, _) = enroll_totp(&mut s, Some(&invitation));
    assert_ne!(old, new);
    assert!(s.opens_patient());
    assert!(
        gw.proc.stderr().contains("factor_reset"),
        "the reset is audited"
    );
    // The old secret no longer works.
    let mut t = Client::login(gw.port, "dr.martin", "martin-demo");
    let stale = t.post_form("/.vigie/factor/totp", &[("code", &code(&old, 1))]);
    assert!(page_text(&stale).contains("Code incorrect"));
    assert!(!t.opens_patient());
}

#[test]
fn replicas_share_factors_and_refuse_a_code_replayed_on_the_other() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let session_key = session_key_file(dir.path());
    let keys = factor_key_file(dir.path());
    let extra = format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nsession_key_file = \"{}\"\n",
        redis.url(),
        session_key.display()
    );
    let factor = format!("enrollment = \"open\"\nkey_file = \"{}\"", keys.display());
    let a = mfa_gateway(&portal, &factor, &extra);
    let b = mfa_gateway(&portal, &factor, &extra);
    let mut on_a = Client::login(a.port, "dr.martin", "martin-demo");
    let (secret, _) = enroll_totp(&mut on_a, None);
    // Replica B knows the factor; one code works on one replica only.
    let mut b1 = Client::login(b.port, "dr.martin", "martin-demo");
    let mut a1 = Client::login(a.port, "dr.martin", "martin-demo");
    let next = code(&secret, 1);
    assert!(page_text(&b1.get("/.vigie/factor")).contains("Code à 6 chiffres"));
    assert_eq!(
        b1.post_form("/.vigie/factor/totp", &[("code", &next)])
            .status,
        303
    );
    assert!(b1.opens_patient());
    let replay = a1.post_form("/.vigie/factor/totp", &[("code", &next)]);
    assert_eq!(replay.status, 200);
    assert!(!a1.opens_patient());
    // The secret is sealed in Redis too: nowhere in its whole data (the append-only file,
    // rewritten now), neither as bytes, nor as the record would write it unsealed, nor in the
    // base32 or hex the pages and apps use.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    use std::io::{Read, Write};
    conn.write_all(b"BGREWRITEAOF\r\n").unwrap();
    let mut ack = [0u8; 64];
    let _ = conn.read(&mut ack).unwrap();
    let dump = wait_for("the rewritten append-only file", || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut all = Vec::new();
        for entry in walk(redis.dir.path()) {
            all.extend(std::fs::read(entry).unwrap_or_default());
        }
        let text = String::from_utf8_lossy(&all).into_owned();
        text.contains("dr.martin").then_some(all)
    });
    let b32 = totp_rs::Secret::Raw(secret.clone())
        .to_encoded()
        .to_string();
    let b32 = b32.trim_end_matches('=').to_string();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let numbers: Vec<String> = secret.iter().map(u8::to_string).collect();
    let json = format!("[{}]", numbers.join(","));
    for (form, needle) in [
        ("a JSON array", json.into_bytes()),
        ("bytes", secret.clone()),
        ("base32", b32.clone().into_bytes()),
        ("base32, lower case", b32.to_lowercase().into_bytes()),
        ("hex", hex.into_bytes()),
    ] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the secret is in Redis's data as {form}"
        );
    }
}

#[test]
fn repeated_failures_are_slowed_down_with_retry_after() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let (secret, _) = enroll_totp(&mut c, None);
    let wrong = wrong_code(&secret);
    let mut s = Client::login(gw.port, "dr.martin", "martin-demo");
    for _ in 0..3 {
        assert_eq!(
            s.post_form("/.vigie/factor/totp", &[("code", wrong)])
                .status,
            200
        );
    }
    // The fourth attempt, even with the right code, must wait.
    let slowed = s.post_form("/.vigie/factor/totp", &[("code", &code(&secret, 1))]);
    assert_eq!(slowed.status, 429);
    // Two seconds from the third failure; a loaded machine may answer a second later.
    assert!(
        matches!(slowed.header("retry-after"), Some("1" | "2")),
        "{:?}",
        slowed.header("retry-after")
    );
    assert!(slowed.text().contains("Trop de tentatives"));
    assert!(!s.opens_patient());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let ok = s.post_form("/.vigie/factor/totp", &[("code", &code(&secret, 1))]);
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(s.opens_patient());
    let failures = "vigie_second_factor_failures_total{method=\"totp\"} 3";
    let metrics = metrics_with(gw.admin_port, &[failures]);
    assert!(metrics.contains(failures), "{metrics}");
    assert!(
        metrics.contains("vigie_enrollments_total{method=\"totp\"} 1"),
        "{metrics}"
    );
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => out.extend(walk(&path)),
            false => out.push(path),
        }
    }
    out
}
