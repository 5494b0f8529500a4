//! The SOC console in Chromium at 1280×800: an analyst signs in with a passkey (a virtual
//! authenticator over DevTools), sees the alert a scripted enumeration raised in the same
//! test, opens it, reads its evidence, acknowledges it and releases the hold; a DPO reads it
//! and finds no form to change it. Every page state passes axe-core's WCAG 2.1 AA rules and
//! reflows to 320 px; screenshots are saved (`$VIGIE_ARTIFACTS`), the README shows two.

use crate::cdp::Browser;
use crate::console::{raise, Soc, PASSWORD};
use crate::detection::admin_api;
use crate::story::Story;

/// Sign in at `base` as `name` with an invitation, registering the browser's passkey.
fn first_sign_in(s: &mut Story, soc: &Soc, base: &str, name: &str, tag: &str) {
    s.b.navigate(&format!("{base}/login")).unwrap();
    s.check(&format!("console-login-{tag}"));
    s.fill("#username", name);
    s.fill("#password", PASSWORD);
    s.act("document.querySelector('form[action=\"/login\"] button[type=submit]').click()");
    assert_eq!(s.path(), "/passkey", "{}", s.text());
    s.check(&format!("console-invitation-{tag}"));
    s.fill("#code", &soc.invitation(name));
    s.act("document.querySelector('form[action=\"/passkey/invitation\"] button').click()");
    assert_eq!(s.path(), "/passkey");
    assert!(s
        .b
        .eval("!!document.getElementById('passkey-register')")
        .unwrap()
        .as_bool()
        .unwrap());
    s.check(&format!("console-register-{tag}"));
    s.act("document.getElementById('passkey-register').click()");
    assert_eq!(s.path(), "/", "{}", s.text());
}

#[test]
fn an_analyst_triages_in_the_browser_and_a_dpo_only_reads() {
    let soc = Soc::start("[policy]\ntime_zone = \"Europe/Paris\"\n");
    let id = raise(&soc);
    soc.user("ana.soc", "soc");
    soc.user("dora.dpo", "dpo");
    let base = soc.origin();

    let b = Browser::launch().expect("chromium (scripts/install-deps installs it)");
    let mut s = Story::new(b);
    s.b.add_virtual_authenticator().unwrap();
    s.viewport(1280, 800, false);
    s.language("en", true);
    first_sign_in(&mut s, &soc, &base, "ana.soc", "en");
    let queue = s.text();
    assert!(
        queue.contains("Alert queue") && queue.contains("dr.martin"),
        "{queue}"
    );
    assert!(
        queue.contains("New\n1") || queue.contains("New 1"),
        "{queue}"
    );
    s.check("console-queue");

    s.act(&format!(
        "document.querySelector('a[href=\"/alerts/{id}\"]').click()"
    ));
    let page = s.text();
    for needle in [
        "Evidence",
        "Observed",
        "Threshold",
        "Release the hold",
        "This user's sessions",
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    s.check("console-alert");
    s.fill("#note-acknowledged", "Called the ward: not a ward round");
    s.act("document.querySelector('#note-acknowledged').form.querySelector('button').click()");
    assert!(s.text().contains("Status updated"), "{}", s.text());
    assert!(
        s.text().contains("Called the ward"),
        "the note in the history"
    );
    s.act("document.querySelector('form[action$=\"/release\"] input[name=confirm]').click(); document.querySelector('form[action$=\"/release\"] button').click()");
    assert!(s.text().contains("Hold released"), "{}", s.text());
    s.check("console-alert-after");
    assert!(admin_api(soc.gw.admin_port, "GET", "/api/holds")["holds"]
        .as_array()
        .unwrap()
        .is_empty());

    // French, the default: the same queue.
    s.act("document.querySelector('a.lang').click()");
    assert_eq!(s.lang(), "fr");
    s.act("document.querySelector('a[href=\"/\"]').click()");
    assert!(s.text().contains("File des alertes"), "{}", s.text());
    s.check("console-queue-fr");
    drop(s);

    // The DPO: reads the alert, changes nothing, and the holds page is not theirs.
    let b = Browser::launch().unwrap();
    let mut d = Story::new(b);
    d.b.add_virtual_authenticator().unwrap();
    d.viewport(1366, 768, false);
    d.language("en", true);
    first_sign_in(&mut d, &soc, &base, "dora.dpo", "dpo");
    d.b.navigate(&format!("{base}/alerts/{id}")).unwrap();
    let page = d.text();
    assert!(page.contains("Evidence"), "{page}");
    // Her one form: the re-identification, with a reason; nothing that changes the alert.
    let forms =
        d.b.eval("[...document.querySelectorAll('main form')].map(f => f.getAttribute('action'))")
            .unwrap();
    assert_eq!(
        forms,
        serde_json::json!([format!("/alerts/{id}/reidentify")]),
        "{page}"
    );
    d.check("console-alert-dpo");
    d.fill(
        "#reason",
        "Data-breach notification: patients to be informed",
    );
    d.act("document.querySelector('form[action$=\"/reidentify\"] input[name=confirm]').click(); document.querySelector('form[action$=\"/reidentify\"] button').click()");
    let shown = d.text();
    assert!(
        shown.contains("Re-identification recorded in your name"),
        "{shown}"
    );
    assert!(
        shown.to_lowercase().contains("patient id") && shown.contains("p-"),
        "{shown}"
    );
    d.check("console-reidentified");
    let trail = crate::audit::trail_when(soc.gw.admin_port, "event=patients_reidentified", |e| {
        !e.is_empty()
    });
    assert_eq!(trail["entries"][0]["user"], "dora.dpo", "{trail}");
    d.b.navigate(&format!("{base}/holds")).unwrap();
    assert!(d.text().contains("Not allowed"), "{}", d.text());
    eprintln!("screenshots in {}", d.shots.display());
}
