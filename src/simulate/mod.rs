//! The traffic simulator (`vigie simulate`): the sample portal and the gateway run in this
//! process on loopback, on a clock the simulator moves, so days of clinical work and hours
//! of slow attacks take minutes. Clinicians work their shifts for the warm-up days and the
//! attack day; attack scenarios run on the last day. The report gives, per scenario, when
//! the first alert came and how many distinct patients the attacker had by then and by the
//! suspension, and the clinicians' false alerts per 1000 hours.

mod attacks;
mod client;
mod clinicians;
mod report;

use std::sync::Arc;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::Config;
use crate::identity::session::ManualClock;
use crate::sample_portal::data::{Account, Role};
use crate::sample_portal::SamplePortal;
use attacks::{Attack, Style};
use clinicians::{Clinician, Kind};
pub use report::Report;

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
const PATIENTS: u32 = 5000;
/// Monday 2 November 2026, 00:00 UTC: the first simulated day.
const EPOCH_S: i64 = 1_793_577_600;

pub struct Options {
    /// Days simulated; the last one also carries the attacks.
    pub days: u32,
    pub clinicians: usize,
    pub seed: u64,
}

const SIM_CONFIG: &str = r#"
[server]
threads = 1
grace_period_seconds = 0
graceful_shutdown_timeout_seconds = 1

[[listener]]
address = "127.0.0.1:{GATEWAY}"

[network]
# Each simulated workstation's address arrives in X-Forwarded-For.
trusted_proxies = ["127.0.0.1/32"]

[session]
idle_timeout_seconds = 14400
absolute_timeout_seconds = 50000

[storage]
database = "{DB}"
# A key from the seed: pseudonyms, hence sketches, hence the whole run, repeat for one seed.
session_key_file = "{KEY}"

[second_factor]
# The scenarios start from a signed-in session: the detector is what is measured.
required = false
privileged_groups = ["admin"]

[detection]
working_hours = "07:00-20:00"

[alerts]
store = false
jsonl = "{ALERTS}"

[budgets.login]
requests = 1000000
per = "minute"
[budgets.source]
requests = 1000000
per = "minute"
[budgets.view]
requests = 1000000
per = "minute"
[budgets.export]
requests = 1000000
per = "minute"
[budgets.list]
requests = 1000000
per = "minute"
[budgets.search]
requests = 1000000
per = "minute"

[[portal]]
name = "ehr"
upstream = "127.0.0.1:{PORTAL}"
profile = "builtin:sample-portal"
"#;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A simulated account (leaked: the simulator runs once and exits).
fn account(user: &str, role: Role) -> (Account, String, String) {
    let name: &'static str = Box::leak(user.to_string().into_boxed_str());
    let password: &'static str = Box::leak(format!("{user}-sim").into_boxed_str());
    (
        Account {
            username: name,
            password,
            role,
        },
        name.to_string(),
        password.to_string(),
    )
}

