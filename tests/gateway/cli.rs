//! The command line: config checking with located errors, TLS with HSTS, the demo.

use std::process::Command;

use crate::common::*;

fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(VIGIE)
        .args(["check-config", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_pins_a_typo_to_file_line_key_and_fix() {
    let text = "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstrem = \"127.0.0.1:8081\"\n";
    let (code, _, err) = check_config(text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("vigie.toml:6:1"), "{err}");
    assert!(err.contains("unknown field `upstrem`"), "{err}");
    assert!(err.contains("did you mean `upstream`?"), "{err}");
}

#[test]
fn check_config_lists_every_semantic_problem_with_its_line() {
    let text = "[[listener]]\naddress = \"127.0.0.1:99999\"\n\n[limits]\nmax_header_count = 5000\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n";
    let (code, _, err) = check_config(text);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            ":2:11: `listener[0].address`: `127.0.0.1:99999` is not an IP address with a port"
        ),
        "{err}"
    );
    assert!(
        err.contains(":5:20: `limits.max_header_count`: 5000 is out of range"),
        "{err}"
    );
    assert!(err.contains("help: use a value from 8 to 256"), "{err}");
    assert!(err.contains("2 problem(s)"), "{err}");
}

#[test]
fn shipped_configs_are_valid() {
    // The demo's file holds sessions without a key ring: only `vigie demo` may run it so (one
    // random key, factors lost at exit); checked as a deployment, that is its one problem.
    let out = Command::new(VIGIE)
        .args(["check-config", "-c", "config/demo.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no key encrypts second-factor secrets") && err.contains("1 problem(s)"),
        "{err}"
    );
    let out = Command::new(VIGIE)
        .args(["check-config", "-c", "config/reference.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "config/reference.toml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn help_describes_every_command_and_each_command_has_its_own() {
    const COMMANDS: [&str; 18] = [
        "run",
        "check-config",
        "reload",
        "health",
        "explain",
        "simulate",
        "demo",
        "session",
        "user",
        "keys",
        "storage",
        "enroll",
        "alerts",
        "holds",
        "tokens",
        "audit",
        "sample-portal",
        "help",
    ];
    let out = Command::new(VIGIE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // The commands the help lists, each with a description: exactly the known ones (a new
    // command joins the list, and its help, here).
    let section = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .unwrap_or_default();
    let listed: Vec<(&str, &str)> = section
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(name, text)| (name, text.trim()))
        .collect();
    let names: Vec<&str> = listed.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, COMMANDS, "{help}");
    for (name, text) in &listed {
        assert!(text.len() >= 20, "{name}: no description ({text:?})");
    }
    for cmd in COMMANDS.iter().filter(|c| **c != "help") {
        let out = Command::new(VIGIE).args([cmd, "--help"]).output().unwrap();
        let own = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd} --help failed");
        assert!(
            own.contains(&format!("Usage: vigie {cmd}")),
            "{cmd} --help: {own}"
        );
    }
}

#[test]
fn tls_listener_serves_with_hsts_and_plain_listener_without() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(status.status.success());
    let echo = Echo::start(std::time::Duration::ZERO);
    let tls_port = free_port();
    let extra = format!(
        "[[listener]]\naddress = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\nhsts_max_age_seconds = 600\n",
        cert.display(),
        key.display()
    );
    let gw = start_gateway(echo.port, &extra);
    wait_for_port(tls_port);

    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let stream = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
    let mut tls = builder.build().connect("localhost", stream).unwrap();
    use std::io::{Read, Write};
    tls.write_all(b"GET /secure HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    let _ = tls.read_to_string(&mut resp);
    let lower = resp.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{resp}");
    assert!(
        lower.contains("strict-transport-security: max-age=600; includesubdomains"),
        "{resp}"
    );
    assert!(
        lower.contains("x-forwarded-proto: https"),
        "the portal is told the client used TLS: {resp}"
    );

    let plain = get(gw.port, "/plain", "");
    assert!(plain.header("strict-transport-security").is_none());
    assert!(plain
        .text()
        .to_ascii_lowercase()
        .contains("x-forwarded-proto: http\r\n"));
}

#[test]
fn demo_runs_the_portal_behind_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, portal, admin) = (free_port(), free_port(), free_port());
    let child = Command::new(VIGIE)
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{gw}"),
            "--portal-listen",
            &format!("127.0.0.1:{portal}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        // From a folder without `config/`: the demo needs no file on disk.
        .current_dir(dir.path())
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _guard = Kill(child);
    wait_for_port(gw);
    wait_for_port(admin);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(!err.contains("error"), "{err}");
    // The demo runs with the sample portal's profile: the browser gets the gateway's cookie only.
    let login = crate::passthrough::submit_login(gw, "admin", "admin-demo", None);
    assert_eq!(login.status, 302);
    assert_eq!(
        crate::passthrough::cookie_set(&login, "mediboard_session"),
        None
    );
    let session = crate::passthrough::cookie_set(&login, "vigie").expect("gateway session cookie");
    // The demo asks for a second factor. Its enrollment is open, but not for the
    // administrator: a privileged account always needs an invitation, which the demo prints.
    let mut client = crate::mfa::Client::new(gw);
    client.cookie = Some(session);
    let wall = client.get("/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1");
    assert_eq!(wall.status, 303);
    assert!(client
        .get("/.vigie/enroll")
        .text()
        .contains("name=\"invitation\""));
    assert_eq!(client.get("/.vigie/enroll/totp").status, 303);
    let banner = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let invitation = banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("invitation"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("an invitation in the banner: {banner}"));
    crate::mfa::enroll_totp(&mut client, Some(invitation));
    let mut nurse = crate::mfa::Client::login(gw, "inf.durand", "durand-demo");
    crate::mfa::enroll_totp(&mut nurse, None);
    let page = client.get("/index.php?m=dPpatients&tab=vw_full_patients&patient_id=1");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("data-patient-id=\"1\""));
    assert_eq!(get(admin, "/readyz", "").status, 200);
    assert!(
        banner.contains(&format!("http://localhost:{gw}/")) && banner.contains("admin-demo"),
        "{banner}"
    );
}

