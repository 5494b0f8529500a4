//! Durable records on PostgreSQL (`[storage] records = "postgres"`), against the machine's
//! PostgreSQL, a database of their own per test: what is security-relevant survives restarts
//! and replaced machines, replicas share one alert list and one set of factors, an existing
//! deployment moves over with its records, and a dump gives nothing usable.

use crate::common::*;
use crate::detection::{admin_api, enumerate, portal_section, record, wait_for};
use crate::mfa::*;
use crate::passthrough::{cookie_set, submit_login};
use crate::postgres_db::PgDatabase;

fn signed_in(gw: &Gateway, user: &str, password: &str) -> String {
    cookie_set(&submit_login(gw.port, user, password, None), "vigie").expect("signed in")
}

fn refused_sign_in(gw: &Gateway, user: &str, password: &str) -> bool {
    let r = submit_login(gw.port, user, password, None);
    r.status == 303 && r.header("location") == Some("/.vigie/signin-failed")
}

fn alert_listed(gw: &Gateway, id: &str) -> bool {
    admin_api(gw.admin_port, "GET", "/api/alerts?limit=100")["alerts"]
        .as_array()
        .is_some_and(|list| list.iter().any(|a| a["event"]["id"] == id))
}

/// Threat model 32: a gateway whose machine is replaced (a new pod, a restored VM) comes back
/// with nothing but its configuration, and still holds, locks and lists what it did.
#[test]
fn a_replaced_machine_keeps_holds_locks_and_alerts_kept_in_postgres() {
    let portal = start_portal();
    let db = PgDatabase::create();
    let extra = records_on(&db);
    let gw = start_gateway_with(&portal_section(&portal), &extra);
    let (_, held) = enumerate(gw.port, &signed_in(&gw, "dr.martin", "martin-demo"));
    let alert_id = held.header("x-vigie-held").unwrap().to_string();
    let locked = admin_api(
        gw.admin_port,
        "POST",
        "/api/users/lock?user=inf.durand&reason=badge%20stolen",
    );
    assert_eq!(locked["locked"], true, "{locked}");
    wait_for("the alert in the store", || {
        alert_listed(&gw, &alert_id).then_some(())
    });
    // In PostgreSQL, not in the file the machine loses.
    assert_eq!(db.sql("SELECT username FROM holds"), "dr.martin");
    assert_eq!(
        db.sql("SELECT reason FROM account_locks WHERE username = 'inf.durand'"),
        "badge stolen"
    );
    drop(gw);

    // A new state directory: a new SQLite file, a new session key.
    let gw = start_gateway_with(&portal_section(&portal), &extra);
    let again = record(gw.port, &signed_in(&gw, "dr.martin", "martin-demo"), 1);
    assert_eq!(again.status, 403, "{}", again.text());
    assert_eq!(again.header("x-vigie-held"), Some(alert_id.as_str()));
    assert!(refused_sign_in(&gw, "inf.durand", "durand-demo"));
    assert!(alert_listed(&gw, &alert_id));
    // The SOC's release and IT's unlock are durable the same way.
    let released = admin_api(
        gw.admin_port,
        "POST",
        "/api/holds/release?portal=ehr&user=dr.martin",
    );
    assert_eq!(released["released"], true);
    admin_api(gw.admin_port, "POST", "/api/users/unlock?user=inf.durand");
    drop(gw);
    let gw = start_gateway_with(&portal_section(&portal), &extra);
    let cookie = signed_in(&gw, "dr.martin", "martin-demo");
    assert_eq!(record(gw.port, &cookie, 1).status, 200);
    assert!(!refused_sign_in(&gw, "inf.durand", "durand-demo"));
}

