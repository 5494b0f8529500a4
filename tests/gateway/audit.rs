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

/// The trail's answer to `query` once `ready` holds of its entries: the writer has a thread
/// of its own, so what was just done is written a moment later.
pub fn trail_when(
    port: u16,
    query: &str,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> serde_json::Value {
    wait_for(query, || {
        let doc = admin_api(port, "GET", &format!("/api/audit?{query}"));
        let entries = doc["entries"].as_array().cloned().unwrap_or_default();
        ready(&entries).then_some(doc)
    })
}

fn users_of(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| e["user"].as_str().map(str::to_string))
        .collect()
}

/// Whether every one of `names` has an entry.
pub fn by_all(entries: &[serde_json::Value], names: &[&str]) -> bool {
    let users = users_of(entries);
    names.iter().all(|n| users.iter().any(|u| u == n))
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
    // The audit lines and the trail's checkpoints are logged whatever the level.
    let info = |l: &&str| {
        l.contains("\"level\":\"INFO\"")
            && !l.contains("vigie::audit")
            && !l.contains("vigie::checkpoint")
    };
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

/// The gateway's SQLite file, settled (its WAL folded in) and copied aside.
fn settle(db: &std::path::Path, to: &std::path::Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    std::fs::copy(db, to).unwrap();
}

/// `vigie audit verify` on the file: its exit code and what it printed.
pub fn verify(config: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["audit", "verify", "-c", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(VIGIE)
        .args(&args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The gateway's own trail, edited with SQL as an intruder with the database (and not the
/// key ring) would: each edit is found and named, the newest entries removed against the last
/// checkpoint, even once the store's checkpoints are removed too (the log keeps a copy).
#[test]
fn verify_finds_an_edited_a_removed_a_moved_entry_and_the_newest_removed() {
    let portal = start_portal();
    let mut gw = start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        "[log]\nformat = \"json\"\n\n[storage]\naudit_checkpoint_seconds = 1\n",
    );
    for _ in 0..4 {
        Client::login(gw.port, "dr.martin", "martin-demo");
    }
    let dir = gw.config.parent().unwrap().to_path_buf();
    let db = dir.join("vigie.sqlite");
    let head = |sql: &str| -> i64 {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .unwrap()
            .unwrap_or(0)
    };
    let last = wait_for("a checkpoint of the whole chain", || {
        let (entries, signed) = (
            head("SELECT max(seq) FROM audit"),
            head("SELECT max(seq) FROM audit_checkpoints"),
        );
        (entries >= 4 && signed == entries).then_some(entries)
    });
    gw.proc.kill();
    let log = dir.join("gateway.log");
    std::fs::write(&log, gw.proc.stderr()).unwrap();
    assert!(gw.proc.stderr().contains("\"audit_checkpoint\""));
    let pristine = dir.join("pristine.sqlite");
    settle(&db, &pristine);

    let (code, out) = verify(&gw.config, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("#1-#{last}")) && out.contains("intact"),
        "{out}"
    );

    let tampered = |sql: &str, extra: &[&str]| {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        std::fs::copy(&pristine, &db).unwrap();
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        verify(&gw.config, extra)
    };
    let cases = [
        (
            "UPDATE audit SET username = 'someone.else' WHERE seq = 2",
            "entry #2 ",
            "edited",
        ),
        (
            "DELETE FROM audit WHERE seq = 3",
            "entry #3 was removed",
            "",
        ),
        (
            "UPDATE audit SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END WHERE seq IN (2, 3)",
            "entry #2 ",
            "moved",
        ),
        (
            &format!("DELETE FROM audit WHERE seq >= {}", last - 1),
            &format!("vouches for entry #{last}, the store ends at #{}", last - 2),
            "",
        ),
        // An action forged as an entry of its own, without a link (as if from before the
        // chain), and an entry whose MAC was stripped (the walk must still move on).
        (
            "INSERT INTO audit (id, at_us, level, event, username, fields) SELECT 'forged', max(at_us), 'warn', 'hold_released', 'dora.dpo', '{}' FROM audit",
            "entry forged has no link",
            "inserted",
        ),
        (
            "UPDATE audit SET mac = NULL WHERE seq = 2",
            "has no link",
            "stripped",
        ),
        // A key written twice: parsed, it reads as before; SQLite's own JSON reads the first.
        (
            "UPDATE audit SET fields = replace(fields, '{', '{\"outcome\":\"forged\",') WHERE seq = 2",
            "entry #2 ",
            "edited",
        ),
    ];
    for (sql, first, why) in cases.iter().map(|(a, b, c)| (*a, b.to_string(), *c)) {
        let (code, out) = tampered(sql, &[]);
        assert_eq!(code, 1, "{sql}: {out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("TAMPERED"))
            .unwrap_or("");
        assert!(line.contains(&first) && line.contains(why), "{sql}: {out}");
    }
    // A value retyped (same bytes, a BLOB now): the content is unchanged, verify still reads it.
    let (code, out) = tampered(
        "UPDATE audit SET username = CAST(username AS BLOB) WHERE seq = 1",
        &[],
    );
    assert_eq!(code, 0, "{out}");
    // The newest entries and the store's checkpoints removed: the store alone cannot tell
    // (said as unconfirmed entries), the published checkpoints can.
    let both = format!(
        "DELETE FROM audit WHERE seq >= {}; DELETE FROM audit_checkpoints;",
        last - 1
    );
    let (code, out) = tampered(&both, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no checkpoint yet"), "{out}");
    let (code, out) = tampered(&both, &["--checkpoints", log.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the newest entries were removed"), "{out}");
    // A checkpoint edited without the signing key (moved past the end) is refused.
    let forged = "INSERT INTO audit_checkpoints SELECT chain, seq + 100, mac, at_us, signer, signature FROM audit_checkpoints LIMIT 1";
    let (code, out) = tampered(forged, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature is wrong"), "{out}");

    // The export: every entry, in chain order, with its link.
    std::fs::copy(&pristine, &db).unwrap();
    let export = vigie_ok(["audit", "export", "-c", gw.config.to_str().unwrap()]);
    let seqs: Vec<i64> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["link"]["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
}
