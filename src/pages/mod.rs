//! Pages the gateway renders itself, from templates (`templates/`, MiniJinja, escaped by
//! default) and one message catalogue in French and English (`messages.toml`). The language
//! comes from `?lang=`, then the `vigie_lang` cookie, then `Accept-Language`; French by
//! default. No external assets: one stylesheet and, on passkey pages only, one script.

use std::sync::LazyLock;

use minijinja::{context, Environment, Value};

pub mod brand;
mod notice;
pub mod when;
pub use brand::{Brand, LOGO_PATH};
pub use notice::{error_page, notice_page, WayOut};

/// Content-Security-Policy for pages without script.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/// The same, allowing the gateway's own passkey script (and its `fetch` back to the gateway).
pub const CSP_WITH_SCRIPT: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The `/.vigie/` prefix belongs to the gateway, never the portal.
pub const STYLESHEET_PATH: &str = "/.vigie/vigie.css";
pub const SCRIPT_PATH: &str = "/.vigie/webauthn.js";
pub const STYLESHEET: &str = include_str!("vigie.css");
pub const SCRIPT: &str = include_str!("webauthn.js");

/// Cookie remembering the chosen language (not a secret, not identity).
pub const LANG_COOKIE: &str = "vigie_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::Fr => Lang::En,
            Lang::En => Lang::Fr,
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_', ';']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language of a request: explicit choice, then remembered choice, then the
    /// browser's preference (the first supported tag not refused with `q=0`).
    pub fn choose(query: Option<&str>, cookies: &[&str], accept_language: Option<&str>) -> Lang {
        let from_query = query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .and_then(|(_, v)| Lang::parse(&v))
        });
        let from_cookie = || {
            cookies.iter().find_map(|h| {
                h.split(';').find_map(|kv| {
                    let (k, v) = kv.trim().split_once('=')?;
                    (k == LANG_COOKIE).then(|| Lang::parse(v)).flatten()
                })
            })
        };
        let from_header = || {
            accept_language?.split(',').find_map(|tag| {
                if tag.replace(' ', "").contains(";q=0") && !tag.contains(";q=0.") {
                    return None;
                }
                Lang::parse(tag)
            })
        };
        from_query
            .or_else(from_cookie)
            .or_else(from_header)
            .unwrap_or(Lang::Fr)
    }

    /// What pages read from the request to choose a language.
    pub fn of_request(req: &http::request::Parts) -> Lang {
        let cookies: Vec<&str> = req
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let accept = req
            .headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok());
        Lang::choose(req.uri.query(), &cookies, accept)
    }
}

static MESSAGES: LazyLock<toml::Table> = LazyLock::new(|| {
    include_str!("messages.toml")
        .parse()
        .expect("messages.toml is valid TOML (unit-tested)")
});

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // A missing value is an error when printed (never a silent blank), fine in `{% if %}`.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    for (name, text) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("error.html", include_str!("templates/error.html")),
        ("login.html", include_str!("templates/login.html")),
        ("factor.html", include_str!("templates/factor.html")),
        ("enroll.html", include_str!("templates/enroll.html")),
        (
            "enroll_totp.html",
            include_str!("templates/enroll_totp.html"),
        ),
        ("codes.html", include_str!("templates/codes.html")),
        ("account.html", include_str!("templates/account.html")),
        ("notice.html", include_str!("templates/notice.html")),
        ("_way_out.html", include_str!("templates/_way_out.html")),
        (
            "break_glass.html",
            include_str!("templates/break_glass.html"),
        ),
    ] {
        env.add_template(name, text)
            .expect("templates are valid (unit-tested)");
    }
    env
});

fn messages(lang: Lang) -> Value {
    Value::from_serialize(&MESSAGES[lang.code()])
}

/// One sentence of the catalogue (for messages built in code).
pub fn message(lang: Lang, key: &str) -> String {
    MESSAGES[lang.code()]
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or(key)
        .to_string()
}

/// A sentence that counts `n` things, `{n}` filled in: the `<key>_one` form for one (and
/// zero, in French), else `<key>`.
pub fn count(lang: Lang, key: &str, n: u64) -> String {
    let singular = match lang {
        Lang::Fr => n <= 1,
        Lang::En => n == 1,
    };
    let one = format!("{key}_one");
    let has_one = MESSAGES[lang.code()].get(&one).is_some();
    let chosen = if singular && has_one {
        one.as_str()
    } else {
        key
    };
    message(lang, chosen).replace("{n}", &n.to_string())
}

/// Where the language switch sets the other language and comes back to `here` (a GET
/// address of the gateway's own pages).
pub const LANGUAGE_PATH: &str = "/.vigie/lang";

/// The switch link of a page shown at `here` in `lang`.
pub fn language_url(here: &str, lang: Lang) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("set", lang.other().code())
        .append_pair("return", here)
        .finish();
    format!("{LANGUAGE_PATH}?{q}")
}

/// The cookie remembering `lang` for a year (not a secret: `SameSite=Lax`, readable).
pub fn language_cookie(lang: Lang) -> String {
    format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    )
}

/// `GET /.vigie/lang?set=en&return=…`: the cookie to set and where to go back, or `None`
/// for an unknown language. The return is checked by the caller like any other.
pub fn language_switch(query: Option<&str>) -> Option<(String, String)> {
    let mut set = None;
    let mut back = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "set" => set = Lang::parse(&v),
            "return" => back = Some(v.into_owned()),
            _ => {}
        }
    }
    let lang = set?;
    Some((language_cookie(lang), back.unwrap_or_else(|| "/".into())))
}

/// The same path with `lang=` set to the other language: the switch link of the gateway's
/// own sign-in page (a GET page whose only state is the return address).
pub fn switch_url(path: &str, query: Option<&str>, lang: Lang) -> String {
    let here = without_lang(path, query);
    let sep = if here.contains('?') { '&' } else { '?' };
    format!("{here}{sep}lang={}", lang.other().code())
}

/// `path` with `query` minus any `lang=`: the page itself, whatever language it was asked in.
pub fn without_lang(path: &str, query: Option<&str>) -> String {
    let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(k, _)| k != "lang");
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    match q.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{q}"),
    }
}

/// Render a page. `ctx` holds the page's own values; the catalogue (`t`), the language and
/// the switch link are added here.
pub fn render(
    template: &str,
    lang: Lang,
    switch: Option<&str>,
    brand: &Brand,
    ctx: Value,
) -> String {
    let full = context! {
        t => messages(lang),
        lang => lang.code(),
        switch => switch,
        brand => brand.name.as_str(),
        logo => brand.logo.is_some(),
        help_desk => brand.help_desk.as_deref(),
        ..ctx
    };
    TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(full))
        .unwrap_or_else(|e| {
            tracing::error!(template, error = %e, "page template failed");
            "<!doctype html><title>Vigie</title><p>Erreur / Error".to_string()
        })
}

/// The gateway's own login page (gateway-owned logins). One message for every failure, so
/// unknown users and wrong passwords look the same.
pub fn login_page(
    lang: Lang,
    failed: bool,
    return_to: &str,
    switch: &str,
    brand: &Brand,
) -> String {
    render(
        "login.html",
        lang,
        Some(switch),
        brand,
        context! { failed, return_to },
    )
}

#[cfg(test)]
mod tests;
