//! The portal's own idea of who is signed in, read after each login with the vaulted cookies:
//! the user name its pages show (identity binding, threat model 38) and the role that becomes the
//! user's group. Fail closed: a login whose user or role cannot be read is refused.

use super::refusal::{Reason, Refusal};
use super::route::Portal;
use crate::config::PortalProfile;
use crate::identity::vault;

/// What the portal says about the user who just logged in.
#[derive(Debug)]
pub enum Confirmed {
    /// The portal names the same user (or the profile has no page to check); these groups.
    Same(Vec<String>),
    /// The portal's page names someone else: the session must end and the SOC hear of it.
    Other,
}

/// Read the confirmation page (`[login.confirm]`) and the role page (`[role]`), once each (once
/// in all when they are the same page), with the new session's cookies. `user` is canonical.
pub async fn confirm(
    config: &crate::config::Config,
    portal: &Portal,
    profile: &PortalProfile,
    user: &str,
    vault: &[vault::VaultedCookie],
) -> Result<Confirmed, Refusal> {
    let refuse = |why: &str| {
        tracing::error!(portal = %portal.config.name, user = %user, why, "cannot read who signed in from the portal; refusing the login");
        Refusal::new(503, Reason::RoleUnavailable)
    };
    let fetch = |path: String| async move {
        match portal_get(portal, &path, vault, 256 * 1024).await {
            Ok((200, body)) => Ok((path, String::from_utf8_lossy(&body).into_owned())),
            Ok(_) => Err("the page did not answer 200"),
            Err(_) => Err("the page did not answer"),
        }
    };
    let capture = |re: &regex::Regex, text: &str| {
        re.captures(text)
            .and_then(|c| c.get(1))
            .map(|m| decode_entities(m.as_str()).trim().to_string())
    };
    let mut read: Option<(String, String)> = None;
    if let Some(rule) = &profile.login.confirm {
        let (path, text) = fetch(rule.page.clone()).await.map_err(refuse)?;
        let shown = capture(&rule.pattern, &text)
            .ok_or_else(|| refuse("the confirmation pattern found nothing"))?;
        if crate::identity::login::canonical(profile, &shown) != user {
            return Ok(Confirmed::Other);
        }
        read = Some((path, text));
    }
    let mut groups = config.groups_of(user, |u| crate::identity::login::canonical(profile, u));
    let Some(rule) = &profile.role else {
        return Ok(Confirmed::Same(groups));
    };
    let text = match read {
        Some((path, text)) if path == rule.page => text,
        _ => fetch(rule.page.clone()).await.map_err(refuse)?.1,
    };
    let role =
        capture(&rule.pattern, &text).ok_or_else(|| refuse("the role pattern found nothing"))?;
    let group = rule
        .groups
        .get(&role)
        .ok_or_else(|| refuse("the role is not mapped in the profile's [role.groups]"))?;
    if !groups.contains(group) {
        groups.push(group.clone());
    }
    Ok(Confirmed::Same(groups))
}

/// The few HTML entities a role label may carry (`M&eacute;decin`), and numeric ones.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let name = &tail[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "middot" => Some('·'),
            "eacute" => Some('é'),
            "egrave" => Some('è'),
            "ecirc" => Some('ê'),
            "agrave" => Some('à'),
            "ccedil" => Some('ç'),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A GET to the portal on the user's behalf (vaulted cookies), reading at most `max_body`
/// bytes of the answer.
pub async fn portal_get(
    portal: &Portal,
    uri: &str,
    vault: &[vault::VaultedCookie],
    max_body: usize,
) -> pingora::Result<(u16, Vec<u8>)> {
    let cookies: Vec<(String, String)> = vault
        .iter()
        .map(|c| (c.name.clone(), c.value.clone()))
        .collect();
    let call = super::portal_call::Call {
        method: "GET",
        uri,
        cookies: &cookies,
        headers: &[],
        form: None,
        max_body,
    };
    let answer = super::portal_call::send(portal, &call).await?;
    Ok((answer.status, answer.body))
}

#[cfg(test)]
mod tests;
