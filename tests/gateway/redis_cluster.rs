//! Replicas on a real Redis Cluster (three masters started here, on free ports) with records
//! in PostgreSQL: the deployment of a hospital whose Redis is a managed cluster. Sessions,
//! revocations, budgets, locks and holds behave as on one Redis server.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::detection::{admin_api, enumerate, portal_section, record, wait_for};
use crate::passthrough::{cookie_set, submit_login};
use crate::postgres_db::PgDatabase;

/// Three masters, no replicas, slots spread by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        Self::start_with(None)
    }

    /// With every node asking for `password` (`requirepass`, and `masterauth` between them).
    pub fn start_with(password: Option<&str>) -> RedisCluster {
        let mut args = vec![
            "--appendonly",
            "yes",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ];
        if let Some(p) = password {
            args.extend(["--requirepass", p, "--masterauth", p]);
        }
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(&args)).collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(p) = password {
            create.args(["-a", p, "--no-auth-warning"]);
        }
        let out = create
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let started = Instant::now();
        let auth: Vec<&str> = password.map_or(vec![], |p| vec!["-a", p, "--no-auth-warning"]);
        while !nodes.iter().all(|n| {
            let mut args = auth.clone();
            args.extend(["CLUSTER", "INFO"]);
            n.cli(&args).contains("cluster_state:ok")
        }) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the cluster never formed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    /// The `redis_cluster_urls` line: every node.
    pub fn urls_toml(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("\"redis://127.0.0.1:{}\"", n.port))
            .collect();
        format!("redis_cluster_urls = [{}]", urls.join(", "))
    }
}

fn logged_in(gw: &Gateway, cookie: &str) -> bool {
    record(gw.port, cookie, 5).status == 200
}

#[test]
fn replicas_on_a_redis_cluster_share_sessions_revocations_budgets_locks_and_holds() {
    let portal = start_portal();
    let cluster = RedisCluster::start();
    let db = PgDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    // Sign-ins: 6 a minute for one source, across both replicas.
    let extra = format!(
        "[storage]\nbackend = \"redis\"\n{}\nsession_key_file = \"{}\"\nreplicas = 2\nrecords = \"postgres\"\npostgres_url = \"{}\"\n\
         [budgets.login]\nrequests = 100000\nper = \"minute\"\n[budgets.source]\nrequests = 1000000\nper = \"minute\"\n\
         [budgets.view]\nrequests = 100000\nper = \"minute\"\n[budgets.export]\nrequests = 2\nper = \"hour\"\nburst = 2\n",
        cluster.urls_toml(),
        key.display(),
        db.url()
    );
    let (mut a, mut b) = (
        start_gateway_with(&portal_section(&portal), &extra),
        start_gateway_with(&portal_section(&portal), &extra),
    );

    // Every key of Vigie's is in one slot, held by one of the masters.
    let cookie = cookie_set(
        &submit_login(a.port, "dr.martin", "martin-demo", None),
        "vigie",
    )
    .expect("signed in through the cluster");
    let slot = cluster.nodes[0].cli(&["CLUSTER", "KEYSLOT", "{vigie:}x"]);
    let holders: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| {
            n.cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot])
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(holders.iter().filter(|n| **n > 0).count(), 1, "{holders:?}");
    assert!(holders.iter().sum::<u64>() >= 3, "{holders:?}");

    // A session made on A is honoured on B; a logout on A is refused on B within a second.
    assert!(logged_in(&b, &cookie));
    let out = get(
        a.port,
        "/index.php?logout=-1",
        &format!("Cookie: {cookie}\r\n"),
    );
    assert_eq!(out.status, 302);
    let started = Instant::now();
    while logged_in(&b, &cookie) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still honours it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // One budget for both replicas: two exports an hour.
    let admin = cookie_set(&submit_login(a.port, "admin", "admin-demo", None), "vigie").unwrap();
    let export = |gw: &Gateway| {
        get(
            gw.port,
            "/index.php?m=dPpatients&raw=ajax_export_patients_csv",
            &format!("Cookie: {admin}\r\n"),
        )
        .status
    };
    assert_eq!((export(&a), export(&b), export(&a)), (200, 200, 429));

    // A lock made on B: A refuses the sign-in.
    admin_api(b.admin_port, "POST", "/api/users/lock?user=inf.durand");
    let refused = submit_login(a.port, "inf.durand", "durand-demo", None);
    assert_eq!(refused.header("location"), Some("/.vigie/signin-failed"));

    // A hold placed on A holds on B, and both survive restarting both replicas.
    let martin = cookie_set(
        &submit_login(a.port, "dr.martin", "martin-demo", None),
        "vigie",
    )
    .unwrap();
    let (_, held) = enumerate(a.port, &martin);
    let alert = held.header("x-vigie-held").unwrap().to_string();
    let holds_it = |gw: &Gateway| {
        admin_api(gw.admin_port, "GET", "/api/holds")["holds"]
            .as_array()
            .is_some_and(|l| l.iter().any(|h| h["alert"] == alert.as_str()))
    };
    wait_for("the hold on B", || holds_it(&b).then_some(()));
    let listed = |gw: &Gateway| {
        admin_api(gw.admin_port, "GET", "/api/alerts?limit=50")["alerts"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["event"]["id"] == alert.as_str()))
    };
    // The alert is stored just after the hold, by A's sender: stored before A is killed.
    wait_for("the alert stored", || listed(&a).then_some(()));
    a.restart();
    b.restart();
    assert_eq!(
        record(b.port, &martin, 7).header("x-vigie-held"),
        Some(alert.as_str())
    );
    assert!(holds_it(&a) && holds_it(&b));
    assert!(
        listed(&a) && listed(&b),
        "one alert list, kept across restarts"
    );
    assert_eq!(export(&b), 429, "the budget outlived the restarts");
}

/// What reads the whole keyspace (the sweep of timed-out sessions, the data-loss checks, the
/// copy into PostgreSQL) asks the master of Vigie's slot, every time, not a node at random.
#[test]
fn keyless_reads_go_to_the_master_of_vigie_s_slot() {
    let cluster = RedisCluster::start();
    let seeds: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port))
        .collect();
    let redis = vigie::storage::redis::Redis::cluster(
        &seeds,
        &vigie::config::RedisTls::default(),
        "{vigie:}",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = redis.connect().await.unwrap();
        let _: () = redis::cmd("SET")
            .arg("{vigie:}k")
            .arg("1")
            .query_async(&mut conn)
            .await
            .unwrap();
        for _ in 0..30 {
            let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg("{vigie:}*")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(keys, vec!["{vigie:}k".to_string()]);
        }
    });
}

/// Credentials the cluster refuses stop the start with a clear error, as with one server.
#[test]
fn a_cluster_that_refuses_the_password_stops_the_start() {
    let cluster = RedisCluster::start_with(Some("the-cluster-password"));
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let wrong = dir.path().join("redis.password");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:{}\"\n[admin]\naddress = \"off\"\n[storage]\nbackend = \"redis\"\n{}\nredis_password_file = \"{}\"\nsession_key_file = \"{}\"\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:1\"\n",
            free_port(),
            cluster.urls_toml(),
            wrong.display(),
            key.display()
        ),
    )
    .unwrap();
    let mut run = Command::new(VIGIE)
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while run.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = run.kill();
            panic!("started on a cluster that refuses its password");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = String::from_utf8_lossy(&run.wait_with_output().unwrap().stderr).to_string();
    assert!(said.contains("refused the credentials"), "{said}");
    assert!(!said.contains("not-the-password"), "{said}");
}
