//! Every refusal the gateway answers in the portal's place, from any stage, on the head or
//! in the body phase: one type with its status, its reason (a fixed set: the access log's
//! `rejected` label and the metric's) and what its page offers the person refused (when to
//! retry, the hold's reference, break-glass, signing in again). Written in one place,
//! [`Refusal::send`], so a refusal reads the same whichever hook found it.

use pingora::proxy::Session;

use super::normalise::framing::FramingError;
use super::respond;
use crate::identity::prelogin::Unreadable;

macro_rules! reasons {
    ($($variant:ident => $label:literal,)*) => {
        /// Why the gateway refused a request. A fixed set, so the metric's labels are bounded
        /// and an analyst can look each one up.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($variant,)*
            /// The request's framing could be read two ways (smuggling).
            Framing(FramingError),
            /// A login form the gateway cannot read exactly as the portal would.
            Login(Unreadable),
        }

        impl Reason {
            /// The label in the access log and `vigie_rejected_requests_total`.
            pub fn label(self) -> &'static str {
                match self {
                    $(Reason::$variant => $label,)*
                    Reason::Framing(e) => e.label(),
                    Reason::Login(why) => why.reason(),
                }
            }

            /// Every plain reason (the framing and login ones are their own enums').
            pub const PLAIN: &'static [Reason] = &[$(Reason::$variant,)*];
        }
    };
}

reasons! {
    AccountLocked => "account_locked",
    AmbiguousEncoding => "ambiguous_encoding",
    AmbiguousSeparator => "ambiguous_separator",
    AuthorizationHeader => "authorization_header",
    BadHost => "bad_host",
    BadTarget => "bad_target",
    BodyIo => "body_io",
    BodyOnGet => "body_on_get",
    BodyTimeout => "body_timeout",
    BodyTooLarge => "body_too_large",
    BodyUnreadable => "body_unreadable",
    BudgetStoreUnavailable => "budget_store_unavailable",
    ClientCap => "client_cap",
    ContentTypeUnreadable => "content_type_unreadable",
    ControlByte => "control_byte",
    CredentialInCookie => "credential_in_cookie",
    CredentialInQuery => "credential_in_query",
    CrossSiteRequest => "cross_site_request",
    DuplicateHost => "duplicate_host",
    ExpectationUnsupported => "expectation_unsupported",
    FactorStoreUnavailable => "factor_store_unavailable",
    FormTooLarge => "form_too_large",
    FragmentInTarget => "fragment_in_target",
    HeldForReview => "held_for_review",
    HostMismatch => "host_mismatch",
    InvalidUtf8 => "invalid_utf8",
    LoginBudget => "login_budget",
    LoginElsewhere => "login_elsewhere",
    LoginFormAmbiguous => "login_form_ambiguous",
    LoginIo => "login_io",
    LoginLengthRequired => "login_length_required",
    LoginOverSession => "login_over_session",
    LoginQueryAmbiguous => "login_query_ambiguous",
    LoginRequired => "login_required",
    LogoutNeedsPost => "logout_needs_post",
    MethodNotAllowed => "method_not_allowed",
    MissingHost => "missing_host",
    OverBudget => "over_budget",
    PageIo => "page_io",
    PolicyDenied => "policy_denied",
    PortalAnswerUnusable => "portal_answer_unusable",
    PreloginBody => "prelogin_body",
    PreloginTaken => "prelogin_taken",
    PreloginUnreadable => "prelogin_unreadable",
    PreloginWall => "prelogin_wall",
    RoleUnavailable => "role_unavailable",
    SecondFactorRequired => "second_factor_required",
    SessionCap => "session_cap",
    SessionStoreUnavailable => "session_store_unavailable",
    SignedInBeforeLogin => "signed_in_before_login",
    TargetNotUtf8 => "target_not_utf8",
    Throttled => "throttled",
    TooManyParameters => "too_many_parameters",
    UnknownGatewayPath => "unknown_gateway_path",
    UnknownHost => "unknown_host",
    UnknownLanguage => "unknown_language",
    UserStoreUnavailable => "user_store_unavailable",
    UserinfoInTarget => "userinfo_in_target",
    WriteFailed => "write_failed",
    WrongContentType => "wrong_content_type",
}

