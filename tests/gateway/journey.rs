//! The clinician's journey through the gateway's own pages, in Chromium, on a phone in French
//! and on a desktop in English: invitation (a wrong one first), authenticator setup (a wrong
//! code first, the code typed as the app shows it), recovery codes, the account page, a
//! refusal, and the held page on a shared workstation. Every page state passes axe-core's
//! WCAG 2.1 AA rules and reflows to 320 px; the language switch keeps what the page holds;
//! screenshots are saved (`$VIGIE_ARTIFACTS`).

use crate::cdp::Browser;
use crate::common::*;
use crate::mfa::*;
use crate::story::Story;

const HELP_DESK: &str = "poste 4455 (24 h/24)";

fn gateway(portal: &Portal) -> Gateway {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let section = format!(
        "[[portal]]\nname = \"ehr\"\ndisplay_name = \"Mediboard — CHU\"\nhelp_desk = \"{HELP_DESK}\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
        portal.port,
        profile.display()
    );
    let extra =
        format!("{GENEROUS_BUDGETS}[policy]\ntime_zone = \"Europe/Paris\"\n[second_factor]\n");
    start_gateway_with(&section, &extra)
}

/// The other language's code.
fn other(lang: &str) -> &'static str {
    if lang == "fr" {
        "en"
    } else {
        "fr"
    }
}

/// Follow the switch, check the page in the other language (at `path`: the page itself, or
/// the page a refused form was on, never the form replayed), and come back.
fn round_trip(s: &mut Story, lang: &str, name: &str, path: &str) {
    assert_eq!(s.switch_language(), other(lang), "{name}: switched");
    assert_eq!(s.path(), path, "{name}");
    let title = s.eval_str("document.title");
    assert!(!title.starts_with('4'), "{name}: {title}");
    s.check(&format!("{name}-{}", other(lang)));
    assert_eq!(s.switch_language(), lang, "{name}: switched back");
    assert_eq!(s.path(), path, "{name}");
}

