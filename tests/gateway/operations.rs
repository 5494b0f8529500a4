//! Operating a running gateway (issue 18): reload by SIGHUP and by `vigie reload`, a start
//! that cannot bind, SIGTERM's grace period, honest `/readyz`, the container healthcheck run
//! as a container runs it, and Pingora's own error lines kept free of patient ids.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const CLOSED_RULE: &str = "\n[[rule]]\nname = \"closed\"\npath = \"/index.php\"\ndeny = true\n";

fn keep_alive_get(conn: &mut Conn, target: &str) -> Response {
    conn.send(format!("GET {target} HTTP/1.1\r\nHost: portal.test\r\n\r\n").as_bytes());
    conn.read_response()
        .expect("an answer on the kept-alive connection")
}

fn reload_cli(config: &std::path::Path) -> (i32, String) {
    let out = Command::new(VIGIE)
        .args(["reload", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_reloaded_rule_applies_on_the_same_keep_alive_connection_and_a_broken_file_changes_nothing() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let original = std::fs::read_to_string(&gw.config).unwrap();
    let mut conn = Conn::open(gw.port);
    assert_eq!(keep_alive_get(&mut conn, "/index.php").status, 200);
    let mut clinician = crate::mfa::Client::login(gw.port, "dr.martin", "martin-demo");
    assert!(clinician.opens_patient());

    // SIGHUP with a new rule: the next request on the same connection meets it.
    std::fs::write(&gw.config, format!("{original}{CLOSED_RULE}")).unwrap();
    gw.proc.signal(libc::SIGHUP);
    let ok = "vigie_config_reloads_total{result=\"ok\"} 1";
    assert!(metrics_with(gw.admin_port, &[ok]).contains(ok));
    assert_eq!(keep_alive_get(&mut conn, "/index.php").status, 403);

    // A broken file: refused, counted, and the rule in force stays in force.
    std::fs::write(
        &gw.config,
        format!("{original}{CLOSED_RULE}\n[[rule]]\nname = "),
    )
    .unwrap();
    gw.proc.signal(libc::SIGHUP);
    let invalid = "vigie_config_reloads_total{result=\"invalid\"} 1";
    assert!(metrics_with(gw.admin_port, &[invalid]).contains(invalid));
    assert_eq!(keep_alive_get(&mut conn, "/index.php").status, 403);
    let (code, text) = reload_cli(&gw.config);
    assert_eq!(code, 2, "{text}");
    assert!(gw.proc.stderr().contains("reload refused"));

    // `vigie reload` with the rule taken out again.
    std::fs::write(&gw.config, &original).unwrap();
    let (code, text) = reload_cli(&gw.config);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"policy\""), "{text}");
    assert_eq!(keep_alive_get(&mut conn, "/index.php").status, 200);
    assert!(
        !conn.is_closed(),
        "the reload dropped a kept-alive connection"
    );
    assert!(
        clinician.opens_patient(),
        "a session did not survive the reloads"
    );

    // What only a restart changes is refused by name; the rest keeps running.
    let moved = original.replace(
        &format!("127.0.0.1:{}\"", gw.port),
        &format!("127.0.0.1:{}\"", free_port()),
    );
    std::fs::write(&gw.config, format!("{moved}{CLOSED_RULE}")).unwrap();
    let (code, text) = reload_cli(&gw.config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("[[listener]]"), "{text}");
    assert_eq!(get(gw.port, "/index.php", "").status, 200);
}

