//! The audit trail kept in the records store: whatever the log level, past a restart, and
//! listed by the admin API (break-glass records in `policy.rs`, replicas in `postgres.rs`).

use crate::common::*;
use crate::detection::{admin_api, wait_for};
use crate::mfa::*;
use crate::passthrough::submit_login;

/// The entries the admin API lists for `query` (`/api/audit?…`).
pub fn audit(gw: &Gateway, query: &str) -> Vec<serde_json::Value> {
    admin_api(gw.admin_port, "GET", &format!("/api/audit?{query}"))["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// JSON logs at level `error`: an access line probes its level before each request, which
/// once left the audit layer blind to the sign-ins that followed.
#[test]
fn the_trail_is_kept_whatever_the_log_level_and_outlives_a_restart() {
    let portal = start_portal();
    let mut gw = start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        "[log]\nformat = \"json\"\nlevel = \"error\"\n",
    );
    let refused = submit_login(gw.port, "dr.martin", "not-the-password", None);
    assert_eq!(refused.status, 303, "{}", refused.text());
    let _signed_in = Client::login(gw.port, "dr.martin", "martin-demo");
    let logins = |gw: &Gateway| audit(gw, "user=dr.martin&event=login");
    let seen = wait_for("both sign-ins in the trail", || {
        let list = logins(&gw);
        (list.len() == 2).then_some(list)
    });
    // Newest first, each with what the log line carries.
    assert_eq!(seen[0]["fields"]["outcome"], "success", "{seen:?}");
    assert_eq!(seen[1]["fields"]["outcome"], "failure", "{seen:?}");
    assert_eq!(seen[0]["fields"]["client"], "127.0.0.1");
    assert_eq!(seen[0]["level"], "info");
    assert!(seen[0]["at_us"].as_i64().unwrap() >= seen[1]["at_us"].as_i64().unwrap());
    let log = gw.proc.stderr();
    let info = |l: &&str| l.contains("\"level\":\"INFO\"") && !l.contains("vigie::audit");
    assert!(
        !log.contains("\"target\":\"vigie::access\"") && !log.lines().any(|l| info(&l)),
        "the log level hides the other info lines: {log}"
    );
    // The audit lines themselves are logged whatever the level (a SIEM reads them too).
    assert!(log.contains("\"outcome\":\"success\""), "{log}");
    assert!(audit(&gw, "user=inf.durand").is_empty());

    gw.restart();
    assert_eq!(logins(&gw), seen, "the trail outlives the restart");
    let refused = raw(
        gw.admin_port,
        b"GET /api/audit HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(refused.status, 401, "the trail needs the admin token");
    let unknown = raw(
        gw.admin_port,
        format!("GET /api/audit?client=10.0.0.1 HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(unknown.status, 400, "an unknown filter is not ignored");
    assert!(
        unknown.text().contains("user, event, limit"),
        "{}",
        unknown.text()
    );
}

/// JSON logs at info: each request's access line first asks whether its level is on; with a
/// filter per layer, that question once left the audit layer blind to the next sign-in on
/// the same thread, and most of the trail was lost.
#[test]
fn json_logs_at_info_keep_every_sign_in() {
    let portal = start_portal();
    let gw = start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        "[log]\nformat = \"json\"\n",
    );
    for _ in 0..5 {
        Client::login(gw.port, "dr.martin", "martin-demo");
    }
    wait_for("five sign-ins in the trail", || {
        (audit(&gw, "user=dr.martin&event=login").len() == 5).then_some(())
    });
}