fn journey(lang: &str, width: u32, height: u32, phone: bool) {
    let portal = start_portal();
    let gw = gateway(&portal);
    let base = format!("http://localhost:{}", gw.port);
    let b = Browser::launch().expect("chromium (scripts/install-deps installs it)");
    let mut s = Story::new(b);
    s.viewport(width, height, phone);
    s.language(lang, true);
    let tag = format!("{lang}-{width}");
    let fr = lang == "fr";

    // The portal's password, then the invitation; a wrong one first.
    s.portal_login(&base);
    assert_eq!(s.path(), "/.vigie/enroll");
    assert_eq!(s.lang(), lang);
    s.check(&format!("{tag}-invitation"));
    s.fill("#invitation", "abcd-efgh-jkmn");
    s.act("document.querySelector('form button[type=submit]').click()");
    s.focused("invitation");
    assert_eq!(
        s.eval_str("document.getElementById('invitation').getAttribute('aria-describedby')"),
        "form-error"
    );
    s.check(&format!("{tag}-invitation-refused"));
    // The refused form's page in the other language: its GET twin, not a 405.
    round_trip(
        &mut s,
        lang,
        &format!("{tag}-invitation-refused"),
        "/.vigie/enroll",
    );
    let invitation = invite(&gw, "dr.martin");
    s.fill("#invitation", &invitation);
    s.act("document.querySelector('form button[type=submit]').click()");
    s.check(&format!("{tag}-enroll-choice"));

    // The authenticator app: the secret survives the language switch.
    s.act("document.getElementById('choose-totp').click()");
    assert_eq!(s.path(), "/.vigie/enroll/totp");
    let secret_text =
        |s: &mut Story| s.eval_str("document.getElementById('totp-secret').textContent");
    let shown = secret_text(&mut s);
    let link_visible =
        s.b.eval("!!document.getElementById('otpauth-link').offsetParent")
            .unwrap();
    assert_eq!(
        link_visible,
        serde_json::json!(phone),
        "a tappable setup link on phones only"
    );
    s.check(&format!("{tag}-totp"));
    round_trip(&mut s, lang, &format!("{tag}-totp"), "/.vigie/enroll/totp");
    assert_eq!(
        secret_text(&mut s),
        shown,
        "the scanned QR code still works"
    );
    let b32: String = shown.split_whitespace().collect();
    let secret = totp_rs::Secret::Encoded(b32).to_bytes().unwrap();
    // A mistyped code: the gateway's message, tied to the field, which has the focus.
    s.fill("#code", "12 3456");
    s.act("document.querySelector('form button[type=submit]').click()");
    s.focused("code");
    assert_eq!(
        s.eval_str("document.getElementById('code').getAttribute('aria-invalid')"),
        "true"
    );
    let message = s.eval_str("document.getElementById('form-error').textContent");
    assert!(message.contains('6'), "{message}");
    s.check(&format!("{tag}-totp-refused"));
    round_trip(
        &mut s,
        lang,
        &format!("{tag}-totp-refused"),
        "/.vigie/enroll/totp",
    );
    assert_eq!(secret_text(&mut s), shown);
    // Typed as the app shows it.
    let typed = code(&secret, 0);
    s.fill("#code", &format!("{} {}", &typed[..3], &typed[3..]));
    s.act("document.querySelector('form button[type=submit]').click()");
    assert_eq!(s.path(), "/.vigie/codes");

    // The codes: one per line, none wrapped, none over another; kept through the switch.
    let codes_js =
        "[...document.querySelectorAll('#recovery-codes li')].map(li => li.textContent.trim())";
    let codes = s.b.eval(codes_js).unwrap();
    assert_eq!(codes.as_array().unwrap().len(), 10);
    let layout = s
        .b
        .eval(
            "(() => { const lis = [...document.querySelectorAll('#recovery-codes li')];
               const boxes = lis.map(li => li.getBoundingClientRect());
               const lines = lis.map(li => { const r = document.createRange(); r.selectNodeContents(li);
                 return new Set([...r.getClientRects()].map(q => Math.round(q.top))).size; });
               let overlaps = 0;
               for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                 const a = boxes[i], b = boxes[j];
                 if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
               }
               const list = document.getElementById('recovery-codes').getBoundingClientRect();
               const inside = boxes.every(b => b.right <= list.right + 0.5);
               const columns = new Set(boxes.map(b => Math.round(b.left))).size;
               return { overlaps, wrapped: lines.filter(n => n > 1).length, inside, columns }; })()",
        )
        .unwrap();
    assert_eq!(layout["overlaps"], 0, "{layout}");
    assert_eq!(layout["wrapped"], 0, "{layout}");
    assert_eq!(layout["inside"], true, "{layout}");
    assert_eq!(layout["columns"], if phone { 1 } else { 2 }, "{layout}");
    let print =
        s.b.eval("!document.getElementById('print-codes').hidden")
            .unwrap();
    assert_eq!(print, serde_json::json!(true), "a print button");
    s.check(&format!("{tag}-codes"));
    round_trip(&mut s, lang, &format!("{tag}-codes"), "/.vigie/codes");
    assert_eq!(s.b.eval(codes_js).unwrap(), codes, "the codes are kept");
    s.act("document.getElementById('codes-continue').click()");
    assert!(s.text().contains("dr.martin"), "the portal, signed in");

    // The account page, from the footer of the gateway's pages.
    s.b.navigate(&format!("{base}/.vigie/account")).unwrap();
    let added = s.eval_str("document.querySelector('main').innerText");
    let day = s.eval_str(if fr {
        "new Date().toLocaleDateString('fr-FR', { timeZone: 'Europe/Paris' })"
    } else {
        "new Date().toLocaleDateString('en-GB', { timeZone: 'Europe/Paris', day: 'numeric', month: 'long', year: 'numeric' })"
    });
    assert!(added.contains(&day), "a local date ({day}): {added}");
    s.check(&format!("{tag}-account"));

    // A refusal: a page that does not exist, with the ways out.
    s.b.navigate(&format!("{base}/.vigie/nothing-here"))
        .unwrap();
    assert!(s.text().contains(HELP_DESK));
    s.check(&format!("{tag}-not-found"));

    // Held for review after a bulk read (the same session, from a script): the page says
    // until when in local time, who to call, and lets the next colleague in.
    let cookie = s.session_cookie();
    let (_, held) = crate::detection::enumerate(gw.port, &cookie);
    assert_eq!(held.status, 403);
    s.b.navigate(&format!("{base}{PATIENT}")).unwrap();
    let text = s.text();
    assert!(text.contains(HELP_DESK), "{text}");
    let local = if fr { " à " } else { " at " };
    assert!(text.contains(local) && !text.contains("UTC"), "{text}");
    s.check(&format!("{tag}-held"));
    s.act("document.getElementById('sign-out').click()");
    s.b.navigate(&format!("{base}{PATIENT}")).unwrap();
    assert!(
        s.text().contains("Connexion"),
        "signed out: the portal's login page, not the held page: {}",
        s.text()
    );
    eprintln!("screenshots in {}", s.shots.display());
}

#[test]
fn a_clinician_on_a_phone_in_french_is_never_stranded() {
    journey("fr", 390, 844, true);
}

#[test]
fn a_clinician_on_a_desktop_in_english_is_never_stranded() {
    journey("en", 1280, 800, false);
}