pub fn run(opts: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        opts.days >= 1 && opts.clinicians >= 4,
        "simulate at least one day and four clinicians"
    );
    let (gw_port, portal_port) = (free_port()?, free_port()?);
    let dir = tempfile_dir()?;
    let text = SIM_CONFIG
        .replace("{GATEWAY}", &gw_port.to_string())
        .replace("{PORTAL}", &portal_port.to_string())
        .replace("{DB}", &dir.join("vigie.sqlite").display().to_string())
        .replace("{KEY}", &dir.join("session.key").display().to_string())
        .replace("{ALERTS}", &dir.join("alerts.jsonl").display().to_string());
    let alerts_file = dir.join("alerts.jsonl");
    eprintln!("alerts are written to {}", alerts_file.display());
    std::fs::write(
        dir.join("session.key"),
        format!("simulation-seed-{:032x}", opts.seed),
    )?;
    let config = Config::demo_from_toml(std::path::Path::new("simulate (embedded)"), &text)
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut rng = StdRng::seed_from_u64(opts.seed);
    let records = crate::sample_portal::data::generate(PATIENTS, crate::sample_portal::SEED);
    let mut services: Vec<&str> = records.iter().map(|p| p.service).collect();
    services.sort_unstable();
    services.dedup();
    // One ward per service: the thirty patients in its beds, whom its nurses and physicians see.
    let wards: Vec<Vec<u32>> = services
        .iter()
        .map(|service| {
            let all: Vec<u32> = records
                .iter()
                .filter(|p| p.service == *service)
                .map(|p| p.id)
                .collect();
            (0..30)
                .map(|_| all[rng.random_range(0..all.len())])
                .collect()
        })
        .collect();

    let day0 = EPOCH_S * SECOND;
    let mut accounts = Vec::new();
    let mut staff = Vec::new();
    let kinds = [
        Kind::DayNurse,
        Kind::DayNurse,
        Kind::Physician,
        Kind::NightNurse,
        Kind::Physician,
        Kind::Clerk,
    ];
    for i in 0..opts.clinicians {
        let kind = kinds[i % kinds.len()];
        let ward = i % services.len();
        let (role, ip) = match kind {
            // A ward's nurses share its workstation, day and night.
            Kind::DayNurse | Kind::NightNurse => (Role::Nurse, format!("10.1.{ward}.10")),
            Kind::Physician => (Role::Physician, format!("10.2.{ward}.{}", 20 + i)),
            Kind::Clerk => (Role::Clerk, format!("10.3.0.{}", 30 + i)),
        };
        let (acct, user, password) = account(&format!("staff{i:03}"), role);
        accounts.push(acct);
        let patients = wards[ward].clone();
        staff.push(Clinician::new(
            user, password, kind, gw_port, &ip, patients, PATIENTS, day0, &mut rng,
        ));
    }
    let attack_day = day0 + (opts.days as i64 - 1) * 24 * HOUR;
    let mut attacks = Vec::new();
    for (n, (name, style, at)) in attacks::schedule().into_iter().enumerate() {
        let role = match style {
            Style::CsvExport | Style::OffHoursExport => Role::Admin,
            Style::PagingCrawl => Role::Clerk,
            Style::SlowCrawl
            | Style::ClinicianPaceCrawl
            | Style::AccountsOneSource
            | Style::DocsAware => Role::Nurse,
            _ => Role::Physician,
        };
        let sessions = match style {
            Style::ParallelSessions => 4,
            Style::AccountsOneSource => 5,
            _ => 1,
        };
        let mut creds = Vec::new();
        for s in 0..sessions {
            let user = match style {
                Style::AccountsOneSource => format!("atk{n}.{s}"),
                _ => format!("atk{n}"),
            };
            if s == 0 || style == Style::AccountsOneSource {
                let (acct, _, _) = account(&user, role);
                accounts.push(acct);
            }
            let ip = match style {
                Style::AccountsOneSource => format!("10.9.{n}.1"),
                _ => format!("10.9.{n}.{}", s + 1),
            };
            creds.push((user.clone(), format!("{user}-sim"), ip));
        }
        let at = at.max(day0 + 8 * HOUR - attack_day);
        attacks.push(Attack::new(
            name,
            style,
            gw_port,
            creds,
            attack_day + at,
            PATIENTS,
            &mut rng,
        ));
    }

    let clock = Arc::new(ManualClock::at(EPOCH_S as u64));
    let crate::server::Built {
        mut server,
        detector,
        ..
    } = crate::server::build_with(&config, clock.clone())?;
    let detector = detector.context("the simulator needs the detector")?;
    let portal = SamplePortal::new(PATIENTS).with_accounts(accounts);
    crate::server::add_sample_portal(&mut server, &format!("127.0.0.1:{portal_port}"), portal, 1);
    std::thread::spawn(move || server.run_forever());
    wait_for_port(gw_port)?;
    wait_for_port(portal_port)?;

    let end = day0 + opts.days as i64 * 24 * HOUR;
    let started = std::time::Instant::now();
    loop {
        let next_staff = staff
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.next)
            .map(|(i, c)| (c.next, false, i));
        let next_attack = attacks
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.done)
            .min_by_key(|(_, a)| a.next)
            .map(|(i, a)| (a.next, true, i));
        let Some((at, is_attack, i)) = [next_staff, next_attack]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _, _)| *at)
        else {
            break;
        };
        if at >= end {
            break;
        }
        clock.set_us(at as u64);
        if is_attack {
            attacks[i].step(at, &mut rng);
        } else {
            staff[i].step(at, end, &mut rng);
        }
    }
    // Each alert names its user and carries the simulated time it was raised at.
    anyhow::ensure!(
        detector.alerts().flush(std::time::Duration::from_secs(10)),
        "alerts not written in time"
    );
    for line in std::fs::read_to_string(&alerts_file)?.lines() {
        let alert: serde_json::Value = serde_json::from_str(line)?;
        // What is measured is detection: the gateway's operational alerts (a portal logout
        // that timed out on a loaded machine) are not the detector's verdicts.
        if !alert["rule"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("VIGIE-EXF"))
        {
            continue;
        }
        let user = alert["user"]["name"].as_str().unwrap_or("");
        let at = alert["@timestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_microsecond());
        if let Some(c) = staff.iter_mut().find(|c| c.user == user) {
            c.alerts += 1;
        } else if let Some(a) = attacks.iter_mut().find(|a| a.has_account(user)) {
            a.alerted(at);
        }
    }
    Ok(Report::new(opts, &staff, &attacks, started.elapsed()))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vigie-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn wait_for_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    anyhow::bail!("the simulated gateway did not start on port {port}")
}
