//! An alert's life in the SOC's hands: new → acknowledged → investigating → closed (true
//! positive, false positive or benign), each change made by a named analyst at a time, with an
//! optional note; assignment to an analyst. Pure rules here; the stores keep the state and
//! every change ([`super::store`]).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Acknowledged,
    Investigating,
    Closed,
}

pub const STATUSES: [Status; 4] = [
    Status::New,
    Status::Acknowledged,
    Status::Investigating,
    Status::Closed,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    TruePositive,
    FalsePositive,
    Benign,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    #[error("unknown status `{0}`: use new, acknowledged, investigating or closed")]
    UnknownStatus(String),
    #[error("unknown resolution `{0}`: use true_positive, false_positive or benign")]
    UnknownResolution(String),
    #[error("closing needs a resolution: true_positive, false_positive or benign")]
    ResolutionNeeded,
    #[error("only a closed alert has a resolution")]
    ResolutionWithoutClose,
    #[error("the alert is already {0}")]
    Already(&'static str),
    #[error("an alert does not go back from {from} to {to}; reopen a closed one as investigating, with a note")]
    Backwards {
        from: &'static str,
        to: &'static str,
    },
    #[error("reopening a closed alert needs a note saying why")]
    NoteNeeded,
    #[error("a note is at most {0} characters")]
    NoteTooLong(usize),
    #[error("the alert changed meanwhile: it is now {0} (reload and decide again)")]
    Conflict(String),
    #[error("no alert has this id")]
    NotFound,
    #[error("an assignee is a user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`")]
    BadAssignee,
}

/// A note's longest length (notes are sealed at rest; they are for the SOC, not a report).
pub const NOTE_MAX: usize = 2_000;

impl Status {
    pub fn parse(s: &str) -> Result<Self, TriageError> {
        match s {
            "new" | "open" => Ok(Status::New),
            "acknowledged" => Ok(Status::Acknowledged),
            "investigating" => Ok(Status::Investigating),
            "closed" | "resolved" => Ok(Status::Closed),
            other => Err(TriageError::UnknownStatus(other.chars().take(32).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Investigating => "investigating",
            Status::Closed => "closed",
        }
    }
}

impl Resolution {
    pub fn parse(s: &str) -> Result<Self, TriageError> {
        match s {
            "true_positive" => Ok(Resolution::TruePositive),
            "false_positive" => Ok(Resolution::FalsePositive),
            "benign" => Ok(Resolution::Benign),
            other => Err(TriageError::UnknownResolution(
                other.chars().take(32).collect(),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::TruePositive => "true_positive",
            Resolution::FalsePositive => "false_positive",
            Resolution::Benign => "benign",
        }
    }
}

/// Whether an alert at `from` may move to `to` (with `resolution` and `note`). Forward only;
/// a closed alert may be reopened as investigating, with a note.
pub fn check(
    from: Status,
    to: Status,
    resolution: Option<Resolution>,
    note: Option<&str>,
) -> Result<(), TriageError> {
    if note.is_some_and(|n| n.chars().count() > NOTE_MAX) {
        return Err(TriageError::NoteTooLong(NOTE_MAX));
    }
    match (to, resolution) {
        (Status::Closed, None) => return Err(TriageError::ResolutionNeeded),
        (Status::New | Status::Acknowledged | Status::Investigating, Some(_)) => {
            return Err(TriageError::ResolutionWithoutClose)
        }
        _ => {}
    }
    if from == to {
        return Err(TriageError::Already(from.as_str()));
    }
    if from == Status::Closed {
        return match (to, note.map(str::trim).filter(|n| !n.is_empty())) {
            (Status::Investigating, Some(_)) => Ok(()),
            (Status::Investigating, None) => Err(TriageError::NoteNeeded),
            _ => Err(TriageError::Backwards {
                from: from.as_str(),
                to: to.as_str(),
            }),
        };
    }
    if to < from {
        return Err(TriageError::Backwards {
            from: from.as_str(),
            to: to.as_str(),
        });
    }
    Ok(())
}

/// A status as recorded in the history: `closed:false_positive` for a closed one.
pub fn label(status: &str, resolution: Option<&str>) -> String {
    match resolution {
        Some(r) => format!("{status}:{r}"),
        None => status.to_string(),
    }
}

/// What an analyst does to an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Move on from `expected` (the status the analyst saw: a change made meanwhile by someone
    /// else is a conflict, not overwritten).
    Status {
        expected: Status,
        to: Status,
        resolution: Option<Resolution>,
    },
    /// Give the alert to an analyst, or take it back (`None`).
    Assign(Option<String>),
    /// A note alone.
    Note,
    /// An action taken from the alert (hold released, sessions revoked…), recorded.
    Action(String),
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Status { .. } => "status",
            Change::Assign(_) => "assign",
            Change::Note => "note",
            Change::Action(_) => "action",
        }
    }
}

/// An alert's triage as a store holds it, read in the change's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub status: String,
    pub resolution: Option<String>,
    pub assignee: Option<String>,
}

/// What a change writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Status {
        status: &'static str,
        resolution: Option<&'static str>,
    },
    Assignee(Option<String>),
    /// Only the time of the last change (a note, an action).
    Touch,
}

