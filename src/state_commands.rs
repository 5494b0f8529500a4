//! `vigie user …` and `vigie storage …`: the gateway's users and database (locks and unlocks go
//! through the running gateway's admin API, so every replica hears of them).

use std::path::PathBuf;
use std::process::ExitCode;

use vigie::config::Config;

use crate::{admin_call, comma_list, encode, UserAction};

/// `vigie storage migrate`: the embedded database and (with `records = "postgres"`)
/// PostgreSQL brought up to date, an existing deployment's records copied into PostgreSQL,
/// and what changed. Every start does the same.
pub fn storage_migrate(path: &std::path::Path, new_records: bool) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let db = &config.storage.database;
    if let vigie::config::Records::Postgres(settings) = &config.storage.records {
        return match migrate_postgres(&config, settings, new_records) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if !db.exists() {
        eprintln!(
            "error: no database at {} (nothing to migrate: the first start creates it)",
            db.display()
        );
        return ExitCode::FAILURE;
    }
    match vigie::storage::sqlite::migrate_file(db) {
        Ok((from, applied)) if applied.is_empty() => {
            println!("{}: schema version {from}, up to date", db.display());
            ExitCode::SUCCESS
        }
        Ok((from, applied)) => {
            let to = from as usize + applied.len();
            println!("{}: schema version {from} -> {to}", db.display());
            for (i, name) in applied.iter().enumerate() {
                println!("  {}: {name}", from as usize + i + 1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", db.display());
            ExitCode::FAILURE
        }
    }
}

pub fn user_command(config: Option<PathBuf>, action: UserAction) -> ExitCode {
    let Some(path) = config else {
        eprintln!("error: give the gateway's configuration with -c FILE (it names the database)");
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Locks go through the running gateway, which ends live sessions on every replica.
    let admin_target = match &action {
        UserAction::Lock { username, reason } => Some(format!(
            "/api/users/lock?user={}&reason={}",
            encode(username),
            encode(reason)
        )),
        UserAction::Unlock { username } => {
            Some(format!("/api/users/unlock?user={}", encode(username)))
        }
        _ => None,
    };
    if let Some(target) = admin_target {
        let (Some(admin), Some(token)) = (config.admin, &config.admin_token) else {
            eprintln!(
                "error: {} enables no admin API: set admin.address and admin.api_token_file",
                path.display()
            );
            return ExitCode::from(2);
        };
        return match admin_call(admin, "POST", &target, &token.0) {
            Ok((200, body)) => {
                println!("{}", body.trim_end());
                ExitCode::SUCCESS
            }
            Ok((_, body)) => {
                eprintln!("{}", body.trim_end());
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("error: cannot reach the admin API at {admin}: {e}");
                ExitCode::from(1)
            }
        };
    }
    let store = match vigie::storage::open::users(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let read_password = || {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map(|_| line.trim_end_matches(['\r', '\n']).to_string())
    };
    let result = match action {
        UserAction::Add { username, groups } => {
            read_password().map_err(|e| e.to_string()).and_then(|pw| {
                let groups = comma_list(&groups);
                store
                    .add(&username, &pw, &groups)
                    .map(|_| format!("user {username} added"))
                    .map_err(|e| e.to_string())
            })
        }
        UserAction::Passwd { username } => {
            read_password().map_err(|e| e.to_string()).and_then(|pw| {
                store
                    .set_password(&username, &pw)
                    .map(|_| format!("password of {username} changed"))
                    .map_err(|e| e.to_string())
            })
        }
        UserAction::Disable { username } => store.set_disabled(&username, true).map_err(|e| e.to_string()).map(|_| {
            // A disabled user's live sessions end too, on every replica, through the admin API.
            let revoked = match (config.admin, &config.admin_token) {
                (Some(admin), Some(token)) => {
                    let target = format!("/api/sessions/revoke?user={}", encode(&username));
                    match admin_call(admin, "POST", &target, &token.0) {
                        Ok((200, body)) => format!("; sessions revoked: {}", body.trim()),
                        Ok((status, body)) => format!("; WARNING: session revocation answered {status}: {}", body.trim()),
                        Err(e) => format!("; WARNING: gateway not reachable ({e}): run `vigie session revoke --user {username}`"),
                    }
                }
                _ => format!("; no admin API configured: end live sessions with `vigie session revoke --user {username}`"),
            };
            format!("user {username} disabled{revoked}")
        }),
        UserAction::Enable { username } => store
            .set_disabled(&username, false)
            .map(|_| format!("user {username} enabled"))
            .map_err(|e| e.to_string()),
        UserAction::Lock { .. } | UserAction::Unlock { .. } => unreachable!("handled through the admin API above"),
        UserAction::List => store.list().map_err(|e| e.to_string()).map(|users| {
            users
                .iter()
                .map(|u| {
                    format!(
                        "{}\t{}\t{}",
                        u.username,
                        if u.disabled { "disabled" } else { "enabled" },
                        u.groups.join(",")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        }),
    };
    match result {
        Ok(msg) => {
            if !msg.is_empty() {
                println!("{msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn migrate_postgres(
    config: &Config,
    settings: &vigie::storage::postgres::PgSettings,
    new_records: bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use vigie::storage::postgres::{import, Pg};
    let (pg, applied) = Pg::connect(settings)?;
    let known = vigie::storage::postgres::schema_version();
    match applied.is_empty() {
        true => println!("{}: schema version {known}, up to date", pg.at()),
        false => {
            println!("{}: schema brought to version {known}", pg.at());
            for name in applied {
                println!("  {name}");
            }
        }
    }
    let report = |from: &str, copied: Option<import::Copied>| match copied {
        None => println!("{from}: already copied"),
        Some(rows) => {
            println!("{from}: copied");
            for (table, n) in rows {
                println!("  {table}: {n}");
            }
        }
    };
    let db = &config.storage.database;
    if new_records {
        import::take_as_new(&pg, db)?;
        println!(
            "{}: records database {} taken as this gateway's; nothing copied",
            db.display(),
            pg.instance()
        );
        return Ok(());
    }
    let copied = import::from_sqlite(&pg, db)
        .with_context(|| format!("copying {} into PostgreSQL", db.display()))?;
    report(&db.display().to_string(), copied);
    if let vigie::config::StorageBackend::Redis {
        url,
        cluster,
        prefix,
        tls,
        ..
    } = &config.storage.backend
    {
        let shown = vigie::storage::open::redact(url);
        let client = match cluster.is_empty() {
            true => vigie::storage::redis::Redis::one(url, tls)?,
            false => vigie::storage::redis::Redis::cluster(cluster, tls, prefix)?,
        };
        let copied = import::from_redis(&pg, &client, &shown, prefix)
            .with_context(|| format!("copying the factors in Redis at {shown} into PostgreSQL"))?;
        report(&format!("Redis at {shown}"), copied);
    }
    Ok(())
}
