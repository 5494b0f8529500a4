//! The whole clinician story in a real browser: Debian's headless chromium driven over the
//! DevTools protocol, with a virtual WebAuthn authenticator, against the sample portal.
//! Log in with the portal password -> invitation -> enroll TOTP (code computed from the
//! secret the page shows) -> log out -> log in with TOTP -> add a passkey -> log out -> log
//! in with the passkey -> open a patient. Each page is saved as a screenshot.

use crate::cdp::Browser;
use crate::common::*;
use crate::mfa::*;
use crate::story::{artifacts, Story};

#[test]
fn a_clinician_enrolls_totp_then_a_passkey_and_signs_in_with_each_in_chromium() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "", "");
    let base = format!("http://localhost:{}", gw.port);
    let b = Browser::launch().expect("chromium (scripts/install-deps installs it)");
    let mut s = Story {
        b,
        shots: artifacts(),
        n: 0,
    };
    s.b.add_virtual_authenticator().unwrap();
    // A French hospital's workstation: the browser asks for French pages.
    s.french_workstation(false);

    // The portal's own login form; then the gateway asks for the invitation.
    s.portal_login(&base);
    assert_eq!(s.path(), "/.vigie/enroll");
    s.shot("invitation");
    let invitation = invite(&gw, "dr.martin");
    s.fill("#invitation", &invitation);
    s.act("document.querySelector('form button[type=submit]').click()");
    assert!(s.text().contains("Application d'authentification"));
    s.shot("enroll-choice");

    // TOTP: the code is computed from the secret the page shows.
    s.act("document.getElementById('choose-totp').click()");
    assert_eq!(s.path(), "/.vigie/enroll/totp");
    let has_qr = s.b.eval("!!document.querySelector('.qr svg')").unwrap();
    assert_eq!(has_qr, serde_json::json!(true), "the QR code is drawn");
    s.shot("totp-qr");
    let shown =
        s.b.eval("document.getElementById('totp-secret').textContent")
            .unwrap();
    let b32: String = shown.as_str().unwrap().split_whitespace().collect();
    let secret = totp_rs::Secret::Encoded(b32).to_bytes().unwrap();
    s.fill("#code", &code(&secret, 0));
    s.act("document.querySelector('form button[type=submit]').click()");
    assert_eq!(s.path(), "/.vigie/codes");
    let codes =
        s.b.eval("document.querySelectorAll('#recovery-codes li').length")
            .unwrap();
    assert_eq!(codes, serde_json::json!(10));
    s.shot("recovery-codes");
    s.act("document.getElementById('codes-continue').click()");
    assert!(s.text().contains("dr.martin"), "the portal, signed in");
    s.shot("portal-after-enrollment");
    s.portal_logout();

    // Log in again: the prompt asks for the app's code.
    s.portal_login(&base);
    assert_eq!(s.path(), "/.vigie/factor");
    s.shot("prompt-totp");
    s.fill("#code", &code(&secret, 1));
    s.act("document.querySelector('form[action$=totp] button').click()");
    assert!(s.text().contains("dr.martin"));

    // Add a passkey from the security settings (the virtual authenticator answers).
    s.b.navigate(&format!("{base}/.vigie/account")).unwrap();
    assert_eq!(s.path(), "/.vigie/account");
    s.shot("account");
    s.fill("#passkey-name", "Poste 3B");
    s.b.eval("document.getElementById('passkey-register').click()")
        .unwrap();
    s.b.wait_for(
        "document.body.innerText.includes('Poste 3B')",
        crate::cdp::TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("passkey registration: {e:#}"));
    s.shot("passkey-added");
    s.b.navigate(&format!("{base}/index.php")).unwrap();
    s.portal_logout();

    // Log in with the passkey, then open a patient.
    s.portal_login(&base);
    assert_eq!(s.path(), "/.vigie/factor");
    s.shot("prompt-passkey");
    s.act("document.getElementById('passkey-auth').click()");
    assert!(s.text().contains("dr.martin"), "{}", s.text());
    s.b.navigate(&format!("{base}{PATIENT}")).unwrap();
    let patient =
        s.b.eval("!!document.querySelector('[data-patient-id=\"17\"]')")
            .unwrap();
    assert_eq!(patient, serde_json::json!(true));
    s.shot("patient");

    // The English pages, through the switch.
    s.b.navigate(&format!("{base}/.vigie/account?lang=en"))
        .unwrap();
    assert!(s.text().contains("Account security"));
    s.shot("account-en");
    eprintln!("screenshots in {}", s.shots.display());
}

