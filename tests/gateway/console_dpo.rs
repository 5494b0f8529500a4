//! The SOC console after the red team (an analyst locked or disabled leaves at once, links
//! cannot speak for the console, names that are not names stay out of the trail, invitation
//! codes cannot be guessed) and the DPO's re-identification of an alert's patients.

use std::process::Command;

use crate::common::*;
use crate::console::{form_token, raise, Browser, Soc, PASSWORD};
use crate::detection::{admin_api, wait_for};

/// After the red team: an account locked or disabled leaves the console at once; redirects
/// stay on the console; a link cannot make the console say words of its own; a name that is
/// not a name never reaches the trail; invitation codes cannot be guessed for ever.
#[test]
fn locked_or_disabled_analysts_leave_at_once_and_links_cannot_speak_for_the_console() {
    let soc = Soc::start("");
    let id = raise(&soc);
    let mut ana = soc.analyst("ana.soc", "soc");
    let mut ivan = soc.analyst("ivan.it", "it");
    assert_eq!(ana.get("/").status, 200);

    // Words of someone else's in a link: not shown; `n` is a number or nothing.
    let page = ana.get(&format!(
        "/alerts/{id}?lang=en&problem=Call+the+SOC+hotline&done=revoke&n=give+your+password"
    ));
    let text = page.text();
    // What the page says (the language link in the header carries the address, escaped).
    let main = &text[text.find("<main").unwrap()..text.find("</main>").unwrap()];
    assert!(
        !main.contains("hotline") && !main.contains("give your password"),
        "{main}"
    );
    assert!(main.contains("Sessions ended: 0."), "{main}");

    // Redirects stay on the console, whatever a browser would strip.
    for back in [
        "/%09/evil.example",
        "/%0a",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
    ] {
        let r = ana.get(&format!("/lang?set=en&return={back}"));
        assert_eq!((r.status, r.header("location")), (303, Some("/")), "{back}");
    }

    // An assignee is a user name.
    let csrf = form_token(&ana.get(&format!("/alerts/{id}")));
    let r = ana.post_form(
        &format!("/alerts/{id}/assign"),
        &[("csrf", &csrf), ("to", "bob\u{1b}[2J")],
    );
    assert!(
        r.header("location").unwrap().ends_with("problem=refused"),
        "{:?}",
        r.headers
    );

    // Locked by IT: her open session ends, and she cannot sign in again.
    admin_api(
        soc.gw.admin_port,
        "POST",
        "/api/users/lock?user=ana.soc&reason=poste%20vol%C3%A9",
    );
    assert_eq!(ana.get("/").header("location"), Some("/login"));
    let mut again = Browser::new(soc.console, &soc.origin());
    assert_eq!(again.sign_in("ana.soc", PASSWORD).status, 401);
    // Disabled: the same for IT's analyst.
    assert_eq!(ivan.get("/sessions").status, 200);
    let out = Command::new(VIGIE)
        .args([
            "user",
            "-c",
            soc.gw.config.to_str().unwrap(),
            "disable",
            "ivan.it",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(ivan.get("/sessions").header("location"), Some("/login"));
    // The trail's writer has its own thread.
    wait_for("both sessions' ends in the trail", || {
        let trail = admin_api(
            soc.gw.admin_port,
            "GET",
            "/api/audit?event=console_session_ended",
        );
        (trail["entries"].as_array().unwrap().len() == 2).then_some(())
    });

    // A password typed as the name: refused, and not in the trail.
    let mut typo = Browser::new(soc.console, &soc.origin());
    assert_eq!(
        typo.sign_in("correct horse battery staple", "x").status,
        401
    );
    let logins = admin_api(
        soc.gw.admin_port,
        "GET",
        "/api/audit?event=console_login&limit=50",
    );
    assert!(!logins.to_string().contains("horse"), "{logins}");

    // Five wrong invitation codes, then even the right one is refused.
    soc.user("nina.soc", "soc");
    let mut nina = Browser::new(soc.console, &soc.origin());
    nina.sign_in("nina.soc", PASSWORD);
    let csrf = form_token(&nina.get("/passkey"));
    let code = soc.invitation("nina.soc");
    for _ in 0..5 {
        let r = nina.post_form(
            "/passkey/invitation",
            &[("csrf", &csrf), ("code", "AAAA-BBBB-CCCC")],
        );
        assert_eq!(r.status, 400);
    }
    let r = nina.post_form("/passkey/invitation", &[("csrf", &csrf), ("code", &code)]);
    assert_eq!(r.status, 400, "guessing stops after five");
}

/// A DPO turns an alert's pseudonyms back into the portal's patient ids, with a reason: the
/// answer lists them once, the history, the trail and the SOC's queue say it happened, and
/// nobody else can.
#[test]
fn a_dpo_re_identifies_with_a_reason_and_nobody_else_can() {
    let soc = Soc::start("");
    let id = raise(&soc);
    let mut dora = soc.analyst("dora.dpo", "dpo");
    let mut ana = soc.analyst("ana.soc", "soc");
    let alert = format!("/alerts/{id}");

    // The timeline: the enumeration's requests, paths masked, each with its patient.
    let page = dora.get(&format!("{alert}?lang=en"));
    let text = page.text();
    assert!(text.contains("Activity around the alert"), "{text}");
    assert!(text.contains("GET &#x2f;index.php"), "{text}");
    assert!(!text.contains("patient_id="), "no query in the timeline");
    assert!(text.contains("/reidentify\""), "the DPO's form");
    assert!(
        !ana.get(&alert).text().contains("/reidentify\""),
        "not the SOC's"
    );

    let csrf = form_token(&ana.get(&alert));
    let r = ana.post_form(
        &format!("{alert}/reidentify"),
        &[
            ("csrf", &csrf),
            ("reason", "just curious, sorry"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(r.status, 403);
    let csrf = form_token(&dora.get(&alert));
    let r = dora.post_form(
        &format!("{alert}/reidentify"),
        &[("csrf", &csrf), ("reason", "short"), ("confirm", "yes")],
    );
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("problem=reason_needed"));
    const REASON: &str = "Notification CNIL : violation de données, patients à informer";
    let r = dora.post_form(
        &format!("{alert}/reidentify"),
        &[("csrf", &csrf), ("reason", REASON), ("confirm", "yes")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    for raw_id in ["<td class=\"mono\">1</td>", "<td class=\"mono\">2</td>"] {
        assert!(text.contains(raw_id), "{raw_id}: {text}");
    }
    assert!(
        text.contains("<td class=\"mono\">p-"),
        "each with its pseudonym"
    );

    let shown = admin_api(
        soc.gw.admin_port,
        "GET",
        &format!("/api/alerts/show?id={id}"),
    );
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["analyst"], "dora.dpo");
    assert!(last["after"]
        .as_str()
        .unwrap()
        .starts_with("patients re-identified: "));
    assert_eq!(
        last["note"], REASON,
        "the reason kept (sealed) with the alert"
    );
    let trail = crate::audit::trail_when(soc.gw.admin_port, "event=patients_reidentified", |e| {
        !e.is_empty()
    });
    assert_eq!(trail["entries"][0]["user"], "dora.dpo");
    wait_for("the SOC is told", || {
        let q = admin_api(soc.gw.admin_port, "GET", "/api/alerts?rule=VIGIE-SOC-001");
        (q["alerts"][0]["user"]["name"] == "dora.dpo").then_some(())
    });
    let log = soc.gw.proc.stderr();
    assert!(
        !log.contains("CNIL") && !trail.to_string().contains("CNIL"),
        "no reason in logs"
    );
}
