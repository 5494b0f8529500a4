//! Detector step-ups a person can meet (issue 15): when the detector's score reaches the
//! step-up band, the factor page asks a signed-in, already verified user for a fresh proof
//! and sends them back to their page; without it the step-up keeps refusing, then holds.
//! The bands are lowered so that a scripted user agent alone (score 35) reaches the step-up
//! band and nothing more (the test's own speed is not scored).

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::detection::BROWSER;
use crate::mfa::*;

/// The test reads pages at machine speed; speed is not what these tests are about.
const BANDS: &str = "[detection.actions]\nalert = 20\nstep_up = 30\n[detection.weights]\nfast = 0.0\nmachine_timing = 0.0\n";
const SCRIPTED: &str = "User-Agent: python-requests/2.31\r\n";
const OTHER_PATIENT: &str = "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=18";

fn gateway(portal: &Portal, required: bool) -> Gateway {
    let factor = format!("enrollment = \"open\"\nrequired = {required}");
    mfa_gateway(portal, &factor, &format!("[detection]\n{BANDS}"))
}

/// A signed-in user who enrolled an app in an earlier session and has just proven a factor
/// (a recovery code) in this one: the level is met and the proof is seconds old.
fn verified_user(gw: &Gateway) -> (Client, Vec<u8>) {
    let mut first = Client::login(gw.port, "dr.martin", "martin-demo");
    first.headers = format!("User-Agent: {BROWSER}\r\n");
    let (secret, codes) = enroll_totp(&mut first, None);
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    c.headers = format!("User-Agent: {BROWSER}\r\n");
    let proof = c.post_form(
        "/.vigie/factor/recovery",
        &[("code", &codes[0]), ("return", PATIENT)],
    );
    assert_eq!(location(&proof), PATIENT, "{}", proof.text());
    assert!(c.opens_patient(), "a browser is not stepped up");
    (c, secret)
}

/// The detector's step-up: a 303 to the factor page that asks for a fresh proof.
fn stepped_up(c: &mut Client, target: &str) -> String {
    let r = c.get(target);
    assert_eq!(r.status, 303, "{}", r.text());
    let to = location(&r);
    assert!(to.starts_with("/.vigie/factor?return="), "{to}");
    to
}

#[test]
fn a_detector_step_up_asks_a_verified_user_for_a_fresh_code_then_returns_to_the_page() {
    let portal = start_portal();
    let gw = gateway(&portal, true);
    let (mut c, secret) = verified_user(&gw);
    c.headers = SCRIPTED.into();
    let prompt_url = stepped_up(&mut c, OTHER_PATIENT);
    // The level is met, yet the page asks for a code instead of sending the user back. Seeing
    // it (and the gateway's stylesheet) again and again is not a refused step-up.
    for _ in 0..12 {
        let prompt = c.get(&prompt_url);
        assert_eq!(prompt.status, 200, "{}", prompt.text());
        assert!(prompt.text().contains("action=\"/.vigie/factor/totp\""));
        assert!(
            prompt.text().contains("patient_id=18"),
            "the form keeps the page"
        );
        assert_eq!(c.get("/.vigie/vigie.css").status, 200);
    }
    // Without the flag (a hand-typed URL) the detector's own state still asks for a proof.
    let bare = c.get(&format!("/.vigie/factor?return={}", "%2Findex.php"));
    assert_eq!(
        bare.status, 200,
        "the pending step-up is known without the flag"
    );
    // A wrong code is a counted failure, answered by the prompt again.
    let wrong = c.post_form(
        "/.vigie/factor/totp",
        &[("code", wrong_code(&secret)), ("return", OTHER_PATIENT)],
    );
    assert_eq!(wrong.status, 200);
    assert!(page_text(&wrong).contains("Code incorrect"));
    assert_eq!(c.get(OTHER_PATIENT).status, 303, "still stepped up");
    // A fresh code: back to the very page, which now opens.
    let done = c.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&secret, 1)), ("return", OTHER_PATIENT)],
    );
    assert_eq!(done.status, 303, "{}", done.text());
    assert_eq!(location(&done), OTHER_PATIENT);
    // The score stays in the step-up band (same agent), but the proof is newer than the
    // step-up: the user goes on, well past the refusal limit, and is never held.
    for _ in 0..15 {
        let page = c.get(OTHER_PATIENT);
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(page.text().contains("data-patient-id=\"18\""));
    }
    let log = gw.proc.stderr();
    assert!(!log.contains(&code(&secret, 1)), "a code reached the log");
}

