//! A request's context: what the stages establish about it, from the first hook to the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pingora::{Error, ErrorType, Result};

use super::identify::Identity;
use super::intercept::Interception;
use super::normalise::Request;
use super::route::Portal;
use super::{refusal, respond, screen, watch, Live};

/// Per-request state, filled stage by stage.
pub struct RequestCtx {
    /// The configuration this request runs on from start to end (see [`Live`]).
    pub live: Arc<Live>,
    /// Whose name the gateway's pages carry: the portal's, once the request is routed.
    pub brand: Arc<crate::pages::Brand>,
    pub started: Instant,
    pub request_id: String,
    /// The request and its portal, once the front stages have routed it.
    pub admitted: Option<Admitted>,
    pub identity: Identity,
    pub interception: Interception,
    pub rejected: Option<refusal::Reason>,
    /// A refusal found in a body or response hook, written by `fail_to_proxy`.
    pub refusal: Option<refusal::Refusal>,
    /// The policy's decision (stage 4), for the log.
    pub decision: Option<crate::policy::Decision>,
    /// The session was in break-glass: every such request is audited.
    pub break_glass: bool,
    pub status: u16,
    pub upstream_error: Option<&'static str>,
    pub body_bytes: u64,
    /// The body was read and judged whole before the portal was chosen (`body.rs`).
    pub body_read_first: bool,
    /// The detector's view of the session, once it watches this request.
    pub who: Option<watch::Who>,
    pub watch: watch::Watch,
    /// An answer to a visitor below the password, read before it leaves.
    pub screen: Option<screen::Screen>,
    /// This request's place among its client's requests in flight (behind a trusted proxy).
    pub in_flight: Option<crate::listener::peers::Permit>,
}

/// What the front stages established about a request, set once they have routed it: the
/// request as the portal reads it, and its portal. Later hooks read it whole instead of
/// unpacking each part again.
pub struct Admitted {
    pub request: Request,
    pub portal: Arc<Portal>,
}

impl RequestCtx {
    /// A request's context before any stage ran, on the configuration current when it began.
    pub fn new(live: Arc<Live>) -> Self {
        Self {
            live,
            brand: crate::pages::Brand::neutral(),
            started: Instant::now(),
            request_id: next_request_id(),
            admitted: None,
            identity: Identity::Anonymous,
            interception: Interception::default(),
            rejected: None,
            refusal: None,
            decision: None,
            break_glass: false,
            status: 0,
            upstream_error: None,
            body_bytes: 0,
            body_read_first: false,
            who: None,
            watch: watch::Watch::default(),
            screen: None,
            in_flight: None,
        }
    }

    pub fn request(&self) -> Option<&Request> {
        self.admitted.as_ref().map(|a| &a.request)
    }

    pub fn portal(&self) -> Option<&Arc<Portal>> {
        self.admitted.as_ref().map(|a| &a.portal)
    }

    /// Whether the request came over TLS (the cookie's `Secure` and `__Host-` follow it).
    pub fn tls(&self) -> bool {
        self.request().is_some_and(|r| r.tls)
    }

    /// Who a refusal page is for.
    pub fn visitor(&self) -> respond::Visitor<'_> {
        respond::Visitor {
            request_id: &self.request_id,
            brand: &self.brand,
            signed_in: self
                .identity
                .session()
                .is_some_and(|s| s.is_authenticated()),
        }
    }

    /// Refuse from a body or response hook: the refusal is kept for `fail_to_proxy`, which
    /// writes it as the head's refusals are written (its `Retry-After`, hold reference or
    /// break-glass link included).
    pub fn refuse<T>(&mut self, refusal: refusal::Refusal) -> Result<T> {
        refused(self, &refusal);
        let e = Error::explain(
            ErrorType::HTTPStatus(refusal.status),
            refusal.reason.label(),
        );
        self.refusal = Some(refusal);
        Err(e)
    }
}

/// Note a refusal in the context: the log's label, the status, a denial's rule.
pub(super) fn refused(ctx: &mut RequestCtx, refusal: &refusal::Refusal) {
    ctx.rejected = Some(refusal.reason);
    ctx.status = refusal.status;
    if refusal.reason == refusal::Reason::PolicyDenied {
        let rule = ctx
            .decision
            .as_ref()
            .and_then(|d| d.deny.as_ref())
            .map_or("-", |d| d.by.as_str());
        crate::metrics::METRICS
            .policy_denials
            .with_label_values(&[rule])
            .inc();
    }
}

static REQUEST_COUNTER: once_cell::sync::Lazy<AtomicU64> =
    once_cell::sync::Lazy::new(|| AtomicU64::new(rand::random::<u64>() & 0xffff_ffff_0000_0000));

fn next_request_id() -> String {
    format!("{:016x}", REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed))
}
