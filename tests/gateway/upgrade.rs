//! A zero-downtime upgrade (issue 18): the new gateway takes the running one's sockets
//! without refusing a connection, and the ports never go to a socket someone else could
//! have put in place.

use std::time::Duration;

use crate::common::*;

/// Which process answered: the upper half of a request id is random per process.
fn answered_by(r: &Response) -> String {
    r.header("x-request-id").unwrap_or("")[..8].to_string()
}

#[test]
fn an_upgrade_hands_the_ports_over_without_refusing_a_connection() {
    let echo = Echo::start(Duration::ZERO);
    let prepared = prepare_gateway(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\n",
            echo.port
        ),
        "",
    );
    let mut old = prepared.spawn();
    wait_for_port(prepared.port);
    wait_for_port(prepared.admin_port);
    let port = prepared.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut seen, mut failed) = (Vec::new(), 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match raw(
                    port,
                    b"GET /up HTTP/1.1\r\nHost: portal.test\r\nConnection: close\r\n\r\n",
                ) {
                    Some(r) if r.status == 200 => {
                        let who = answered_by(&r);
                        if seen.last() != Some(&who) {
                            seen.push(who);
                        }
                    }
                    _ => failed += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (seen, failed)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let config = prepared.config.to_str().unwrap();
    let mut new = spawn_vigie(&["run", "-c", config, "--upgrade"], &prepared.dir);
    std::thread::sleep(Duration::from_millis(500));
    old.signal(libc::SIGQUIT);
    let status = old
        .exited_within(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the old gateway did not stop:\n{}", old.stderr()));
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, failed) = client.join().unwrap();
    assert_eq!(
        failed,
        0,
        "connections refused or cut during the upgrade:\n{}",
        new.stderr()
    );
    // Both accept on the shared sockets while the old one drains; the new one ends alone.
    let (first, last) = (seen.first().unwrap(), seen.last().unwrap());
    assert_ne!(first, last, "the new gateway never answered: {seen:?}");
    let tail = get(port, "/after", "");
    assert_eq!(&answered_by(&tail), last);
    assert_eq!(get(prepared.admin_port, "/readyz", "").status, 200);
    assert!(new.exited_within(Duration::from_millis(100)).is_none());
}

#[test]
fn the_ports_are_not_handed_to_a_socket_someone_else_could_have_put_there() {
    use std::os::unix::fs::PermissionsExt;
    let echo = Echo::start(Duration::ZERO);
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.path().join("vigie-upgrade.sock");
    let prepared = prepare_gateway(
        &format!(
            "[[portal]]\nname = \"test\"\nupstream = \"127.0.0.1:{}\"\n",
            echo.port
        ),
        "",
    );
    let text = std::fs::read_to_string(&prepared.config).unwrap().replace(
        "[server]\n",
        &format!("[server]\nupgrade_socket = \"{}\"\n", socket.display()),
    );
    std::fs::write(&prepared.config, text).unwrap();
    let mut gw = prepared.spawn();
    wait_for_port(prepared.port);
    // A squatter's socket, waiting for the ports in a directory anyone may write.
    let squatter = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    squatter.set_nonblocking(true).unwrap();
    gw.signal(libc::SIGQUIT);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        squatter.accept().is_err(),
        "the gateway connected to the squatter"
    );
    assert!(
        gw.exited_within(Duration::from_millis(100)).is_none(),
        "it stopped"
    );
    assert_eq!(get(prepared.port, "/still", "").status, 200);
    assert!(gw.stderr().contains("upgrade refused"), "{}", gw.stderr());
}