/// Records read quickly (ten pages a minute here) reach the step-up band and nothing more;
/// a pause between clicks is not what this test is about, so timing regularity is not scored.
const FAST_ROUND: &str = "[detection.thresholds]\npages_per_minute = 10\n[detection.weights]\nfast = 0.5\nmachine_timing = 0.0\n[detection.actions]\nalert = 20\nstep_up = 30\n";

fn patient_url(base: &str, id: u32) -> String {
    format!("{base}/index.php?m=dPpatients&tab=vw_full_patients&patient_id={id}")
}

/// The patient id of the record page on screen, if one is.
fn patient_on_screen(s: &mut Story) -> Option<String> {
    let id =
        s.b.eval("document.querySelector('[data-patient-id]')?.dataset.patientId ?? null")
            .unwrap();
    id.as_str().map(str::to_string)
}

#[test]
fn a_clinician_meets_a_detector_step_up_and_continues_in_chromium() {
    let portal = start_portal();
    let gw = mfa_gateway(&portal, "enrollment = \"open\"", FAST_ROUND);
    let base = format!("http://localhost:{}", gw.port);
    let b = Browser::launch().expect("chromium (scripts/install-deps installs it)");
    let mut s = Story {
        b,
        shots: artifacts(),
        n: 0,
    };
    // A ward workstation's browser: a headless agent would be scored as a script.
    s.french_workstation(true);

    // Signed in and verified: password, then an authenticator app.
    s.portal_login(&base);
    assert_eq!(s.path(), "/.vigie/enroll");
    s.act("document.getElementById('choose-totp').click()");
    let shown =
        s.b.eval("document.getElementById('totp-secret').textContent")
            .unwrap();
    let b32: String = shown.as_str().unwrap().split_whitespace().collect();
    let secret = totp_rs::Secret::Encoded(b32).to_bytes().unwrap();
    s.fill("#code", &code(&secret, 0));
    s.act("document.querySelector('form button[type=submit]').click()");
    assert_eq!(s.path(), "/.vigie/codes");
    s.act("document.getElementById('codes-continue').click()");
    assert!(s.text().contains("dr.martin"), "the portal, signed in");

    // The round: one record after another until the detector asks for a step-up.
    let ids = [17, 42, 8, 123, 56, 5, 230, 77, 290, 64, 199, 12];
    let mut stepped_at = None;
    for id in ids {
        s.b.navigate(&patient_url(&base, id)).unwrap();
        if s.path() == "/.vigie/factor" {
            stepped_at = Some(id);
            break;
        }
        assert_eq!(patient_on_screen(&mut s), Some(id.to_string()));
    }
    let id = stepped_at.expect("the detector asked for a step-up during the round");
    // The level is met, so only the detector asks; the page says why and wants a code.
    assert!(s.text().contains("Par sécurité"), "{}", s.text());
    s.shot("detector-step-up");
    s.fill("#code", &code(&secret, 1));
    s.act("document.querySelector('form[action$=totp] button').click()");
    // Back on the very record they were opening.
    assert_eq!(
        patient_on_screen(&mut s),
        Some(id.to_string()),
        "{}",
        s.text()
    );
    let search = s.b.eval("location.search").unwrap();
    assert!(search
        .as_str()
        .unwrap()
        .ends_with(&format!("patient_id={id}")));
    s.shot("after-step-up");
    // And the round goes on, at the same pace, without another prompt or a hold.
    for next in [233, 27, 88] {
        s.b.navigate(&patient_url(&base, next)).unwrap();
        assert_eq!(
            patient_on_screen(&mut s),
            Some(next.to_string()),
            "{}",
            s.text()
        );
    }
    eprintln!(
        "stepped up at patient {id}; screenshots in {}",
        s.shots.display()
    );
}
