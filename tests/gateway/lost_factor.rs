//! A recovery code is the lost-device path: the session it opens may set up one replacement
//! factor, which takes the place of the lost kind, issues new recovery codes, ends the other
//! sessions and tells the SOC; it may not remove factors or regenerate codes otherwise.

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::mfa::*;

/// The user's factors as the admin API lists them.
fn factors_of(gw: &Gateway, user: &str) -> serde_json::Value {
    let target = format!("/api/users/factors?user={user}");
    crate::detection::admin_api(gw.admin_port, "GET", &target)
}

/// A user enrolled as most are: an app, then a passkey (in the first session); returns the
/// app's secret, the recovery codes and the key.
fn app_and_key(
    gw: &Gateway,
    user: &str,
    password: &str,
) -> (Vec<u8>, Vec<String>, WebauthnAuthenticator<SoftPasskey>) {
    let mut first = Client::login(gw.port, user, password);
    let (app, codes) = enroll_totp(&mut first, None);
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut first, gw, &mut key).status, 200);
    (app, codes, key)
}

/// Set up a new app in session `c` (its code of the next step: the enrollment used this
/// one), coming back to the account page through the codes page; returns the secret and the
/// codes shown.
fn new_app_with_codes(c: &mut Client) -> (Vec<u8>, Vec<String>) {
    let setup = c.get("/.vigie/enroll/totp?return=%2F.vigie%2Faccount");
    assert_eq!(setup.status, 200, "{}", setup.text());
    let secret = shown_secret(&setup);
    let done = c.post_form(
        "/.vigie/enroll/totp",
        &[("code", &code(&secret, 1)), ("return", "/.vigie/account")],
    );
    assert_eq!(done.status, 303, "{}", done.text());
    let to = location(&done);
    assert!(to.starts_with("/.vigie/codes"), "{to}");
    let codes = listed_codes(&c.get(&to));
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// Sign in with the password and a recovery code.
fn recovery_session(gw: &Gateway, user: &str, password: &str, code: &str) -> Client {
    let mut r = Client::login(gw.port, user, password);
    let used = r.post_form("/.vigie/factor/recovery", &[("code", code)]);
    assert_eq!(used.status, 303, "{}", used.text());
    r
}

/// The credential id of `key` (how pages and forms name a passkey), from a sign-in
/// ceremony started and not finished.
fn passkey_id(
    gw: &Gateway,
    user: &str,
    password: &str,
    key: &mut WebauthnAuthenticator<SoftPasskey>,
) -> String {
    let mut c = Client::login(gw.port, user, password);
    let answer = passkey_sign_in(&mut c, gw, key);
    answer["credential"]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_recovery_code_session_replaces_the_lost_app_once_and_changes_nothing_else() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let (_, old_codes, mut key) = app_and_key(&gw, "dr.martin", "martin-demo");
    // A session left open elsewhere (signed in with the passkey: the app's next step stays
    // free, so the old app's refusal below can only come from its replacement).
    let mut lost = Client::login(gw.port, "dr.martin", "martin-demo");
    let answer = passkey_sign_in(&mut lost, &gw, &mut key);
    let ok = lost.post_json("/.vigie/passkey/auth/finish", &answer);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(lost.opens_patient());

    // The phone is gone: the clinician signs in with a recovery code.
    let mut r = recovery_session(&gw, "dr.martin", "martin-demo", &old_codes[0]);
    let account = r.get("/.vigie/account");
    assert_eq!(account.status, 200, "{}", account.text());
    let text = account.text();
    assert!(text.contains("id=\"recovery-session\""), "{text}");
    assert!(text.contains("id=\"replace-lost-app\""), "{text}");
    assert!(
        !text.contains("/.vigie/account/codes"),
        "no regeneration offered: {text}"
    );
    assert!(!text.contains("?remove="), "no removal offered: {text}");
    // Asked anyway, both are refused and change nothing.
    let passkey_id = passkey_id(&gw, "dr.martin", "martin-demo", &mut key);
    let remove = r.post_form("/.vigie/account/passkey/remove", &[("id", &passkey_id)]);
    assert_eq!(remove.status, 403, "{}", remove.text());
    assert!(page_text(&remove).contains("pas avec un code de secours"));
    let regenerate = r.post_form("/.vigie/account/codes", &[]);
    assert_eq!(regenerate.status, 403);
    assert_eq!(
        factors_of(&gw, "dr.martin")["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(factors_of(&gw, "dr.martin")["recovery_codes_left"], 9);

    // The one replacement: a new app, confirmed by its first code.
    let (_, new_codes) = new_app_with_codes(&mut r);
    // The session made its replacement: nothing more, not even a second one.
    let account = r.get("/.vigie/account");
    assert!(
        account.text().contains("id=\"replaced-done\""),
        "{}",
        account.text()
    );
    assert_eq!(r.get("/.vigie/enroll/totp").status, 303);
    let again = r.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(again.status, 403);
    assert_eq!(r.post_form("/.vigie/account/codes", &[]).status, 403);

    // The lost kind is replaced (the new app on probation), the other kept: the old codes no
    // longer work, the passkey does; the session on the lost phone ended; the SOC was told.
    // (That the old app's secret is gone is src/factors/tests.rs's: its next code here would
    // be refused as a replayed step anyway.)
    let listed = factors_of(&gw, "dr.martin");
    assert_eq!(listed["probation"]["kind"], "totp", "{listed}");
    assert!(
        crate::sessions::walled(&lost.get(PATIENT)),
        "the lost phone's session ended"
    );
    let mut next = Client::login(gw.port, "dr.martin", "martin-demo");
    let old_code = next.post_form("/.vigie/factor/recovery", &[("code", &old_codes[1])]);
    assert_eq!(old_code.status, 200, "the old codes are cancelled");
    let fine = next.post_form(
        "/.vigie/factor/recovery",
        &[("code", &new_codes[0]), ("return", PATIENT)],
    );
    assert_eq!(fine.status, 303);
    assert_eq!(
        factors_of(&gw, "dr.martin")["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let log = gw.proc.stderr();
    assert!(
        log.contains("VIGIE-FACTOR-REPLACED-WITH-RECOVERY-CODE"),
        "{log}"
    );
    assert!(log.contains("factor_change_refused"), "{log}");
    for secret in [&old_codes[0], &new_codes[0]] {
        assert!(!log.contains(secret.as_str()), "a code reached the log");
    }
}

#[test]
fn a_recovery_code_session_may_replace_lost_passkeys_with_a_new_one() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let (app, codes, mut lost_key) = app_and_key(&gw, "dr.martin", "martin-demo");
    let mut r = recovery_session(&gw, "dr.martin", "martin-demo", &codes[0]);
    let mut new_key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let done = register_passkey(&mut r, &gw, &mut new_key);
    assert_eq!(done.status, 200, "{}", done.text());
    let to: serde_json::Value = serde_json::from_slice(&done.body).unwrap();
    let codes_page = to["redirect"].as_str().unwrap();
    assert!(codes_page.starts_with("/.vigie/codes"));
    let replacement_codes = listed_codes(&r.get(codes_page));
    assert_eq!(replacement_codes.len(), 10);
    // One passkey, the new one; the app is kept.
    let listed = factors_of(&gw, "dr.martin");
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["totp"], true, "{listed}");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let ok = c.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&app, 1)), ("return", PATIENT)],
    );
    assert_eq!(ok.status, 303);
    // The server no longer offers the lost key: the authenticator finds nothing to sign.
    let mut d = Client::login(gw.port, "dr.martin", "martin-demo");
    let start = d.post_json("/.vigie/passkey/auth/start", &serde_json::json!({}));
    let options = serde_json::from_slice(&start.body).unwrap();
    assert!(lost_key.do_authentication(origin(&gw), options).is_err());
    let answer = passkey_sign_in(&mut d, &gw, &mut new_key);
    assert_eq!(
        d.post_json("/.vigie/passkey/auth/finish", &answer).status,
        200
    );
    // The new key is on probation: signed in with it, nothing changes in the factors (a
    // password and a code sheet would otherwise bind a key, then clear the others away).
    assert_eq!(listed["probation"]["kind"], "passkey", "{listed}");
    let account = d.get("/.vigie/account");
    assert!(
        account.text().contains("id=\"probation\""),
        "{}",
        account.text()
    );
    assert!(!account.text().contains("?remove="), "{}", account.text());
    let key_id = answer["credential"]["id"].as_str().unwrap().to_string();
    let remove = d.post_form("/.vigie/account/passkey/remove", &[("id", &key_id)]);
    assert_eq!(remove.status, 403, "{}", remove.text());
    assert!(
        page_text(&remove).contains("code de secours"),
        "{}",
        remove.text()
    );
    let add = d.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(add.status, 403);
    assert_eq!(d.post_form("/.vigie/account/codes", &[]).status, 403);
    // The real user, signed in with the app they had before, may undo it: remove the key
    // the recovery code bound (and only that one); its sessions end, the probation with it.
    let account = c.get("/.vigie/account");
    assert!(account.text().contains("?remove="), "{}", account.text());
    let remove = c.post_form("/.vigie/account/passkey/remove", &[("id", &key_id)]);
    assert_eq!(remove.status, 303, "{}", remove.text());
    assert_eq!(location(&remove), "/.vigie/account?done=undo");
    let listed = factors_of(&gw, "dr.martin");
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 0, "{listed}");
    // Disputed: the app that undid it is on probation in turn (a phished code must not
    // finish what it started).
    assert_eq!(listed["probation"]["kind"], "totp", "{listed}");
    // The codes that replacement issued are cancelled, and none go to this session: its
    // app proof was given while a passkey stood (it could be a phished code).
    assert_eq!(listed["recovery_codes_left"], 0, "{listed}");
    assert!(
        crate::sessions::walled(&d.get(PATIENT)),
        "the key's session ended"
    );
    assert_eq!(c.post_form("/.vigie/account/codes", &[]).status, 403);
    let add = c.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(
        add.status, 403,
        "no passkey for a proof weaker than the one removed"
    );
    let log = gw.proc.stderr();
    assert!(log.contains("VIGIE-RECOVERY-REPLACEMENT-UNDONE"), "{log}");
    let mut again = Client::login(gw.port, "dr.martin", "martin-demo");
    let stale = again.post_form(
        "/.vigie/factor/recovery",
        &[("code", &replacement_codes[0])],
    );
    assert_eq!(stale.status, 200, "the replacement's codes are cancelled");
}