/// A change decided on the alert as it is: what to write, and what the history records as
/// before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub write: Write,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Decide `change` on `current`; both stores apply the result in one transaction. A status
/// change from a status the alert no longer has is a conflict.
pub fn decide(current: &Current, change: &Change) -> Result<Decided, TriageError> {
    let now = label(&current.status, current.resolution.as_deref());
    Ok(match change {
        Change::Status {
            expected,
            to,
            resolution,
        } => {
            if Status::parse(&current.status).ok() != Some(*expected) {
                return Err(TriageError::Conflict(now));
            }
            let resolution = resolution.map(Resolution::as_str);
            Decided {
                write: Write::Status {
                    status: to.as_str(),
                    resolution,
                },
                before: Some(now),
                after: Some(label(to.as_str(), resolution)),
            }
        }
        Change::Assign(who) => Decided {
            write: Write::Assignee(who.clone()),
            before: current.assignee.clone(),
            after: who.clone(),
        },
        Change::Note => Decided {
            write: Write::Touch,
            before: None,
            after: None,
        },
        Change::Action(what) => Decided {
            write: Write::Touch,
            before: None,
            after: Some(what.clone()),
        },
    })
}

/// One recorded change, as the history lists it. `note` is opened for the reader (sealed at
/// rest); `None` when there was none or the key ring no longer opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub at_us: i64,
    pub analyst: String,
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub note: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Any of these (all when empty).
    pub statuses: Vec<Status>,
    /// Any of these severities (`low`…`critical`; all when empty).
    pub severities: Vec<String>,
    pub rule: Option<String>,
    pub user: Option<String>,
    pub portal: Option<String>,
    pub assignee: Option<String>,
    /// The workstation: the client address an alert names (its canonical text).
    pub source: Option<String>,
    /// Unix microseconds, from (included) and until (excluded).
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    /// Riskiest first (then newest), rather than newest first (then riskiest).
    pub riskiest: bool,
    pub limit: usize,
}

impl Filter {
    /// The same filter on every status (for the counts beside the queue).
    pub fn any_status(&self) -> Filter {
        Filter {
            statuses: Vec::new(),
            ..self.clone()
        }
    }
}

/// The parameters a listing takes (admin API, console, CLI).
pub const FILTER_PARAMS: [&str; 11] = [
    "status", "severity", "rule", "user", "portal", "assignee", "source", "since", "until", "sort",
    "limit",
];