#[test]
fn second_factor_settings_are_checked_and_weak_ones_warned() {
    let portal = format!(
        "[[listener]]\naddress = \"127.0.0.1:8080\"\n\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\nprofile = \"{}\"\n",
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/profiles/sample-portal.toml")
            .display()
    );
    // A portal with sessions and no key ring: refused, with the fix.
    let (code, _, err) = check_config(&portal);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no key encrypts second-factor secrets at rest"),
        "{err}"
    );
    assert!(err.contains("vigie keys factor-key"), "{err}");
    assert!(err.contains("webauthn_origins"), "{err}");

    // A key ring from `vigie keys factor-key`, through an environment variable.
    let out = Command::new(VIGIE)
        .args(["keys", "factor-key", "--id", "k1"])
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("k1:") && line.trim().len() == 3 + 44,
        "{line}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigie.toml");
    let text = format!(
        "{portal}\n[second_factor]\nkey_env = \"TEST_FACTOR_KEYS\"\nenrollment = \"open\"\nmax_failures = 500\nwebauthn_origins = [\"https://evil.example\"]\n"
    );
    std::fs::write(&path, &text).unwrap();
    let run = |keys: &str| {
        Command::new(VIGIE)
            .args(["check-config", "-c", path.to_str().unwrap()])
            .env("TEST_FACTOR_KEYS", keys)
            .output()
            .unwrap()
    };
    let out = run(&line);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("`second_factor.max_failures`: 500 is out of range"),
        "{err}"
    );
    assert!(err.contains("not an origin under webauthn_rp_id"), "{err}");
    // Fixed: valid, with a warning about open enrollment; a bad key is named, never echoed.
    std::fs::write(
        &path,
        text.replace("max_failures = 500", "max_failures = 20")
            .replace("https://evil.example", "http://localhost:8080"),
    )
    .unwrap();
    let ok = run(&line);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("warning: second_factor.enrollment = \"open\""),
        "{stdout}"
    );
    let bad = run("k1:c2VjcmV0LXZhbHVl");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("a key is exactly 32 bytes") && !err.contains("c2VjcmV0"),
        "{err}"
    );
}

/// An existing deployment upgrades in place: `vigie storage migrate` brings a database made
/// before the schema was versioned up to date, says what it did, and loses no user.
#[test]
fn storage_migrate_upgrades_an_unversioned_database_and_keeps_its_users() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, groups TEXT NOT NULL DEFAULT '', disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL);
         INSERT INTO users VALUES ('dr.martin', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA', 'cardio', 0, 1, 1);",
    )
    .unwrap();
    drop(conn);
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[storage]\ndatabase = \"old.sqlite\"\n[second_factor]\nrequired = false\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost\"]\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:9\"\n",
            factor_key_file(dir.path()).display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let first = vigie_ok(["storage", "migrate", "-c", c]);
    assert!(first.contains("schema version 0 -> "), "{first}");
    assert!(first.contains("holds survive a restart"), "{first}");
    let again = vigie_ok(["storage", "migrate", "-c", c]);
    assert!(again.contains("up to date"), "{again}");
    assert!(vigie_ok(["user", "list", "-c", c]).contains("dr.martin"));
    // Nothing to migrate where there is no database yet.
    std::fs::remove_file(&db).unwrap();
    let out = Command::new(VIGIE)
        .args(["storage", "migrate", "-c", c])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}
