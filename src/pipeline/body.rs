//! The request body stage: a body is judged (a login read, rules and the detector on its
//! parameters, the size and time limits) before any of it reaches the portal.
//!
//! Pingora sends the portal a request's head before its body. A judged body was held back
//! chunk by chunk, but its head had gone: a refused login or form still made the portal run
//! its script, with an empty body. A body pingora can replay is therefore read whole first,
//! judged, and only then proxied, so a refused one never reaches the portal at all (threat
//! model 36); a larger one is still held back until judged ([`super::intercept::hold`]).

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;

use super::refusal::{Reason, Refusal};
use super::{intercept, Gateway, RequestCtx};

/// The largest body pingora replays to the portal once read (its retry buffer, 64 KiB):
/// every browser form and every login fits. A larger one can only stream, held back chunk
/// by chunk until judged ([`super::intercept::hold`]).
pub const READ_FIRST_MAX: u64 = 64 * 1024;

/// What the body stage does before the portal is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// No body: judged now, the portal hears of nothing refused.
    NoBody,
    /// Read whole and judged now; `go_ahead`: the client waits for `100 Continue` first,
    /// which the gateway then gives itself.
    ReadFirst { go_ahead: bool },
    /// More than pingora replays, or chunked: held back chunk by chunk until judged, after the
    /// head has gone. (An `Upgrade` changes nothing: the gateway forwards no upgrade.)
    Stream,
}

/// The plan for `req`; `empty`: it carries no body (as pingora framed it). An expectation
/// other than one `100-continue` is refused (417): nothing else may decide whether the body
/// is read first.
pub fn plan(req: &RequestHeader, empty: bool) -> Result<Plan, Refusal> {
    let mut expects = req.headers.get_all("expect").iter();
    let go_ahead = match (expects.next(), expects.next()) {
        // An HTTP/1.0 client's expectation is ignored (RFC 9110, 10.1.1); not forwarded either.
        _ if req.version == http::Version::HTTP_10 => false,
        (None, _) => false,
        (Some(v), None)
            if v.as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue") =>
        {
            true
        }
        _ => return Err(Refusal::framing(417, Reason::ExpectationUnsupported)),
    };
    if empty {
        return Ok(Plan::NoBody);
    }
    let declared = req
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    Ok(match declared {
        Some(n) if n <= READ_FIRST_MAX && !req.headers.contains_key("transfer-encoding") => {
            Plan::ReadFirst { go_ahead }
        }
        _ => Plan::Stream,
    })
}

