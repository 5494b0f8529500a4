//! The request body stage: a body is judged (a login read, rules and the detector on its
//! parameters, the size and time limits) before any of it reaches the portal.
//!
//! Pingora sends the portal a request's head before its body. A judged body was held back
//! chunk by chunk, but its head had gone: a refused login or form still made the portal run
//! its script, with an empty body. A body pingora can replay is therefore read whole first,
//! judged, and only then proxied, so a refused one never reaches the portal at all (threat
//! model 36); a larger one is still held back until judged ([`super::intercept::hold`]).

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;

use super::refusal::{Reason, Refusal};
use super::{intercept, Gateway, RequestCtx};

/// The largest body pingora replays to the portal once read (its retry buffer, 64 KiB):
/// every browser form and every login fits. A larger one can only stream, held back chunk
/// by chunk until judged ([`super::intercept::hold`]).
pub const READ_FIRST_MAX: u64 = 64 * 1024;

/// Whether `req`'s body is read before the portal is chosen: a declared length from 1 byte
/// to [`READ_FIRST_MAX`], and no `Expect: 100-continue` (that client waits for the portal's
/// go-ahead before sending the body). A chunked body has no length to check in advance.
pub fn reads_first(req: &RequestHeader) -> bool {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if req.headers.get("transfer-encoding").is_some() || header("expect").is_some() {
        return false;
    }
    header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| (1..=READ_FIRST_MAX).contains(&n))
}

impl Gateway {
    /// Read and judge the whole body now, when pingora can replay it ([`reads_first`]): a
    /// refusal then goes back before the portal is even chosen.
    pub(super) async fn read_body_first(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if !reads_first(session.req_header()) {
            return Ok(());
        }
        // What is read from here is kept, and sent to the portal once the request goes on.
        session.enable_retry_buffering();
        loop {
            // The client's failure (a timeout, a cut): as pingora marks it in its own loop.
            let mut chunk = session
                .read_request_body()
                .await
                .map_err(|e| e.into_down())?;
            let end = chunk.is_none() || session.is_body_done();
            self.judge_body(session, &mut chunk, end, ctx).await?;
            if end {
                break;
            }
        }
        ctx.body_read_first = true;
        Ok(())
    }

    /// One chunk of the body: the login it may be, the rules and the detector at its end, the
    /// limits on each; a judged body is held until its verdict.
    pub(super) async fn judge_body(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        let profile = ctx.portal().and_then(|p| p.config.profile.clone());
        intercept::on_body(ctx, body, end_of_stream, profile.as_deref())?;
        if end_of_stream && ctx.interception.body_login {
            if let Some(user) = ctx.interception.login_user.clone() {
                if ctx.identity.session().is_some_and(|s| s.is_authenticated()) {
                    return self.login_over_session(ctx, session.req_header()).await;
                }
                self.login_budget(ctx, &user).await?;
                if ctx.interception.prelogin_login {
                    self.refuse_locked(ctx, &user).await?;
                }
            }
        }
        if end_of_stream {
            let method = session.req_header().method.as_str().to_string();
            self.authorise_body(ctx, &method).await?;
            self.watch_body(ctx, &method)?;
        }
        if ctx.body_bytes > ctx.live.config.limits.max_body_bytes {
            return ctx.refuse(Refusal::framing(413, Reason::BodyTooLarge));
        }
        // Judged above (a refusal returned early): only now does a held body go on.
        if let Err(refusal) = intercept::hold(ctx, body, end_of_stream) {
            return ctx.refuse(refusal);
        }
        // A slow POST is cut by its total time, not only by the gap between two reads.
        if ctx.started.elapsed() > ctx.live.config.limits.client_body_timeout {
            return ctx.refuse(Refusal::framing(408, Reason::BodyTimeout));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHeader {
        let mut h = RequestHeader::build("POST", b"/index.php", None).unwrap();
        for (k, v) in headers {
            h.insert_header(k.to_string(), v.to_string()).unwrap();
        }
        h
    }

    #[test]
    fn a_declared_body_pingora_can_replay_is_read_first() {
        assert!(reads_first(&head(&[("content-length", "1")])));
        assert!(reads_first(&head(&[("content-length", "65536")])));
        assert!(!reads_first(&head(&[("content-length", "65537")])));
        assert!(!reads_first(&head(&[("content-length", "0")])));
        assert!(!reads_first(&head(&[])));
        assert!(!reads_first(&head(&[("content-length", "x")])));
        assert!(!reads_first(&head(&[
            ("content-length", "10"),
            ("expect", "100-continue")
        ])));
        assert!(!reads_first(&head(&[
            ("content-length", "10"),
            ("transfer-encoding", "chunked")
        ])));
        assert_eq!(READ_FIRST_MAX, 64 * 1024);
    }
}
