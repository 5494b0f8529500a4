//! Moving an existing deployment onto PostgreSQL: the records of a `vigie.sqlite` file (locks,
//! holds, alerts, factors and their counters, invitations, local users, the audit trail and
//! break-glass records), and the factors replicas kept in
//! Redis, copied once into PostgreSQL. It runs at every start with `records = "postgres"`
//! (and on demand, `vigie storage migrate`): each source is marked once copied, so it is
//! copied once, and replicas each bring their own file's alerts. Rows PostgreSQL already has
//! win, except a TOTP step, where the later one wins (a code used once stays used).

use std::path::Path;
use std::time::Duration;

use super::{Pg, PgError};

/// What one source brought: (table, rows added).
pub type Copied = Vec<(&'static str, u64)>;

/// The marker a copied file keeps, naming the records database it went to (its instance).
const MARK: &str = "postgres_records_instance";

/// id, at_us, rule_id, severity, risk_score, user, dedup_key, status, ECS document.
type AlertRow = (
    String,
    i64,
    String,
    String,
    i32,
    String,
    String,
    String,
    String,
);

/// id, at_us, user, portal, session, until, sealed reason.
type GlassRow = (String, i64, String, String, String, i64, Vec<u8>);

#[derive(Default, Clone)]
struct Rows {
    locks: Vec<(String, String, i64)>,
    holds: Vec<(String, String, i64, i64, String, String, i32)>,
    alerts: Vec<AlertRow>,
    factors: Vec<(String, Vec<u8>, i64)>,
    steps: Vec<(String, i64)>,
    codes: Vec<(String, String)>,
    invitations: Vec<(String, String, i64)>,
    /// name, password hash, groups, disabled, created, updated.
    users: Vec<(String, String, String, bool, i64, i64)>,
    /// id, at_us, level, event, user, fields, chain, seq, mac.
    audit: Vec<crate::audit::Row>,
    /// The chains' checkpoints and anchors, so `vigie audit verify` still passes after.
    checkpoints: Vec<crate::audit::chain::Checkpoint>,
    anchors: Vec<crate::audit::chain::Anchor>,
    glass: Vec<GlassRow>,
}

/// Copy the SQLite file at `path` into `pg`, unless it was already; `None` when it was.
pub fn from_sqlite(pg: &Pg, path: &Path) -> Result<Option<Copied>, anyhow::Error> {
    if !path.exists() {
        // A new gateway: nothing to copy, but its file names its records database from the
        // first start, so one emptied under it is noticed from the next.
        take_as_new(pg, path)?;
        return Ok(None);
    }
    let conn = crate::storage::sqlite::open(path)?;
    let marked = crate::storage::sqlite::state_value(&conn, MARK)?;
    match marked {
        Some(m) if m == pg.instance() => {
            super::epoch::check(pg, &conn)?;
            return Ok(None);
        }
        // Moved before into another records database: this one is new, or was emptied. Its
        // locks, factors and used codes are not those this gateway knew; copying the file
        // again would bring back what was lifted or used since the move. Stop, and say why.
        Some(m) => anyhow::bail!(
            "this gateway's records were moved into PostgreSQL database {m}, and {} is another \
             one ({}): it is new, or was emptied or replaced. Restore the database the records \
             are in; or, if this database is meant to be the gateway's from now on, run \
             `vigie storage migrate -c CONFIG --new-records`",
            pg.at(),
            pg.instance()
        ),
        None => {}
    }
    let mut rows = Rows::default();
    let all = |sql: &str| -> rusqlite::Result<Vec<Vec<rusqlite::types::Value>>> {
        let mut stmt = conn.prepare(sql)?;
        let n = stmt.column_count();
        let out = stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())?;
        out.collect()
    };
    use rusqlite::types::Value as V;
    let text = |v: &V| match v {
        V::Text(s) => s.clone(),
        V::Integer(i) => i.to_string(),
        _ => String::new(),
    };
    let int = |v: &V| match v {
        V::Integer(i) => *i,
        _ => 0,
    };
    for r in all("SELECT username, reason, locked_at FROM account_locks")? {
        rows.locks.push((text(&r[0]), text(&r[1]), int(&r[2])));
    }
    for r in all("SELECT portal, username, since_us, until_us, alert_id, rule, score FROM holds")? {
        rows.holds.push((
            text(&r[0]),
            text(&r[1]),
            int(&r[2]),
            int(&r[3]),
            text(&r[4]),
            text(&r[5]),
            int(&r[6]) as i32,
        ));
    }
    for r in all(
        "SELECT id, at_us, rule_id, severity, risk_score, user, dedup_key, status, ecs FROM alerts",
    )? {
        rows.alerts.push((
            text(&r[0]),
            int(&r[1]),
            text(&r[2]),
            text(&r[3]),
            int(&r[4]) as i32,
            text(&r[5]),
            text(&r[6]),
            text(&r[7]),
            text(&r[8]),
        ));
    }
    for r in all("SELECT username, sealed, version FROM factors")? {
        let sealed = match &r[1] {
            V::Blob(b) => b.clone(),
            _ => continue,
        };
        rows.factors.push((text(&r[0]), sealed, int(&r[2])));
    }
    for r in all("SELECT username, step FROM totp_steps")? {
        rows.steps.push((text(&r[0]), int(&r[1])));
    }
    for r in all("SELECT username, digest FROM recovery_codes")? {
        rows.codes.push((text(&r[0]), text(&r[1])));
    }
    for r in all("SELECT username, password_hash, groups, disabled, created, updated FROM users")? {
        rows.users.push((
            text(&r[0]),
            text(&r[1]),
            text(&r[2]),
            int(&r[3]) != 0,
            int(&r[4]),
            int(&r[5]),
        ));
    }
    for r in all("SELECT id, at_us, level, event, username, fields, chain, seq, mac FROM audit")? {
        let opt_text = |v: &V| matches!(v, V::Text(_)).then(|| text(v));
        let row = (
            text(&r[0]),
            int(&r[1]),
            text(&r[2]),
            text(&r[3]),
            opt_text(&r[4]),
            text(&r[5]),
            opt_text(&r[6]),
            matches!(r[7], V::Integer(_)).then(|| int(&r[7])),
            opt_text(&r[8]),
        );
        rows.audit.push(row);
    }
    for r in all("SELECT chain, seq, mac, at_us, signer, signature FROM audit_checkpoints")? {
        rows.checkpoints.push(crate::audit::chain::Checkpoint {
            chain: text(&r[0]),
            seq: int(&r[1]),
            mac: text(&r[2]),
            at_us: int(&r[3]),
            signer: text(&r[4]),
            signature: text(&r[5]),
        });
    }
    for r in all("SELECT chain, seq, mac, tag FROM audit_anchors")? {
        rows.anchors.push(crate::audit::chain::Anchor {
            chain: text(&r[0]),
            seq: int(&r[1]),
            mac: text(&r[2]),
            tag: text(&r[3]),
        });
    }
    for r in all("SELECT id, at_us, username, portal, session, until, reason FROM break_glass")? {
        let V::Blob(reason) = &r[6] else { continue };
        let (id, user, portal, session) = (text(&r[0]), text(&r[2]), text(&r[3]), text(&r[4]));
        let row = (
            id,
            int(&r[1]),
            user,
            portal,
            session,
            int(&r[5]),
            reason.clone(),
        );
        rows.glass.push(row);
    }
    for r in all("SELECT username, digest, expires FROM invitations")? {
        rows.invitations
            .push((text(&r[0]), text(&r[1]), int(&r[2])));
    }
    let copied = write(pg, rows, None)?;
    // Marked only once PostgreSQL has committed: a copy cut short runs again at next start.
    mark(&conn, pg)?;
    super::epoch::remember(&conn, super::epoch::advance(pg, &conn)?)?;
    Ok(Some(copied))
}

