//! Answers the gateway gives itself, without the portal: refusals, errors, its own assets.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use crate::pages;

/// Write an HTML error page, in the request's language. A request whose body was not read
/// gets its connection closed, so an unread body can never be parsed as the next request
/// (threat model 2).
pub async fn send_error(
    session: &mut Session,
    status: u16,
    close: bool,
    to: &Visitor<'_>,
) -> pingora::Result<()> {
    let close = close || unread_body(session);
    let lang = pages::Lang::of_request(session.req_header());
    let mut way_out = to.way_out(session);
    // Trying again helps when the portal or a store was slow or away, not otherwise.
    if !matches!(status, 408 | 502 | 503 | 504) {
        way_out.retry = None;
    }
    way_out.next = match status {
        423 => Some(pages::message(lang, "locked_next")),
        _ => None,
    };
    let html = pages::error_page(status, to.request_id, lang, &way_out, to.brand);
    send_html(session, status, html, close, Some(to.request_id)).await
}

/// Who a refusal page is for: the request's reference, the portal's brand, and whether the
/// visitor is signed in (then the page offers to sign out).
pub struct Visitor<'a> {
    pub request_id: &'a str,
    pub brand: &'a pages::Brand,
    pub signed_in: bool,
}

impl Visitor<'_> {
    /// The ways out every refusal page offers; `retry` is the address asked, for a GET only
    /// (a form is never replayed by a link).
    fn way_out(&self, session: &Session) -> pages::WayOut {
        let req = session.req_header();
        let retry = (req.method == http::Method::GET)
            .then(|| req.uri.path_and_query().map(|p| p.as_str().to_string()))
            .flatten()
            // Only a same-site path that reads the same once checked (no `//host`, `/\host`).
            .filter(|p| super::form::safe_return(p) == *p);
        pages::WayOut {
            retry,
            signed_in: self.signed_in,
            ..Default::default()
        }
    }
}

/// Whether the request has a body not read yet: answering it early must close the
/// connection, so the body can never be parsed as the next request (threat model 2).
fn unread_body(session: &mut Session) -> bool {
    let h = &session.req_header().headers;
    (h.contains_key("content-length") || h.contains_key("transfer-encoding"))
        && !session.is_body_done()
}

/// Write one of the gateway's own HTML pages, with the headers every such page carries:
/// no caching, the strict CSP, no framing, no sniffing.
pub async fn send_html(
    session: &mut Session,
    status: u16,
    html: String,
    close: bool,
    request_id: Option<&str>,
) -> pingora::Result<()> {
    let page = Page {
        status,
        html,
        script: false,
        headers: Vec::new(),
    };
    write_page(session, page, close, request_id).await
}

