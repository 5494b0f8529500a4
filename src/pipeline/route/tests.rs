use super::*;
fn portal(name: &str, hosts: &[&str]) -> PortalConfig {
    PortalConfig::for_tests(name, hosts)
}

#[test]
fn exact_host_wins_then_catch_all() {
    let r = Router::new(&[portal("ehr", &["ehr.local"]), portal("lab", &["*"])]);
    assert_eq!(r.select("ehr.local").unwrap().config.name, "ehr");
    assert_eq!(r.select("other").unwrap().config.name, "lab");
    let strict = Router::new(&[portal("ehr", &["ehr.local"])]);
    assert!(strict.select("other").is_none());
}