fn mark(conn: &rusqlite::Connection, pg: &Pg) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO shared_state (name, value) VALUES (?1, ?2)",
        [MARK, pg.instance()],
    )
    .map(drop)
}

/// Take `pg` as the records database of the file at `path` from now on, copying nothing
/// (`vigie storage migrate --new-records`).
pub fn take_as_new(pg: &Pg, path: &Path) -> Result<(), anyhow::Error> {
    let conn = crate::storage::sqlite::open(path)?;
    mark(&conn, pg)?;
    super::epoch::remember(&conn, super::epoch::advance(pg, &conn)?)?;
    Ok(())
}

/// Copy the factors replicas kept in Redis (records, TOTP steps, recovery codes, invitations)
/// into `pg`, unless it was already; `None` when it was. PostgreSQL records the copy, so
/// later starts do not need Redis for it; until it is done, a start without Redis fails:
/// users whose factors were not copied would look unenrolled. Attempt counters and WebAuthn
/// ceremonies are minutes long and start afresh.
pub fn from_redis(
    pg: &Pg,
    client: &crate::storage::redis::Redis,
    shown: &str,
    prefix: &str,
) -> Result<Option<Copied>, anyhow::Error> {
    let source = format!("redis {shown} prefix {prefix}");
    let done = source.clone();
    let copied_before = pg.block(move |c| {
        let done = done.clone();
        async move {
            c.query_opt("SELECT 1 FROM vigie_imports WHERE source = $1", &[&done])
                .await
                .map(|r| r.is_some())
        }
    })?;
    if copied_before {
        return Ok(None);
    }
    let (client, prefix) = (client.clone(), prefix.to_string());
    let read = async move {
        use redis::AsyncCommands;
        let mut c = client.connect().await?;
        let mut rows = Rows::default();
        let mut users = std::collections::BTreeSet::new();
        for kind in ["factors", "invitation", "recovery", "totp-step"] {
            let pattern = format!("{prefix}{kind}:*");
            let mut keys: Vec<String> = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                keys.extend(batch);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            for k in keys {
                users.insert(k[prefix.len() + kind.len() + 1..].to_string());
            }
        }
        for user in users {
            let key = |kind: &str| format!("{prefix}{kind}:{user}");
            let (sealed, version): (Option<Vec<u8>>, Option<i64>) =
                c.hmget(key("factors"), &["sealed", "version"]).await?;
            if let Some(sealed) = sealed {
                rows.factors
                    .push((user.clone(), sealed, version.unwrap_or(1)));
            }
            let step: Option<i64> = c.get(key("totp-step")).await?;
            if let Some(step) = step {
                rows.steps.push((user.clone(), step));
            }
            let codes: Vec<String> = c.smembers(key("recovery")).await?;
            rows.codes
                .extend(codes.into_iter().map(|d| (user.clone(), d)));
            let (digest, expires): (Option<String>, Option<i64>) =
                c.hmget(key("invitation"), &["digest", "expires"]).await?;
            if let (Some(digest), Some(expires)) = (digest, expires) {
                rows.invitations.push((user.clone(), digest, expires));
            }
        }
        Ok::<_, redis::RedisError>(rows)
    };
    let rows = pg.wait(read, Duration::from_secs(120))??;
    Ok(Some(write(pg, rows, Some(source))?))
}

