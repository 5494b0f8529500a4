//! The gateway's own requests to a portal, on a user's behalf (their vaulted cookies): the
//! pages read after a login ([`super::whoami`]) and the logout that ends a portal session
//! ([`super::portal_logout`]).

use pingora::http::RequestHeader;

use super::route::Portal;

/// One request the gateway sends.
pub struct Call<'a> {
    pub method: &'a str,
    /// Path and query.
    pub uri: &'a str,
    /// Sent as one `Cookie` header.
    pub cookies: &'a [(String, String)],
    pub headers: &'a [(&'a str, String)],
    /// A urlencoded form body (POST).
    pub form: Option<String>,
    /// At most this much of the answer's body is read.
    pub max_body: usize,
}

/// What the portal answered.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    /// `name=value` of each `Set-Cookie` (attributes dropped).
    pub set_cookies: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One connector for every call the gateway makes itself: built once (its TLS context too),
/// not at each login check and logout.
static CONNECTOR: once_cell::sync::Lazy<pingora::connectors::http::Connector> =
    once_cell::sync::Lazy::new(|| pingora::connectors::http::Connector::new(None));

/// The `Host` the portal expects: its first named host, else its address.
pub fn host(portal: &Portal) -> String {
    portal
        .config
        .hosts
        .iter()
        .find(|h| *h != "*")
        .cloned()
        .unwrap_or_else(|| portal.config.upstream.to_string())
}

/// Send `call` to the portal and read its answer, within the portal's connect timeout plus
/// twice its read timeout in all (a portal that hangs or drips its answer cannot hold the
/// call, or a sign-out waiting on it, longer).
pub async fn send(portal: &Portal, call: &Call<'_>) -> pingora::Result<Answer> {
    let deadline = portal.config.connect_timeout + 2 * portal.config.read_timeout;
    match tokio::time::timeout(deadline, exchange(portal, call)).await {
        Ok(answer) => answer,
        Err(_) => pingora::Error::e_explain(
            pingora::ErrorType::ReadTimedout,
            "the portal did not answer in time",
        ),
    }
}

async fn exchange(portal: &Portal, call: &Call<'_>) -> pingora::Result<Answer> {
    let mut req = RequestHeader::build(call.method, call.uri.as_bytes(), None)?;
    req.insert_header("host", host(portal))?;
    if !call.cookies.is_empty() {
        let cookies: Vec<String> = call
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        req.insert_header("cookie", cookies.join("; "))?;
    }
    for (k, v) in call.headers {
        req.insert_header(k.to_string(), v.as_str())?;
    }
    if let Some(form) = &call.form {
        req.insert_header("content-type", "application/x-www-form-urlencoded")?;
        req.insert_header("content-length", form.len().to_string())?;
    }
    let connector = &*CONNECTOR;
    let (mut http, _) = connector.get_http_session(&portal.peer).await?;
    http.write_request_header(Box::new(req)).await?;
    if let Some(form) = &call.form {
        http.write_request_body(bytes::Bytes::from(form.clone().into_bytes()), false)
            .await?;
    }
    http.finish_request_body().await?;
    http.read_response_header().await?;
    let head = http.response_header();
    let status = head.map_or(0, |h| h.status.as_u16());
    let location = head
        .and_then(|h| h.headers.get("location"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let set_cookies = head
        .map(|h| {
            h.headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| {
                    let pair = v.split(';').next()?;
                    let (k, v) = pair.split_once('=')?;
                    Some((k.trim().to_string(), v.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = Vec::new();
    while body.len() < call.max_body {
        match http.read_response_body().await? {
            Some(chunk) => body.extend_from_slice(&chunk),
            None => break,
        }
    }
    body.truncate(call.max_body);
    Ok(Answer {
        status,
        location,
        set_cookies,
        body,
    })
}

#[cfg(test)]
mod tests;
