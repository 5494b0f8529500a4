//! Several replicas sharing sessions through a real Redis (threat model 10, 30): a session made
//! on one is honoured by the other, a logout on one is refused by the other within a second,
//! and a Redis outage makes logins fail closed until it returns.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::passthrough::{cookie_set, submit_login};

const PATIENT: &str = "/index.php?m=dPpatients&tab=vw_full_patients&patient_id=5";

pub struct Pair {
    pub a: Gateway,
    pub b: Gateway,
    pub _key_dir: tempfile::TempDir,
}

/// The `[storage]` section of replicas sharing `redis`, signing with the key in `key`.
pub fn storage_toml(redis: &RedisServer, key: &std::path::Path) -> String {
    storage_toml_at(&redis.url(), key)
}

/// The same, for a Redis reached at `url` (through a proxy, say).
pub fn storage_toml_at(url: &str, key: &std::path::Path) -> String {
    format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\nsession_key_file = \"{}\"\nreplicas = 2\noutage_grace_seconds = 3\n",
        key.display()
    )
}

pub fn replicas(portal: &Portal, redis: &RedisServer) -> Pair {
    replicas_at(portal, &redis.url(), &redis.url(), "")
}

/// Replicas A and B reaching Redis at their own URLs (B through a proxy, say), with `extra`
/// configuration.
pub fn replicas_at(portal: &Portal, url_a: &str, url_b: &str, extra: &str) -> Pair {
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    replicas_with(portal, url_a, url_b, extra, &profile)
}

/// The same with another portal profile.
pub fn replicas_with(
    portal: &Portal,
    url_a: &str,
    url_b: &str,
    extra: &str,
    profile: &std::path::Path,
) -> Pair {
    let key_dir = tempfile::tempdir().unwrap();
    let key = session_key_file(key_dir.path());
    let portal_toml = format!(
        "[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
        portal.port,
        profile.display()
    );
    Pair {
        a: start_gateway_with(&portal_toml, &(storage_toml_at(url_a, &key) + extra)),
        b: start_gateway_with(&portal_toml, &(storage_toml_at(url_b, &key) + extra)),
        _key_dir: key_dir,
    }
}

/// Whether the gateway still takes `cookie` for a session: it forwards the page (whatever the
/// portal answers) rather than its pre-login wall sending the visitor to the login page (303).
/// Unlike [`logged_in`], it does not hang on the portal's own session, which a logout or a
/// revocation ends too.
fn gateway_forwards(gw: &Gateway, cookie: &str) -> bool {
    get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n")).status != 303
}

