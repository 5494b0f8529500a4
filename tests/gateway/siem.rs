//! Every security event reaches the SIEM: the JSON-lines sink receives each event of the
//! audit trail as an ECS `event.kind: event` document beside the detector's alerts, with no
//! free text (a note or a reason is only counted) and no password.

use crate::console::{form_token, raise, Soc, PASSWORD};
use crate::detection::{admin_api, sink_docs, wait_for};
use crate::passthrough::submit_login;

#[test]
fn sign_ins_holds_triage_console_and_admin_actions_all_reach_the_json_lines_sink() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("siem.jsonl");
    let soc = Soc::start(&format!(
        "[alerts]\njsonl = \"{}\"\n[storage]\naudit_checkpoint_seconds = 1\n",
        jsonl.display()
    ));
    let refused = submit_login(soc.gw.port, "dr.martin", "wrong password", None);
    assert_eq!(refused.status, 303);
    // A password typed in the name's field: refused, and kept nowhere.
    submit_login(soc.gw.port, "martin-demo secret Pa55", "x", None);
    let id = raise(&soc);
    let mut ana = soc.analyst("ana.soc", "soc");
    let page = ana.get(&format!("/alerts/{id}"));
    let csrf = form_token(&page);
    const NOTE: &str = "Appel du cadre : patient Dupont, chambre 12";
    let r = ana.post_form(
        &format!("/alerts/{id}/status"),
        &[
            ("csrf", &csrf),
            ("from", "new"),
            ("to", "investigating"),
            ("note", NOTE),
        ],
    );
    assert!(r.header("location").unwrap().ends_with("done=status"));
    for act in ["release", "stepup", "revoke", "lock"] {
        let r = ana.post_form(
            &format!("/alerts/{id}/{act}"),
            &[("csrf", &csrf), ("confirm", "yes")],
        );
        assert!(
            r.header("location").unwrap().contains("done="),
            "{act}: {:?}",
            r.headers
        );
    }
    admin_api(
        soc.gw.admin_port,
        "POST",
        "/api/users/unlock?user=dr.martin",
    );
    admin_api(
        soc.gw.admin_port,
        "POST",
        "/api/users/invite?user=inf.durand",
    );
    admin_api(soc.gw.admin_port, "POST", "/api/reload");

    let wanted = [
        "login",
        "hold_placed",
        "console_invitation_issued",
        "console_invitation",
        "console_login",
        "alert_triaged",
        "hold_released",
        "step_up_asked",
        "sessions_revoked",
        "account_locked",
        "account_unlocked",
        "invitation_issued",
        "config_reload",
        "audit_checkpoint",
    ];
    let docs = wait_for("every event in the sink", || {
        let (_, docs) = sink_docs(&jsonl);
        let seen = |e: &str| docs.iter().any(|d| d["event"]["action"] == e);
        wanted.iter().all(|e| seen(e)).then_some(docs)
    });
    let events: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "event")
        .collect();
    let alerts = docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .count();
    assert!(alerts >= 1, "the detector's alert is there too");
    let failure = events
        .iter()
        .find(|d| d["event"]["action"] == "login" && d["event"]["outcome"] == "failure")
        .expect("the refused sign-in");
    assert_eq!(failure["user"]["name"], "dr.martin");
    assert_eq!(failure["source"]["ip"], "127.0.0.1");
    assert_eq!(failure["event"]["category"][0], "authentication");
    let triaged = events
        .iter()
        .find(|d| d["event"]["action"] == "alert_triaged")
        .unwrap();
    assert_eq!(triaged["user"]["name"], "ana.soc", "the analyst who acted");
    assert_eq!(
        triaged["vigie"]["audit"]["note_chars"],
        NOTE.chars().count()
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert!(!text.contains("Dupont"), "no note in the SIEM");
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong password"),
        "no password"
    );
    assert!(!text.contains("Pa55"), "no password typed as a name");
    // The SIEM's copy of the trail's checkpoints is one `vigie audit verify` can read.
    let out = std::process::Command::new(crate::common::VIGIE)
        .args([
            "audit",
            "verify",
            "-c",
            soc.gw.config.to_str().unwrap(),
            "--checkpoints",
        ])
        .arg(&jsonl)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("checkpoint at #"),
        "{said}"
    );
}
