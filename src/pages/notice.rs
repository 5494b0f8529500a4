//! Refusal and error pages. None is a dead end: each says what happened in plain words and
//! what to do next, and offers the ways out that make sense (try again, sign out on a shared
//! workstation, the help desk's number), with the time in the hospital's zone so the help
//! desk can find the request by its reference.

use minijinja::{context, Value};

use super::{message, render, when, Brand, Lang, MESSAGES};

/// The ways out of a refusal.
#[derive(Debug, Default, Clone)]
pub struct WayOut {
    /// What to do next, in plain words.
    pub next: Option<String>,
    /// The page to try again: a GET's own address, never a form replayed.
    pub retry: Option<String>,
    /// Seconds before trying again makes sense.
    pub wait: Option<u64>,
    /// The visitor has a session: offer to sign out (the next user of a ward workstation
    /// must not be stuck on someone else's refusal).
    pub signed_in: bool,
}

impl WayOut {
    fn context(&self, lang: Lang, brand: &Brand) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        context! {
            next => self.next,
            retry => self.retry,
            wait_text => self.wait.map(|n| super::count(lang, "wait", n)),
            signed_in => self.signed_in,
            now_text => when::date_time(lang, &brand.zone, now),
        }
    }
}

fn error_texts(lang: Lang, status: u16) -> (String, String) {
    let table = MESSAGES[lang.code()]["errors"].as_table();
    let entry = table
        .and_then(|t| t.get(&status.to_string()).or_else(|| t.get("other")))
        .and_then(|v| v.as_array());
    let text = |i: usize| {
        entry
            .and_then(|a| a.get(i))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (text(0), text(1))
}

/// An error page: the chosen language first, the other one below (a visitor who cannot read
/// the first may not find the switch). `request_id` is gateway-generated hex.
pub fn error_page(
    status: u16,
    request_id: &str,
    lang: Lang,
    way_out: &WayOut,
    brand: &Brand,
) -> String {
    debug_assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()));
    let (title, text) = error_texts(lang, status);
    let (other_title, other_text) = error_texts(lang.other(), status);
    render(
        "error.html",
        lang,
        None,
        brand,
        context! {
            status, title, text, other_title, other_text, reference => request_id,
            ..way_out.context(lang, brand)
        },
    )
}

/// A page that explains a refusal (a policy denial, a budget, a hold), with maybe one way
/// forward (`link`: address and label) besides the [`WayOut`].
pub fn notice_page(
    lang: Lang,
    title_key: &str,
    text: String,
    link: Option<(String, String)>,
    reference: &str,
    way_out: &WayOut,
    brand: &Brand,
) -> String {
    let (link, link_label) = link.unzip();
    render(
        "notice.html",
        lang,
        None,
        brand,
        context! {
            title => message(lang, title_key), text, link, link_label, reference,
            ..way_out.context(lang, brand)
        },
    )
}
