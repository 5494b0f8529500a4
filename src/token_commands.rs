//! `vigie tokens create|list|revoke`: per-person API tokens, in the records store the
//! configuration names (every replica reads the same list).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use vigie::config::Config;
use vigie::storage::tokens::parse_role;

#[derive(Subcommand)]
pub enum TokensAction {
    /// Make a token; it is printed once (keep it in the tool's secret store).
    Create {
        /// Who or what holds it (a person, `siem-bot`…): the audit trail names it.
        #[arg(long)]
        name: String,
        /// soc, dpo or it: what its calls may do.
        #[arg(long)]
        role: String,
        /// Days until it expires (1 to 365).
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// The tokens (never their secrets): id, holder, role, expiry, revoked.
    List,
    /// Revoke a token at once, by its id.
    Revoke { id: String },
}

pub fn run(config: Option<PathBuf>, action: TokensAction) -> ExitCode {
    let Some(path) = config else {
        eprintln!(
            "error: give the gateway's configuration with -c FILE (it names the records store)"
        );
        return ExitCode::from(2);
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tokens = match vigie::storage::open::tokens(&config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let done = match action {
        TokensAction::Create { name, role, days } => {
            let Some(role) = parse_role(&role) else {
                eprintln!("error: --role {role}: use soc, dpo or it");
                return ExitCode::from(2);
            };
            if name == "admin-token" {
                eprintln!(
                    "error: `admin-token` names the shared token in the trail: choose another name"
                );
                return ExitCode::from(2);
            }
            if !vigie::storage::users::valid_name(&name) || !(1..=365).contains(&days) {
                eprintln!("error: --name is 1 to 64 letters, digits, `.`, `_`, `-` or `@`; --days 1 to 365");
                return ExitCode::from(2);
            }
            tokens.create(&name, role, days, now).map(|(token, id)| {
                audit(
                    &config,
                    "api_token_created",
                    &name,
                    serde_json::json!({ "token": id, "role": role.as_str(), "days": days }),
                );
                eprintln!(
                    "token {id} for {name} ({}), valid {days} days; shown once:",
                    role.as_str()
                );
                println!("{token}");
            })
        }
        TokensAction::List => tokens.list().map(|rows| {
            for t in rows {
                let expiry = jiff::Timestamp::from_second(t.expires)
                    .map(|e| e.strftime("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let state = match (t.revoked, t.expires <= now) {
                    (true, _) => "revoked",
                    (false, true) => "expired",
                    (false, false) => "valid",
                };
                println!(
                    "{}  {:<24} {:<4} expires {expiry}  {state}",
                    t.id, t.name, t.role
                );
            }
        }),
        TokensAction::Revoke { id } => match tokens.revoke(&id) {
            Ok(true) => {
                let holder = tokens
                    .list()
                    .ok()
                    .and_then(|rows| rows.into_iter().find(|t| t.id == id).map(|t| t.name));
                let holder = holder.unwrap_or_default();
                audit(
                    &config,
                    "api_token_revoked",
                    &holder,
                    serde_json::json!({ "token": id }),
                );
                println!("revoked: {id}");
                Ok(())
            }
            Ok(false) => {
                eprintln!("error: no token {id}");
                return ExitCode::FAILURE;
            }
            Err(e) => Err(e),
        },
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A token made or revoked is in the trail as the gateway's actions are (a chain of this
/// command's own, signed). Said, not fatal, when the trail cannot take it: the token change
/// stands.
fn audit(config: &Config, event: &str, holder: &str, fields: serde_json::Value) {
    let mut fields = fields.as_object().cloned().unwrap_or_default();
    fields.insert("by".into(), "cli".into());
    let entry = vigie::audit::Entry {
        id: vigie::audit::new_id(),
        at_us: vigie::audit::now_us(),
        level: "warn".into(),
        event: event.into(),
        user: Some(holder.to_string()),
        fields,
        link: None,
    };
    let written = vigie::storage::open::audit(config).and_then(|(store, keys)| {
        let signer = vigie::server::audit_signer(config)?;
        Ok(vigie::audit::write_now(store, keys, signer, vec![entry]))
    });
    if !matches!(written, Ok(true)) {
        eprintln!("warning: the audit trail did not take this change ({event}): record it by hand");
    }
}
