use super::*;

#[test]
fn only_same_origin_paths_are_followed() {
    for (raw, want) in [
        ("/index.php?m=1", "/index.php?m=1"),
        ("/a/../b", "/b"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https:evil.example", "/"),
        ("https://evil.example/", "/"),
        ("evil@host", "/"),
        ("javascript:alert(1)", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("/%2f/evil", "/"),
        ("/.vigie/login?return=//evil", "/"),
        ("", "/"),
    ] {
        assert_eq!(safe_return(raw), want, "{raw}");
    }
}
