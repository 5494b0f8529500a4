//! A small browser stand-in for the second-factor flows: it keeps the gateway cookie, sends
//! same-origin POSTs, and knows how to log in, enroll and prove factors.

use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::common::*;
use crate::passthrough::{cookie_set, submit_login};

pub const PATIENT: &str = "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=17";
pub const EXPORT: &str = "/index.php?m=dPpatients&raw=ajax_export_patients_csv";

/// A gateway in front of the sample portal with second factors required; `factor` lines go
/// into `[second_factor]`, `extra` is more TOML.
pub fn mfa_gateway(portal: &Portal, factor: &str, extra: &str) -> Gateway {
    start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        &format!("{extra}\n[second_factor]\n{factor}\n"),
    )
}

pub struct Client {
    pub port: u16,
    pub cookie: Option<String>,
    /// Extra header lines (each ending in \r\n), e.g. `X-Forwarded-For`.
    pub headers: String,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client {
            port,
            cookie: None,
            headers: String::new(),
        }
    }

    /// Log in with the portal's own form, through the gateway.
    pub fn login(port: u16, user: &str, password: &str) -> Client {
        let resp = submit_login(port, user, password, None);
        assert_eq!(resp.status, 302, "portal login refused: {}", resp.text());
        let mut c = Client::new(port);
        c.cookie = Some(cookie_set(&resp, "vigie").expect("gateway cookie"));
        c
    }

    fn head(&self) -> String {
        let cookie = self
            .cookie
            .as_ref()
            .map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
        format!("Host: localhost:{}\r\n{cookie}{}", self.port, self.headers)
    }

    fn absorb(&mut self, resp: Response) -> Response {
        if let Some(c) = cookie_set(&resp, "vigie") {
            self.cookie = (c != "vigie=").then_some(c);
        }
        resp
    }

    pub fn get(&mut self, target: &str) -> Response {
        let req = format!(
            "GET {target} HTTP/1.1\r\n{}Connection: close\r\n\r\n",
            self.head()
        );
        let resp = raw(self.port, req.as_bytes()).expect("response");
        self.absorb(resp)
    }

    pub fn post(&mut self, target: &str, content_type: &str, body: &str) -> Response {
        let req = format!(
            "POST {target} HTTP/1.1\r\n{}Sec-Fetch-Site: same-origin\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.head(),
            body.len()
        );
        let resp = raw(self.port, req.as_bytes()).expect("response");
        self.absorb(resp)
    }

    pub fn post_form(&mut self, target: &str, form: &[(&str, &str)]) -> Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post(target, "application/x-www-form-urlencoded", &body)
    }

    pub fn post_json(&mut self, target: &str, json: &serde_json::Value) -> Response {
        self.post(target, "application/json", &json.to_string())
    }

    /// Whether the patient page opens (the portal answered with the patient).
    pub fn opens_patient(&mut self) -> bool {
        let page = self.get(PATIENT);
        page.status == 200 && page.text().contains("data-patient-id=\"17\"")
    }
}

/// `vigie enroll invite USER` against a running gateway; returns the code.
pub fn invite(gw: &Gateway, user: &str) -> String {
    let out = vigie_ok(["enroll", "-c", gw.config.to_str().unwrap(), "invite", user]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["invitation"].as_str().unwrap().to_string()
}

/// The TOTP secret shown on the enrollment page.
pub fn shown_secret(page: &Response) -> Vec<u8> {
    let text = page.text();
    let start = text
        .find("id=\"totp-secret\">")
        .expect("secret on the page")
        + 17;
    let b32: String = text[start..]
        .split('<')
        .next()
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    totp_rs::Secret::Encoded(b32).to_bytes().unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A well-formed code that is not the next one (for failed attempts).
pub fn wrong_code(secret: &[u8]) -> &'static str {
    if code(secret, 1) == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// The code `steps_ahead` 30-second steps from now.
pub fn code(secret: &[u8], steps_ahead: u64) -> String {
    vigie::factors::totp::code_at(
        secret,
        vigie::factors::totp::Hash::Sha1,
        now() + 30 * steps_ahead,
    )
}

pub fn location(resp: &Response) -> String {
    resp.header("location").unwrap_or("").to_string()
}

/// The recovery codes listed on the codes page.
pub fn listed_codes(page: &Response) -> Vec<String> {
    page.text()
        .split("<li>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().trim().to_string())
        .collect()
}

/// Enroll a TOTP app (after the invitation, if one is given); returns the secret and the
/// recovery codes. The session ends at the second-factor level.
pub fn enroll_totp(c: &mut Client, invitation: Option<&str>) -> (Vec<u8>, Vec<String>) {
    if let Some(code) = invitation {
        let resp = c.post_form(
            "/.vigie/enroll/invitation",
            &[("invitation", code), ("return", PATIENT)],
        );
        assert_eq!(resp.status, 303, "invitation refused: {}", resp.text());
    }
    let page = c.get("/.vigie/enroll/totp?return=%2F");
    assert_eq!(page.status, 200, "{}", page.text());
    let secret = shown_secret(&page);
    let done = c.post_form(
        "/.vigie/enroll/totp",
        &[("code", &code(&secret, 0)), ("return", PATIENT)],
    );
    assert_eq!(done.status, 303, "{}", done.text());
    assert!(
        location(&done).starts_with("/.vigie/codes"),
        "{}",
        location(&done)
    );
    let codes_page = c.get(&location(&done));
    let codes = listed_codes(&codes_page);
    assert_eq!(codes.len(), 10, "{}", codes_page.text());
    (secret, codes)
}

/// A page's text with HTML escapes undone, to look for sentences with apostrophes.
pub fn page_text(resp: &Response) -> String {
    resp.text()
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn origin(gw: &Gateway) -> webauthn_rs::prelude::Url {
    webauthn_rs::prelude::Url::parse(&format!("http://localhost:{}", gw.port)).unwrap()
}

/// Register a passkey over HTTP with a software authenticator; returns the finish response.
pub fn register_passkey(
    c: &mut Client,
    gw: &Gateway,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
) -> Response {
    let start = c.post_json("/.vigie/passkey/register/start", &serde_json::json!({}));
    assert_eq!(start.status, 200, "{}", start.text());
    let options = serde_json::from_slice(&start.body).unwrap();
    let answer = auth.do_registration(origin(gw), options).unwrap();
    c.post_json(
        "/.vigie/passkey/register/finish",
        &serde_json::json!({ "name": "Poste 3B", "return": PATIENT, "credential": answer }),
    )
}

pub fn passkey_sign_in(
    c: &mut Client,
    gw: &Gateway,
    auth: &mut WebauthnAuthenticator<SoftPasskey>,
) -> serde_json::Value {
    let start = c.post_json("/.vigie/passkey/auth/start", &serde_json::json!({}));
    assert_eq!(start.status, 200, "{}", start.text());
    let options = serde_json::from_slice(&start.body).unwrap();
    let answer = auth.do_authentication(origin(gw), options).unwrap();
    serde_json::json!({ "return": EXPORT, "credential": answer })
}
