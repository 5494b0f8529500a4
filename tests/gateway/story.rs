//! A clinician's browser for the Chromium tests: Debian's headless chromium over the
//! DevTools protocol, with the steps a story needs (sign in to the portal, fill, click and
//! wait for the next page, screenshots), and the checks every page state gets: axe-core's
//! WCAG 2.1 AA rules and no sideways scrolling at 320 px.

use std::path::PathBuf;

use crate::cdp::Browser;

/// Where screenshots go: `$VIGIE_ARTIFACTS`, else the target's temp folder.
pub fn artifacts() -> PathBuf {
    let dir = std::env::var_os("VIGIE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Story {
    pub b: Browser,
    pub shots: PathBuf,
    pub n: usize,
}

impl Story {
    /// French pages asked for, as a hospital workstation's browser does; `desktop`: its user
    /// agent without "HeadlessChrome", which the detector counts as a script.
    pub fn french_workstation(&mut self, desktop: bool) {
        self.language("fr", desktop);
    }

    pub fn shot(&mut self, name: &str) {
        self.n += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        self.b.screenshot(&path).unwrap();
        assert!(
            std::fs::metadata(&path).unwrap().len() > 1000,
            "empty screenshot"
        );
    }

    /// Run `js` (a click or a submit) and wait for the next document to load.
    pub fn act(&mut self, js: &str) {
        self.b.eval("window.__vigieOld = true").unwrap();
        self.b.eval(js).unwrap();
        self.b
            .wait_for(
                "!window.__vigieOld && document.readyState === 'complete'",
                crate::cdp::TIMEOUT,
            )
            .unwrap_or_else(|e| panic!("after `{js}`: {e:#}"));
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        let js = format!(
            "document.querySelector({}).value = {}",
            serde_json::to_string(selector).unwrap(),
            serde_json::to_string(value).unwrap()
        );
        self.b.eval(&js).unwrap();
    }

    pub fn path(&mut self) -> String {
        self.b
            .eval("location.pathname")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn text(&mut self) -> String {
        self.b
            .eval("document.body.innerText")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn portal_login(&mut self, base: &str) {
        self.b.navigate(&format!("{base}/index.php")).unwrap();
        assert!(self.text().contains("Connexion"));
        self.fill("input[name=username]", "dr.martin");
        self.fill("input[name=password]", "martin-demo");
        self.act("document.querySelector('form button[type=submit]').click()");
    }

    pub fn portal_logout(&mut self) {
        self.act("document.querySelector('a[href*=logout]').click()");
        assert!(
            self.text().contains("Connexion"),
            "back on the portal's login page"
        );
    }
}

/// Where `npm ci` put axe-core (`scripts/install-deps` runs it).
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/axe/node_modules/axe-core/axe.min.js"
);

impl Story {
    pub fn new(b: Browser) -> Story {
        Story {
            b,
            shots: artifacts(),
            n: 0,
        }
    }

    /// The window's size in CSS pixels; `mobile`: a phone's (touch, meta viewport honoured).
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.b
            .call(
                "Emulation.setDeviceMetricsOverride",
                serde_json::json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
            )
            .unwrap();
    }

    /// The browser asks for pages in `lang` (as a workstation set up in that language).
    pub fn language(&mut self, lang: &str, desktop: bool) {
        let version = self
            .b
            .call("Browser.getVersion", serde_json::json!({}))
            .unwrap();
        let ua = version["userAgent"].as_str().unwrap();
        let ua = match desktop {
            true => ua.replace("HeadlessChrome", "Chrome"),
            false => ua.to_string(),
        };
        let accept = match lang {
            "fr" => "fr-FR,fr;q=0.9",
            _ => "en-GB,en;q=0.9",
        };
        self.b
            .call(
                "Network.setUserAgentOverride",
                serde_json::json!({ "userAgent": ua, "acceptLanguage": accept }),
            )
            .unwrap();
    }

    /// The page's language, from `<html lang>`.
    pub fn lang(&mut self) -> String {
        let v = self.b.eval("document.documentElement.lang").unwrap();
        v.as_str().unwrap_or_default().to_string()
    }

    pub fn eval_str(&mut self, js: &str) -> String {
        let v = self.b.eval(js).unwrap();
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    }

    /// The checks every page state gets: axe-core finds no WCAG 2.1 A/AA violation, and
    /// nothing scrolls sideways at 320 px (WCAG 1.4.10). Then a screenshot.
    pub fn check(&mut self, name: &str) {
        let axe = std::fs::read_to_string(AXE).unwrap_or_else(|e| {
            panic!("axe-core is missing ({AXE}: {e}): run scripts/install-deps")
        });
        // Injected over DevTools: the page's own CSP (no inline script) stays in force.
        self.b.eval(&axe).unwrap();
        let violations = self
            .b
            .eval(
                "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                   .then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) })))",
            )
            .unwrap();
        assert_eq!(
            violations,
            serde_json::json!([]),
            "{name}: axe-core found WCAG 2.1 AA violations on {}",
            self.path()
        );
        let size = self
            .b
            .eval("[window.innerWidth, window.innerHeight, navigator.maxTouchPoints > 0]")
            .unwrap();
        let (w, h) = (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        );
        self.viewport(320, h, true);
        let overflow = self
            .b
            .eval("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .unwrap();
        self.viewport(w, h, size[2].as_bool().unwrap_or(false));
        assert_eq!(
            overflow,
            serde_json::json!(0),
            "{name}: scrolls sideways at 320 px"
        );
        self.shot(name);
    }

    /// The element with this id has the focus (autofocus applies just after the load).
    pub fn focused(&mut self, id: &str) {
        let js = format!("document.activeElement && document.activeElement.id === '{id}'");
        let got = self.b.wait_for(&js, std::time::Duration::from_secs(5));
        let active = self.eval_str("document.activeElement ? document.activeElement.id : ''");
        assert!(got.is_ok(), "the focus is on `{active}`, not `{id}`");
    }

    /// Follow the language switch; returns the new page's language.
    pub fn switch_language(&mut self) -> String {
        self.act("document.querySelector('a.lang').click()");
        self.lang()
    }

    /// The gateway's session cookie as a `Cookie:` value.
    pub fn session_cookie(&mut self) -> String {
        let all = self
            .b
            .call("Network.getAllCookies", serde_json::json!({}))
            .unwrap();
        all["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "vigie")
            .map(|c| format!("vigie={}", c["value"].as_str().unwrap()))
            .expect("the gateway's session cookie")
    }
}
