//! The gateway's own endpoints, in one table: every path it answers itself instead of the
//! portal (all under `/.vigie/`, plus the assertion keys). `front.rs` routes them; the
//! second-factor pages route their sub-paths in `second_factor/mod.rs`.

/// The gateway's sign-in page, for portals with gateway-owned logins.
pub const LOGIN_PATH: &str = "/.vigie/login";
/// Sign out (a same-origin POST): the gateway's session, then the portal's.
pub const LOGOUT_PATH: &str = "/.vigie/logout";
/// Where a refused sign-in lands, with a way back to the portal's login.
pub const SIGNIN_FAILED_PATH: &str = "/.vigie/signin-failed";
/// The second-factor pages (`/.vigie/factor`, `/.vigie/enroll`, `/.vigie/passkey/…`,
/// `/.vigie/codes`, `/.vigie/account…`, `/.vigie/break-glass`).
pub const FACTOR_PATH: &str = super::second_factor::FACTOR_PATH;
pub const ACCOUNT_PATH: &str = crate::policy::ACCOUNT_PATH;
pub const BREAK_GLASS_PATH: &str = crate::policy::BREAK_GLASS_PATH;
/// The gateway's stylesheet and passkey script.
pub const STYLESHEET_PATH: &str = crate::pages::STYLESHEET_PATH;
pub const SCRIPT_PATH: &str = crate::pages::SCRIPT_PATH;
/// The public keys of identity assertions (gateway-owned logins).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Everything under this prefix is the gateway's; an unknown path there is a 404, never the
/// portal's.
pub const PREFIX: &str = "/.vigie/";

/// Every endpoint, with what it is for (`vigie explain` and the docs list them).
pub const TABLE: &[(&str, &str)] = &[
    (LOGIN_PATH, "sign-in page of gateway-owned logins"),
    (
        LOGOUT_PATH,
        "sign out (POST): the gateway's session, then the portal's",
    ),
    (SIGNIN_FAILED_PATH, "a refused sign-in"),
    (
        crate::pages::LANGUAGE_PATH,
        "the language switch: sets the cookie, back to the page (GET)",
    ),
    (FACTOR_PATH, "second-factor pages and passkey ceremonies"),
    (ACCOUNT_PATH, "the user's factors"),
    (BREAK_GLASS_PATH, "break-glass"),
    (STYLESHEET_PATH, "the pages' stylesheet"),
    (SCRIPT_PATH, "the passkey script"),
    (JWKS_PATH, "public keys of identity assertions"),
];
