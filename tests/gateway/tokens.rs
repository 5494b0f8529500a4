//! Per-person API tokens end to end: made by `vigie tokens create`, used by `vigie alerts`
//! (`VIGIE_API_TOKEN`) and raw calls, bounded by their role, named in the trail, revoked at
//! once; the shared token still works and is said to be deprecated.

use crate::common::*;
use crate::detection::{admin_api, enumerate, portal_section, wait_for};
use crate::passthrough::{cookie_set, submit_login};

fn call(port: u16, method: &str, target: &str, token: &str) -> (u16, String) {
    let r = raw(
        port,
        format!("{method} {target} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    (r.status, r.text())
}

fn tokens(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(VIGIE)
        .arg("tokens")
        .args(args)
        .args(["-c", gw.config.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_token_acts_in_its_holder_s_name_within_its_role_until_revoked() {
    let portal = start_portal();
    let gw = start_gateway_with(&portal_section(&portal), GENEROUS_BUDGETS);
    let cookie = cookie_set(
        &submit_login(gw.port, "dr.martin", "martin-demo", None),
        "vigie",
    )
    .unwrap();
    let (_, held) = enumerate(gw.port, &cookie);
    let id = held.header("x-vigie-held").unwrap().to_string();
    wait_for("the alert in the store", || {
        (admin_api(gw.admin_port, "GET", "/api/alerts")["alerts"]
            .as_array()
            .unwrap()
            .len()
            == 1)
            .then_some(())
    });

    let (ok, soc, err) = tokens(
        &gw,
        &[
            "create", "--name", "siem-bot", "--role", "soc", "--days", "30",
        ],
    );
    assert!(ok && soc.starts_with("vgt_"), "{soc}{err}");
    let (ok, it, _) = tokens(&gw, &["create", "--name", "ansible", "--role", "it"]);
    assert!(ok);
    let (ok, _, err) = tokens(&gw, &["create", "--name", "x", "--role", "root"]);
    assert!(!ok && err.contains("soc, dpo or it"));

    // Within the role: the SOC bot triages, IT unlocks; across it: refused.
    let (code, body) = call(gw.admin_port, "GET", "/api/alerts", &soc);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        call(
            gw.admin_port,
            "POST",
            "/api/users/unlock?user=dr.martin",
            &soc
        )
        .0,
        403
    );
    assert_eq!(
        call(
            gw.admin_port,
            "POST",
            "/api/users/unlock?user=dr.martin",
            &it
        )
        .0,
        200
    );
    assert_eq!(call(gw.admin_port, "GET", "/api/alerts", &it).0, 403);
    assert_eq!(call(gw.admin_port, "POST", "/api/reload", &soc).0, 403);
    // Through the command line, in the bot's name.
    let out = std::process::Command::new(VIGIE)
        .args(["alerts", "-c", gw.config.to_str().unwrap(), "ack", &id])
        .env("VIGIE_API_TOKEN", &soc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = admin_api(gw.admin_port, "GET", &format!("/api/alerts/show?id={id}"));
    assert_eq!(shown["history"][0]["analyst"], "siem-bot");
    // Waits until both are in the trail (and fails if they never are).
    crate::audit::trail_when(gw.admin_port, "event=admin_refused", |e| {
        crate::audit::by_all(e, &["siem-bot", "ansible"])
    });

    // A locked holder's token is refused, as their console would be.
    let (ok, bot, _) = tokens(&gw, &["create", "--name", "night-bot", "--role", "soc"]);
    assert!(ok);
    assert_eq!(call(gw.admin_port, "GET", "/api/holds", &bot).0, 200);
    admin_api(gw.admin_port, "POST", "/api/users/lock?user=night-bot");
    assert_eq!(call(gw.admin_port, "GET", "/api/holds", &bot).0, 401);
    // Every call is in the trail, reads too, with whom it is about.
    let calls = crate::audit::trail_when(gw.admin_port, "event=admin_call&limit=100", |e| {
        e.iter()
            .any(|e| e["user"] == "siem-bot" && e["fields"]["path"] == "/api/alerts")
    });
    assert!(
        calls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "siem-bot"
                && e["fields"]["method"] == "GET"
                && e["fields"]["path"] == "/api/alerts"),
        "{calls}"
    );
    assert!(
        !tokens(&gw, &["create", "--name", "admin-token", "--role", "soc"]).0,
        "a reserved name"
    );

    // Listed without secrets; revoked at once; a wrong secret is nothing.
    let (_, list, _) = tokens(&gw, &["list"]);
    assert!(
        list.contains("siem-bot") && list.contains("valid") && !list.contains(&soc[13..]),
        "{list}"
    );
    let forged = format!("{}{}", &soc[..13], "0".repeat(64));
    assert_eq!(call(gw.admin_port, "GET", "/api/alerts", &forged).0, 401);
    let token_id = &soc[4..12];
    assert!(tokens(&gw, &["revoke", token_id]).0);
    assert_eq!(
        call(gw.admin_port, "GET", "/api/alerts", &soc).0,
        401,
        "revoked"
    );
    // Someone trying tokens is in the trail: once per source and ten seconds, with how many
    // calls it folds (a flood does not fill the trail).
    for _ in 0..20 {
        assert_eq!(call(gw.admin_port, "GET", "/api/alerts", &forged).0, 401);
    }
    let refused = crate::audit::trail_when(gw.admin_port, "event=admin_refused&limit=100", |e| {
        e.iter()
            .any(|e| e["fields"]["reason"] == "no_token_accepted")
    });
    let guesses: Vec<_> = refused["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fields"]["reason"] == "no_token_accepted")
        .collect();
    assert!(guesses.len() <= 3, "folded: {guesses:?}");
    assert_eq!(guesses[0]["fields"]["client"], "127.0.0.1");

    // Made and revoked from the command line: in the trail as well, in a chain of the
    // command's own that the checkpoint it signed vouches for.
    let revoked =
        crate::audit::trail_when(gw.admin_port, "event=api_token_revoked", |e| !e.is_empty());
    assert_eq!(revoked["entries"][0]["user"], "siem-bot", "{revoked}");
    assert_eq!(revoked["entries"][0]["fields"]["token"], token_id);
    let made = admin_api(
        gw.admin_port,
        "GET",
        "/api/audit?event=api_token_created&limit=20",
    );
    assert!(
        made["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "siem-bot" && e["fields"]["role"] == "soc"),
        "{made}"
    );
    let (code, said) = crate::audit::verify(&gw.config, &[]);
    assert_eq!(code, 0, "{said}");
    // (The gateway's own chain signs every minute: it may not have yet.)
    assert!(said.matches("no trusted checkpoint").count() <= 1, "{said}");

    // The shared token keeps working, said deprecated in the log.
    assert_eq!(
        call(gw.admin_port, "GET", "/api/alerts", ADMIN_TOKEN).0,
        200
    );
    assert!(gw
        .proc
        .stderr()
        .contains("shared admin token is deprecated"));
}