#[test]
fn a_listener_that_cannot_bind_stops_the_start_with_its_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let prepared = prepare_gateway(
        "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:9\"\n",
        "",
    );
    let text = std::fs::read_to_string(&prepared.config).unwrap().replace(
        &format!("127.0.0.1:{}\"", prepared.port),
        &format!("127.0.0.1:{taken_port}\""),
    );
    std::fs::write(&prepared.config, text).unwrap();
    let mut proc = prepared.spawn();
    let status = proc
        .exited_within(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running without its listener:\n{}", proc.stderr()));
    assert!(!status.success());
    let err = proc.stderr();
    assert!(err.contains(&format!("127.0.0.1:{taken_port}")), "{err}");
    assert!(err.contains("another process holds the port"), "{err}");
    // check-config --preflight says the same before a start.
    let out = Command::new(VIGIE)
        .args(["check-config", "--preflight", "-c"])
        .arg(&prepared.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    drop(taken);
}

/// The harness's guard against two tests on one port: a port answered by another process
/// (here this one) is not taken for the sample portal just started on it, which could not bind.
/// A gateway has a second port, its admin one, that would stay silent; a portal has one.
#[test]
fn a_port_another_process_answers_is_not_taken_for_the_server_started_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let other = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut proc = spawn_vigie(&["sample-portal", "--listen", &listen], &dir);
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        proc.wait_listening_within(&[port], "the sample portal", Duration::from_secs(3))
    }));
    let said = *waited
        .expect_err("another process's port taken for the portal's")
        .downcast::<String>()
        .unwrap();
    assert!(
        said.contains(&format!("held by another process: [{port}]")),
        "{said}"
    );
    // The portal itself stops, saying why, rather than live on with no listener.
    assert!(said.contains("exit status: 1"), "{said}");
    assert!(said.contains("cannot listen"), "{said}");
    // What the harness used to ask, whether something answers, says yes.
    assert!(port_up(port));
    drop(other);
}

#[test]
fn sigterm_keeps_serving_through_the_grace_period_then_lets_requests_in_flight_finish() {
    let slow = Echo::start(Duration::from_millis(2500));
    let prepared = prepare_gateway(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\nread_timeout_ms = 8000\n",
            slow.port
        ),
        "",
    );
    let text = std::fs::read_to_string(&prepared.config).unwrap().replace(
        "grace_period_seconds = 0\ngraceful_shutdown_timeout_seconds = 1",
        "grace_period_seconds = 2\ngraceful_shutdown_timeout_seconds = 4",
    );
    std::fs::write(&prepared.config, text).unwrap();
    let mut proc = prepared.spawn();
    wait_for_port(prepared.port);
    wait_for_port(prepared.admin_port);
    let port = prepared.port;
    let in_flight = std::thread::spawn(move || get(port, "/slow", ""));
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    proc.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    // Within the grace period: new connections are served, and readiness says draining.
    let ready = get(prepared.admin_port, "/readyz", "");
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(ready.text().contains("\"draining\""), "{}", ready.text());
    let during = std::thread::spawn(move || get(port, "/during-grace", ""));
    assert_eq!(during.join().unwrap().status, 200);
    assert_eq!(
        in_flight.join().unwrap().status,
        200,
        "the request in flight was cut"
    );
    // After the grace period the listener is closed.
    while signalled.elapsed() < Duration::from_millis(2600) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting after the grace period"
    );
    let status = proc
        .exited_within(Duration::from_secs(10))
        .expect("it stops");
    assert!(status.success(), "{status:?}\n{}", proc.stderr());
}

#[test]
fn readiness_names_what_is_wrong_and_a_down_portal_keeps_the_gateway_in_rotation() {
    let dead = free_port();
    let gw = start_gateway(dead, "");
    let ready = get(gw.admin_port, "/readyz", "");
    let body: serde_json::Value = serde_json::from_str(&ready.text()).unwrap();
    assert_eq!(ready.status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["portals"]["test"], "down");
    assert_eq!(body["listeners"], "bound");
}

/// The command after `CMD ` on the Containerfile's HEALTHCHECK line, as Docker runs a shell
/// form: `/bin/sh -c`, which is dash on Debian.
fn healthcheck_command() -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Containerfile");
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK line");
    line.split_once(" CMD ")
        .expect("CMD in the HEALTHCHECK")
        .1
        .to_string()
}

#[test]
fn the_containers_healthcheck_passes_while_the_gateway_serves_and_fails_once_it_stops() {
    let portal = start_portal();
    let mut gw = start_gateway(portal.port, "");
    let command =
        healthcheck_command().replace("127.0.0.1:9090", &format!("127.0.0.1:{}", gw.admin_port));
    assert!(command.contains(&gw.admin_port.to_string()), "{command}");
    let bin = std::path::Path::new(VIGIE).parent().unwrap();
    let run = || {
        Command::new("dash")
            .args(["-c", &command])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .status()
            .unwrap()
    };
    assert!(run().success(), "healthcheck failed on a serving gateway");
    gw.proc.kill();
    assert!(
        !run().success(),
        "healthcheck passed with the gateway stopped"
    );
}