#[test]
fn an_app_code_cannot_clear_the_passkeys_away_to_add_its_own() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let (app, _, mut key) = app_and_key(&gw, "sec.bernard", "bernard-demo");
    // Someone with the password and one phished app code.
    let mut m = Client::login(gw.port, "sec.bernard", "bernard-demo");
    let ok = m.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&app, 1)), ("return", PATIENT)],
    );
    assert_eq!(ok.status, 303);
    let account = m.get("/.vigie/account");
    assert!(!account.text().contains("?remove="), "{}", account.text());
    let key_id = passkey_id(&gw, "sec.bernard", "bernard-demo", &mut key);
    let remove = m.post_form("/.vigie/account/passkey/remove", &[("id", &key_id)]);
    assert_eq!(remove.status, 403, "{}", remove.text());
    let add = m.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(add.status, 403);
    // Nor mint recovery codes, which would open the lost-device path to the passkeys.
    let codes = m.post_form("/.vigie/account/codes", &[]);
    assert_eq!(codes.status, 403, "{}", codes.text());
    assert_eq!(
        factors_of(&gw, "sec.bernard")["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The passkey's own proof may remove it (the app stays).
    let mut owner = Client::login(gw.port, "sec.bernard", "bernard-demo");
    let answer = passkey_sign_in(&mut owner, &gw, &mut key);
    assert_eq!(
        owner
            .post_json("/.vigie/passkey/auth/finish", &answer)
            .status,
        200
    );
    let confirm = owner.get(&format!(
        "/.vigie/account?remove={}",
        form_urlencoded::byte_serialize(key_id.as_bytes()).collect::<String>()
    ));
    assert!(
        confirm.text().contains("id=\"remove-confirm\""),
        "{}",
        confirm.text()
    );
    let removed = owner.post_form("/.vigie/account/passkey/remove", &[("id", &key_id)]);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert!(
        page_text(&removed).contains("« Poste 3B »") || page_text(&removed).contains("Poste 3B")
    );
    assert_eq!(
        factors_of(&gw, "sec.bernard")["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_recovery_session_binds_one_factor_even_when_both_kinds_race() {
    let portal = start_portal();
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let section = format!(
        "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
        portal.port,
        profile.display()
    );
    // Four worker threads: the two requests below really run at once.
    let gw = start_gateway_threads(&section, "[second_factor]\nenrollment = \"open\"\n", 4);
    for (user, password) in [
        ("inf.durand", "durand-demo"),
        ("dr.martin", "martin-demo"),
        ("sec.bernard", "bernard-demo"),
    ] {
        race(&gw, user, password);
    }
    let log = gw.proc.stderr();
    let replaced = log
        .lines()
        .filter(|l| l.contains("factor_replaced"))
        .count();
    assert_eq!(replaced, 3, "one replacement each: {log}");
}

/// A recovery session finishes an app setup (twice) and a passkey registration at once:
/// exactly one factor is bound, the other kind is untouched.
fn race(gw: &Gateway, user: &str, password: &str) {
    let (_, codes, mut lost_key) = app_and_key(gw, user, password);
    let mut r = recovery_session(gw, user, password, &codes[0]);
    let new_app = shown_secret(&r.get("/.vigie/enroll/totp"));
    let start = r.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 200, "{}", start.text());
    let mut new_key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let answer = new_key
        .do_registration(origin(gw), serde_json::from_slice(&start.body).unwrap())
        .unwrap();
    let typed = code(&new_app, 1);
    let barrier = std::sync::Barrier::new(3);
    let statuses = std::thread::scope(|scope| {
        let app = || {
            let mut c = Client {
                cookie: r.cookie.clone(),
                ..Client::new(gw.port)
            };
            barrier.wait();
            c.post_form("/.vigie/enroll/totp", &[("code", &typed)])
                .status
        };
        let a = scope.spawn(app);
        let b = scope.spawn(app);
        let key = scope.spawn(|| {
            let mut c = Client {
                cookie: r.cookie.clone(),
                ..Client::new(gw.port)
            };
            barrier.wait();
            c.post_json(
                "/.vigie/passkey/register/finish",
                &serde_json::json!({ "name": "new", "credential": answer }),
            )
            .status
        });
        [a.join().unwrap(), b.join().unwrap(), key.join().unwrap()]
    });
    let listed = factors_of(gw, user);
    let kind = listed["probation"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("{user}: {listed} {statuses:?}"))
        .to_string();
    // The lost key still signs in exactly when the app was the kind replaced.
    let mut d = Client::login(gw.port, user, password);
    let start = d.post_json("/.vigie/passkey/auth/start", &serde_json::json!({}));
    let options = serde_json::from_slice(&start.body).unwrap();
    let lost_key_signs = lost_key.do_authentication(origin(gw), options).is_ok();
    assert_eq!(
        lost_key_signs,
        kind == "totp",
        "{user}: {listed} {statuses:?}"
    );
    assert_eq!(
        listed["passkeys"].as_array().unwrap().len(),
        1,
        "{user}: {listed}"
    );
}

#[test]
fn a_fresh_app_proof_replaces_the_app_from_the_account_page() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    let (old_app, _) = enroll_totp(&mut c, None);
    let account = c.get("/.vigie/account");
    assert!(
        account.text().contains("id=\"replace-app\""),
        "{}",
        account.text()
    );
    let setup = c.get("/.vigie/enroll/totp?return=%2F.vigie%2Faccount");
    assert_eq!(setup.status, 200);
    let new_app = shown_secret(&setup);
    // A reload (or a change of language) shows the same secret: a QR code already scanned
    // keeps working.
    let reload = c.get("/.vigie/enroll/totp?return=%2F.vigie%2Faccount&lang=en");
    assert_eq!(shown_secret(&reload), new_app);
    // A code typed the way apps show it ("123 456") is taken.
    let typed = code(&new_app, 0);
    let spaced = format!("{} {}", &typed[..3], &typed[3..]);
    let done = c.post_form(
        "/.vigie/enroll/totp",
        &[("code", &spaced), ("return", "/.vigie/account")],
    );
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(location(&done), "/.vigie/account?done=app");
    assert!(
        page_text(&c.get(&location(&done))).contains("Application d'authentification remplacée")
    );
    let mut next = Client::login(gw.port, "dr.martin", "martin-demo");
    let old = next.post_form("/.vigie/factor/totp", &[("code", &code(&old_app, 1))]);
    assert_eq!(old.status, 200, "the old app is refused");
    let new = next.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&new_app, 1)), ("return", PATIENT)],
    );
    assert_eq!(new.status, 303, "{}", new.text());
}

