//! Who may do what in the console: three roles, each action allowed to named roles only
//! (anything not listed is refused). Pure, and tested as one table.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Triage alerts and act on identities.
    Soc,
    /// Re-identify patients behind an alert, review break-glass uses.
    Dpo,
    /// Users, invitations, unlocks, sessions.
    It,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ViewAlerts,
    Triage,
    ReleaseHold,
    RevokeSessions,
    LockAccount,
    /// Ask a user's open sessions for a new proof of a factor.
    AskStepUp,
    UnlockAccount,
    ViewHolds,
    ViewSessions,
    ReviewBreakGlass,
    Reidentify,
    Invite,
    /// Reload the configuration (admin API).
    Operate,
}

pub const ACTIONS: [Action; 13] = [
    Action::ViewAlerts,
    Action::Triage,
    Action::ReleaseHold,
    Action::RevokeSessions,
    Action::LockAccount,
    Action::AskStepUp,
    Action::UnlockAccount,
    Action::ViewHolds,
    Action::ViewSessions,
    Action::ReviewBreakGlass,
    Action::Reidentify,
    Action::Invite,
    Action::Operate,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Soc => "soc",
            Role::Dpo => "dpo",
            Role::It => "it",
        }
    }

    /// The roles one of them may act in.
    fn allowed(self, a: Action) -> bool {
        use Action::*;
        match self {
            Role::Soc => matches!(
                a,
                ViewAlerts
                    | Triage
                    | ReleaseHold
                    | RevokeSessions
                    | LockAccount
                    | AskStepUp
                    | ViewHolds
                    | ViewSessions
            ),
            // The DPO reads alerts to decide on a re-identification, and changes nothing else.
            Role::Dpo => matches!(a, ViewAlerts | Reidentify | ReviewBreakGlass),
            Role::It => matches!(
                a,
                RevokeSessions | LockAccount | UnlockAccount | ViewSessions | Invite | Operate
            ),
        }
    }
}

/// Whether someone holding `roles` may take `action`.
pub fn may(roles: &[Role], action: Action) -> bool {
    roles.iter().any(|r| r.allowed(action))
}

/// The console roles a local user's groups give.
pub fn of_groups(groups: &[String], soc: &[String], dpo: &[String], it: &[String]) -> Vec<Role> {
    let has = |names: &[String]| groups.iter().any(|g| names.contains(g));
    let mut roles = Vec::new();
    for (role, names) in [(Role::Soc, soc), (Role::Dpo, dpo), (Role::It, it)] {
        if has(names) {
            roles.push(role);
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    #[test]
    fn every_role_against_every_action() {
        // (action, soc, dpo, it)
        let table = [
            (ViewAlerts, true, true, false),
            (Triage, true, false, false),
            (ReleaseHold, true, false, false),
            (RevokeSessions, true, false, true),
            (LockAccount, true, false, true),
            (AskStepUp, true, false, false),
            (UnlockAccount, false, false, true),
            (ViewHolds, true, false, false),
            (ViewSessions, true, false, true),
            (ReviewBreakGlass, false, true, false),
            (Reidentify, false, true, false),
            (Invite, false, false, true),
            (Operate, false, false, true),
        ];
        assert_eq!(table.len(), ACTIONS.len(), "every action is in the table");
        for (action, soc, dpo, it) in table {
            assert_eq!(may(&[Role::Soc], action), soc, "soc {action:?}");
            assert_eq!(may(&[Role::Dpo], action), dpo, "dpo {action:?}");
            assert_eq!(may(&[Role::It], action), it, "it {action:?}");
            assert!(!may(&[], action), "no role, {action:?}");
            assert_eq!(may(&[Role::Soc, Role::Dpo], action), soc || dpo);
        }
    }

    #[test]
    fn roles_come_from_groups_named_in_the_configuration() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (soc, dpo, it) = (names(&["soc"]), names(&["dpo", "privacy"]), names(&["it"]));
        let roles = |g: &[&str]| of_groups(&names(g), &soc, &dpo, &it);
        assert_eq!(roles(&["clinicians", "soc"]), [Role::Soc]);
        assert_eq!(roles(&["privacy", "it"]), [Role::Dpo, Role::It]);
        assert!(roles(&["clinicians", "SOC"]).is_empty(), "exact names only");
    }
}