#[test]
fn without_a_fresh_proof_the_step_up_keeps_refusing_and_then_holds() {
    let portal = start_portal();
    let gw = gateway(&portal, true);
    let (mut c, _secret) = verified_user(&gw);
    c.headers = SCRIPTED.into();
    let prompt_url = stepped_up(&mut c, PATIENT);
    assert_eq!(c.get(&prompt_url).status, 200);
    // Other methods are refused outright.
    let post = c.post_form("/index.php?m=dPpatients", &[("x", "1")]);
    assert_eq!(post.status, 401);
    // The proof seconds old cannot be turned into new recovery codes (one would then meet
    // the step-up): the settings want a proof newer than the step-up first.
    let codes = c.post_form("/.vigie/account/codes", &[]);
    assert_eq!(codes.status, 303);
    assert!(
        location(&codes).starts_with("/.vigie/factor?"),
        "{}",
        location(&codes)
    );
    assert!(location(&codes).ends_with("&fresh=1"));
    // Someone who cannot prove a factor keeps going: refused each time, then held.
    let mut refused = 0;
    let held = loop {
        let r = c.get(PATIENT);
        match r.status {
            303 => refused += 1,
            403 if r.header("x-vigie-held").is_some() => break r,
            other => panic!("unexpected {other}: {}", r.text()),
        }
        assert!(refused <= 10, "never held");
    };
    assert!(refused >= 5, "held after {refused} refusals only");
    assert!(held.header("x-vigie-held").is_some());
}

#[test]
fn a_user_without_any_factor_is_told_and_cannot_enroll_one_to_meet_the_step_up() {
    let portal = start_portal();
    // Optional second factor: the user works on the portal with the password alone.
    let gw = gateway(&portal, false);
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    c.headers = format!("User-Agent: {BROWSER}\r\n");
    assert!(c.opens_patient());
    c.headers = SCRIPTED.into();
    let prompt_url = stepped_up(&mut c, PATIENT);
    // Nothing to prove: a page that says so, not a bounce back to be refused again.
    let page = c.get(&prompt_url);
    assert_eq!(page.status, 403);
    assert!(page_text(&page).contains("Vérification impossible"));
    // A session the detector doubts cannot bind its own factor to meet the step-up.
    assert_eq!(c.get("/.vigie/enroll").status, 403);
    assert_eq!(c.get("/.vigie/enroll/totp").status, 303);
    let start = c.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 403);
    // The step-up stays pending, and ends in a hold as before.
    let held = (0..12).find_map(|_| {
        let r = c.get(PATIENT);
        (r.status == 403).then_some(r)
    });
    assert!(held.is_some_and(|r| r.header("x-vigie-held").is_some()));
    assert!(gw.proc.stderr().contains("step_up_unprovable"));
}

