//! The SOC's queue through the admin API and `vigie alerts` / `vigie holds`: an alert raised by
//! a real enumeration, filtered, triaged by the rules (conflicts refused, never backwards),
//! its history kept with sealed notes that no log line carries.

use crate::common::*;
use crate::detection::{admin_api, enumerate, portal_section, wait_for};
use crate::passthrough::{cookie_set, submit_login};

fn vigie(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(VIGIE)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn status_of(port: u16, target: &str) -> (u16, serde_json::Value) {
    let r = raw(
        port,
        format!("POST {target} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    (
        r.status,
        serde_json::from_str(&r.text()).unwrap_or_default(),
    )
}

#[test]
fn an_alert_is_listed_filtered_triaged_and_its_history_kept_without_its_notes_in_the_logs() {
    let portal = start_portal();
    let gw = start_gateway_with(&portal_section(&portal), GENEROUS_BUDGETS);
    let config = gw.config.to_str().unwrap().to_string();
    let cookie = cookie_set(
        &submit_login(gw.port, "dr.martin", "martin-demo", None),
        "vigie",
    )
    .unwrap();
    let (_, held) = enumerate(gw.port, &cookie);
    let id = held.header("x-vigie-held").unwrap().to_string();
    wait_for("the alert in the store", || {
        let stored = admin_api(gw.admin_port, "GET", "/api/alerts?status=new");
        stored["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["event"]["id"] == id.as_str())
            .then_some(())
    });

    // Filters are applied, counted, and an unknown one is refused rather than ignored.
    let none = admin_api(gw.admin_port, "GET", "/api/alerts?status=closed");
    assert_eq!(none["alerts"].as_array().unwrap().len(), 0, "{none}");
    assert_eq!(none["counts"]["closed"], 0);
    assert!(none["counts"]["new"].as_u64().unwrap() >= 1, "{none}");
    let other_user = admin_api(gw.admin_port, "GET", "/api/alerts?user=inf.durand");
    assert_eq!(other_user["alerts"].as_array().unwrap().len(), 0);
    let r = raw(
        gw.admin_port,
        format!("GET /api/alerts?statut=new HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown filter `statut`"), "{}", r.text());

    let (code, table, err) = vigie(&["alerts", "-c", &config, "list", "--user", "dr.martin"]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(&id) && table.contains("new"), "{table}");
    assert!(
        table.starts_with("new 1 · acknowledged 0"),
        "counts first: {table}"
    );

    const NOTE: &str = "Appel au Dr Martin : tournée de garde, patient Dupont";
    let (code, out, err) = vigie(&["alerts", "-c", &config, "ack", &id, "--note", NOTE]);
    assert_eq!(
        (code, out.contains("acknowledged")),
        (0, true),
        "{out}{err}"
    );
    // Someone who still saw it new is told, not obeyed.
    let (code, body) = status_of(
        gw.admin_port,
        &format!("/api/alerts/status?id={id}&from=new&to=investigating"),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("now acknowledged"));
    let (code, _, err) = vigie(&["alerts", "-c", &config, "close", &id, "--as", "maybe"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown resolution"), "{err}");
    let (code, _, err) = vigie(&["alerts", "-c", &config, "assign", &id, "--to", "ana.soc"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = vigie(&[
        "alerts",
        "-c",
        &config,
        "close",
        &id,
        "--as",
        "true_positive",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("closed (true_positive)") && out.contains("ana.soc"),
        "{out}"
    );
    let (code, _, err) = vigie(&["alerts", "-c", &config, "ack", &id]);
    assert_eq!(code, 1, "a closed alert does not go back");
    assert!(err.contains("does not go back"), "{err}");

    let (code, shown, err) = vigie(&["alerts", "-c", &config, "show", &id]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "new -> acknowledged",
        "acknowledged -> closed:true_positive",
        "- -> ana.soc",
        NOTE,
        "admin-token",
    ] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    // The audit trail has each change, with the note's length and never its text.
    let trail = crate::audit::trail_when(gw.admin_port, "event=alert_triaged", |e| e.len() >= 3);
    let entries = trail["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{trail}");
    assert_eq!(entries[2]["fields"]["note_chars"], NOTE.chars().count());
    let log = gw.proc.stderr();
    assert!(
        !log.contains("Dupont") && !trail.to_string().contains("Dupont"),
        "{log}"
    );

    // The holds, from the command line.
    let (code, out, _) = vigie(&["holds", "-c", &config, "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("dr.martin") && out.contains(&id), "{out}");
    let (code, out, _) = vigie(&[
        "holds",
        "-c",
        &config,
        "release",
        "--portal",
        "ehr",
        "--user",
        "dr.martin",
    ]);
    assert_eq!((code, out.trim()), (0, "released: dr.martin on ehr"));
    let (_, out, _) = vigie(&["holds", "-c", &config, "list"]);
    assert!(out.contains("no hold in force"), "{out}");
}