/// Close with a TCP reset (SO_LINGER 0) instead of a clean end.
fn reset(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a value of the size we pass.
    let done = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(done, 0);
}

/// A portal that answers every connection in one way: refuse, never answer, or reset.
fn failing_portal(how: &str) -> (u16, Option<std::thread::JoinHandle<()>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    if how == "refuse" {
        return (port, None); // dropped below: nothing listens
    }
    let how = how.to_string();
    let t = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for mut s in listener.incoming().flatten() {
            use std::io::Read;
            let _ = s.read(&mut [0u8; 1024]);
            if how == "reset" {
                reset(&s);
            } else if how == "malformed" {
                // A broken header line, after one that names a patient.
                use std::io::Write;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nLocation: /index.php?patient_id=90210777&nom=DUPONT\r\nBad\x01Header DUPONT: x\r\n\r\n");
                kept.push(s);
            } else {
                kept.push(s); // never answered: the gateway's read timeout fires
            }
        }
    });
    (port, Some(t))
}

#[test]
fn a_failing_portal_leaves_no_patient_id_in_any_log_line() {
    for how in ["refuse", "timeout", "reset", "malformed"] {
        let (port, _t) = failing_portal(how);
        let gw = start_gateway(port, "");
        // Pingora's own error lines are written at error level: let them through.
        let r = get(
            gw.port,
            "/api/fhir/Patient/48151623?patient_id=90210777&name=DUPONT",
            "",
        );
        assert!(r.status >= 500, "{how}: {}", r.status);
        std::thread::sleep(Duration::from_millis(300));
        let log = gw.proc.stderr();
        assert!(
            log.contains("Fail to proxy") || log.contains("error"),
            "{how}: nothing logged:\n{log}"
        );
        for secret in ["48151623", "90210777", "DUPONT"] {
            assert!(!log.contains(secret), "{how}: {secret} in the log:\n{log}");
        }
    }
}

