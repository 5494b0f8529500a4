//! `vigie alerts …` and `vigie holds …`: the SOC's queue from a terminal, through the running
//! gateway's admin API (so every replica's store and holds are the ones acted on). A table by
//! default, `--json` for scripts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;
use vigie::config::Config;

use crate::{admin_call_with, encode};

#[derive(Subcommand)]
pub enum AlertsAction {
    /// The queue: newest first (or riskiest with `--sort risk`), with the counts per status.
    List {
        /// Statuses, comma-separated: new, acknowledged, investigating, closed.
        #[arg(long)]
        status: Option<String>,
        /// Severities, comma-separated: low, medium, high, critical.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        portal: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// The workstation: alerts naming this client address.
        #[arg(long)]
        source: Option<String>,
        /// From (RFC 3339 or unix seconds).
        #[arg(long)]
        since: Option<String>,
        /// Until (excluded).
        #[arg(long)]
        until: Option<String>,
        /// newest or risk.
        #[arg(long)]
        sort: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One alert: its evidence and its history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge: seen, someone is on it.
    Ack {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Under investigation (also reopens a closed alert, with a note).
    Investigate {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Close with a resolution: true_positive, false_positive or benign.
    Close {
        id: String,
        #[arg(long = "as", value_name = "RESOLUTION")]
        resolution: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Give the alert to an analyst (no --to: unassigned).
    Assign {
        id: String,
        #[arg(long)]
        to: Option<String>,
    },
    /// Add a note (sealed at rest, never logged).
    Note { id: String, text: String },
}

#[derive(Subcommand)]
pub enum HoldsAction {
    /// The holds in force.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Release a hold: the user's sessions reach the portal again.
    Release {
        #[arg(long)]
        portal: String,
        #[arg(long)]
        user: String,
    },
}

/// The admin address and token of the configuration.
fn admin(config: Option<PathBuf>) -> Result<(SocketAddr, Vec<u8>), ExitCode> {
    let Some(path) = config else {
        eprintln!("error: give the running gateway's configuration with -c FILE");
        return Err(ExitCode::from(2));
    };
    let config = Config::load(&path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    // A per-person token in the environment speaks for its holder; else the shared one.
    let personal = std::env::var("VIGIE_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    match (
        config.admin,
        personal
            .map(String::into_bytes)
            .or(config.admin_token.map(|t| t.0)),
    ) {
        (Some(addr), Some(token)) => Ok((addr, token)),
        _ => {
            eprintln!(
                "error: {} enables no admin API: set admin.address and admin.api_token_file",
                path.display()
            );
            Err(ExitCode::from(2))
        }
    }
}

/// Call the API; the JSON answer, or the exit code after saying what went wrong.
fn call(
    (addr, token): &(SocketAddr, Vec<u8>),
    method: &str,
    target: &str,
    form: &[(&str, &str)],
) -> Result<Value, ExitCode> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    let (status, text) =
        admin_call_with(*addr, method, target, token, body.as_bytes()).map_err(|e| {
            eprintln!("error: cannot reach the admin API at {addr}: {e}");
            ExitCode::from(1)
        })?;
    let doc: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    if status != 200 {
        let error = doc["error"].as_str().unwrap_or(text.trim());
        eprintln!("error: {error} (HTTP {status})");
        return Err(ExitCode::from(1));
    }
    Ok(doc)
}

pub fn alerts(config: Option<PathBuf>, action: AlertsAction) -> ExitCode {
    let api = match admin(config) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let status = |id: &str, to: &str, resolution: &str, note: &Option<String>| {
        let note = note.as_deref().unwrap_or("");
        let form = [
            ("id", id),
            ("to", to),
            ("resolution", resolution),
            ("note", note),
        ];
        call(&api, "POST", "/api/alerts/status", &form).map(|d| changed(&d))
    };
    let result = match action {
        AlertsAction::List {
            status,
            severity,
            rule,
            user,
            portal,
            assignee,
            source,
            since,
            until,
            sort,
            limit,
            json,
        } => {
            let limit = limit.to_string();
            let pairs = [
                ("status", status),
                ("severity", severity),
                ("rule", rule),
                ("user", user),
                ("portal", portal),
                ("assignee", assignee),
                ("source", source),
                ("since", since),
                ("until", until),
                ("sort", sort),
                ("limit", Some(limit)),
            ];
            let query: Vec<String> = pairs
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
                .collect();
            let target = format!("/api/alerts?{}", query.join("&"));
            call(&api, "GET", &target, &[]).map(|doc| match json {
                true => println!("{doc:#}"),
                false => print!("{}", table(&doc)),
            })
        }
        AlertsAction::Show { id, json } => {
            let target = format!("/api/alerts/show?id={}", encode(&id));
            call(&api, "GET", &target, &[]).map(|doc| match json {
                true => println!("{doc:#}"),
                false => print!("{}", detail(&doc)),
            })
        }
        AlertsAction::Ack { id, note } => status(&id, "acknowledged", "", &note),
        AlertsAction::Investigate { id, note } => status(&id, "investigating", "", &note),
        AlertsAction::Close {
            id,
            resolution,
            note,
        } => status(&id, "closed", &resolution, &note),
        AlertsAction::Assign { id, to } => {
            let to = to.unwrap_or_default();
            call(
                &api,
                "POST",
                "/api/alerts/assign",
                &[("id", &id), ("to", &to)],
            )
            .map(|d| changed(&d))
        }
        AlertsAction::Note { id, text } => call(
            &api,
            "POST",
            "/api/alerts/note",
            &[("id", &id), ("note", &text)],
        )
        .map(|d| changed(&d)),
    };
    result.map_or_else(|code| code, |_| ExitCode::SUCCESS)
}

fn changed(doc: &Value) {
    let a = &doc["alert"];
    let t = &a["vigie"]["triage"];
    println!(
        "{}  {}{}  assigned to {}",
        a["event"]["id"].as_str().unwrap_or("?"),
        t["status"].as_str().unwrap_or("?"),
        t["resolution"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        safe(t["assignee"].as_str().unwrap_or("nobody")),
    );
}

/// A value for the terminal: control characters (escape sequences that could clear the
/// screen or fake a line) shown as `\u{..}`, never sent.
fn text(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    safe(&raw)
}

fn safe(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_unicode().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect()
}

/// The queue as a table: counts first, then one line per alert.
pub fn table(doc: &Value) -> String {
    let mut out = String::new();
    if doc["counts"].is_object() {
        let parts: Vec<String> = ["new", "acknowledged", "investigating", "closed"]
            .iter()
            .map(|k| format!("{k} {}", text(&doc["counts"][k])))
            .collect();
        out += &format!("{}\n", parts.join(" · "));
    }
    let rows: Vec<[String; 8]> = doc["alerts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            [
                text(&a["event"]["id"]),
                text(&a["@timestamp"]).chars().take(19).collect(),
                text(&a["vigie"]["severity"]),
                text(&a["event"]["risk_score"]),
                text(&a["vigie"]["triage"]["status"]),
                text(&a["rule"]["id"]),
                text(&a["user"]["name"]),
                text(&a["service"]["name"]),
            ]
        })
        .collect();
    let head = [
        "ID",
        "TIME (UTC)",
        "SEVERITY",
        "RISK",
        "STATUS",
        "RULE",
        "USER",
        "PORTAL",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    out += &line(head.to_vec());
    for r in &rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    if rows.is_empty() {
        out += "(no alert matches)\n";
    }
    out
}

/// One alert in words: what, who, the evidence, the history.
fn detail(doc: &Value) -> String {
    let a = &doc["alert"];
    let t = &a["vigie"]["triage"];
    let mut out = format!(
        "{}  {}\n{}\nstatus {}{}, assigned to {}\n",
        text(&a["event"]["id"]),
        text(&a["@timestamp"]),
        text(&a["message"]),
        text(&t["status"]),
        t["resolution"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        safe(t["assignee"].as_str().unwrap_or("nobody")),
    );
    for e in a["vigie"]["evidence"].as_array().into_iter().flatten() {
        out += &format!(
            "  {}: observed {}, baseline {}, threshold {} ({})\n",
            text(&e["signal"]),
            text(&e["observed"]),
            text(&e["baseline"]),
            text(&e["threshold"]),
            text(&e["detail"]),
        );
    }
    out += "history:\n";
    for h in doc["history"].as_array().into_iter().flatten() {
        let at = jiff::Timestamp::from_microsecond(h["at_us"].as_i64().unwrap_or(0))
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        out += &format!(
            "  {at}  {}  {} {} -> {}{}\n",
            text(&h["analyst"]),
            text(&h["kind"]),
            text(&h["before"]),
            text(&h["after"]),
            h["note"]
                .as_str()
                .map(|n| format!("  « {} »", safe(n)))
                .unwrap_or_default(),
        );
    }
    out
}

pub fn holds(config: Option<PathBuf>, action: HoldsAction) -> ExitCode {
    let api = match admin(config) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let result = match action {
        HoldsAction::List { json } => call(&api, "GET", "/api/holds", &[]).map(|doc| {
            if json {
                println!("{doc:#}");
                return;
            }
            let holds = doc["holds"].as_array().cloned().unwrap_or_default();
            if holds.is_empty() {
                println!("(no hold in force)");
            }
            for h in holds {
                println!(
                    "{}  {}  rule {}  score {}  alert {}",
                    text(&h["portal"]),
                    text(&h["user"]),
                    text(&h["rule"]),
                    text(&h["score"]),
                    text(&h["alert"]),
                );
            }
        }),
        HoldsAction::Release { portal, user } => {
            let target = format!(
                "/api/holds/release?portal={}&user={}",
                encode(&portal),
                encode(&user)
            );
            call(&api, "POST", &target, &[]).map(|doc| match doc["released"].as_bool() {
                Some(true) => println!("released: {user} on {portal}"),
                _ => println!("no hold in force for {user} on {portal}"),
            })
        }
    };
    result.map_or_else(|code| code, |_| ExitCode::SUCCESS)
}
