//! The SOC console over real HTTP: analysts (local users in console roles) sign in with a
//! password and a passkey of the console's own relying party (a software authenticator), an
//! alert raised by a real enumeration is triaged and acted on from its page, and every role
//! meets exactly the pages and forms it may use.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::detection::{admin_api, enumerate, portal_section, wait_for};
use crate::passthrough::{cookie_set, submit_login};

pub const PASSWORD: &str = "correct horse battery staple";

/// A gateway in front of the sample portal with a console on its own port.
pub struct Soc {
    pub gw: Gateway,
    pub console: u16,
    _portal: Portal,
}

impl Soc {
    pub fn start(extra: &str) -> Soc {
        let portal = start_portal();
        let console = free_port();
        let gw = start_gateway_with(
            &portal_section(&portal),
            &format!("{GENEROUS_BUDGETS}\n[console]\naddress = \"127.0.0.1:{console}\"\n{extra}\n"),
        );
        assert!(port_up(console), "no console:\n{}", gw.proc.stderr());
        Soc {
            gw,
            console,
            _portal: portal,
        }
    }

    /// A local user in `groups`.
    pub fn user(&self, name: &str, groups: &str) {
        let mut child = Command::new(VIGIE)
            .args([
                "user",
                "-c",
                self.gw.config.to_str().unwrap(),
                "add",
                name,
                "--groups",
                groups,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.console)
    }

    /// A console invitation from the admin API.
    pub fn invitation(&self, name: &str) -> String {
        let v = admin_api(
            self.gw.admin_port,
            "POST",
            &format!("/api/console/invite?user={name}"),
        );
        v["invitation"].as_str().unwrap().to_string()
    }

    /// `name` (in `groups`) signed in with a new passkey: the browser-side session.
    pub fn analyst(&self, name: &str, groups: &str) -> Browser {
        self.user(name, groups);
        let mut b = Browser::new(self.console, &self.origin());
        let after = b.sign_in(name, PASSWORD);
        assert_eq!(
            after.header("location"),
            Some("/passkey"),
            "{}",
            after.text()
        );
        let page = b.get("/passkey");
        let csrf = form_token(&page);
        let code = self.invitation(name);
        let r = b.post_form("/passkey/invitation", &[("csrf", &csrf), ("code", &code)]);
        assert_eq!(r.status, 303, "{}", r.text());
        let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
        let start = b.post_json("/passkey/register/start", &serde_json::json!({}));
        assert_eq!(start.status, 200, "{}", start.text());
        let origin = webauthn_rs::prelude::Url::parse(&self.origin()).unwrap();
        let answer = key
            .do_registration(origin, serde_json::from_slice(&start.body).unwrap())
            .unwrap();
        let done = b.post_json(
            "/passkey/register/finish",
            &serde_json::json!({ "name": "YubiKey SOC", "return": "/", "credential": answer }),
        );
        assert_eq!(done.status, 200, "{}", done.text());
        b.key = Some(key);
        b
    }
}

/// The hidden `csrf` field of a page's first form.
pub fn form_token(page: &Response) -> String {
    let text = page.text();
    let at = text
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token");
    text[at + 19..].split('"').next().unwrap().to_string()
}

/// A browser as far as the console cares: cookies, its origin on every POST.
pub struct Browser {
    pub port: u16,
    pub origin: String,
    pub jar: HashMap<String, String>,
    pub key: Option<WebauthnAuthenticator<SoftPasskey>>,
}

impl Browser {
    pub fn new(port: u16, origin: &str) -> Browser {
        Browser {
            port,
            origin: origin.to_string(),
            jar: HashMap::new(),
            key: None,
        }
    }

    fn send(&mut self, head: String, body: &[u8]) -> Response {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cookie = match cookies.is_empty() {
            true => String::new(),
            false => format!("Cookie: {}\r\n", cookies.join("; ")),
        };
        let mut req = format!(
            "{head}Host: localhost:{}\r\n{cookie}Connection: close\r\n\r\n",
            self.port
        )
        .into_bytes();
        req.extend_from_slice(body);
        let r = raw(self.port, &req).expect("the console answers");
        for (k, v) in &r.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                match value.is_empty() {
                    true => self.jar.remove(name),
                    false => self.jar.insert(name.to_string(), value.to_string()),
                };
            }
        }
        r
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send(format!("GET {target} HTTP/1.1\r\n"), b"")
    }

    pub fn post_form(&mut self, target: &str, form: &[(&str, &str)]) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let head = format!(
            "POST {target} HTTP/1.1\r\nOrigin: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            self.origin,
            body.len()
        );
        self.send(head, body.as_bytes())
    }

    pub fn post_json(&mut self, target: &str, v: &serde_json::Value) -> Response {
        let body = v.to_string();
        let head = format!(
            "POST {target} HTTP/1.1\r\nOrigin: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.origin,
            body.len()
        );
        self.send(head, body.as_bytes())
    }

    /// The login form, then the password.
    pub fn sign_in(&mut self, user: &str, password: &str) -> Response {
        let page = self.get("/login");
        assert_eq!(page.status, 200, "{}", page.text());
        let csrf = form_token(&page);
        self.post_form(
            "/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
    }

    /// A page's `csrf` (forms of a signed-in page all carry the session's).
    pub fn token(&mut self, target: &str) -> String {
        let page = self.get(target);
        assert_eq!(page.status, 200, "{target}: {}", page.text());
        form_token(&page)
    }
}

