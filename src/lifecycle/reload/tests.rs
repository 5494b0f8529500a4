use super::*;

const BASE: &str = "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n";

fn config(extra: &str) -> Config {
    Config::demo_from_toml(
        std::path::Path::new("vigie.toml"),
        &format!("{extra}\n{BASE}"),
    )
    .unwrap()
}

#[test]
fn the_same_file_read_twice_needs_nothing_and_changes_nothing() {
    let text = "[budgets.export]\nrequests = 5\nper = \"minute\"\nburst = 2\n[budgets.view]\nrequests = 50\nper = \"minute\"\nburst = 20\n[groups]\na = [\"alice\", \"bob\"]\nb = [\"alice\"]\nc = [\"carol\"]\n";
    let (a, b) = (config(text), config(text));
    assert!(needs_restart(&a, &b).is_empty());
    assert!(changed(&a, &b).is_empty(), "{:?}", changed(&a, &b));
}

#[test]
fn rules_and_budgets_reload_and_are_named() {
    let a = config("");
    let b = config("[budgets.source]\nrequests = 7\nper = \"minute\"\nburst = 3\n\n[[rule]]\nname = \"no-export\"\npath = \"/export*\"\ndeny = true\n");
    assert!(
        needs_restart(&a, &b).is_empty(),
        "{:?}",
        needs_restart(&a, &b)
    );
    assert_eq!(changed(&a, &b), vec!["policy", "budgets"]);
}

#[test]
fn what_is_read_at_start_is_refused_by_key() {
    let a = config("");
    let moved = Config::demo_from_toml(
        std::path::Path::new("vigie.toml"),
        &BASE.replace("127.0.0.1:8080", "127.0.0.1:8090"),
    )
    .unwrap();
    assert_eq!(needs_restart(&a, &moved), vec!["[[listener]]"]);
    let cookie = config("[session]\ncookie_name = \"other\"\n");
    assert_eq!(needs_restart(&a, &cookie), vec!["[session]"]);
    let upstream = Config::demo_from_toml(
        std::path::Path::new("vigie.toml"),
        &BASE.replace("127.0.0.1:8081", "127.0.0.1:8082"),
    )
    .unwrap();
    assert_eq!(
        needs_restart(&a, &upstream),
        vec!["[[portal]] name, hosts, upstream, upstream_tls or login"]
    );
}

fn with_keys(dir: &std::path::Path, lines: &[&str]) -> Config {
    let file = dir.join(format!("keys-{}", lines.join("-").len()));
    std::fs::write(&file, lines.join("\n")).unwrap();
    config(&format!(
        "[second_factor]\nkey_file = \"{}\"\n",
        file.display()
    ))
}

const K1: &str = "k1:MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=";
const K2: &str = "k2:MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=";
const K1_CHANGED: &str = "k1:MzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM=";

#[test]
fn a_key_ring_may_grow_at_a_reload_but_never_lose_or_change_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let one = with_keys(dir.path(), &[K1]);
    let rotated = with_keys(dir.path(), &[K2, K1]);
    assert!(needs_restart(&one, &rotated).is_empty());
    assert_eq!(key_ring(&one, &rotated), Ok(true));
    assert_eq!(key_ring(&one, &with_keys(dir.path(), &[K1])), Ok(false));
    let dropped = key_ring(&rotated, &with_keys(dir.path(), &[K2])).unwrap_err();
    assert!(dropped.contains("`k1` was removed"), "{dropped}");
    let changed = key_ring(&one, &with_keys(dir.path(), &[K1_CHANGED])).unwrap_err();
    assert!(changed.contains("`k1` changed"), "{changed}");

    // Adopted, the running ring seals with the new first key and still opens the old seals.
    let live = one.second_factor.keys.clone().unwrap();
    let old_seal = live.seal(b"alice", b"secret");
    live.adopt(rotated.second_factor.keys.as_ref().unwrap());
    assert_eq!(live.current_id(), "k2");
    assert_eq!(live.open(b"alice", &old_seal).unwrap().0, b"secret");
}

#[test]
fn every_storage_setting_and_the_connection_limits_need_a_restart() {
    let a = config("");
    for (extra, key) in [
        ("[storage]\naudit_retention_days = 30\n", "[storage]"),
        ("[storage]\ndatabase = \"other.sqlite\"\n", "[storage]"),
        (
            "[limits]\nmax_connections_per_peer = 3\n",
            "[limits] max_connections_per_peer, head_timeout_seconds",
        ),
        (
            "[limits]\nhead_timeout_seconds = 2\n",
            "[limits] max_connections_per_peer, head_timeout_seconds",
        ),
    ] {
        let b = config(extra);
        assert!(
            needs_restart(&a, &b).contains(&key),
            "{extra}: {:?}",
            needs_restart(&a, &b)
        );
    }
    assert!(needs_restart(&a, &config("[limits]\nmax_body_bytes = 1000\n")).is_empty());
}

#[test]
fn the_users_whose_groups_changed_are_named_and_no_one_else() {
    let a = config("[groups]\nblocked = [\"eve\"]\nstaff = [\"alice\", \"bob\"]\n");
    let b = config("[groups]\nblocked = [\"eve\", \"bob\"]\nstaff = [\"bob\", \"alice\"]\n");
    assert_eq!(regrouped(&a, &b), vec!["bob".to_string()]);
    let c = config("[groups]\nstaff = [\"alice\", \"bob\"]\n");
    assert_eq!(regrouped(&a, &c), vec!["eve".to_string()]);
    assert!(regrouped(&a, &a).is_empty());
}

#[test]
fn a_rule_removed_and_the_detector_switched_off_are_named() {
    let a = config("[[rule]]\nname = \"no-export\"\npath = \"/export*\"\ndeny = true\n");
    let b = config("[detection]\nenabled = false\n");
    assert_eq!(
        risky(&a, &b),
        vec!["rule removed: no-export", "detection switched OFF"]
    );
    assert_eq!(
        risky(&b, &a),
        vec!["rule added: no-export", "detection switched on"]
    );
}