impl Gateway {
    /// Judge the body now, before the portal is chosen, when it has none or pingora can replay
    /// it ([`plan`]): a refusal then goes back before the portal hears of the request.
    pub(super) async fn read_body_first(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let empty = session.is_body_empty();
        let go_ahead = match plan(session.req_header(), empty) {
            Err(refusal) => return ctx.refuse(refusal),
            Ok(Plan::Stream) => return Ok(()),
            Ok(Plan::NoBody) => {
                self.judge_body(session, &mut None, true, ctx).await?;
                ctx.body_read_first = true;
                return Ok(());
            }
            Ok(Plan::ReadFirst { go_ahead }) => go_ahead,
        };
        if go_ahead {
            let resp = ResponseHeader::build(100, None)?;
            session
                .downstream_session
                .write_response_header(Box::new(resp))
                .await
                .map_err(|e| e.into_down())?;
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
        // An upload past `HOLD_MAX` goes on before its end, and a refusal then would not
        // unsend it: what goes is judged first as the whole body it may become.
        if intercept::goes_early(&ctx.interception, body.as_ref(), end_of_stream) {
            self.judge_so_far(
                ctx,
                session.req_header().method.as_str(),
                profile.as_deref(),
            )
            .await?;
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

    /// The body so far, read as if it ended here: refused if it shows the portal a password
    /// or what the reader cannot read; its parameters meet the rules again when they changed
    /// since last judged (a part that begins after the first 4 MiB).
    async fn judge_so_far(
        &self,
        ctx: &mut RequestCtx,
        method: &str,
        profile: Option<&crate::config::PortalProfile>,
    ) -> Result<()> {
        let (Some(profile), Some(reader)) = (profile, ctx.interception.reader.as_ref()) else {
            return Ok(());
        };
        let post = match intercept::cut_here(profile, reader) {
            Ok(post) => post,
            Err(refusal) => return ctx.refuse(refusal),
        };
        if ctx.interception.judged_so_far.as_ref() == Some(&post) {
            return Ok(());
        }
        ctx.interception.judged_so_far = Some(post.clone());
        self.authorise_post(ctx, method, post).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHeader {
        let mut h = RequestHeader::build("POST", b"/index.php", None).unwrap();
        for (k, v) in headers {
            h.append_header(k.to_string(), v.to_string()).unwrap();
        }
        h
    }

    fn plan_of(headers: &[(&str, &str)]) -> Result<Plan, u16> {
        let empty = !headers
            .iter()
            .any(|(k, v)| (*k == "content-length" && *v != "0") || *k == "transfer-encoding");
        plan(&head(headers), empty).map_err(|r| r.status)
    }

    #[test]
    fn a_body_pingora_can_replay_is_read_first_and_nothing_else() {
        let first = Ok(Plan::ReadFirst { go_ahead: false });
        assert_eq!(plan_of(&[("content-length", "1")]), first);
        assert_eq!(plan_of(&[("content-length", "65536")]), first);
        assert_eq!(plan_of(&[("content-length", "65537")]), Ok(Plan::Stream));
        assert_eq!(plan_of(&[("content-length", "0")]), Ok(Plan::NoBody));
        assert_eq!(plan_of(&[]), Ok(Plan::NoBody));
        let chunked = [("content-length", "10"), ("transfer-encoding", "chunked")];
        assert_eq!(plan_of(&chunked), Ok(Plan::Stream));
        assert_eq!(
            plan_of(&[("transfer-encoding", "chunked")]),
            Ok(Plan::Stream)
        );
        // The gateway forwards no upgrade: asking for one changes nothing.
        let upgrade = [("upgrade", "websocket"), ("content-length", "10")];
        assert_eq!(plan_of(&upgrade), first);
        assert_eq!(plan_of(&[("upgrade", "websocket")]), Ok(Plan::NoBody));
        assert_eq!(READ_FIRST_MAX, 64 * 1024);
    }

    /// `100-continue` is answered by the gateway and the body read first; any other
    /// expectation, or two, is refused rather than let choose the path.
    #[test]
    fn only_one_expectation_is_met_and_the_gateway_meets_it() {
        for v in ["100-continue", " 100-Continue "] {
            let h = [("content-length", "10"), ("expect", v)];
            assert_eq!(plan_of(&h), Ok(Plan::ReadFirst { go_ahead: true }), "{v}");
        }
        let large = [("content-length", "70000"), ("expect", "100-continue")];
        assert_eq!(plan_of(&large), Ok(Plan::Stream));
        // HTTP/1.0: any expectation ignored, none met.
        let mut old = head(&[("content-length", "10"), ("expect", "x")]);
        old.set_version(http::Version::HTTP_10);
        let read = plan(&old, false).map_err(|r| r.status);
        assert_eq!(read, Ok(Plan::ReadFirst { go_ahead: false }));
        for bad in [
            vec![("content-length", "10"), ("expect", "x")],
            vec![("content-length", "10"), ("expect", "")],
            vec![("content-length", "0"), ("expect", "100-continue, x")],
            vec![
                ("content-length", "10"),
                ("expect", "100-continue"),
                ("expect", "100-continue"),
            ],
        ] {
            assert_eq!(plan_of(&bad), Err(417), "{bad:?}");
        }
    }
}
