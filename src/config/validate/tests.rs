use super::*;

const MINIMAL: &str = "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n";

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml(Path::new("test.toml"), text)
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.listeners[0].address, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.admin, Some("127.0.0.1:9090".parse().unwrap()));
    assert_eq!(c.portals[0].hosts, vec!["*"]);
    assert_eq!(c.limits.max_header_count, 100);
    assert_eq!(c.limits.head_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.max_connections_per_peer, 256);
    assert!(c.server.threads >= 1);
}

#[test]
fn typo_in_key_names_line_and_suggests_fix() {
    let text = MINIMAL.replace("address = \"127", "adress = \"127");
    let errs = load(&text).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].position.map(|p| p.0), Some(2));
    assert!(
        errs[0].message.contains("unknown field `adress`"),
        "{}",
        errs[0].message
    );
    assert_eq!(errs[0].help.as_deref(), Some("did you mean `address`?"));
}

#[test]
fn every_semantic_error_is_reported_with_its_line() {
    let text = "[server]\nthreads = 999\n\n[[listener]]\naddress = \"0.0.0.0:80800\"\n\n[network]\ntrusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1\"\nhosts = [\"a b\"]\n";
    let errs = load(text).unwrap_err().0;
    let found: Vec<(String, usize)> = errs
        .iter()
        .map(|e| (e.key.clone(), e.position.unwrap().0))
        .collect();
    assert!(found.contains(&("server.threads".into(), 2)), "{found:?}");
    assert!(
        found.contains(&("listener[0].address".into(), 5)),
        "{found:?}"
    );
    assert!(
        found.contains(&("network.trusted_proxies[1]".into(), 8)),
        "{found:?}"
    );
    assert!(
        found.contains(&("portal[0].hosts[0]".into(), 13)),
        "{found:?}"
    );
    assert!(
        found.contains(&("portal[0].upstream".into(), 12)),
        "{found:?}"
    );
}

#[test]
fn conflicting_hosts_and_missing_tls_files_are_errors() {
    let text = format!(
        "{MINIMAL}\n[[portal]]\nname = \"lab\"\nupstream = \"127.0.0.1:8082\"\n\n[[listener]]\naddress = \"127.0.0.1:8443\"\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n"
    );
    let errs = load(&text).unwrap_err().0;
    assert!(errs
        .iter()
        .any(|e| e.key == "portal[1].hosts[0]" && e.message.contains("already served")));
    assert!(errs.iter().any(|e| e.key == "listener[1].tls_cert"));
    assert!(errs.iter().any(|e| e.key == "listener[1].tls_key"));
}

#[test]
fn bad_log_settings_and_wrong_types_are_errors() {
    let errs = load(&format!("{MINIMAL}[log]\nformat = \"xml\"\n"))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].key, "log.format");
    let errs = load(&format!("{MINIMAL}[log]\naccess_buffer_kib = 4096\n"))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].key, "log.access_buffer_kib");
    assert!(errs[0].help.as_deref().unwrap_or("").contains("0 to 1024"));
    let c = load(&format!("{MINIMAL}[log]\naccess_buffer_kib = 64\n")).unwrap();
    assert_eq!(c.log.access_buffer_bytes, 64 * 1024);
    assert_eq!(load(MINIMAL).unwrap().log.access_buffer_bytes, 0);
    let errs = load("[limits]\nmax_url_bytes = \"big\"\n").unwrap_err().0;
    assert!(
        errs[0].message.contains("invalid type"),
        "{}",
        errs[0].message
    );
    assert_eq!(errs[0].position.map(|p| p.0), Some(2));
}

#[test]
fn connection_limits_are_checked() {
    let text =
        format!("{MINIMAL}[limits]\nhead_timeout_seconds = 0\nmax_connections_per_peer = 0\n");
    let errs = load(&text).unwrap_err().0;
    let found: Vec<(&str, usize)> = errs
        .iter()
        .map(|e| (e.key.as_str(), e.position.unwrap().0))
        .collect();
    assert_eq!(
        found,
        [
            ("limits.head_timeout_seconds", 8),
            ("limits.max_connections_per_peer", 9)
        ]
    );
    assert!(errs[1]
        .help
        .as_deref()
        .unwrap_or("")
        .contains("1 to 1048576"));
    let c = load(&format!(
        "{MINIMAL}[limits]\nhead_timeout_seconds = 3\nmax_connections_per_peer = 20\n"
    ))
    .unwrap();
    assert_eq!(c.limits.head_timeout, Duration::from_secs(3));
    assert_eq!(c.limits.max_connections_per_peer, 20);
}

#[test]
fn empty_file_explains_what_is_missing() {
    let errs = load("").unwrap_err().0;
    assert!(errs.iter().any(|e| e.key == "listener"));
    assert!(errs.iter().any(|e| e.key == "portal"));
}