/// An alert raised by a real enumeration of dr.martin's, the user held; its id.
pub fn raise(soc: &Soc) -> String {
    let cookie = cookie_set(
        &submit_login(soc.gw.port, "dr.martin", "martin-demo", None),
        "vigie",
    )
    .unwrap();
    let (_, held) = enumerate(soc.gw.port, &cookie);
    let id = held.header("x-vigie-held").unwrap().to_string();
    wait_for("the alert in the store", || {
        let stored = admin_api(soc.gw.admin_port, "GET", "/api/alerts?limit=50");
        stored["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["event"]["id"] == id.as_str())
            .then_some(())
    });
    id
}

#[test]
fn an_analyst_signs_in_with_a_passkey_triages_an_alert_and_releases_the_hold_from_its_page() {
    let soc = Soc::start("");
    let id = raise(&soc);
    let mut ana = soc.analyst("ana.soc", "soc");

    let queue = ana.get("/?lang=en");
    assert_eq!(queue.status, 200, "{}", queue.text());
    let text = queue.text();
    assert!(text.contains(&format!("/alerts/{id}")), "{text}");
    // The queue says when it changed (its own script polls a stamp), it never reloads itself.
    assert!(!text.contains("http-equiv=\"refresh\""));
    let stamp = |b: &mut Browser| {
        let r = b.get("/queue/state");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    let before = stamp(&mut ana);
    assert!(text.contains(&format!(
        "data-stamp=\"{}\"",
        before["stamp"].as_str().unwrap()
    )));
    assert_eq!(before["new"], 1);
    let csp = queue.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    let none = ana.get("/?status=closed&lang=en");
    assert!(
        !none.text().contains(&format!("/alerts/{id}")),
        "filtered out"
    );
    assert!(ana
        .get("/?statut=x&lang=en")
        .text()
        .contains("unknown filter"));

    let page = ana.get(&format!("/alerts/{id}?lang=en"));
    let text = page.text();
    for needle in [
        "Sequential",
        "dr.martin",
        "<svg class=\"chart\"",
        "Release the hold",
        "Acknowledge",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let csrf = form_token(&page);
    let ack = |b: &mut Browser, from: &str| {
        b.post_form(
            &format!("/alerts/{id}/status"),
            &[
                ("csrf", &csrf),
                ("from", from),
                ("to", "acknowledged"),
                ("note", "j'appelle le cadre de santé"),
            ],
        )
    };
    let done = ack(&mut ana, "new");
    assert_eq!(
        done.header("location"),
        Some(&*format!("/alerts/{id}?done=status"))
    );
    let after = stamp(&mut ana);
    assert_ne!(after["stamp"], before["stamp"], "a change moves the stamp");
    assert_eq!(after["new"], 0);
    // Replayed from the page as it was: a conflict, not an overwrite.
    let again = ack(&mut ana, "new");
    assert_eq!(
        again.header("location"),
        Some(&*format!("/alerts/{id}?problem=conflict"))
    );
    let shown = admin_api(
        soc.gw.admin_port,
        "GET",
        &format!("/api/alerts/show?id={id}"),
    );
    assert_eq!(shown["alert"]["vigie"]["triage"]["status"], "acknowledged");
    assert_eq!(
        shown["history"][0]["analyst"], "ana.soc",
        "recorded in her name"
    );
    assert_eq!(shown["history"][0]["note"], "j'appelle le cadre de santé");

    // The hold: not released without the confirmation, released with it.
    let release = format!("/alerts/{id}/release");
    let r = ana.post_form(&release, &[("csrf", &csrf)]);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("problem=confirm_needed"));
    assert_eq!(
        admin_api(soc.gw.admin_port, "GET", "/api/holds")["holds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = ana.post_form(&release, &[("csrf", &csrf), ("confirm", "yes")]);
    assert!(
        r.header("location").unwrap().ends_with("done=release"),
        "{:?}",
        r.headers
    );
    assert_eq!(
        admin_api(soc.gw.admin_port, "GET", "/api/holds")["holds"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let shown = admin_api(
        soc.gw.admin_port,
        "GET",
        &format!("/api/alerts/show?id={id}"),
    );
    assert_eq!(shown["history"][1]["after"], "hold released");
    let trail =
        crate::audit::trail_when(soc.gw.admin_port, "event=hold_released", |e| !e.is_empty());
    assert_eq!(trail["entries"][0]["user"], "ana.soc", "{trail}");
    assert_eq!(trail["entries"][0]["fields"]["of_user"], "dr.martin");

    // Signed out: the session is gone.
    let csrf = ana.token("/");
    let out = ana.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(out.header("location"), Some("/login"));
    assert_eq!(ana.get("/").header("location"), Some("/login"));
}

#[test]
fn a_password_alone_opens_nothing_and_forged_or_foreign_forms_are_refused() {
    let soc = Soc::start("");
    soc.user("ana.soc", "soc");
    let mut b = Browser::new(soc.console, &soc.origin());
    let r = b.sign_in("ana.soc", PASSWORD);
    assert_eq!(r.header("location"), Some("/passkey"));
    let pre = b.jar.clone();
    for target in ["/", "/holds", "/alerts/0000000000000000"] {
        let page = b.get(target);
        assert!(
            page.text().contains("passkey/invitation"),
            "{target}: the passkey step first"
        );
    }
    let csrf = form_token(&b.get("/passkey"));
    let r = b.post_form(
        "/alerts/x/status",
        &[("csrf", &csrf), ("from", "new"), ("to", "closed")],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    // No registration without an invitation.
    let r = b.post_json("/passkey/register/start", &serde_json::json!({}));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = b.post_form(
        "/passkey/invitation",
        &[("csrf", &csrf), ("code", "AAAA-BBBB-CCCC")],
    );
    assert_eq!(r.status, 400);

    // Another site's page posting with the analyst's cookies, or a form without the token.
    let mut evil = Browser::new(soc.console, "https://evil.example");
    evil.jar = pre.clone();
    let r = evil.post_form("/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 403);
    let r = b.post_form("/logout", &[("csrf", "not-the-token")]);
    assert_eq!(r.status, 403);

    // A login form posted without its own token is refused too.
    let mut fresh = Browser::new(soc.console, &soc.origin());
    let r = fresh.post_form("/login", &[("username", "ana.soc"), ("password", PASSWORD)]);
    assert_eq!(r.status, 403);

    // Five wrong passwords: the right one waits too.
    for _ in 0..5 {
        assert_eq!(fresh.sign_in("ana.soc", "wrong password!").status, 401);
    }
    assert_eq!(fresh.sign_in("ana.soc", PASSWORD).status, 401, "throttled");
    // The trail's writer has its own thread: wait for the last refusal to be written.
    let outcomes: Vec<String> = wait_for("the throttled sign-in in the trail", || {
        let trail = admin_api(
            soc.gw.admin_port,
            "GET",
            "/api/audit?event=console_login&limit=20",
        );
        let outcomes: Vec<String> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fields"]["outcome"].as_str().unwrap().to_string())
            .collect();
        outcomes
            .iter()
            .any(|o| o == "throttled")
            .then_some(outcomes)
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == "failure").count(),
        5,
        "{outcomes:?}"
    );
    // Someone with a password and no console role is not let in.
    soc.user("dr.nobody", "clinicians");
    let mut c = Browser::new(soc.console, &soc.origin());
    assert_eq!(c.sign_in("dr.nobody", PASSWORD).status, 401);
}

#[test]
fn each_role_reaches_its_pages_and_forms_and_nothing_else() {
    let soc = Soc::start("");
    let id = raise(&soc);
    let mut dpo = soc.analyst("dora.dpo", "dpo");
    let mut it = soc.analyst("ivan.it", "it");
    let mut ana = soc.analyst("ana.soc", "soc");

    // (analyst, page, allowed)
    let alert = format!("/alerts/{id}");
    let pages = [
        ("/", [true, true, false]),
        (alert.as_str(), [true, true, false]),
        ("/holds", [true, false, false]),
        ("/sessions", [true, false, true]),
        ("/break-glass", [false, true, false]),
    ];
    for (page, allowed) in pages {
        for (who, b) in [("soc", &mut ana), ("dpo", &mut dpo), ("it", &mut it)]
            .into_iter()
            .zip(allowed)
        {
            let (name, browser) = who;
            let r = browser.get(page);
            assert_eq!(r.status == 200, b, "{name} {page}: {}", r.status);
            if !b {
                assert_eq!(r.status, 403);
            }
        }
    }
    // Forms: the DPO may read the alert, not change it; IT may end sessions, not triage.
    let csrf = dpo.token(&alert);
    let r = dpo.post_form(
        &format!("{alert}/status"),
        &[("csrf", &csrf), ("from", "new"), ("to", "acknowledged")],
    );
    assert_eq!(r.status, 403);
    assert!(
        !dpo.get(&alert).text().contains("/status\""),
        "no triage form for the DPO"
    );
    let csrf = it.token("/sessions");
    let r = it.post_form(
        &format!("{alert}/release"),
        &[("csrf", &csrf), ("confirm", "yes")],
    );
    assert_eq!(r.status, 403);
    // Asking for a step-up is the SOC's: IT ends sessions, it does not question them.
    let r = it.post_form(
        &format!("{alert}/stepup"),
        &[("csrf", &csrf), ("confirm", "yes")],
    );
    assert_eq!(r.status, 403);
    let r = it.post_form(
        "/sessions/revoke",
        &[("csrf", &csrf), ("user", "dr.martin"), ("confirm", "yes")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.header("location").unwrap().contains("done=revoke"));
    // Waits until both refusals are in the trail (and fails if they never are).
    crate::audit::trail_when(soc.gw.admin_port, "event=console_refused&limit=20", |e| {
        crate::audit::by_all(e, &["dora.dpo", "ivan.it"])
    });
    let shown = admin_api(
        soc.gw.admin_port,
        "GET",
        &format!("/api/alerts/show?id={id}"),
    );
    assert_eq!(
        shown["alert"]["vigie"]["triage"]["status"], "new",
        "nothing changed it"
    );
}

#[test]
fn from_an_alert_the_soc_asks_for_a_step_up_and_sees_every_session_the_workstation_and_the_pace() {
    let soc = Soc::start("");
    let id = raise(&soc);
    let mut ana = soc.analyst("ana.soc", "soc");
    let alert = format!("/alerts/{id}");
    let page = ana.get(&format!("{alert}?lang=en"));
    let text = page.text();
    for needle in [
        "Ask for a new proof",
        "<svg class=\"pace\"",
        "<polyline points=",
        "usual pace",
        "Patients in 15 min",
        "Other alerts from the same workstation",
        "href=\"/?source=127.0.0.1\"",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // The 15-minute count the detector measured grows along the enumeration.
    let windows: Vec<u64> = text
        .split("<table class=\"timeline\">")
        .nth(1)
        .unwrap()
        .split("<tr>")
        .filter_map(|row| row.split("<td>").last()?.split('<').next()?.parse().ok())
        .collect();
    assert!(windows.len() >= 5, "{windows:?}");
    assert!(windows.last() > windows.first(), "{windows:?}");

    let csrf = form_token(&page);
    let ask = format!("{alert}/stepup");
    let r = ana.post_form(&ask, &[("csrf", &csrf)]);
    assert!(r
        .header("location")
        .unwrap()
        .ends_with("problem=confirm_needed"));
    let r = ana.post_form(&ask, &[("csrf", &csrf), ("confirm", "yes")]);
    assert_eq!(
        r.header("location"),
        Some(&*format!("{alert}?done=stepup&n=1")),
        "{}",
        r.text()
    );
    assert!(ana
        .get(&format!("{alert}?done=stepup&n=1&lang=en"))
        .text()
        .contains("New proof asked of 1 session(s)."));
    let shown = admin_api(
        soc.gw.admin_port,
        "GET",
        &format!("/api/alerts/show?id={id}"),
    );
    assert_eq!(shown["history"][0]["after"], "step-up asked of sessions: 1");
    let trail =
        crate::audit::trail_when(soc.gw.admin_port, "event=step_up_asked", |e| !e.is_empty());
    assert_eq!(trail["entries"][0]["user"], "ana.soc", "{trail}");
    assert_eq!(trail["entries"][0]["fields"]["of_user"], "dr.martin");

    // Every session, without naming a user, with the demand shown.
    let all = ana.get("/sessions?lang=en").text();
    assert!(
        all.contains("dr.martin") && all.contains("proof asked"),
        "{all}"
    );
    assert!(all.contains("href=\"/sessions?user=dr.martin\""), "{all}");

    // The workstation as a filter: the alert from 127.0.0.1, none from elsewhere.
    assert!(ana
        .get("/?source=127.0.0.1&lang=en")
        .text()
        .contains(&alert));
    assert!(!ana.get("/?source=10.9.9.9&lang=en").text().contains(&alert));
    assert!(ana
        .get("/?source=ward-12&lang=en")
        .text()
        .contains("is not an IP address"));
}
