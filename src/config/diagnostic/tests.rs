use super::*;

const TEXT: &str = "[server]\nthreads = 3\n\n[[portal]]\nname = \"a\"\nupstream = \"x\"\n\n[[portal]]\nname = \"b\"\nhosts = [\"h1\", \"h2\"]\n";

#[test]
fn locates_nested_keys_and_array_items() {
    let loc = Locator::new(Path::new("f.toml"), TEXT);
    assert_eq!(
        loc.error("server.threads", "m", None).position,
        Some((2, 11))
    );
    assert_eq!(
        loc.error("portal[0].upstream", "m", None).position,
        Some((6, 12))
    );
    assert_eq!(
        loc.error("portal[1].hosts[1]", "m", None).position,
        Some((10, 16))
    );
    // A missing key points at the closest enclosing place that exists.
    let missing = loc.error("portal[1].upstream", "m", None);
    assert_eq!(missing.position.map(|p| p.0), Some(8));
}

#[test]
fn display_names_file_line_key_and_help() {
    let loc = Locator::new(Path::new("conf/v.toml"), TEXT);
    let e = loc.error("server.threads", "too many", Some("use 0..=256".into()));
    assert_eq!(
        e.to_string(),
        "conf/v.toml:2:11: `server.threads`: too many\n  help: use 0..=256"
    );
}
