#[test]
fn origins_must_sit_under_the_relying_party() {
    use super::origin_fits;
    assert!(origin_fits("https://ehr.chu.fr", "chu.fr").is_ok());
    assert!(origin_fits("https://chu.fr:8443", "chu.fr").is_ok());
    assert!(origin_fits("http://localhost:8080", "localhost").is_ok());
    assert!(origin_fits("https://evil.example/x.chu.fr", "chu.fr").is_err());
    assert!(origin_fits("https://evilchu.fr", "chu.fr").is_err());
    assert!(origin_fits("http://ehr.chu.fr", "chu.fr").is_err());
    assert!(origin_fits("https://user@ehr.chu.fr", "chu.fr").is_err());
    assert!(origin_fits("ehr.chu.fr", "chu.fr").is_err());
}
