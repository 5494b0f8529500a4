//! The PostgreSQL schema, versioned in `vigie_schema` and migrated in one transaction under
//! an advisory lock: replicas starting together wait for each other, and a half-applied
//! migration never stays. Append only: a released migration never changes.

use deadpool_postgres::Object;

use super::PgError;

/// Any constant both replicas agree on: the advisory lock taken while migrating.
const LOCK: i64 = 0x7669_6769_6573_6368; // "vigiesch"

struct Migration {
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
    name: "locks, holds, alerts, second factors and local users",
    // The same records as the SQLite file's, so `vigie storage migrate` copies row for row.
    sql: "CREATE TABLE account_locks (username TEXT PRIMARY KEY, reason TEXT NOT NULL, locked_at BIGINT NOT NULL);
          CREATE TABLE holds (
              portal TEXT NOT NULL,
              username TEXT NOT NULL,
              since_us BIGINT NOT NULL,
              until_us BIGINT NOT NULL,
              alert_id TEXT NOT NULL,
              rule TEXT NOT NULL,
              score INTEGER NOT NULL,
              PRIMARY KEY (portal, username)
          );
          CREATE TABLE alerts (
              id TEXT PRIMARY KEY,
              at_us BIGINT NOT NULL,
              rule_id TEXT NOT NULL,
              severity TEXT NOT NULL,
              risk_score INTEGER NOT NULL,
              username TEXT NOT NULL,
              dedup_key TEXT NOT NULL,
              status TEXT NOT NULL DEFAULT 'open',
              ecs JSONB NOT NULL
          );
          CREATE INDEX alerts_at ON alerts (at_us DESC);
          CREATE TABLE factors (username TEXT PRIMARY KEY, sealed BYTEA NOT NULL, version BIGINT NOT NULL);
          CREATE TABLE totp_steps (username TEXT PRIMARY KEY, step BIGINT NOT NULL);
          CREATE TABLE recovery_codes (username TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (username, digest));
          CREATE TABLE factor_failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at BIGINT NOT NULL);
          CREATE TABLE invitations (username TEXT PRIMARY KEY, digest TEXT NOT NULL, expires BIGINT NOT NULL);
          CREATE TABLE webauthn_challenges (key TEXT PRIMARY KEY, state BYTEA NOT NULL, expires BIGINT NOT NULL);
          CREATE TABLE users (
              username TEXT PRIMARY KEY,
              password_hash TEXT NOT NULL,
              groups TEXT NOT NULL DEFAULT '',
              disabled BOOLEAN NOT NULL DEFAULT false,
              created BIGINT NOT NULL,
              updated BIGINT NOT NULL
          );
          CREATE TABLE vigie_instance (id TEXT NOT NULL);
          INSERT INTO vigie_instance VALUES (md5(random()::text || clock_timestamp()::text));
          CREATE TABLE vigie_imports (source TEXT PRIMARY KEY, copied_at TIMESTAMPTZ NOT NULL DEFAULT now());",
    },
    Migration {
        name: "the audit trail and break-glass records",
        sql: "CREATE TABLE audit (
                  id TEXT PRIMARY KEY,
                  at_us BIGINT NOT NULL,
                  level TEXT NOT NULL,
                  event TEXT NOT NULL,
                  username TEXT,
                  fields JSONB NOT NULL
              );
              CREATE INDEX audit_at ON audit (at_us DESC);
              CREATE INDEX audit_user ON audit (username, at_us DESC);
              CREATE TABLE break_glass (
                  id TEXT PRIMARY KEY,
                  at_us BIGINT NOT NULL,
                  username TEXT NOT NULL,
                  portal TEXT NOT NULL,
                  session TEXT NOT NULL,
                  until BIGINT NOT NULL,
                  reason BYTEA NOT NULL
              );
              CREATE INDEX break_glass_at ON break_glass (at_us DESC);",
    },
    Migration {
        name: "a counter that notices a database restored from an older backup",
        sql: "CREATE TABLE vigie_epochs (gateway TEXT PRIMARY KEY, epoch BIGINT NOT NULL);
              CREATE INDEX audit_event ON audit (event, at_us DESC);
              CREATE INDEX audit_user_event ON audit (username, event, at_us DESC);",
    },
    Migration {
        name: "the audit trail chained, checkpointed and anchored",
        // Entries written before have no chain; `vigie audit verify` counts them apart.
        sql: "ALTER TABLE audit ADD COLUMN chain TEXT, ADD COLUMN seq BIGINT, ADD COLUMN mac TEXT;
              CREATE INDEX audit_chain ON audit (chain, seq);
              CREATE TABLE audit_checkpoints (
                  chain TEXT NOT NULL,
                  seq BIGINT NOT NULL,
                  mac TEXT NOT NULL,
                  at_us BIGINT NOT NULL,
                  signer TEXT NOT NULL,
                  signature TEXT NOT NULL,
                  PRIMARY KEY (chain, seq)
              );
              CREATE TABLE audit_anchors (
                  chain TEXT PRIMARY KEY,
                  seq BIGINT NOT NULL,
                  mac TEXT NOT NULL,
                  tag TEXT NOT NULL
              );",
    },
    Migration {
        name: "alerts triaged: statuses, resolution, assignee, every change recorded",
        sql: "ALTER TABLE alerts ADD COLUMN portal TEXT NOT NULL DEFAULT '',
                  ADD COLUMN resolution TEXT, ADD COLUMN assignee TEXT, ADD COLUMN updated_us BIGINT;
              UPDATE alerts SET status = 'new' WHERE status = 'open';
              UPDATE alerts SET status = 'closed' WHERE status = 'resolved';
              UPDATE alerts SET portal = COALESCE(ecs->'service'->>'name', '');
              CREATE INDEX alerts_status ON alerts (status, at_us DESC);
              CREATE INDEX alerts_user ON alerts (username, at_us DESC);
              CREATE TABLE alert_events (
                  id BIGSERIAL PRIMARY KEY,
                  alert_id TEXT NOT NULL,
                  at_us BIGINT NOT NULL,
                  analyst TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  before TEXT,
                  after TEXT,
                  note BYTEA
              );
              CREATE INDEX alert_events_alert ON alert_events (alert_id, at_us);",
    },
    Migration {
        name: "alerts keep their context: the timeline, the patients sealed",
        sql: "ALTER TABLE alerts ADD COLUMN timeline TEXT, ADD COLUMN patients BYTEA;",
    },
    Migration {
        name: "per-person API tokens",
        sql: "CREATE TABLE api_tokens (
                  id TEXT PRIMARY KEY,
                  name TEXT NOT NULL,
                  role TEXT NOT NULL,
                  digest TEXT NOT NULL,
                  created BIGINT NOT NULL,
                  expires BIGINT NOT NULL,
                  revoked BOOLEAN NOT NULL DEFAULT false
              );",
    },
    Migration {
        name: "alerts name their workstation (other alerts from the same source)",
        sql: "ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT '';
              UPDATE alerts SET source = COALESCE(ecs->'source'->>'ip', '');
              CREATE INDEX alerts_source ON alerts (source, at_us DESC);",
    },
];

/// The schema version this build writes.
pub fn schema_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Apply what the database lacks; the names of the migrations applied. The outer error is
/// the connection's (the call is retried), the inner one the schema's (it is not).
pub(super) async fn migrate(
    mut conn: Object,
) -> Result<Result<Vec<&'static str>, PgError>, tokio_postgres::Error> {
    let tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS vigie_schema (
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM vigie_schema", &[])
        .await?
        .get(0);
    let known = schema_version();
    if found > known {
        return Ok(Err(PgError::TooNew { found, known }));
    }
    let mut applied = Vec::new();
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        let step = async {
            tx.batch_execute(m.sql).await?;
            tx.execute(
                "INSERT INTO vigie_schema (version, name) VALUES ($1, $2)",
                &[&version, &m.name],
            )
            .await
        };
        if let Err(e) = step.await {
            if e.as_db_error().is_none() {
                return Err(e);
            }
            return Ok(Err(PgError::Migration {
                version,
                name: m.name,
                message: super::message(&e),
            }));
        }
        applied.push(m.name);
    }
    tx.commit().await?;
    Ok(Ok(applied))
}
