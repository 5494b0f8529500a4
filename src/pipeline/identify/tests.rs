//! Stage 3 on a real request head (pingora's own parser over an in-memory stream): who is
//! behind the request, from the gateway's cookie alone, and only where the gateway holds sessions.

use std::sync::Arc;

use super::*;
use crate::identity::session::{AuthLevel, ManualClock};
use crate::identity::tests::{alice_signed_in, sessions};

/// Two portals: `ehr` with a profile (the gateway holds its sessions), `plain` without.
fn portals() -> (Portal, Portal) {
    let plain =
        "[[portal]]\nname = \"plain\"\nupstream = \"127.0.0.1:2\"\nhosts = [\"plain.local\"]";
    let c = crate::testing::sample_portal_config("", "", plain);
    (
        Portal::new(c.portals[0].clone()),
        Portal::new(c.portals[1].clone()),
    )
}

/// A request head as a browser sends it, read by pingora.
async fn head(cookie: &str) -> Session {
    let raw = format!("GET /index.php HTTP/1.1\r\nHost: ehr.local\r\nCookie: {cookie}\r\n\r\n");
    crate::testing::request_head(&raw).await
}

#[tokio::test]
async fn the_gateway_cookie_names_the_session_where_the_gateway_holds_sessions_only() {
    let sessions = sessions(Arc::new(ManualClock::at(1000)));
    let id = alice_signed_in(&sessions).await;
    let cookie = sessions.set_cookie(&id, false);
    let cookie = cookie.split(';').next().unwrap();
    let (ehr, plain) = portals();

    let who = run(&sessions, &head(cookie).await, &ehr, false)
        .await
        .unwrap();
    assert_eq!(who.session().map(|s| s.id), Some(id));
    assert_eq!(who.label(), "alice");
    // A portal without a profile has no gateway sessions: the cookie means nothing there.
    let who = run(&sessions, &head(cookie).await, &plain, false)
        .await
        .unwrap();
    assert!(matches!(who, Identity::Anonymous));
    // The portal's own cookie, or a forged one, is nobody.
    let who = run(
        &sessions,
        &head("vigie=forged; PHPSESSID=x").await,
        &ehr,
        false,
    )
    .await
    .unwrap();
    assert!(who.session().is_none());
}

#[test]
fn logs_name_the_user_once_signed_in_and_never_before() {
    let sessions = sessions(Arc::new(ManualClock::at(1000)));
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let record = |user: Option<&str>, level| {
        let r = sessions.new_record("ehr", user.map(Into::into), level, ip, "ua", vec![]);
        Identity::Session(Arc::new(r))
    };
    assert_eq!(record(Some("alice"), AuthLevel::Password).label(), "alice");
    // The name typed in a login form the portal has not accepted yet is not an identity.
    assert_eq!(record(Some("alice"), AuthLevel::None).label(), "pre-login");
    assert_eq!(record(None, AuthLevel::None).label(), "pre-login");
    assert_eq!(Identity::Anonymous.label(), "anonymous");
    assert!(Identity::Anonymous.session().is_none());
    assert!(record(None, AuthLevel::None).session().is_some());
}