#[test]
fn postgres_records_are_checked_at_validation() {
    let with = |storage: &str| load(&format!("{MINIMAL}\n[storage]\n{storage}\n"));
    let keys = |storage: &str| -> Vec<(String, String)> {
        with(storage)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.key, e.message))
            .collect()
    };
    let found = keys("records = \"mysql\"");
    assert_eq!(found[0].0, "storage.records", "{found:?}");
    let found = keys("records = \"postgres\"");
    assert_eq!(found[0].0, "storage.postgres_url", "{found:?}");
    let found = keys("records = \"postgres\"\npostgres_url = \"mysql://db/vigie\"");
    assert!(found[0].1.contains("not a postgres:// URL"), "{found:?}");
    let found = keys("records = \"postgres\"\npostgres_url = \"postgres://127.0.0.1/vigie\"");
    assert!(found[0].1.contains("names no user"), "{found:?}");
    // PostgreSQL settings without records = "postgres" would be silently ignored: refused.
    let found = keys("postgres_url = \"postgres://vigie@db/vigie\"");
    assert_eq!(found[0].0, "storage.postgres_url", "{found:?}");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pg.password");
    std::fs::write(&pw, "s3cret-from-a-file\n").unwrap();
    let found = keys(&format!(
        "records = \"postgres\"\npostgres_url = \"postgres://vigie:inline@db/vigie\"\npostgres_password_file = \"{}\"",
        pw.display()
    ));
    assert!(found[0].1.contains("carries a password"), "{found:?}");

    // Accepted: the password from the file, never shown; a remote server without
    // sslmode=require is warned about.
    let c = with(&format!(
        "records = \"postgres\"\npostgres_url = \"postgres://vigie@db.hospital.local/vigie\"\npostgres_password_file = \"{}\"",
        pw.display()
    ))
    .unwrap();
    let crate::config::Records::Postgres(pg) = &c.storage.records else {
        panic!("postgres records");
    };
    assert_eq!(pg.config.get_password(), Some(&b"s3cret-from-a-file"[..]));
    assert!(!format!("{:?}", c.storage).contains("s3cret"));
    assert!(
        c.warnings.iter().any(|w| w.contains("sslmode")),
        "{:?}",
        c.warnings
    );
    // Never shown, wherever the URL puts the password.
    for url in [
        "postgres://vigie:inline-pw@127.0.0.1/vigie",
        "postgres://vigie@127.0.0.1/vigie?password=inline-pw",
    ] {
        let c = with(&format!("records = \"postgres\"\npostgres_url = \"{url}\"")).unwrap();
        let crate::config::Records::Postgres(pg) = &c.storage.records else {
            panic!("postgres records");
        };
        assert_eq!(pg.shown, "postgres://vigie@127.0.0.1:5432/vigie");
        assert!(!format!("{:?}", c.storage).contains("inline-pw"));
    }
    let c = with(
        "records = \"postgres\"\npostgres_url = \"postgres://vigie:inline-pw@127.0.0.1/vigie\"",
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("carries the PostgreSQL password")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn a_redis_cluster_is_named_by_its_nodes_and_gets_one_hash_tag() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("session.key");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").unwrap();
    let with = |lines: &str| {
        load(&format!(
            "{MINIMAL}\n[storage]\nbackend = \"redis\"\nsession_key_file = \"{}\"\n{lines}\n",
            key.display()
        ))
    };
    let c = with("redis_cluster_urls = [\"redis://10.0.0.1:6379\", \"redis://10.0.0.2:6379\"]")
        .unwrap();
    let crate::config::StorageBackend::Redis {
        url,
        cluster,
        prefix,
        ..
    } = &c.storage.backend
    else {
        panic!("redis");
    };
    assert_eq!(cluster.len(), 2);
    assert_eq!(url, "redis://10.0.0.1:6379");
    assert_eq!(prefix, "{vigie:}", "every key in one slot");
    // A prefix that already has its tag is kept; one server gets no tag.
    let c = with("redis_cluster_urls = [\"redis://a:1\"]\nredis_prefix = \"{ehr}:\"").unwrap();
    assert!(
        matches!(&c.storage.backend, crate::config::StorageBackend::Redis { prefix, .. } if prefix == "{ehr}:")
    );
    let c = with("redis_url = \"redis://a:1/0\"").unwrap();
    assert!(
        matches!(&c.storage.backend, crate::config::StorageBackend::Redis { prefix, .. } if prefix == "vigie:")
    );

    let keys = |lines: &str| -> Vec<String> {
        with(lines)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    assert_eq!(
        keys("redis_url = \"redis://a:1/0\"\nredis_cluster_urls = [\"redis://b:1\"]"),
        vec!["storage.redis_cluster_urls"]
    );
    assert_eq!(
        keys("redis_cluster_urls = []"),
        vec!["storage.redis_cluster_urls"]
    );
    assert_eq!(
        keys("redis_cluster_urls = [\"redis://a:1/3\"]"),
        vec!["storage.redis_cluster_urls"],
        "a cluster has database 0 only"
    );
    assert_eq!(
        keys("redis_cluster_urls = [\"redis://a:1\", \"rediss://b:2\"]"),
        vec!["storage.redis_cluster_urls"],
        "one TLS mode for every node"
    );
    let embedded = load(&format!(
        "{MINIMAL}\n[storage]\nredis_cluster_urls = [\"redis://a:1\"]\n"
    ))
    .unwrap_err()
    .0;
    assert_eq!(embedded[0].key, "storage.redis_cluster_urls");
    assert_eq!(
        keys("redis_cluster_urls = [\"http://b:1\"]"),
        vec!["storage.redis_cluster_urls"]
    );
    // The password file goes into every node's URL, never shown.
    let pw = dir.path().join("redis.password");
    std::fs::write(&pw, "cluster-secret").unwrap();
    let c = with(&format!(
        "redis_cluster_urls = [\"redis://a:1\", \"redis://b:2\"]\nredis_password_file = \"{}\"",
        pw.display()
    ))
    .unwrap();
    let crate::config::StorageBackend::Redis { cluster, .. } = &c.storage.backend else {
        panic!("redis");
    };
    assert!(
        cluster.iter().all(|u| u.contains(":cluster-secret@")),
        "{cluster:?}"
    );
    assert!(!format!("{:?}", c.storage).contains("cluster-secret"));
}
