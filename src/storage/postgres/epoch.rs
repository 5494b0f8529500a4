//! Noticing a records database restored from an older backup. The database keeps a counter
//! per gateway, which that gateway alone advances, at start and every [`EVERY`]; its file
//! remembers the last value it saw. A counter not past it went back in time: locks lifted,
//! codes used and invitations redeemed since the backup are as the backup has them. (One
//! counter for all would not do: the other replicas would soon move it past any value.) A
//! start then stops (as for an emptied database, `vigie storage migrate --new-records` takes
//! it on purpose); a running gateway raises an alert and stops advancing, so its next start
//! stops too.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;

use super::Pg;
use crate::storage::sqlite::state_value;

/// How often a running gateway advances the counter: a backup older than this is noticed.
pub const EVERY: Duration = Duration::from_secs(10);
/// Where the file keeps the last value seen.
const SEEN: &str = "postgres_records_epoch";
/// Where the file keeps the name of its counter (made at random on first use).
const GATEWAY: &str = "postgres_records_gateway";

/// Advance this gateway's counter; its new value (1 for a counter the database lacks).
pub fn advance(pg: &Pg, conn: &Connection) -> anyhow::Result<i64> {
    let gateway = gateway(conn)?;
    Ok(pg.block(move |c| {
        let gateway = gateway.clone();
        async move {
            let row = c
                .query_one(
                    "INSERT INTO vigie_epochs (gateway, epoch) VALUES ($1, 1)
                     ON CONFLICT (gateway) DO UPDATE SET epoch = vigie_epochs.epoch + 1
                     RETURNING epoch",
                    &[&gateway],
                )
                .await?;
            Ok(row.get(0))
        }
    })?)
}

fn gateway(conn: &Connection) -> rusqlite::Result<String> {
    if let Some(id) = state_value(conn, GATEWAY)? {
        return Ok(id);
    }
    let id = format!("{:032x}", rand::random::<u128>());
    conn.execute(
        "INSERT INTO shared_state (name, value) VALUES (?1, ?2)",
        [GATEWAY, id.as_str()],
    )?;
    Ok(id)
}

/// The last value the file saw (0: none yet).
fn seen(conn: &Connection) -> rusqlite::Result<i64> {
    let v = state_value(conn, SEEN)?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub fn remember(conn: &Connection, epoch: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO shared_state (name, value) VALUES (?1, ?2)",
        rusqlite::params![SEEN, epoch.to_string()],
    )
    .map(drop)
}

/// Advance the counter and compare it with what the file saw; remembered when it is past it.
pub fn check(pg: &Pg, conn: &Connection) -> anyhow::Result<()> {
    let last = seen(conn)?;
    let now = advance(pg, conn)?;
    if now <= last {
        anyhow::bail!(
            "PostgreSQL database {} went back in time: this gateway last saw its records at \
             epoch {last}, it is at {now} now. It was restored from an older backup: account \
             locks lifted, recovery codes and invitations used, TOTP codes spent since the \
             backup are as the backup has them. Lock again what was locked since, then take \
             this database on purpose: `vigie storage migrate -c CONFIG --new-records`",
            pg.at(),
        );
    }
    remember(conn, now)?;
    Ok(())
}

/// A running gateway advances its counter every [`EVERY`]; a counter that went back raises an
/// alert, once, and is not advanced again, so the next start stops.
pub fn watch(pg: Pg, path: PathBuf) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("vigie-records-epoch".into())
        .spawn(move || {
            let mut alerted = false;
            let mut conn: Option<Connection> = None;
            loop {
                std::thread::sleep(EVERY);
                // One connection to the file for the thread's life, opened when it can be.
                let round = match &conn {
                    Some(c) => tick(&pg, c, &mut alerted),
                    None => crate::storage::sqlite::open(&path)
                        .map(|c| conn = Some(c))
                        .map_err(Into::into),
                };
                if let Err(e) = round {
                    tracing::debug!(error = %e, "the records epoch could not be advanced; trying again");
                }
            }
        })
        .map(drop)
}

/// One round of [`watch`]; `alerted` says the alert was raised.
pub fn tick(pg: &Pg, conn: &Connection, alerted: &mut bool) -> anyhow::Result<()> {
    if *alerted {
        return Ok(());
    }
    let last = seen(conn)?;
    let now = advance(pg, conn)?;
    if now > last {
        remember(conn, now)?;
    } else {
        *alerted = true;
        tracing::error!(target: "vigie::alert", severity = "high", event = "records_rolled_back", at = %pg.at(), seen = last, now, "the records database went back in time (restored from an older backup?): locks lifted and codes used since may be back; the next start stops until it is taken on purpose");
    }
    Ok(())
}