impl Filter {
    /// Read a listing's parameters: every value checked, an unknown parameter refused (a
    /// filter silently ignored would answer with the whole queue). Lists are comma-separated;
    /// times are RFC 3339 or unix seconds. `canonical` keys a user name as the portal does.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        canonical: &dyn Fn(&str) -> String,
    ) -> Result<Filter, String> {
        let mut f = Filter {
            limit: 100,
            ..Filter::default()
        };
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let list = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
            match key {
                "status" => {
                    f.statuses = list()
                        .map(|s| Status::parse(s).map_err(|e| e.to_string()))
                        .collect::<Result<_, _>>()?
                }
                "severity" => {
                    f.severities = list()
                        .map(|s| match s {
                            "low" | "medium" | "high" | "critical" => Ok(s.to_string()),
                            _ => Err(format!(
                                "unknown severity `{}`: use low, medium, high or critical",
                                s.chars().take(32).collect::<String>()
                            )),
                        })
                        .collect::<Result<_, _>>()?
                }
                "rule" => f.rule = Some(value.to_string()),
                "user" => f.user = Some(canonical(value)),
                "portal" => f.portal = Some(value.to_string()),
                "assignee" => f.assignee = Some(value.to_string()),
                // Compared in the text the alerts are written with: an IPv4 address mapped into
                // IPv6 (a dual-stack listener) as the IPv4 one.
                "source" => match value.parse::<std::net::IpAddr>() {
                    Ok(ip) => f.source = Some(ip.to_canonical().to_string()),
                    Err(_) => {
                        return Err(format!(
                            "source: `{}` is not an IP address",
                            value.chars().take(40).collect::<String>()
                        ))
                    }
                },
                "since" | "until" => {
                    let us = time_us(value).ok_or_else(|| {
                        format!(
                            "{key}: `{}` is not RFC 3339 nor unix seconds",
                            value.chars().take(40).collect::<String>()
                        )
                    })?;
                    match key {
                        "since" => f.since_us = Some(us),
                        _ => f.until_us = Some(us),
                    }
                }
                "sort" => {
                    f.riskiest = match value {
                        "newest" => false,
                        "risk" => true,
                        _ => return Err("sort: use newest or risk".into()),
                    }
                }
                "limit" => {
                    f.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or("limit: a number from 1 to 1000")?
                }
                other => {
                    return Err(format!(
                        "unknown filter `{}`: alerts take {}",
                        other.chars().take(32).collect::<String>(),
                        FILTER_PARAMS.join(", ")
                    ))
                }
            }
        }
        Ok(f)
    }
}

/// RFC 3339 or unix seconds, in unix microseconds.
pub fn time_us(t: &str) -> Option<i64> {
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1_000_000);
    }
    t.parse::<jiff::Timestamp>()
        .ok()
        .map(|ts| ts.as_microsecond())
}

/// Build a `WHERE` for `f`: conditions with numbered placeholders (`?N` or `$N`), and the
/// values in order. Shared by both stores so a filter means the same everywhere.
pub fn conditions(
    f: &Filter,
    user_column: &str,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<SqlValue>) {
    let mut conds = Vec::new();
    let mut values = Vec::new();
    let mut push = |conds: &mut Vec<String>, sql: String, v: SqlValue| {
        values.push(v);
        conds.push(sql.replace('#', &placeholder(values.len())));
    };
    if !f.statuses.is_empty() {
        let mut any = Vec::new();
        for s in &f.statuses {
            push(
                &mut any,
                "status = #".into(),
                SqlValue::Text(s.as_str().into()),
            );
        }
        conds.push(format!("({})", any.join(" OR ")));
    }
    if !f.severities.is_empty() {
        let mut any = Vec::new();
        for s in &f.severities {
            push(&mut any, "severity = #".into(), SqlValue::Text(s.clone()));
        }
        conds.push(format!("({})", any.join(" OR ")));
    }
    let exact = [
        ("rule_id", &f.rule),
        (user_column, &f.user),
        ("portal", &f.portal),
        ("assignee", &f.assignee),
        ("source", &f.source),
    ];
    for (column, value) in exact {
        if let Some(v) = value {
            push(
                &mut conds,
                format!("{column} = #"),
                SqlValue::Text(v.clone()),
            );
        }
    }
    if let Some(t) = f.since_us {
        push(&mut conds, "at_us >= #".into(), SqlValue::Int(t));
    }
    if let Some(t) = f.until_us {
        push(&mut conds, "at_us < #".into(), SqlValue::Int(t));
    }
    let sql = match conds.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conds.join(" AND ")),
    };
    (sql, values)
}

/// A value bound to a placeholder of [`conditions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

