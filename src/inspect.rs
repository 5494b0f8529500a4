//! Commands that look at the gateway without running it: `explain` (the policy's decision for
//! one described request) and `simulate` (the detector against simulated work and attacks).

use std::path::Path;
use std::process::ExitCode;

use vigie::config::Config;

pub fn simulate(days: u32, clinicians: usize, seed: u64, json: Option<&Path>) -> ExitCode {
    let opts = vigie::simulate::Options {
        days,
        clinicians,
        seed,
    };
    eprintln!("simulating {days} days of {clinicians} clinicians, attacks on the last day…");
    let report = match vigie::simulate::run(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("simulation failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).expect("the report serialises");
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    // Both targets: every scenario suspended before 200 patients, at most one false alert
    // per 1000 clinician-hours.
    let code = if report.meets(1.0) {
        0
    } else {
        println!("targets missed: some scenario was not suspended before 200 patients, or too many false alerts");
        3
    };
    // The simulated gateway still runs on its threads (portal logouts, the sweeper): end the
    // process at once, without the C library's exit handlers tearing OpenSSL down under them.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

#[allow(clippy::too_many_arguments)]
pub fn explain(
    path: &Path,
    method: &str,
    url: &str,
    user: Option<&str>,
    groups: &str,
    ip: std::net::IpAddr,
    time: Option<&str>,
    break_glass: bool,
) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let now = match time {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        Some(t) => match crate::explain::parse_time(t) {
            Some(n) => n,
            None => {
                eprintln!("error: --time `{t}`: give RFC 3339 (2026-11-23T22:30:00+01:00) or unix seconds");
                return ExitCode::from(2);
            }
        },
    };
    let groups = super::comma_list(groups);
    let request = crate::explain::Described {
        method: &method.to_ascii_uppercase(),
        url,
        user,
        groups: &groups,
        ip,
        now,
        break_glass,
    };
    print!("{}", crate::explain::explain(&config, &request));
    ExitCode::SUCCESS
}
