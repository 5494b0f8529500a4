//! `vigie audit verify|export`: the audit trail checked for tampering, and a range of it
//! written out for an investigation. Both read the records store the configuration names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use vigie::audit;
use vigie::config::Config;

#[derive(Subcommand)]
pub enum AuditAction {
    /// Check every chain of the trail: 0 when intact, 1 with the first altered, removed or
    /// reordered entry (and every other break), 2 when the check could not run.
    Verify {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// A log file (JSON lines) holding published `audit_checkpoint` events: the copies a
        /// store's writer cannot reach. Give it several times for several files.
        #[arg(long, value_name = "LOG")]
        checkpoints: Vec<PathBuf>,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write entries as JSON lines (oldest first in chain order, with their links), for an
    /// investigation: all, or those of a time range or a user.
    Export {
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// From this time: RFC 3339 (`2026-11-23T22:30:00+01:00`) or unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// Until this time (excluded).
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

pub fn run(action: AuditAction) -> ExitCode {
    let result = match action {
        AuditAction::Verify {
            config,
            checkpoints,
            json,
        } => verify(&config, &checkpoints, json),
        AuditAction::Export {
            config,
            since,
            until,
            user,
        } => export(&config, since.as_deref(), until.as_deref(), user.as_deref()),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn verify(path: &Path, logs: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let (store, keys) = vigie::storage::open::audit(&config)?;
    let key_file = audit::signing::key_file_for(&config.storage.database);
    let trusted = audit::signing::trusted_keys(config.assertion.key_dir.as_deref(), &key_file)
        .map_err(|e| anyhow::anyhow!("the audit signing keys: {e}"))?;
    let mut published = Vec::new();
    for log in logs {
        let text = std::fs::read_to_string(log)
            .map_err(|e| anyhow::anyhow!("--checkpoints {}: {e}", log.display()))?;
        published.extend(audit::signing::from_log(&text));
    }
    let report = audit::verify(store.as_ref(), &keys, &trusted, published)?;
    if json {
        let problems: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        let doc = serde_json::json!({
            "intact": report.intact(),
            "chains": report.chains,
            "unchained": report.unchained,
            "problems": problems,
            "warnings": report.warnings,
        });
        println!("{doc:#}");
    } else {
        for c in &report.chains {
            let vouched = match c.checkpoint {
                Some(seq) => format!("checkpoint at #{seq}, {} after it", c.unconfirmed),
                None => format!("no checkpoint yet ({} unconfirmed)", c.unconfirmed),
            };
            println!(
                "chain {}: entries #{}-#{} ({}), {vouched}",
                c.chain, c.first, c.last, c.entries
            );
        }
        if report.unchained > 0 {
            println!(
                "{} entries written before the chain existed: not covered",
                report.unchained
            );
        }
        for w in &report.warnings {
            println!("warning: {w}");
        }
        match report.problems.first() {
            None => println!("intact: {} chains", report.chains.len()),
            Some(first) => {
                println!("TAMPERED: first break: {first}");
                for p in &report.problems[1..] {
                    println!("  also: {p}");
                }
            }
        }
    }
    Ok(match report.intact() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

fn export(
    path: &Path,
    since: Option<&str>,
    until: Option<&str>,
    user: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let (store, _) = vigie::storage::open::audit(&config)?;
    let micros = |t: Option<&str>, flag: &str| -> anyhow::Result<Option<i64>> {
        t.map(|t| {
            crate::explain::parse_time(t)
                .map(|secs| secs as i64 * 1_000_000)
                .ok_or_else(|| anyhow::anyhow!("--{flag} {t}: give RFC 3339 or unix seconds"))
        })
        .transpose()
    };
    let (since, until) = (micros(since, "since")?, micros(until, "until")?);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = None;
    let mut written = 0u64;
    loop {
        let page = store.page(after.as_ref(), 2_000)?;
        for (_, e) in &page {
            let keep = since.is_none_or(|s| e.at_us >= s)
                && until.is_none_or(|u| e.at_us < u)
                && user.is_none_or(|u| e.user.as_deref() == Some(u));
            if keep {
                use std::io::Write;
                writeln!(out, "{}", serde_json::to_string(e)?)?;
                written += 1;
            }
        }
        match page.last() {
            Some((cursor, _)) => after = Some(cursor.clone()),
            None => break,
        }
    }
    drop(out);
    eprintln!("{written} entries written");
    Ok(ExitCode::SUCCESS)
}