/// The `ORDER BY` of a listing.
pub fn order(f: &Filter) -> &'static str {
    match f.riskiest {
        true => "ORDER BY risk_score DESC, at_us DESC, id DESC",
        false => "ORDER BY at_us DESC, risk_score DESC, id DESC",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn every_move_between_statuses_is_allowed_or_refused_as_the_rules_say() {
        let r = Some(Resolution::Benign);
        // (from, to, allowed without a note)
        let table = [
            (New, Acknowledged, true),
            (New, Investigating, true),
            (New, Closed, true),
            (Acknowledged, Investigating, true),
            (Acknowledged, Closed, true),
            (Investigating, Closed, true),
            (Acknowledged, New, false),
            (Investigating, New, false),
            (Investigating, Acknowledged, false),
            (Closed, New, false),
            (Closed, Acknowledged, false),
            (Closed, Investigating, false),
        ];
        for (from, to, allowed) in table {
            let resolution = (to == Closed).then_some(r).flatten();
            assert_eq!(
                check(from, to, resolution, None).is_ok(),
                allowed,
                "{from:?} -> {to:?}"
            );
        }
        for s in STATUSES {
            let resolution = (s == Closed).then_some(r).flatten();
            assert_eq!(
                check(s, s, resolution, None),
                Err(TriageError::Already(s.as_str()))
            );
        }
        assert!(check(Closed, Investigating, None, Some("rappel du DPO")).is_ok());
        assert_eq!(
            check(Closed, Investigating, None, Some("  ")),
            Err(TriageError::NoteNeeded)
        );
        assert_eq!(
            check(New, Closed, None, None),
            Err(TriageError::ResolutionNeeded)
        );
        assert_eq!(
            check(New, Acknowledged, r, None),
            Err(TriageError::ResolutionWithoutClose)
        );
        let long = "é".repeat(NOTE_MAX + 1);
        assert_eq!(
            check(New, Acknowledged, None, Some(&long)),
            Err(TriageError::NoteTooLong(NOTE_MAX))
        );
        assert!(check(New, Acknowledged, None, Some(&long[..NOTE_MAX * 2])).is_ok());
    }

    #[test]
    fn a_listing_reads_every_filter_and_refuses_what_it_does_not_know() {
        let lower = |u: &str| u.to_lowercase();
        let f = Filter::from_params(
            [
                ("status", "new, acknowledged"),
                ("severity", "high,critical"),
                ("rule", "VIGIE-EXF-003"),
                ("user", "Dr.Martin"),
                ("portal", "ehr"),
                ("assignee", "ana.soc"),
                ("source", "::ffff:10.1.2.3"),
                ("since", "2026-11-30T08:00:00+01:00"),
                ("until", "1764500000"),
                ("sort", "risk"),
                ("limit", "20"),
            ],
            &lower,
        )
        .unwrap();
        assert_eq!(f.statuses, [New, Acknowledged]);
        assert_eq!(f.severities, ["high", "critical"]);
        assert_eq!(f.user.as_deref(), Some("dr.martin"));
        assert_eq!(
            f.source.as_deref(),
            Some("10.1.2.3"),
            "as the alerts write it"
        );
        assert_eq!(f.since_us, Some(1_796_022_000_000_000));
        assert_eq!(f.until_us, Some(1_764_500_000_000_000));
        assert!(f.riskiest);
        assert_eq!(f.limit, 20);
        assert_eq!(Filter::from_params([], &lower).unwrap().limit, 100);
        for (k, v, says) in [
            ("statut", "new", "unknown filter `statut`"),
            ("status", "opened", "unknown status"),
            ("severity", "urgent", "unknown severity"),
            ("since", "yesterday", "not RFC 3339"),
            ("sort", "oldest", "newest or risk"),
            ("limit", "0", "1 to 1000"),
            ("limit", "5000", "1 to 1000"),
            ("source", "10.1.2.0/24", "not an IP address"),
        ] {
            let e = Filter::from_params([(k, v)], &lower).unwrap_err();
            assert!(e.contains(says), "{k}={v}: {e}");
        }
    }

    #[test]
    fn a_filter_binds_every_value_and_no_text_into_the_sql() {
        let f = Filter {
            statuses: vec![New, Closed],
            user: Some("x' OR '1'='1".into()),
            since_us: Some(5),
            ..Filter::default()
        };
        let (sql, values) = conditions(&f, "user", |i| format!("?{i}"));
        assert_eq!(
            sql,
            "WHERE (status = ?1 OR status = ?2) AND user = ?3 AND at_us >= ?4"
        );
        assert_eq!(values[2], SqlValue::Text("x' OR '1'='1".into()));
        assert_eq!(values.len(), 4);
    }
}
