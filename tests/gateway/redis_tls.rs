//! Redis over TLS (`rediss://`): a real redis-server that speaks only TLS and asks for a
//! client certificate, a CA and certificates made by the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::passthrough::{cookie_set, submit_login};
use crate::replicas::logged_in;

/// A CA, Redis's certificate (for 127.0.0.1) and a client certificate, all signed by the CA;
/// and a second CA that signed nothing here.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl is installed (scripts/install-deps)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-subj",
                &format!("/CN=vigie test {ca}"),
            ]);
        }
        std::fs::write(
            d.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        for name in ["redis", "client"] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                &format!("{name}.crt"),
            ]);
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A Redis that only speaks TLS, asks for a client certificate and a password.
    fn redis(&self, password: &str) -> RedisServer {
        let file = |n: &str| self.path(n).display().to_string();
        let (cert, key, ca) = (file("redis.crt"), file("redis.key"), file("ca.crt"));
        let password = password.to_string();
        RedisServer::start_with_port(move |port| {
            [
                "--appendonly",
                "yes",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                &cert,
                "--tls-key-file",
                &key,
                "--tls-ca-cert-file",
                &ca,
                "--tls-auth-clients",
                "yes",
                "--requirepass",
                &password,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
    }
}

/// The `[storage]` section of a replica reaching `redis` over TLS, trusting `ca`.
fn storage(redis: &RedisServer, pki: &Pki, ca: &str, key: &Path, password: &Path) -> String {
    format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"rediss://127.0.0.1:{}/0\"\nredis_password_file = \"{}\"\nredis_ca_file = \"{}\"\nredis_client_cert_file = \"{}\"\nredis_client_key_file = \"{}\"\nsession_key_file = \"{}\"\nreplicas = 2\n",
        redis.port,
        password.display(),
        pki.path(ca).display(),
        pki.path("client.crt").display(),
        pki.path("client.key").display(),
        key.display(),
    )
}

fn secrets() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let password = dir.path().join("redis.password");
    std::fs::write(&password, "tls-and-a-password\n").unwrap();
    (dir, key, password)
}

#[test]
fn replicas_share_sessions_through_a_redis_that_speaks_only_tls() {
    let pki = Pki::new();
    let redis = pki.redis("tls-and-a-password");
    let portal = start_portal();
    let (_secrets, key, password) = secrets();
    let section = storage(&redis, &pki, "ca.crt", &key, &password);
    let portals = crate::detection::portal_section(&portal);
    let (a, b) = (
        start_gateway_with(&portals, &section),
        start_gateway_with(&portals, &section),
    );
    let resp = submit_login(a.port, "dr.martin", "martin-demo", None);
    assert_eq!(resp.status, 302, "{}\n{}", resp.text(), a.proc.stderr());
    let cookie = cookie_set(&resp, "vigie").unwrap();
    assert!(logged_in(&b, &cookie), "{}", b.proc.stderr());
    // Nothing answers in clear on that port.
    let plain = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "-a",
            "tls-and-a-password",
            "PING",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("PONG"));
}

#[test]
fn a_redis_whose_certificate_the_ca_file_does_not_vouch_for_stops_the_start() {
    let pki = Pki::new();
    let redis = pki.redis("tls-and-a-password");
    let portal = start_portal();
    let (secrets, key, password) = secrets();
    let config = secrets.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:{}\"\n[admin]\naddress = \"off\"\n\n{}\n{}\n[second_factor]\nrequired = false\nkey_file = \"{}\"\nwebauthn_origins = [\"http://localhost\"]\n",
            free_port(),
            storage(&redis, &pki, "other-ca.crt", &key, &password),
            crate::detection::portal_section(&portal),
            factor_key_file(secrets.path()).display()
        ),
    )
    .unwrap();
    let stderr = secrets.path().join("stderr.log");
    let mut child = Command::new(VIGIE)
        .args(["run", "-c", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(status.is_some_and(|s| !s.success()), "still running: {err}");
    assert!(
        err.contains("certificate") && err.contains("redis_ca_file"),
        "{err}"
    );
    assert!(!err.contains("tls-and-a-password"), "{err}");
}

#[test]
fn tls_settings_are_checked_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let check = |storage: &str| {
        let config = dir.path().join("vigie.toml");
        std::fs::write(
            &config,
            format!("[[listener]]\naddress = \"127.0.0.1:1\"\n[storage]\nbackend = \"redis\"\nsession_key_file = \"k\"\n{storage}\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:9\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("k"), "0123456789abcdef0123456789abcdef").unwrap();
        let out = Command::new(VIGIE)
            .args(["check-config", "-c", config.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, err) =
        check("redis_url = \"rediss://10.0.0.5:6380/0\"\nredis_ca_file = \"missing.pem\"");
    assert!(
        !ok && err.contains("storage.redis_ca_file") && err.contains("missing.pem"),
        "{err}"
    );
    let (ok, err) = check("redis_url = \"redis://10.0.0.5:6379/0\"\nredis_ca_file = \"k\"");
    assert!(!ok && err.contains("not rediss://"), "{err}");
    std::fs::write(dir.path().join("c.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let (ok, err) =
        check("redis_url = \"rediss://10.0.0.5:6380/0\"\nredis_client_cert_file = \"c.pem\"");
    assert!(!ok && err.contains("needs its key"), "{err}");
    // Credentials in the URL work, but are said to be in the wrong place.
    let (ok, out) = check("redis_url = \"rediss://:secret-pw@10.0.0.5:6380/0\"");
    assert!(ok && out.contains("carries the Redis credentials"), "{out}");
    assert!(!out.contains("secret-pw"), "{out}");
}
