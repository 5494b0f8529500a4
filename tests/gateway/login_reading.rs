//! Differential: the same login bodies to the real PHP 8 runtime and to Vigie's reader of a
//! pre-login login POST (threat model 36, 42). Whatever Vigie accepts, PHP must read as the same
//! user's login; whatever PHP would take as a login, Vigie reads as that user or refuses.

use crate::common::*;
use crate::prelogin::{php_server, PhpPortal};

fn echo_server() -> PhpPortal {
    let dir = tempfile::tempdir().unwrap();
    php_server(&crate::prelogin::fixture("echo.php"), &[], &[], dir)
}

/// What PHP read from `body`, as a form.
fn php_reads(port: u16, body: &[u8]) -> serde_json::Value {
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let resp = raw(port, &req).expect("php answers");
    serde_json::from_slice(&resp.body).unwrap_or_else(|_| panic!("{}", resp.text()))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn vigie_reads_login_forms_exactly_as_php_does() {
    use rand::{Rng, SeedableRng};
    let php = echo_server();
    let profile = vigie::config::profile::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/php-portal/profile.toml"),
    )
    .unwrap();
    // Pieces PHP treats specially: name folding (` `, `.`, `[`), arrays, NUL, encodings,
    // case, empty names and values, missing `=`.
    let names = [
        "login",
        "username",
        "password",
        "dialog",
        "user name",
        "user.name",
        " username",
        "username[]",
        "username[x]",
        "username[",
        "usern%61me",
        "%75sername",
        "username%00x",
        "%00username",
        "USERNAME",
        "Username",
        "username ",
        "+username",
        "pass%77ord",
        "password[]",
        "log.in",
        "",
        "m",
        "username]",
        "user%2Ename",
    ];
    let values = [
        "alice",
        "bob",
        "al%69ce",
        "alice%20",
        "alice+",
        "+alice",
        "%FF",
        "ali%00ce",
        "alice%",
        "alice%2",
        "%61lice",
        "",
        "al=ice",
        "alic%C3%A9",
        "ALICE",
        "alice%0A",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xD1FF);
    let (mut accepted, mut php_logins) = (0, 0);
    for case in 0..1500 {
        // The user name itself in every spelling, under every spelling of its field.
        let user = values[rng.random_range(0..values.len())];
        let user_field = [
            "username",
            "usern%61me",
            "%75sername",
            "username%00x",
            "+username",
        ][rng.random_range(0..5)];
        let mut fields: Vec<String> = vec![
            "login=1".into(),
            format!("{user_field}={user}"),
            "password=pw".into(),
        ];
        for _ in 0..rng.random_range(0..3) {
            let name = names[rng.random_range(0..names.len())];
            let value = values[rng.random_range(0..values.len())];
            fields.push(match rng.random_range(0..10) {
                0 => name.to_string(),
                _ => format!("{name}={value}"),
            });
        }
        // Sometimes drop one of the three, always shuffle.
        if rng.random_bool(0.2) {
            let i = rng.random_range(0..3);
            fields.remove(i);
        }
        for i in (1..fields.len()).rev() {
            fields.swap(i, rng.random_range(0..=i));
        }
        let sep = if rng.random_bool(0.1) { "&&" } else { "&" };
        let body = fields.join(sep);
        let php_said = php_reads(php.port, body.as_bytes());
        let php_user = php_said["username"].as_str();
        let php_login =
            php_said["login"] == true && php_said["password"] == true && php_user.is_some();
        php_logins += php_login as u32;
        // A refusal is always safe (the portal never sees the body); an acceptance must be
        // PHP's own reading.
        if let Ok(user) = vigie::identity::prelogin::read_login(&profile, body.as_bytes()) {
            accepted += 1;
            assert!(
                php_login,
                "case {case}: Vigie read a login PHP does not: {body}"
            );
            assert_eq!(
                php_user,
                Some(hex(&user).as_str()),
                "case {case}: Vigie read user {user:?}, PHP another: {body}"
            );
        }
    }
    // The generator must exercise both sides, or the comparison proves nothing.
    assert!(
        accepted > 300 && php_logins > accepted,
        "accepted {accepted}, PHP logins {php_logins}"
    );
}