#[test]
fn a_passkey_bound_with_a_recovery_code_is_not_phishing_resistant_on_probation() {
    let portal = start_portal();
    let rule = "[[rule]]\nname = \"export-passkey\"\npath = \"/index.php\"\nquery = { raw = \"ajax_export*\" }\nlevel = \"phishing_resistant\"\n";
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", rule);
    let mut first = Client::login(gw.port, "dr.martin", "martin-demo");
    let (_, codes) = enroll_totp(&mut first, None);
    let mut r = recovery_session(&gw, "dr.martin", "martin-demo", &codes[0]);
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut r, &gw, &mut key).status, 200);
    // Signed in with it: the second-factor level, not the passkey level a code sheet
    // must never reach (threat model 22).
    let mut d = Client::login(gw.port, "dr.martin", "martin-demo");
    let answer = passkey_sign_in(&mut d, &gw, &mut key);
    assert_eq!(
        d.post_json("/.vigie/passkey/auth/finish", &answer).status,
        200
    );
    assert!(d.opens_patient());
    let export = d.get(EXPORT);
    assert_eq!(export.status, 303, "{}", export.text());
    assert!(location(&export).starts_with("/.vigie/factor"));
}

#[test]
fn a_privileged_account_replaces_a_lost_device_only_with_an_invitation() {
    let portal = start_portal();
    let pack = "[second_factor]\nenrollment = \"open\"\nprivileged_groups = [\"admin\"]\n";
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", pack);
    let mut first = Client::login(gw.port, "admin", "admin-demo");
    let (_, codes) = enroll_totp(&mut first, Some(&invite(&gw, "admin")));
    let mut r = recovery_session(&gw, "admin", "admin-demo", &codes[0]);
    assert!(r.opens_patient(), "the code still signs in");
    let account = r.get("/.vigie/account");
    assert!(
        account.text().contains("id=\"privileged-lost\""),
        "{}",
        account.text()
    );
    assert!(
        !account.text().contains("replace-lost-app"),
        "{}",
        account.text()
    );
    assert_eq!(r.get("/.vigie/enroll/totp").status, 303);
    let start = r.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 403);
    assert!(factors_of(&gw, "admin")["probation"].is_null());
}