/// A login through the gateway as a TLS-offloading proxy on 127.0.0.1 would send it.
fn login_behind_proxy(port: u16, forwarded: &str) -> Response {
    let page = get(port, "/index.php", forwarded);
    let cookies: Vec<String> = page
        .headers_named("set-cookie")
        .into_iter()
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    let token = crate::passthrough::csrf_token(&page);
    let form = format!("login=1&csrf_token={token}&username=admin&password=admin-demo");
    raw(
        port,
        format!(
            "POST /index.php HTTP/1.1\r\nHost: portal.test\r\nOrigin: https://portal.test\r\n{forwarded}Cookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            cookies.join("; "),
            form.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// The `Set-Cookie` line of the gateway's session cookie, whatever its name's prefix.
fn session_cookie(login: &Response) -> String {
    login
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.contains("vigie="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", login.headers))
        .to_string()
}

#[test]
fn https_said_by_a_trusted_proxy_gives_the_tls_cookie_and_hsts_and_by_anyone_else_nothing() {
    let portal = start_portal();
    let https = "X-Forwarded-Proto: https\r\n";
    let trusting = start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        "[network]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    );
    let page = get(trusting.port, "/index.php", https);
    assert!(
        page.header("strict-transport-security").is_some(),
        "{:?}",
        page.headers
    );
    let cookie = session_cookie(&login_behind_proxy(trusting.port, https));
    assert!(cookie.starts_with("__Host-vigie="), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");

    // The same header from a client that is not a trusted proxy changes nothing.
    let plain = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let page = get(plain.port, "/index.php", https);
    assert!(page.header("strict-transport-security").is_none());
    let cookie = session_cookie(&login_behind_proxy(plain.port, https));
    assert!(cookie.starts_with("vigie="), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// A self-signed certificate for `cn`, written over `cert` and `key`.
fn certificate(cn: &str, cert: &std::path::Path, key: &std::path::Path) {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", &format!("/CN={cn}")])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl is installed (scripts/install-deps)");
    assert!(out.status.success());
}

/// The common name of the certificate a new handshake on `port` is served.
fn served_name(port: u16) -> String {
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let tls = builder.build().connect("localhost", stream).unwrap();
    let cert = tls.ssl().peer_certificate().expect("a certificate");
    let name = cert.subject_name();
    let cn = name.entries_by_nid(openssl::nid::Nid::COMMONNAME).next();
    cn.unwrap().data().to_string().unwrap()
}

#[test]
fn a_renewed_certificate_reaches_new_handshakes_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    certificate("first.example", &cert, &key);
    let echo = Echo::start(Duration::ZERO);
    let tls_port = free_port();
    let extra = format!(
        "[[listener]]\naddress = \"127.0.0.1:{tls_port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let gw = start_gateway(echo.port, &extra);
    wait_for_port(tls_port);
    assert_eq!(served_name(tls_port), "first.example");
    let expiry = "vigie_tls_certificate_expiry_timestamp_seconds{listener=";
    assert!(metrics_with(gw.admin_port, &[expiry]).contains(expiry));

    // A half-written renewal (a key that is not the certificate's) is refused whole.
    let (other_cert, other_key) = (dir.path().join("o.pem"), dir.path().join("o.key"));
    certificate("other.example", &other_cert, &other_key);
    std::fs::copy(&other_key, &key).unwrap();
    let (code, text) = reload_cli(&gw.config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is not the key of certificate"), "{text}");
    assert_eq!(served_name(tls_port), "first.example");

    certificate("second.example", &cert, &key);
    gw.proc.signal(libc::SIGHUP);
    let ok = "vigie_config_reloads_total{result=\"ok\"} 1";
    assert!(metrics_with(gw.admin_port, &[ok]).contains(ok));
    assert_eq!(served_name(tls_port), "second.example");
}

#[test]
fn metrics_say_the_build_the_process_and_the_sessions_by_level() {
    let portal = start_portal();
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", "");
    let _signed_in = crate::mfa::Client::login(gw.port, "admin", "admin-demo");
    let text = metrics_with(
        gw.admin_port,
        &["vigie_sessions_active{level=\"password\"} 1"],
    );
    for needle in [
        "vigie_build_info{version=\"",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_resident_memory_bytes",
        "vigie_sessions_active{level=\"password\"} 1",
        "vigie_detector_tracks",
        "vigie_config_reloads_total",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
}

#[test]
fn redis_away_is_said_in_readiness_and_metrics_without_leaving_the_rotation() {
    let portal = start_portal();
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = session_key_file(dir.path());
    let gw = start_profiled_gateway(
        portal.port,
        "sample-portal.toml",
        &crate::replicas::storage_toml(&redis, &key),
    );
    let up = "vigie_store_up{store=\"redis\"} 1";
    assert!(metrics_with(gw.admin_port, &[up]).contains(up));
    let ready = get(gw.admin_port, "/readyz", "");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        ready.text().contains("\"status\":\"ready\""),
        "{}",
        ready.text()
    );

    redis.stop();
    // A request meets the outage; budgets fall back to this replica's share.
    let _ = get(gw.port, "/index.php", "");
    let down = "vigie_store_up{store=\"redis\"} 0";
    assert!(metrics_with(gw.admin_port, &[down]).contains(down));
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let r = get(gw.admin_port, "/readyz", "");
        let text = r.text();
        if text.contains("\"redis\"") || Instant::now() > deadline {
            break (r.status, text);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(body.0, 200, "{}", body.1);
    assert!(body.1.contains("\"status\":\"degraded\""), "{}", body.1);
    assert!(body.1.contains("\"budgets\":\"per_replica\""), "{}", body.1);
}

/// The TOML a Kubernetes ConfigMap carries under `vigie.toml: |`.
fn config_map_toml(yaml: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in yaml.lines() {
        if line.trim_end().ends_with("vigie.toml: |") {
            inside = true;
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with("    ") {
            break;
        }
        if inside {
            out += line.strip_prefix("    ").unwrap_or(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_shipped_compose_and_kubernetes_configurations_pass_check_config() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = std::fs::read_to_string(root.join("deploy/compose/vigie.toml")).unwrap();
    let k8s = config_map_toml(
        &std::fs::read_to_string(root.join("deploy/kubernetes/vigie.yaml")).unwrap(),
    );
    assert!(
        k8s.contains("[[portal]]"),
        "no configuration found in the manifest"
    );
    let upstream = regex::Regex::new(r#"upstream = "[^"]+""#).unwrap();
    for (name, text) in [("compose", compose), ("kubernetes", k8s)] {
        // The secrets and state they name, made here; the services' names, on loopback.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for file in [
            "admin.token",
            "redis.password",
            "postgres.password",
            "session.key",
        ] {
            std::fs::write(d.join(file), "0123456789abcdef0123456789abcdef").unwrap();
        }
        factor_key_file(d);
        std::fs::create_dir(d.join("profiles")).unwrap();
        let profile = root.join("config/profiles/sample-portal.toml");
        std::fs::copy(&profile, d.join("profiles/sample-portal.toml")).unwrap();
        std::fs::copy(&profile, d.join("profiles/mediboard.toml")).unwrap();
        certificate("ca", &d.join("postgres-ca.pem"), &d.join("postgres-ca.key"));
        let local = text
            .replace("/etc/vigie/secrets/", &format!("{}/", d.display()))
            .replace(
                "/etc/vigie/profiles/",
                &format!("{}/profiles/", d.display()),
            )
            .replace("/var/lib/vigie/", &format!("{}/", d.display()));
        let local = upstream
            .replace_all(&local, "upstream = \"127.0.0.1:8081\"")
            .into_owned();
        let file = d.join("vigie.toml");
        std::fs::write(&file, local).unwrap();
        let out = Command::new(VIGIE)
            .args(["check-config", "-c"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_user_moved_into_a_denied_group_by_a_reload_is_cut_off_at_once() {
    let portal = start_portal();
    let rule =
        "[[rule]]\nname = \"blocked\"\ngroups = [\"blocked\"]\npath = \"/**\"\ndeny = true\n";
    let gw = start_profiled_gateway(portal.port, "sample-portal.toml", rule);
    let mut martin = crate::mfa::Client::login(gw.port, "dr.martin", "martin-demo");
    let mut admin = crate::mfa::Client::login(gw.port, "admin", "admin-demo");
    assert!(martin.opens_patient() && admin.opens_patient());
    let original = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        format!("{original}\n[groups]\nblocked = [\"dr.martin\"]\n"),
    )
    .unwrap();
    let (code, text) = reload_cli(&gw.config);
    assert_eq!(code, 0, "{text}");
    assert!(
        !martin.opens_patient(),
        "the regrouped user's session still served"
    );
    assert!(admin.opens_patient(), "another user's session was ended");
    // Signing in again, he meets the rule.
    let mut again = crate::mfa::Client::login(gw.port, "dr.martin", "martin-demo");
    assert_eq!(again.get(crate::mfa::PATIENT).status, 403);
}

#[test]
fn an_ipv4_client_on_a_dual_stack_listener_meets_the_rules_written_for_ipv4() {
    let portal = start_portal();
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let prepared = prepare_gateway(
        &format!(
            "[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\n",
            portal.port,
            profile.display()
        ),
        "[[rule]]\nname = \"loopback-refused\"\nnetworks = [\"127.0.0.0/8\"]\npath = \"/**\"\ndeny = true\n",
    );
    // `[::]` takes IPv4 too: the client arrives as ::ffff:127.0.0.1.
    let text = std::fs::read_to_string(&prepared.config).unwrap().replace(
        &format!("address = \"127.0.0.1:{}\"", prepared.port),
        &format!("address = \"[::]:{}\"", prepared.port),
    );
    std::fs::write(&prepared.config, text).unwrap();
    let _gw = prepared.spawn();
    wait_for_port(prepared.port);
    wait_for_port(prepared.admin_port);
    assert_eq!(get(prepared.port, "/index.php", "").status, 403);
}