/// A page of the second-factor flow: maybe the passkey script, maybe cookies or
/// `Retry-After`.
pub struct Page {
    pub status: u16,
    pub html: String,
    /// Allow the gateway's passkey script (a stricter CSP otherwise).
    pub script: bool,
    pub headers: Vec<(&'static str, String)>,
}

pub async fn send_page(session: &mut Session, page: Page) -> pingora::Result<()> {
    write_page(session, page, false, None).await
}

async fn write_page(
    session: &mut Session,
    page: Page,
    close: bool,
    request_id: Option<&str>,
) -> pingora::Result<()> {
    let Page {
        status,
        html,
        script,
        headers,
    } = page;
    let body = Bytes::from(html);
    let mut resp = ResponseHeader::build(status, Some(9 + headers.len()))?;
    resp.insert_header("content-type", "text/html; charset=utf-8")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", "no-store")?;
    let csp = if script {
        pages::CSP_WITH_SCRIPT
    } else {
        pages::CSP
    };
    resp.insert_header("content-security-policy", csp)?;
    resp.insert_header("referrer-policy", "same-origin")?;
    for (name, value) in headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header("x-content-type-options", "nosniff")?;
    resp.insert_header("x-frame-options", "DENY")?;
    if let Some(id) = request_id {
        resp.insert_header("x-request-id", id)?;
    }
    if close {
        resp.insert_header("connection", "close")?;
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Serve one of the gateway's static assets (stylesheet, passkey script).
pub async fn send_asset(
    session: &mut Session,
    content_type: &str,
    body: Bytes,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(200, Some(5))?;
    resp.insert_header("content-type", content_type)?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", "public, max-age=3600")?;
    resp.insert_header("x-content-type-options", "nosniff")?;
    // Opened on its own, an asset runs nothing (a crafted image cannot become a page).
    resp.insert_header(
        "content-security-policy",
        "default-src 'none'; style-src 'self'",
    )?;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// A `303 See Other` to a same-origin path, with cookies to set.
pub async fn send_redirect(
    session: &mut Session,
    location: &str,
    cookies: &[String],
) -> pingora::Result<()> {
    send_redirect_with(session, location, cookies, None).await
}

/// The same, naming the request (`X-Request-Id`) as the portal's proxied answers do.
pub async fn send_redirect_with(
    session: &mut Session,
    location: &str,
    cookies: &[String],
    request_id: Option<&str>,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(303, Some(5 + cookies.len()))?;
    if let Some(id) = request_id {
        resp.insert_header("x-request-id", id)?;
    }
    resp.insert_header("location", location)?;
    resp.insert_header("content-length", "0")?;
    resp.insert_header("cache-control", "no-store")?;
    for c in cookies {
        resp.append_header("set-cookie", c)?;
    }
    session.write_response_header(Box::new(resp), true).await
}

/// A small public JSON document (the JWKS).
pub async fn send_json(session: &mut Session, json: String) -> pingora::Result<()> {
    write_json(session, 200, json, "public, max-age=300", &[]).await
}

/// A private JSON answer of the passkey API, never cached, maybe with a new session cookie.
pub async fn send_api(
    session: &mut Session,
    status: u16,
    json: String,
    cookies: &[String],
) -> pingora::Result<()> {
    write_json(session, status, json, "no-store", cookies).await
}

async fn write_json(
    session: &mut Session,
    status: u16,
    json: String,
    cache: &str,
    cookies: &[String],
) -> pingora::Result<()> {
    let body = Bytes::from(json);
    let mut resp = ResponseHeader::build(status, Some(5 + cookies.len()))?;
    resp.insert_header("content-type", "application/json")?;
    resp.insert_header("content-length", body.len().to_string())?;
    resp.insert_header("cache-control", cache)?;
    resp.insert_header("x-content-type-options", "nosniff")?;
    for c in cookies {
        resp.append_header("set-cookie", c)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// 403 from policy, in the request's language, with the break-glass link when it may help.
pub async fn send_denied(
    session: &mut Session,
    liftable: bool,
    here: &str,
    to: &Visitor<'_>,
) -> pingora::Result<()> {
    let lang = pages::Lang::of_request(session.req_header());
    let link = liftable.then(|| {
        let href = format!(
            "{}?return={}",
            crate::policy::BREAK_GLASS_PATH,
            form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        );
        (href, pages::message(lang, "break_glass_link"))
    });
    let text = pages::message(lang, "denied_text");
    let way_out = pages::WayOut {
        next: Some(pages::message(lang, "denied_next")),
        retry: None,
        ..to.way_out(session)
    };
    let html = pages::notice_page(
        lang,
        "denied_title",
        text,
        link,
        to.request_id,
        &way_out,
        to.brand,
    );
    write_refusal(session, 403, html, vec![], to.request_id).await
}

/// 429 over budget or throttled, with `Retry-After` and a readable page.
/// `throttled`: the detector slowed the identity (else a budget ran out).
pub async fn send_slowed(
    session: &mut Session,
    status: u16,
    retry_after: u64,
    throttled: bool,
    to: &Visitor<'_>,
) -> pingora::Result<()> {
    let lang = pages::Lang::of_request(session.req_header());
    let (title, text) = match throttled {
        true => ("throttled_title", "throttled_text"),
        false => ("budget_title", "budget_text"),
    };
    let text = pages::count(lang, text, retry_after);
    let way_out = pages::WayOut {
        next: Some(pages::message(lang, "slowed_next")),
        ..to.way_out(session)
    };
    let html = pages::notice_page(lang, title, text, None, to.request_id, &way_out, to.brand);
    let headers = vec![("retry-after", retry_after.to_string())];
    write_refusal(session, status, html, headers, to.request_id).await
}

/// 403 while the detector holds the identity for review; the reference is the alert's id,
/// which the help desk and the SOC both see.
pub async fn send_held(
    session: &mut Session,
    hold: &crate::detect::Hold,
    to: &Visitor<'_>,
) -> pingora::Result<()> {
    let lang = pages::Lang::of_request(session.req_header());
    let until_s = u64::try_from(hold.until_us / 1_000_000).unwrap_or(0);
    let until = pages::when::date_time(lang, &to.brand.zone, until_s);
    let text = pages::message(lang, "held_text").replace("{until}", &until);
    // Trying again changes nothing until the review: no retry link.
    let way_out = pages::WayOut {
        next: Some(pages::message(lang, "held_next")),
        retry: None,
        ..to.way_out(session)
    };
    let html = pages::notice_page(
        lang,
        "held_title",
        text,
        None,
        &hold.alert_id,
        &way_out,
        to.brand,
    );
    let headers = vec![("x-vigie-held", hold.alert_id.clone())];
    write_refusal(session, 403, html, headers, to.request_id).await
}

/// A page the gateway answers instead of the portal: never scripted, and the connection closes
/// when the request's body was not read.
async fn write_refusal(
    session: &mut Session,
    status: u16,
    html: String,
    headers: Vec<(&'static str, String)>,
    request_id: &str,
) -> pingora::Result<()> {
    let close = unread_body(session);
    let page = Page {
        status,
        html,
        script: false,
        headers,
    };
    write_page(session, page, close, Some(request_id)).await
}