#[test]
fn the_users_passkey_takes_back_an_app_replaced_with_a_recovery_code() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let (_, codes, mut key) = app_and_key(&gw, "dr.martin", "martin-demo");
    // Someone with the password and a code replaces the app.
    let mut m = recovery_session(&gw, "dr.martin", "martin-demo", &codes[0]);
    let theirs = shown_secret(&m.get("/.vigie/enroll/totp"));
    let done = m.post_form("/.vigie/enroll/totp", &[("code", &code(&theirs, 1))]);
    assert_eq!(done.status, 303, "{}", done.text());
    let their_codes = listed_codes(&m.get(&location(&done)));
    assert_eq!(their_codes.len(), 10);
    // The user, with the passkey they had, sets up their app again.
    let mut u = Client::login(gw.port, "dr.martin", "martin-demo");
    let answer = passkey_sign_in(&mut u, &gw, &mut key);
    assert_eq!(
        u.post_json("/.vigie/passkey/auth/finish", &answer).status,
        200
    );
    // Their sessions end, their codes are replaced by the user's, the probation is over.
    new_app_with_codes(&mut u);
    assert!(
        crate::sessions::walled(&m.get(PATIENT)),
        "their session ended"
    );
    assert!(factors_of(&gw, "dr.martin")["probation"].is_null());
    let mut again = Client::login(gw.port, "dr.martin", "martin-demo");
    let stale = again.post_form("/.vigie/factor/recovery", &[("code", &their_codes[0])]);
    assert_eq!(stale.status, 200, "their codes are cancelled");
    assert!(gw
        .proc
        .stderr()
        .contains("VIGIE-RECOVERY-REPLACEMENT-UNDONE"));
}