/// What a refusal's page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The gateway's error page for the status.
    Nothing,
    /// A policy denial; `liftable`: a link to break-glass, returning to `here`.
    BreakGlass { liftable: bool, here: String },
    /// Held by the detector: the hold's reference (`X-Vigie-Held`) and until when.
    Hold(crate::detect::Hold),
    /// Slowed down: `Retry-After` this many seconds.
    RetryAfter(u64),
    /// A refused login: back to the sign-in page, the session cookie cleared.
    SignInAgain { clear_cookie: String },
}

/// A request the gateway answers itself instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: Reason,
    /// Close the connection after answering (framing doubts, unread bodies).
    pub close: bool,
    pub offer: Offer,
}

impl Refusal {
    pub fn new(status: u16, reason: Reason) -> Self {
        Self {
            status,
            reason,
            close: false,
            offer: Offer::Nothing,
        }
    }

    /// A refusal whose connection must not be reused: what follows may not be a request.
    pub fn framing(status: u16, reason: Reason) -> Self {
        Self {
            close: true,
            ..Self::new(status, reason)
        }
    }

    /// 403 by policy, with break-glass when it may lift it.
    pub fn denied(liftable: bool, here: String) -> Self {
        Self {
            offer: Offer::BreakGlass { liftable, here },
            ..Self::new(403, Reason::PolicyDenied)
        }
    }

    /// 403 while the detector holds the identity for review.
    pub fn held(hold: crate::detect::Hold) -> Self {
        Self {
            offer: Offer::Hold(hold),
            ..Self::new(403, Reason::HeldForReview)
        }
    }

    /// 429: over a budget, or throttled by the detector; retry after `seconds`.
    pub fn slowed(reason: Reason, seconds: u64) -> Self {
        Self {
            offer: Offer::RetryAfter(seconds.max(1)),
            ..Self::new(429, reason)
        }
    }

    /// A login refused before the portal judged it (a lock): it looks like any refused login.
    pub fn sign_in_again(reason: Reason, clear_cookie: String) -> Self {
        Self {
            offer: Offer::SignInAgain { clear_cookie },
            ..Self::new(303, reason)
        }
    }

    /// Write the refusal's answer.
    pub async fn send(
        &self,
        session: &mut Session,
        to: &respond::Visitor<'_>,
    ) -> pingora::Result<()> {
        match &self.offer {
            Offer::Nothing => respond::send_error(session, self.status, self.close, to).await,
            Offer::BreakGlass { liftable, here } => {
                respond::send_denied(session, *liftable, here, to).await
            }
            Offer::Hold(hold) => respond::send_held(session, hold, to).await,
            Offer::RetryAfter(seconds) => {
                let throttled = self.reason == Reason::Throttled;
                respond::send_slowed(session, self.status, *seconds, throttled, to).await
            }
            Offer::SignInAgain { clear_cookie } => {
                let failed = super::login_answer::SIGNIN_FAILED_PATH;
                let cookies = [clear_cookie.clone()];
                let id = Some(to.request_id);
                respond::send_redirect_with(session, failed, &cookies, id).await
            }
        }
    }
}

/// A new session that was not stored, as the refusal the client gets (the store checked the
/// lock, the replaced session and the cap with the insertion).
pub fn started(begun: crate::identity::Begun) -> Result<String, Refusal> {
    use crate::identity::Begun;
    match begun {
        Begun::Started(cookie) => Ok(cookie),
        Begun::Locked => Err(Refusal::new(423, Reason::AccountLocked)),
        Begun::Ended => Err(Refusal::new(401, Reason::LoginRequired)),
        Begun::AtCap => Err(Refusal::new(409, Reason::SessionCap)),
    }
}

#[cfg(test)]
mod tests;