/// Replicas on Redis (sessions) and PostgreSQL (records): a factor enrolled on one works on
/// the other, a code is accepted once across both, the SOC sees one alert list whichever it
/// asks, and all of it outlives restarting both. The database holds no usable secret.
#[test]
fn replicas_on_postgres_share_factors_locks_and_one_alert_list() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let db = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let session_key = session_key_file(dir.path());
    let keys = factor_key_file(dir.path());
    let extra = format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nsession_key_file = \"{}\"\nrecords = \"postgres\"\npostgres_url = \"{}\"\n{GENEROUS_BUDGETS}",
        redis.url(),
        session_key.display(),
        db.url()
    );
    let factor = format!("enrollment = \"open\"\nkey_file = \"{}\"", keys.display());
    let mut a = mfa_gateway(&portal, &factor, &extra);
    let mut b = mfa_gateway(&portal, &factor, &extra);

    let mut on_a = Client::login(a.port, "dr.martin", "martin-demo");
    let (secret, codes) = enroll_totp(&mut on_a, None);
    assert_eq!(db.sql("SELECT count(*) FROM factors"), "1");
    assert_eq!(
        redis.cli(&["EXISTS", "vigie:factors:dr.martin"]),
        "0",
        "the factor is in PostgreSQL, not Redis"
    );
    let mut b1 = Client::login(b.port, "dr.martin", "martin-demo");
    let mut a1 = Client::login(a.port, "dr.martin", "martin-demo");
    let next = code(&secret, 1);
    assert_eq!(
        b1.post_form("/.vigie/factor/totp", &[("code", &next)])
            .status,
        303
    );
    assert!(b1.opens_patient());
    let replay = a1.post_form("/.vigie/factor/totp", &[("code", &next)]);
    assert_eq!(replay.status, 200, "the code was used on B");
    assert!(!a1.opens_patient());

    // An alert raised on B is in A's list; a lock made on A refuses sign-ins on B.
    let (_, held) = enumerate(b.port, b1.cookie.as_ref().unwrap());
    let alert_id = held.header("x-vigie-held").unwrap().to_string();
    wait_for("B's alert in A's list", || {
        alert_listed(&a, &alert_id).then_some(())
    });
    // One queue: acknowledged through A, B shows it, and refuses a change made from the
    // status it no longer has.
    let acked = admin_api(
        a.admin_port,
        "POST",
        &format!("/api/alerts/status?id={alert_id}&from=new&to=acknowledged"),
    );
    assert_eq!(acked["alert"]["vigie"]["triage"]["status"], "acknowledged");
    let on_b = admin_api(
        b.admin_port,
        "GET",
        &format!("/api/alerts/show?id={alert_id}"),
    );
    assert_eq!(on_b["alert"]["vigie"]["triage"]["status"], "acknowledged");
    let stale = raw(
        b.admin_port,
        format!("POST /api/alerts/status?id={alert_id}&from=new&to=closed&resolution=benign HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(stale.status, 409, "{}", stale.text());
    admin_api(a.admin_port, "POST", "/api/users/lock?user=admin");
    assert!(refused_sign_in(&b, "admin", "admin-demo"));

    b.restart();
    a.restart();
    assert!(alert_listed(&b, &alert_id) && alert_listed(&a, &alert_id));
    // One audit trail in PostgreSQL, one chain per writing process, verified together.
    let out = std::process::Command::new(VIGIE)
        .args(["audit", "verify", "-c", a.config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().filter(|l| l.starts_with("chain ")).count() >= 2,
        "{text}"
    );
    // One audit trail: dr.martin's three sign-ins (two on A, one on B), listed by either.
    for gw in [&a, &b] {
        let signed_in = crate::audit::audit(gw, "user=dr.martin&event=login");
        assert_eq!(signed_in.len(), 3, "{signed_in:?}");
    }
    assert!(refused_sign_in(&a, "admin", "admin-demo"));
    let mut c = Client::login(a.port, "inf.durand", "durand-demo");
    assert!(!c.opens_patient(), "no factor yet: the wall");
    let mut m = Client::login(b.port, "dr.martin", "martin-demo");
    let used = m.post_form(
        "/.vigie/factor/recovery",
        &[("code", &codes[0]), ("return", PATIENT)],
    );
    assert_eq!(used.status, 303, "{}", used.text());

    // A dump of the database: the TOTP secret and the recovery codes are nowhere in it, in
    // any spelling pg_dump or a reader might use.
    let dump = db.dump();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let b32 = base32_of(&secret);
    assert!(dump.len() > 1000 && String::from_utf8_lossy(&dump).contains("dr.martin"));
    for needle in [secret.clone(), hex.into_bytes(), b32.into_bytes()] {
        assert!(
            !dump.windows(needle.len()).any(|w| w == needle.as_slice()),
            "the TOTP secret is readable in the dump"
        );
    }
    for code in &codes {
        assert!(
            !dump.windows(code.len()).any(|w| w == code.as_bytes()),
            "a recovery code is readable in the dump"
        );
    }
}

/// RFC 4648 base32 without padding, as authenticator apps show a secret.
fn base32_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// An existing deployment moves to PostgreSQL: its file's (or its Redis's) factors with their
/// replay state, recovery codes, holds, locks and alerts come along, by `vigie storage
/// migrate` or at the first start.
/// `backend`: the `[storage]` lines naming Redis (empty: embedded).
fn moves_to_postgres(backend: &str, by_command: bool) {
    let portal = start_portal();
    let db = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let session_key = session_key_file(dir.path());
    let keys = factor_key_file(dir.path());
    let extra = format!(
        "[storage]\n{backend}session_key_file = \"{}\"\nrecords = \"sqlite\"\n{GENEROUS_BUDGETS}",
        session_key.display()
    );
    let factor = format!("enrollment = \"open\"\nkey_file = \"{}\"", keys.display());
    let mut gw = mfa_gateway(&portal, &factor, &extra);
    let mut m = Client::login(gw.port, "dr.martin", "martin-demo");
    let (secret, codes) = enroll_totp(&mut m, None);
    let mut m = Client::login(gw.port, "dr.martin", "martin-demo");
    let step1 = code(&secret, 1);
    assert_eq!(
        m.post_form("/.vigie/factor/totp", &[("code", &step1)])
            .status,
        303
    );
    let mut d = Client::login(gw.port, "inf.durand", "durand-demo");
    enroll_totp(&mut d, None);
    let (_, held) = enumerate(gw.port, d.cookie.as_ref().unwrap());
    let alert_id = held.header("x-vigie-held").unwrap().to_string();
    admin_api(gw.admin_port, "POST", "/api/users/lock?user=admin");
    wait_for("the alert in the store", || {
        alert_listed(&gw, &alert_id).then_some(())
    });

    // The configuration now names PostgreSQL.
    let text = std::fs::read_to_string(&gw.config).unwrap().replace(
        "records = \"sqlite\"",
        &format!("records = \"postgres\"\npostgres_url = \"{}\"", db.url()),
    );
    std::fs::write(&gw.config, text).unwrap();
    if by_command {
        let said = vigie_ok(["storage", "migrate", "-c", gw.config.to_str().unwrap()]);
        assert!(said.contains("factors: 2"), "{said}");
        assert!(said.contains("recovery_codes: 20"), "{said}");
        // Once: a second run finds the sources copied.
        let again = vigie_ok(["storage", "migrate", "-c", gw.config.to_str().unwrap()]);
        assert!(!again.contains("factors: "), "{again}");
    }
    gw.restart();

    // The replay state came along: the code used before is refused, then a recovery code
    // (the factors came along) opens the records.
    let mut m = Client::login(gw.port, "dr.martin", "martin-demo");
    let replay = m.post_form("/.vigie/factor/totp", &[("code", &step1)]);
    assert_eq!(replay.status, 200, "the used code was accepted again");
    let used = m.post_form(
        "/.vigie/factor/recovery",
        &[("code", &codes[0]), ("return", PATIENT)],
    );
    assert_eq!(used.status, 303, "{}", used.text());
    assert!(m.opens_patient());
    assert!(refused_sign_in(&gw, "admin", "admin-demo"));
    assert!(alert_listed(&gw, &alert_id));
    if backend.is_empty() {
        // Holds move with the file (with Redis, Redis keeps carrying them).
        assert_eq!(db.sql("SELECT username FROM holds"), "inf.durand");
    }
    assert_eq!(db.sql("SELECT count(*) FROM factors"), "2");
}

#[test]
fn an_embedded_deployment_moves_to_postgres_at_its_first_start() {
    moves_to_postgres("", false);
}

#[test]
fn replicas_move_their_redis_factors_to_postgres_by_the_migrate_command() {
    let redis = RedisServer::start();
    let backend = format!("backend = \"redis\"\nredis_url = \"{}\"\n", redis.url());
    moves_to_postgres(&backend, true);
}

#[test]
fn replicas_on_a_redis_cluster_move_their_factors_to_postgres() {
    let cluster = crate::redis_cluster::RedisCluster::start();
    let backend = format!("backend = \"redis\"\n{}\n", cluster.urls_toml());
    moves_to_postgres(&backend, true);
}

/// Two gateways sharing PostgreSQL but not Redis (each its own sessions): a lock made on one
/// is in force on the other within seconds, for a new sign-in and for a session it serves.
#[test]
fn a_lock_made_on_one_gateway_reaches_another_sharing_only_postgres() {
    let portal = start_portal();
    let db = PgDatabase::create();
    let extra = records_on(&db);
    let a = start_gateway_with(&portal_section(&portal), &extra);
    let b = start_gateway_with(&portal_section(&portal), &extra);
    let on_b = signed_in(&b, "dr.martin", "martin-demo");
    assert_eq!(record(b.port, &on_b, 1).status, 200);
    admin_api(a.admin_port, "POST", "/api/users/lock?user=dr.martin");
    // A sign-in asks the lock store itself: refused at once.
    assert!(refused_sign_in(&b, "dr.martin", "martin-demo"));
    // The session B was serving ends once B's copy of the locks has it (a few seconds; asked
    // at a clinician's pace, so the detector plays no part).
    let started = std::time::Instant::now();
    let after = loop {
        let r = record(b.port, &on_b, 1);
        if r.status != 200 {
            break r;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "B still serves a locked account's session"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(
        after.header("x-vigie-held"),
        None,
        "ended by the lock, not held"
    );
    admin_api(a.admin_port, "POST", "/api/users/unlock?user=dr.martin");
    wait_for("the unlock on B", || {
        (!refused_sign_in(&b, "dr.martin", "martin-demo")).then_some(())
    });
}

/// A records database emptied or replaced under a gateway (a wrong restore, a new server) is
/// not taken silently: the locks and used codes this gateway knew are not in it. The start
/// stops and says what to do; IT takes the new database on purpose with one command.
#[test]
fn a_records_database_emptied_under_the_gateway_stops_its_start_until_it_is_taken_on_purpose() {
    let portal = start_portal();
    let db = PgDatabase::create();
    let extra = records_on(&db);
    // One start is enough: the new gateway's file names its records database at once.
    let mut gw = start_gateway_with(&portal_section(&portal), &extra);
    admin_api(gw.admin_port, "POST", "/api/users/lock?user=inf.durand");
    gw.proc.kill();
    db.gone();
    db.back();
    let said = refused_start(&gw);
    assert!(said.contains("--new-records"), "{said}");
    assert_eq!(
        db.sql("SELECT count(*) FROM account_locks"),
        "0",
        "nothing copied back"
    );
    let taken = vigie_ok([
        "storage",
        "migrate",
        "-c",
        gw.config.to_str().unwrap(),
        "--new-records",
    ]);
    assert!(taken.contains("taken as this gateway's"), "{taken}");
    gw.restart();
    assert!(!refused_sign_in(&gw, "dr.martin", "martin-demo"));
}

/// `[storage]` for an embedded gateway whose records are in `db`.
fn records_on(db: &PgDatabase) -> String {
    format!(
        "[storage]\nrecords = \"postgres\"\npostgres_url = \"{}\"\n{GENEROUS_BUDGETS}",
        db.url()
    )
}

/// `vigie run` on the gateway's configuration must stop (within 20 s); what it said.
fn refused_start(gw: &Gateway) -> String {
    let mut run = std::process::Command::new(VIGIE)
        .args(["run", "-c", gw.config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while run.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = run.kill();
            panic!("the gateway started");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = run.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{said}");
    said
}

/// A records database restored from a backup taken before a lock: the lock is not in it. The
/// start stops and says so, instead of letting the locked account in again.
#[test]
fn a_records_database_restored_from_an_older_backup_stops_the_start_until_it_is_taken_on_purpose() {
    let portal = start_portal();
    let db = PgDatabase::create();
    let extra = records_on(&db);
    let mut gw = start_gateway_with(&portal_section(&portal), &extra);
    let backup = db.dump();
    gw.restart();
    admin_api(gw.admin_port, "POST", "/api/users/lock?user=inf.durand");
    assert!(refused_sign_in(&gw, "inf.durand", "durand-demo"));
    gw.proc.kill();
    db.restore(&backup);
    assert_eq!(
        db.sql("SELECT count(*) FROM account_locks"),
        "0",
        "the backup predates the lock"
    );
    let said = refused_start(&gw);
    assert!(said.contains("went back in time"), "{said}");
    assert!(said.contains("--new-records"), "{said}");
    vigie_ok([
        "storage",
        "migrate",
        "-c",
        gw.config.to_str().unwrap(),
        "--new-records",
    ]);
    gw.restart();
    assert!(!refused_sign_in(&gw, "dr.martin", "martin-demo"));
}

/// Replicas on Redis and PostgreSQL, Redis away: a lock made on A is stored in PostgreSQL
/// (Redis refuses it), and B, which cannot hear it through Redis, reads it there within
/// seconds and stops serving the user: no outage grace for a locked account.
#[test]
fn a_lock_stored_while_redis_is_away_reaches_the_other_replica_through_postgres() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let db = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let extra = format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"{}\"\nsession_key_file = \"{}\"\nreplicas = 2\noutage_grace_seconds = 120\nrecords = \"postgres\"\npostgres_url = \"{}\"\n{GENEROUS_BUDGETS}",
        redis.url(),
        key.display(),
        db.url()
    );
    let a = start_gateway_with(&portal_section(&portal), &extra);
    let b = start_gateway_with(&portal_section(&portal), &extra);
    let on_b = signed_in(&b, "inf.durand", "durand-demo");
    assert_eq!(record(b.port, &on_b, 3).status, 200);
    redis.stop();
    // Within the outage grace, B still serves the session it saw.
    assert_eq!(record(b.port, &on_b, 3).status, 200);
    // Redis does not take it: 503, saying where the lock is.
    let lock = raw(
        a.admin_port,
        format!("POST /api/users/lock?user=inf.durand&reason=outage HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(lock.status, 503);
    assert!(
        lock.text().contains("in force on this replica"),
        "{}",
        lock.text()
    );
    assert_eq!(
        db.sql("SELECT reason FROM account_locks WHERE username = 'inf.durand'"),
        "outage"
    );
    let started = std::time::Instant::now();
    loop {
        let r = record(b.port, &on_b, 3);
        if r.status != 200 {
            assert_eq!(r.header("x-vigie-held"), None);
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "B serves a locked account through the outage grace"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