#[test]
fn a_phished_app_code_that_undoes_a_replacement_gains_nothing_from_it() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let (app, codes, _lost) = app_and_key(&gw, "sec.bernard", "bernard-demo");
    // The user replaces a lost passkey with a recovery code.
    let mut user = recovery_session(&gw, "sec.bernard", "bernard-demo", &codes[0]);
    let mut new_key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut user, &gw, &mut new_key).status, 200);
    // Someone with the password and one phished app code removes it (the undo)…
    let mut m = Client::login(gw.port, "sec.bernard", "bernard-demo");
    let ok = m.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&app, 1)), ("return", PATIENT)],
    );
    assert_eq!(ok.status, 303);
    let account = m.get("/.vigie/account");
    let id = {
        let text = account.text();
        let start = text
            .find("?remove=")
            .expect("the key on probation is removable")
            + 8;
        let raw = text[start..].split('"').next().unwrap().to_string();
        form_urlencoded::parse(format!("id={raw}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    let undo = m.post_form("/.vigie/account/passkey/remove", &[("id", &id)]);
    assert_eq!(undo.status, 303, "{}", undo.text());
    // …but gets no codes, cannot add its own passkey, mint codes or replace the app.
    assert!(!location(&undo).starts_with("/.vigie/codes"));
    let add = m.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(add.status, 403);
    assert_eq!(m.post_form("/.vigie/account/codes", &[]).status, 403);
    assert_eq!(m.get("/.vigie/enroll/totp").status, 303);
    assert_eq!(factors_of(&gw, "sec.bernard")["recovery_codes_left"], 0);
    // Nor will a second phished code, in a new session once the passkeys are gone: the
    // disputed account's app is on probation, and proving a factor on probation changes
    // nothing until it ends or IT resets it (src/factors/rules/tests.rs: a new app proof
    // needs the next 30-second step, which this test does not wait for).
    let listed = factors_of(&gw, "sec.bernard");
    assert_eq!(listed["probation"]["kind"], "totp", "{listed}");
}

#[test]
fn a_passkey_the_user_adds_raises_the_bar_for_app_sessions_already_open() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", "");
    let mut user = Client::login(gw.port, "inf.durand", "durand-demo");
    let (app, _) = enroll_totp(&mut user, None);
    // Someone signs in with a phished app code while the user has no passkey…
    let mut m = Client::login(gw.port, "inf.durand", "durand-demo");
    let ok = m.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&app, 1)), ("return", PATIENT)],
    );
    assert_eq!(ok.status, 303);
    // …then the user adds one: that session may no longer remove it, add its own, or mint
    // codes.
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut user, &gw, &mut key).status, 200);
    assert!(!m.get("/.vigie/account").text().contains("?remove="));
    let answer = passkey_sign_in(
        &mut Client::login(gw.port, "inf.durand", "durand-demo"),
        &gw,
        &mut key,
    );
    let id = answer["credential"]["id"].as_str().unwrap().to_string();
    let remove = m.post_form("/.vigie/account/passkey/remove", &[("id", &id)]);
    assert_eq!(remove.status, 403, "{}", remove.text());
    let add = m.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(add.status, 403);
    assert_eq!(m.post_form("/.vigie/account/codes", &[]).status, 403);
    assert_eq!(
        factors_of(&gw, "inf.durand")["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
