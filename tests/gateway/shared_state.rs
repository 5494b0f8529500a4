//! The state replicas share through Redis cannot be lost silently (issue 14): a Redis that
//! keeps nothing on disk is refused at start; one that comes back empty, or from an older
//! snapshot, is noticed, alerted and re-established (sessions end, locks hold, enrolled
//! users need an invitation); a lock holds on every request of every replica.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::mfa::{enroll_totp, Client};
use crate::passthrough::{cookie_set, submit_login};
use crate::replicas::{logged_in, replicas, storage_toml};

/// Run `vigie run` on a config using `redis` (with `extra` under `[storage]`): the exit
/// status and standard error if it stops within 10 s, `None` if it keeps running.
fn run_briefly(redis: &RedisServer, extra: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let port = free_port();
    let config = dir.path().join("vigie.toml");
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\n[admin]\naddress = \"off\"\n\n{}{extra}\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:9\"\n\n[second_factor]\nrequired = false\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost\"]\n",
        storage_toml(redis, &key),
        factor_key_file(dir.path()).display()
    );
    std::fs::write(&config, text).unwrap();
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(VIGIE)
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status.success(), std::fs::read_to_string(&stderr).unwrap()));
        }
        if port_up_now(port) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_redis_with_a_password_is_reached_with_the_password_file_only() {
    let secret = "pw with: @/ and %";
    let redis = RedisServer::start_with(&["--appendonly", "yes", "--requirepass", secret]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis.password");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    // Without it: refused at start, and the message does not show the URL's secret.
    let (ok, stderr) = run_briefly(&redis, "").expect("refused without the password");
    assert!(!ok, "{stderr}");
    // With it: the gateway runs.
    let with = format!("redis_password_file = \"{}\"\n", file.display());
    assert!(
        run_briefly(&redis, &with).is_none(),
        "refused with the password"
    );
    // A wrong one: refused, the password never in the message.
    let wrong = dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-it").unwrap();
    let bad = format!("redis_password_file = \"{}\"\n", wrong.display());
    let (ok, stderr) = run_briefly(&redis, &bad).expect("refused with a wrong password");
    assert!(!ok);
    assert!(!stderr.contains("not-it"), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
}

fn port_up_now(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn a_redis_that_keeps_nothing_on_disk_is_refused_at_start() {
    let volatile = RedisServer::start_with(&["--appendonly", "no"]);
    let (ok, stderr) = run_briefly(&volatile, "").expect("the gateway must refuse to start");
    assert!(!ok);
    assert!(
        stderr.contains("keeps no data on disk") && stderr.contains("appendonly yes"),
        "{stderr}"
    );
    // Vouching does not override what Redis itself says.
    let (ok, _) = run_briefly(&volatile, "redis_persistence = true\n")
        .expect("the gateway must refuse to start");
    assert!(!ok);

    // A Redis that hides its configuration: refused unless the operator vouches.
    let hidden =
        RedisServer::start_with(&["--appendonly", "yes", "--rename-command", "CONFIG", ""]);
    let (ok, stderr) = run_briefly(&hidden, "").expect("the gateway must refuse to start");
    assert!(!ok);
    assert!(stderr.contains("redis_persistence = true"), "{stderr}");
    assert!(
        run_briefly(&hidden, "redis_persistence = true\n").is_none(),
        "vouched for: the gateway runs"
    );
    // A persistent Redis: the gateway runs.
    let durable = RedisServer::start();
    assert!(run_briefly(&durable, "").is_none());
}

/// No gateway session handed out (a cleared cookie at most).
fn no_session(resp: &Response) -> bool {
    cookie_set(resp, "vigie").is_none_or(|c| c == "vigie=")
}

/// An admin API call; retried for a few seconds (a replica reconnecting to a restarted Redis
/// answers 503 to the first command).
fn admin(gw: &Gateway, target: &str) {
    let req = format!("POST {target} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    loop {
        let answer = raw(gw.admin_port, req.as_bytes()).unwrap();
        if answer.status == 200 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{}",
            answer.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lock(gw: &Gateway, user: &str) {
    admin(
        gw,
        &format!("/api/users/lock?user={user}&reason=badge%20stolen"),
    );
}

/// Wait until one of the replicas has raised the data-loss alert; returns its log.
fn alerted(gws: &[&Gateway], within: Duration) -> String {
    let started = Instant::now();
    loop {
        for gw in gws {
            let log = gw.proc.stderr();
            if log.contains("shared_state_lost") {
                return log;
            }
        }
        assert!(started.elapsed() < within, "no replica noticed the loss");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/readyz` once it reports the shared state trusted again (at most 10 s).
fn ready(gw: &Gateway) -> String {
    let started = Instant::now();
    loop {
        let answer = get(gw.admin_port, "/readyz", "");
        let text = answer.text();
        let trusted = answer.status == 200 && text.contains("\"shared_state\":\"trusted\"");
        if trusted || started.elapsed() > Duration::from_secs(10) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_lock_made_on_one_replica_stops_the_other_within_a_second() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.a, &cookie));
    lock(&pair.b, "dr.martin");
    let started = Instant::now();
    while logged_in(&pair.a, &cookie) {
        assert!(started.elapsed() < Duration::from_secs(1), "still served");
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    assert_ne!(again.status, 302, "a locked user signed in again");
    assert!(no_session(&again));
}

#[test]
fn redis_back_empty_is_noticed_alerted_and_no_locked_user_gets_in() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.b, &cookie));
    lock(&pair.a, "inf.durand");
    assert!(ready(&pair.a).contains("\"shared_state\":\"trusted\""));

    redis.restart_empty();
    let log = alerted(&[&pair.a, &pair.b], Duration::from_secs(6));
    assert!(log.contains("critical"), "{log}");
    assert!(log.contains("without its data"), "{log}");
    // Re-established: ready again, the lock written back, every session ended.
    assert!(ready(&pair.b).contains("\"shared_state\":\"trusted\""));
    assert!(!redis.cli(&["HGET", "vigie:locks", "inf.durand"]).is_empty());
    assert!(!logged_in(&pair.a, &cookie) && !logged_in(&pair.b, &cookie));
    for gw in [&pair.a, &pair.b] {
        let locked = submit_login(gw.port, "inf.durand", "durand-demo", None);
        assert_ne!(locked.status, 302, "a locked user signed in after the loss");
        assert!(no_session(&locked));
    }
    // Others sign in again.
    let back = submit_login(pair.b.port, "dr.martin", "martin-demo", None);
    assert_eq!(back.status, 302, "{}", back.text());
    // The replica that re-established moved the generation past the other's mark: no
    // second loss, and no false "older snapshot", is reported; /readyz keeps the event.
    std::thread::sleep(Duration::from_millis(2500));
    let logs = pair.a.proc.stderr() + &pair.b.proc.stderr();
    assert!(!logs.contains("older snapshot"), "{logs}");
    assert!(logged_in(&pair.a, &cookie_set(&back, "vigie").unwrap()));
    let reported = ready(&pair.a) + &ready(&pair.b);
    assert!(
        reported.contains("\"shared_state_lost\":{\"at\":"),
        "{reported}"
    );
}

#[test]
fn a_lock_redis_lost_alone_goes_back_and_an_unlock_stays_an_unlock() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    lock(&pair.a, "inf.durand");
    // The last second of writes lost (appendfsync everysec), generation and all else intact.
    assert_eq!(redis.cli(&["HDEL", "vigie:locks", "inf.durand"]), "1");
    let started = Instant::now();
    while redis.cli(&["HGET", "vigie:locks", "inf.durand"]).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lock did not go back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The replica writes the lock back, then says so: the line may follow the write.
    wait_for("the restored lock's alert in a replica's log", || {
        (pair.a.proc.stderr() + &pair.b.proc.stderr())
            .contains("lock_restored")
            .then_some(())
    });
    let refused = submit_login(pair.b.port, "inf.durand", "durand-demo", None);
    assert_ne!(refused.status, 302);
    // An unlock is recorded: no replica writes that lock back.
    admin(&pair.b, "/api/users/unlock?user=inf.durand");
    std::thread::sleep(Duration::from_millis(4500));
    assert!(redis.cli(&["HGET", "vigie:locks", "inf.durand"]).is_empty());
    for gw in [&pair.a, &pair.b] {
        let back = submit_login(gw.port, "inf.durand", "durand-demo", None);
        assert_eq!(back.status, 302, "{}", back.text());
    }
    // Locked, unlocked and locked again within milliseconds, and that last write lost: the
    // file's lock is newer than the recorded unlock, so it goes back.
    lock(&pair.a, "inf.durand");
    admin(&pair.a, "/api/users/unlock?user=inf.durand");
    let lifted = redis.cli(&["HGET", "vigie:unlocked", "inf.durand"]);
    lock(&pair.a, "inf.durand");
    redis.cli(&["HDEL", "vigie:locks", "inf.durand"]);
    redis.cli(&["HSET", "vigie:unlocked", "inf.durand", &lifted]);
    let started = Instant::now();
    while redis.cli(&["HGET", "vigie:locks", "inf.durand"]).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the re-lock did not go back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_lock_made_elsewhere_survives_a_loss_with_only_the_other_replica_left() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    // B serves, then the lock is made on A: B hears of it by message, and keeps it in its file.
    let resp = submit_login(pair.b.port, "sec.bernard", "bernard-demo", None);
    assert_eq!(resp.status, 302);
    lock(&pair.a, "sec.bernard");
    std::thread::sleep(Duration::from_millis(4500));
    let crate::replicas::Pair { a, b, _key_dir } = pair;
    drop(a); // A crashes, and Redis loses everything.
    redis.restart_empty();
    alerted(&[&b], Duration::from_secs(6));
    assert!(ready(&b).contains("\"shared_state\":\"trusted\""));
    let locked = submit_login(b.port, "sec.bernard", "bernard-demo", None);
    assert_ne!(
        locked.status, 302,
        "the lock was lost with Redis and replica A"
    );
    assert!(!redis
        .cli(&["HGET", "vigie:locks", "sec.bernard"])
        .is_empty());
}

#[test]
fn redis_back_from_an_older_snapshot_is_noticed_and_what_ended_since_stays_ended() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let pair = replicas(&portal, &redis);
    let resp = submit_login(pair.a.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.a, &cookie));
    // A snapshot of this moment (a clean shutdown writes everything out).
    redis.cli(&["SHUTDOWN"]);
    redis.stop();
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(redis.dir.path(), snapshot.path());
    redis.restart();

    // Since the snapshot: the session is revoked, an account locked, and time passes.
    admin(&pair.b, "/api/sessions/revoke?user=dr.martin");
    lock(&pair.b, "inf.durand");
    std::thread::sleep(Duration::from_secs(5));
    assert!(!logged_in(&pair.a, &cookie));

    // Redis comes back from the old snapshot: the session and the missing lock with it.
    redis.cli(&["SHUTDOWN", "NOSAVE"]);
    redis.stop();
    for entry in std::fs::read_dir(redis.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    copy_dir(snapshot.path(), redis.dir.path());
    redis.restart();
    // The locked user is refused at once (each replica's copy of the locks holds) ...
    let locked = submit_login(pair.a.port, "inf.durand", "durand-demo", None);
    assert_ne!(
        locked.status, 302,
        "a locked user signed in from the old snapshot"
    );
    // ... and the loss is noticed, the revoked session ended again.
    let log = alerted(&[&pair.a, &pair.b], Duration::from_secs(6));
    assert!(log.contains("older snapshot"), "{log}");
    assert!(ready(&pair.a).contains("\"shared_state\":\"trusted\""));
    assert!(!logged_in(&pair.a, &cookie) && !logged_in(&pair.b, &cookie));
    assert!(!redis.cli(&["HGET", "vigie:locks", "inf.durand"]).is_empty());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn factors_lost_with_redis_are_not_re_enrolled_without_an_invitation() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let key_dir = tempfile::tempdir().unwrap();
    let key = session_key_file(key_dir.path());
    let replica = || {
        crate::mfa::mfa_gateway(
            &portal,
            "enrollment = \"trusted-networks\"\ntrusted_networks = [\"127.0.0.0/8\"]",
            &storage_toml(&redis, &key),
        )
    };
    let (a, b) = (replica(), replica());
    // Enrolled through A, from the trusted network, without invitation: dr.martin long
    // enough before the loss for B's file to know, sec.bernard just before A dies with Redis
    // (B's file never hears of it).
    let mut martin = Client::login(a.port, "dr.martin", "martin-demo");
    enroll_totp(&mut martin, None);
    assert!(martin.opens_patient());
    std::thread::sleep(Duration::from_millis(4500));
    let mut bernard = Client::login(a.port, "sec.bernard", "bernard-demo");
    enroll_totp(&mut bernard, None);
    drop(a);
    redis.restart_empty();
    alerted(&[&b], Duration::from_secs(6));
    assert!(ready(&b).contains("\"shared_state\":\"trusted\""));
    // The factors are gone with Redis; the password alone, even from the trusted network and
    // through the replica that never saw the enrollment, does not bind a new one.
    let needs_invitation = |user: &str, password: &str| {
        let mut again = Client::login(b.port, user, password);
        let page = again.get("/.vigie/enroll");
        assert!(
            page.text().contains("name=\"invitation\""),
            "{user}: {}",
            page.text()
        );
        let totp = again.get("/.vigie/enroll/totp?return=%2F");
        assert_ne!(totp.status, 200, "{user}: a new TOTP secret was offered");
        assert!(!again.opens_patient());
    };
    needs_invitation("dr.martin", "martin-demo");
    // Known to no surviving file: for a while after a loss, nobody enrolls uninvited.
    needs_invitation("sec.bernard", "bernard-demo");
    std::thread::sleep(Duration::from_secs(11));
    needs_invitation("dr.martin", "martin-demo");
    // A user who never enrolled still may, from the trusted network, once that while is over.
    let mut durand = Client::login(b.port, "inf.durand", "durand-demo");
    enroll_totp(&mut durand, None);
    assert!(durand.opens_patient());
}

/// A TCP relay to Redis that a test can cut (every connection closed, new ones dropped) and
/// heal: a network partition between one replica and Redis.
struct Relay {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Relay {
    fn to(target: u16) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: the partition
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, open }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_replica_cut_off_from_redis_refuses_what_was_revoked_meanwhile_once_it_reconnects() {
    let portal = start_portal();
    let redis = RedisServer::start();
    let relay = Relay::to(redis.port);
    // The detector off: this test's polling reads pages faster than a person, and the
    // refusal it looks for must be the revocation's. The profile says no way to log out of the
    // portal, so the portal's session outlives the revocation, as it would with a portal
    // whose logout fails: what is measured is B's own view.
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml"),
    )
    .unwrap();
    let logout = "[logout]\npath = \"/index.php\"\nquery = \"logout=-1\"\n";
    assert!(shipped.contains(logout));
    let profile = dir.path().join("no-logout.toml");
    std::fs::write(&profile, shipped.replace(logout, "")).unwrap();
    let pair = crate::replicas::replicas_with(
        &portal,
        &redis.url(),
        &relay.url(),
        "[detection]\nenabled = false\n",
        &profile,
    );
    let resp = submit_login(pair.b.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.b, &cookie));

    relay.cut();
    admin(&pair.a, "/api/sessions/revoke?user=dr.martin");
    assert!(!logged_in(&pair.a, &cookie));
    // The stated limit: cut off, B serves the session it saw for the outage grace (3 s
    // here), unable to learn of the revocation.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(logged_in(&pair.b, &cookie), "within the outage grace");
    let cut_off = get(pair.b.admin_port, "/readyz", "").text();
    assert!(
        cut_off.contains("\"shared_state\":\"rechecking\""),
        "{cut_off}"
    );

    relay.heal();
    // Once B reaches Redis again, the session is read there (or B's copies dropped at the
    // resubscription) before it is served: refused, well before the grace would have ended.
    let healed = Instant::now();
    while logged_in(&pair.b, &cookie) {
        assert!(
            healed.elapsed() < Duration::from_millis(1500),
            "B still serves a session revoked while it was cut off"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_revocation_ends_the_portal_session_so_a_cut_off_replica_s_copy_opens_nothing() {
    // The limit above, closed where the portal can be logged out: the replica that revokes
    // ends the portal's own session, so B's copy (still within its grace) opens nothing.
    let portal = start_portal();
    let redis = RedisServer::start();
    let relay = Relay::to(redis.port);
    let pair = crate::replicas::replicas_at(
        &portal,
        &redis.url(),
        &relay.url(),
        "[detection]\nenabled = false\n",
    );
    let resp = submit_login(pair.b.port, "dr.martin", "martin-demo", None);
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&pair.b, &cookie));
    relay.cut();
    admin(&pair.a, "/api/sessions/revoke?user=dr.martin");
    let revoked = Instant::now();
    while logged_in(&pair.b, &cookie) {
        assert!(
            revoked.elapsed() < Duration::from_millis(2500),
            "the cut-off replica still opens the portal with a revoked session"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Refused before B's outage grace (3 s) could have ended its copy.
    assert!(revoked.elapsed() < Duration::from_secs(3));
}