#[test]
fn break_glass_does_not_lift_a_pending_step_up_without_a_newer_proof() {
    let portal = start_portal();
    let gw = gateway(&portal, true);
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    c.headers = format!("User-Agent: {BROWSER}\r\n");
    enroll_totp(&mut c, None);
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    assert_eq!(register_passkey(&mut c, &gw, &mut key).status, 200);
    // A passkey seconds ago: break-glass's own requirement is met...
    let here = "/.vigie/break-glass?return=%2Findex.php";
    let mut sign_in = |c: &mut Client| {
        let mut answer = passkey_sign_in(c, &gw, &mut key);
        answer["return"] = here.into();
        let signed = c.post_json("/.vigie/passkey/auth/finish", &answer);
        assert_eq!(signed.status, 200, "{}", signed.text());
    };
    sign_in(&mut c);
    // ...but break-glass lifts step-ups, so once the detector asks for one it wants newer.
    c.headers = SCRIPTED.into();
    stepped_up(&mut c, PATIENT);
    let ask = c.get(here);
    assert_eq!(ask.status, 303, "{}", ask.text());
    assert!(location(&ask).ends_with("&fresh=1"), "{}", location(&ask));
    let reason = "Arrêt cardiaque en salle 12, dossier requis";
    let on = c.post_form(
        "/.vigie/break-glass",
        &[("reason", reason), ("return", PATIENT)],
    );
    assert!(
        location(&on).starts_with("/.vigie/factor?"),
        "{}",
        on.text()
    );
    assert_eq!(c.get(PATIENT).status, 303, "still stepped up");
    sign_in(&mut c);
    assert_eq!(c.get(here).status, 200, "a newer proof opens the form");
}

#[test]
fn the_socs_step_up_asks_every_open_session_for_a_new_code_and_its_codes_wait_for_it() {
    let portal = start_portal();
    let gw = gateway(&portal, true);
    // The user enrolls an app in this very session (its codes made, not looked at again).
    let mut c = Client::login(gw.port, "dr.martin", "martin-demo");
    c.headers = format!("User-Agent: {BROWSER}\r\n");
    let (secret, _) = enroll_totp(&mut c, None);
    assert!(c.opens_patient());
    let sessions = || {
        crate::detection::admin_api(gw.admin_port, "GET", "/api/sessions?user=dr.martin")
            ["sessions"]
            .as_array()
            .unwrap()
            .clone()
    };
    // New recovery codes, not looked at yet.
    let made = c.post_form("/.vigie/account/codes", &[]);
    assert_eq!(made.status, 303, "{}", made.text());
    assert!(
        location(&made).starts_with("/.vigie/codes"),
        "{}",
        location(&made)
    );
    let open = sessions().len();
    assert!(open >= 1);
    let asked = crate::detection::admin_api(
        gw.admin_port,
        "POST",
        "/api/sessions/step-up?user=dr.martin",
    );
    assert_eq!(asked["asked"], open, "every open session: {asked}");
    assert!(sessions().iter().all(|s| s["step_up_asked"] == true));
    // The level is met and the proof is seconds old, yet the page is not served.
    let to = stepped_up(&mut c, OTHER_PATIENT);
    let prompt = c.get(&to);
    assert_eq!(prompt.status, 200, "{}", prompt.text());
    assert!(prompt.text().contains("action=\"/.vigie/factor/totp\""));
    // Settings cannot be used to get round it either, nor the codes this session holds (a
    // stolen session would prove with one of them).
    let codes = c.post_form("/.vigie/account/codes", &[]);
    assert!(location(&codes).starts_with("/.vigie/factor?"));
    let shown = c.get("/.vigie/codes");
    assert_eq!(shown.status, 303, "{}", shown.text());
    assert!(
        location(&shown).starts_with("/.vigie/factor?"),
        "{}",
        location(&shown)
    );
    // Nor throw them away unread.
    let dropped = c.post_form("/.vigie/codes", &[("return", "/")]);
    assert!(
        location(&dropped).starts_with("/.vigie/factor?"),
        "{}",
        location(&dropped)
    );
    let done = c.post_form(
        "/.vigie/factor/totp",
        &[("code", &code(&secret, 1)), ("return", OTHER_PATIENT)],
    );
    assert_eq!(location(&done), OTHER_PATIENT, "{}", done.text());
    let page = c.get(OTHER_PATIENT);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(sessions().iter().any(|s| s["step_up_asked"] == false));
    // Once proven, the user reads the codes they made.
    let shown = c.get("/.vigie/codes");
    assert_eq!(shown.status, 200, "{}", shown.text());
    let trail = crate::audit::trail_when(gw.admin_port, "event=step_up_asked", |e| !e.is_empty());
    assert_eq!(trail["entries"][0]["user"], "dr.martin", "{trail}");
}
