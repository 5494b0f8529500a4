use super::*;

#[test]
fn overrides_reach_sections_and_list_entries() {
    let mut doc: toml::Table =
        toml::from_str("[admin]\naddress = \"a\"\n[[portal]]\nname = \"x\"\nupstream = \"u\"\n")
            .unwrap();
    set(&mut doc, "admin.address", "b".into()).unwrap();
    set(&mut doc, "portal.0.upstream", "v".into()).unwrap();
    set(&mut doc, "storage.database", "/tmp/d".into()).unwrap();
    assert_eq!(doc["admin"]["address"].as_str(), Some("b"));
    assert_eq!(doc["portal"][0]["upstream"].as_str(), Some("v"));
    assert_eq!(doc["storage"]["database"].as_str(), Some("/tmp/d"));
    assert!(set(&mut doc, "portal.1.upstream", "w".into())
        .unwrap_err()
        .contains("no entry 1"));
    assert!(set(&mut doc, "portal.upstream", "w".into())
        .unwrap_err()
        .contains("index"));
    assert!(set(&mut doc, "admin.address.port", "w".into())
        .unwrap_err()
        .contains("not a section"));
}

#[test]
fn an_override_meets_the_same_checks_as_the_file() {
    let layers = Layers::text(
        Path::new("t.toml"),
        "[[listener]]\naddress = \"127.0.0.1:1\"\n",
    )
    .set("listener.0.address", "not an address");
    let errors = layers.validate().unwrap_err().to_string();
    assert!(errors.contains("listener"), "{errors}");
}