pub fn logged_in(gw: &Gateway, cookie: &str) -> bool {
    let page = get(gw.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    page.status == 200 && page.text().contains("data-patient-id=\"5\"")
}

#[test]
fn a_session_made_on_one_replica_is_honoured_and_revoked_on_the_other() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    assert_eq!(resp.status, 302, "{}", resp.text());
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(
        logged_in(&pair.b, &cookie),
        "replica B does not know the session"
    );
    assert!(logged_in(&pair.a, &cookie));

    // Log out on A; B had the session cached a moment ago (its copy lives a second) and must
    // refuse it well within that: only the revocation message explains it.
    let out = get(
        pair.a.port,
        "/index.php?logout=-1",
        &format!("Cookie: {cookie}\r\n"),
    );
    assert_eq!(out.status, 302);
    let started = Instant::now();
    while gateway_forwards(&pair.b, &cookie) {
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "replica B still honours a revoked session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!logged_in(&pair.a, &cookie));

    // An admin revocation made on B ends the user's session that A is serving.
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.a, &cookie));
    let revoke = format!("POST /api/sessions/revoke?user=dr.martin HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n");
    let answer = raw(pair.b.admin_port, revoke.as_bytes()).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().contains("\"revoked\":1"), "{}", answer.text());
    let started = Instant::now();
    while gateway_forwards(&pair.a, &cookie) {
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "replica A still honours a revoked session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn redis_outage_keeps_care_going_briefly_fails_logins_closed_and_recovers() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let resp = submit_login(pair.a.port, "inf.durand", "durand-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.a, &cookie));
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    let revoked = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.a, &revoked));

    redis.stop();
    // A login cannot be recorded: refused with a clear page, no portal cookie handed out.
    let failed = submit_login(pair.b.port, "dr.martin", "martin-demo", None);
    assert_eq!(failed.status, 503, "{}", failed.text());
    assert!(failed.text().contains("Connexion momentanément impossible"));
    assert_eq!(cookie_set(&failed, "mediboard_session"), None);
    assert_eq!(cookie_set(&failed, "vigie"), None);
    // A session this replica saw goes on for the outage grace, under per-replica budgets
    // that the gateway announces.
    std::thread::sleep(Duration::from_millis(1100));
    let during = get(pair.a.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(
        during.status,
        200,
        "within the outage grace: {}",
        pair.a.proc.stderr()
    );
    // A revocation asked for meanwhile cannot be stored, and says so; the replica that was
    // asked no longer serves that session through the grace.
    let revoke = raw(
        pair.a.admin_port,
        format!("POST /api/sessions/revoke?user=dr.martin HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(revoke.status, 503, "{}", revoke.text());
    let after = get(pair.a.port, PATIENT, &format!("Cookie: {revoked}\r\n"));
    assert_eq!(
        after.status, 503,
        "a revoked session served through the grace"
    );
    let ready = get(pair.a.admin_port, "/readyz", "");
    assert!(
        ready.text().contains("\"budgets\":\"per_replica\""),
        "{}",
        ready.text()
    );
    let down = [
        "vigie_budget_degraded 1",
        "vigie_store_up{store=\"redis\"} 0",
    ];
    let metrics = metrics_with(pair.a.admin_port, &down);
    assert!(down.iter().all(|m| metrics.contains(m)), "{metrics}");
    assert!(
        pair.a.proc.stderr().contains("budget_store_down"),
        "the outage is alerted"
    );
    // Past the grace, an existing session cannot be checked: refused too.
    std::thread::sleep(Duration::from_millis(2500));
    let page = get(pair.a.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(page.status, 503);
    // Both replicas keep serving what needs no session.
    assert_eq!(get(pair.b.port, "/.vigie/vigie.css", "").status, 200);

    redis.restart();
    let started = Instant::now();
    loop {
        let retry = submit_login(pair.b.port, "dr.martin", "martin-demo", None);
        if retry.status == 302 {
            let cookie = cookie_set(&retry, "vigie").unwrap();
            assert!(logged_in(&pair.a, &cookie));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no recovery after Redis came back: {}",
            retry.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Redis restarted under traffic (a patch, a failover): once it answers again, no request is
/// refused because the connection it had before broke. No outage grace here, so nothing but
/// Redis itself can answer for the session.
#[test]
fn once_a_restarted_redis_answers_again_no_request_is_refused() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let key_dir = tempfile::tempdir().unwrap();
    let key = session_key_file(key_dir.path());
    let storage =
        storage_toml(&redis, &key).replace("outage_grace_seconds = 3", "outage_grace_seconds = 0");
    let portals = crate::detection::portal_section(&portal);
    let (a, b) = (
        start_gateway_with(&portals, &storage),
        start_gateway_with(&portals, &storage),
    );
    let resp = submit_login(a.port, "dr.martin", "martin-demo", None);
    assert_eq!(resp.status, 302, "{}", resp.text());
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&a, &cookie) && logged_in(&b, &cookie));

    // Past the replicas' one-second cache: every answer below asks Redis.
    std::thread::sleep(Duration::from_millis(1100));
    redis.restart();
    // A's first request after Redis is back reads a session; B's signs someone in.
    let page = get(a.port, PATIENT, &format!("Cookie: {cookie}\r\n"));
    assert_eq!(page.status, 200, "a session read: {}", page.text());
    let again = submit_login(b.port, "inf.durand", "durand-demo", None);
    assert_eq!(again.status, 302, "a new sign-in: {}", again.text());
}

#[test]
fn the_socs_step_up_asked_on_one_replica_stops_the_session_on_the_other_and_both_list_every_session(
) {
    let portal = start_portal();
    let redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let login = |port: u16, user: &str, password: &str| {
        let resp = submit_login(port, user, password, None);
        assert_eq!(resp.status, 302, "{}", resp.text());
        cookie_set(&resp, "vigie").unwrap()
    };
    let martin = login(pair.a.port, "dr.martin", "martin-demo");
    let durand = login(pair.b.port, "inf.durand", "durand-demo");
    assert!(logged_in(&pair.a, &martin));
    // Every session, whichever replica made it, from either replica's admin API.
    for gw in [&pair.a, &pair.b] {
        let all = crate::detection::admin_api(gw.admin_port, "GET", "/api/sessions");
        let users: Vec<&str> = all["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["user"].as_str())
            .collect();
        assert!(
            users.contains(&"dr.martin") && users.contains(&"inf.durand"),
            "{all}"
        );
    }
    // Asked on B; A had the session cached a moment ago.
    let asked = crate::detection::admin_api(
        pair.b.admin_port,
        "POST",
        "/api/sessions/step-up?user=dr.martin",
    );
    assert_eq!(asked["asked"], 1, "{asked}");
    let started = Instant::now();
    loop {
        let page = get(pair.a.port, PATIENT, &format!("Cookie: {martin}\r\n"));
        if page.status == 303 {
            let to = page.header("location").unwrap_or_default().to_string();
            assert!(to.starts_with("/.vigie/factor?return="), "{to}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "replica A still serves the session without a new proof"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A form or a script gets the refusal, not the page.
    let post = raw(
        pair.a.port,
        format!("POST /index.php?m=dPpatients HTTP/1.1\r\nHost: localhost\r\nCookie: {martin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1").as_bytes(),
    )
    .unwrap();
    assert_eq!(post.status, 401, "{}", post.text());
    let listed =
        crate::detection::admin_api(pair.a.admin_port, "GET", "/api/sessions?user=dr.martin");
    assert_eq!(listed["sessions"][0]["step_up_asked"], true, "{listed}");
    // Someone else's session goes on.
    let other = get(pair.a.port, "/index.php", &format!("Cookie: {durand}\r\n"));
    assert_eq!(other.status, 200, "{}", other.text());
}