/// Every row in one transaction, with the source's mark when it is kept here: all of a
/// source, or none of it.
fn write(pg: &Pg, rows: Rows, mark: Option<String>) -> Result<Copied, PgError> {
    pg.block(move |mut c| {
        let (r, mark) = (rows.clone(), mark.clone());
        async move {
            let tx = c.transaction().await?;
            let mut copied = Vec::new();
            macro_rules! cols {
                ($v:expr, $i:tt) => {
                    $v.iter().map(|x| x.$i.clone()).collect::<Vec<_>>()
                };
            }
            let n = tx
                .execute(
                    "INSERT INTO account_locks (username, reason, locked_at)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                     ON CONFLICT (username) DO NOTHING",
                    &[&cols!(r.locks, 0), &cols!(r.locks, 1), &cols!(r.locks, 2)],
                )
                .await?;
            copied.push(("account_locks", n));
            let n = tx
                .execute(
                    "INSERT INTO holds (portal, username, since_us, until_us, alert_id, rule, score)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                          $5::text[], $6::text[], $7::int[])
                     ON CONFLICT (portal, username) DO NOTHING",
                    &[
                        &cols!(r.holds, 0),
                        &cols!(r.holds, 1),
                        &cols!(r.holds, 2),
                        &cols!(r.holds, 3),
                        &cols!(r.holds, 4),
                        &cols!(r.holds, 5),
                        &cols!(r.holds, 6),
                    ],
                )
                .await?;
            copied.push(("holds", n));
            let n = tx
                .execute(
                    "INSERT INTO alerts (id, at_us, rule_id, severity, risk_score, username, dedup_key, status, ecs)
                     SELECT a, b, c, d, e, f, g, h, i::jsonb
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[],
                                 $6::text[], $7::text[], $8::text[], $9::text[]) AS t(a, b, c, d, e, f, g, h, i)
                     ON CONFLICT (id) DO NOTHING",
                    // The portal and source, filters' columns, are read from the document below.
                    &[
                        &cols!(r.alerts, 0),
                        &cols!(r.alerts, 1),
                        &cols!(r.alerts, 2),
                        &cols!(r.alerts, 3),
                        &cols!(r.alerts, 4),
                        &cols!(r.alerts, 5),
                        &cols!(r.alerts, 6),
                        &cols!(r.alerts, 7),
                        &cols!(r.alerts, 8),
                    ],
                )
                .await?;
            tx.execute(
                "UPDATE alerts SET portal = COALESCE(ecs->'service'->>'name', ''),
                        source = COALESCE(ecs->'source'->>'ip', '') WHERE portal = ''",
                &[],
            )
            .await?;
            copied.push(("alerts", n));
            // A user's codes and invitation only come with their factor record: where
            // PostgreSQL already has the user (codes made again since), old ones stay out.
            let n = tx
                .execute(
                    "INSERT INTO recovery_codes (username, digest)
                     SELECT u, d FROM unnest($1::text[], $2::text[]) AS t(u, d)
                     WHERE NOT EXISTS (SELECT 1 FROM factors f WHERE f.username = t.u)
                     ON CONFLICT DO NOTHING",
                    &[&cols!(r.codes, 0), &cols!(r.codes, 1)],
                )
                .await?;
            copied.push(("recovery_codes", n));
            let n = tx
                .execute(
                    "INSERT INTO invitations (username, digest, expires)
                     SELECT u, d, e FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(u, d, e)
                     WHERE NOT EXISTS (SELECT 1 FROM factors f WHERE f.username = t.u)
                     ON CONFLICT (username) DO NOTHING",
                    &[
                        &cols!(r.invitations, 0),
                        &cols!(r.invitations, 1),
                        &cols!(r.invitations, 2),
                    ],
                )
                .await?;
            copied.push(("invitations", n));
            let n = tx
                .execute(
                    "INSERT INTO factors (username, sealed, version)
                     SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[])
                     ON CONFLICT (username) DO NOTHING",
                    &[&cols!(r.factors, 0), &cols!(r.factors, 1), &cols!(r.factors, 2)],
                )
                .await?;
            copied.push(("factors", n));
            // The later step wins: a code used once stays used.
            let n = tx
                .execute(
                    "INSERT INTO totp_steps (username, step)
                     SELECT * FROM unnest($1::text[], $2::bigint[])
                     ON CONFLICT (username) DO UPDATE SET step = EXCLUDED.step
                     WHERE EXCLUDED.step > totp_steps.step",
                    &[&cols!(r.steps, 0), &cols!(r.steps, 1)],
                )
                .await?;
            copied.push(("totp_steps", n));
            let n = tx
                .execute(
                    "INSERT INTO users (username, password_hash, groups, disabled, created, updated)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[], $6::bigint[])
                     ON CONFLICT (username) DO NOTHING",
                    &[
                        &cols!(r.users, 0),
                        &cols!(r.users, 1),
                        &cols!(r.users, 2),
                        &cols!(r.users, 3),
                        &cols!(r.users, 4),
                        &cols!(r.users, 5),
                    ],
                )
                .await?;
            copied.push(("users", n));
            let n = tx
                .execute(
                    "INSERT INTO audit (id, at_us, level, event, username, fields, chain, seq, mac)
                     SELECT a, b, c, d, e, f::jsonb, g, h, i
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                                 $7::text[], $8::bigint[], $9::text[])
                          AS t(a, b, c, d, e, f, g, h, i)
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &cols!(r.audit, 0),
                        &cols!(r.audit, 1),
                        &cols!(r.audit, 2),
                        &cols!(r.audit, 3),
                        &cols!(r.audit, 4),
                        &cols!(r.audit, 5),
                        &cols!(r.audit, 6),
                        &cols!(r.audit, 7),
                        &cols!(r.audit, 8),
                    ],
                )
                .await?;
            copied.push(("audit", n));
            for cp in &r.checkpoints {
                tx.execute(
                    "INSERT INTO audit_checkpoints (chain, seq, mac, at_us, signer, signature)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&cp.chain, &cp.seq, &cp.mac, &cp.at_us, &cp.signer, &cp.signature],
                )
                .await?;
            }
            for a in &r.anchors {
                tx.execute(
                    "INSERT INTO audit_anchors (chain, seq, mac, tag) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (chain) DO NOTHING",
                    &[&a.chain, &a.seq, &a.mac, &a.tag],
                )
                .await?;
            }
            let n = tx
                .execute(
                    "INSERT INTO break_glass (id, at_us, username, portal, session, until, reason)
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                          $6::bigint[], $7::bytea[])
                     ON CONFLICT (id) DO NOTHING",
                    &[
                        &cols!(r.glass, 0),
                        &cols!(r.glass, 1),
                        &cols!(r.glass, 2),
                        &cols!(r.glass, 3),
                        &cols!(r.glass, 4),
                        &cols!(r.glass, 5),
                        &cols!(r.glass, 6),
                    ],
                )
                .await?;
            copied.push(("break_glass", n));
            if let Some(source) = mark {
                tx.execute(
                    "INSERT INTO vigie_imports (source) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&source],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(copied)
        }
    })
}
