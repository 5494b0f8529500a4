//! Stage 4b, watch: the exfiltration detector ([`crate::detect`]) on the request path.
//! Before forwarding, a held, throttled or step-up-pending identity is stopped and the
//! request is read the portal's way (patient, page, asset) and scored; the answer's head
//! says whether it is an export, whose CSV rows are counted as they stream and cut once the
//! identity's allowance is spent; when the exchange ends, refusals, exports and rows count.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use pingora::proxy::Session;
use pingora::Result;

use super::normalise::Request;
use super::refusal::{Reason, Refusal};
use super::route::Portal;
use super::{Gateway, RequestCtx};
use crate::detect::reading::RowCounter;
use crate::detect::records::{self, Counter};
use crate::detect::{Action, Detector, Event, Seen, Subject};
use crate::identity::session::SessionRecord;

/// The last line of an export the detector cut (no personal data; the held page explains).
pub const CUT_NOTICE: &[u8] = b"# Vigie: export stopped here, the session is held for review\n";

/// What the detector learnt of this exchange, filled stage by stage.
#[derive(Default)]
pub struct Watch {
    /// The request was scored (only signed-in sessions of profiled portals are).
    pub scored: bool,
    pub export: bool,
    rows: Option<RowCounter>,
    /// The answer carries patient records (a `[[records]]` rule covers the request).
    records: Option<Counter>,
    /// The portal's status for this answer.
    pub status: u16,
    /// Records this answer reserved against the identity's allowance as it streamed.
    pub streamed: u64,
    /// The answer was counted (when it ended, or when the exchange did).
    pub finished: bool,
    /// The export went past the allowance and was cut.
    pub cut: bool,
    /// Bytes of the answer sent to the client.
    pub bytes: u64,
    /// The path with identifier-like segments masked, as alerts show it (computed once).
    pub path: String,
    /// The patient the request asked for: its pseudonym and the portal's id (for the DPO's
    /// re-identification of an alert; kept in memory only, see `detect::activity`).
    pub patient: Option<(u64, String)>,
    /// The answer's first patients with their ids, as [`Watch::patients`] read them (the
    /// timeline reuses their pseudonyms).
    answer_ids: Vec<(u64, String)>,
}

/// The detector's view of a signed-in session.
pub struct Who {
    user_agent: String,
    /// A privileged pack applies, or the user is in `second_factor.privileged_groups`.
    privileged: bool,
}

impl Who {
    /// `privileged`: see [`crate::config::Config::is_privileged`].
    pub fn new(record: &SessionRecord, user_agent: &str, privileged: bool) -> Self {
        Self {
            privileged: record.privileged || privileged,
            user_agent: user_agent.chars().take(512).collect(),
        }
    }

    pub fn subject<'a>(
        &'a self,
        portal: &'a str,
        record: &'a SessionRecord,
        ip: IpAddr,
        now: u64,
    ) -> Subject<'a> {
        Subject {
            portal,
            user: record.user.as_deref().unwrap_or(""),
            groups: &record.groups,
            privileged: self.privileged,
            session: &record.id,
            ip,
            user_agent: &self.user_agent,
            break_glass: record.break_glass_active(now),
            // Only a proof of a factor the user already had meets a detector step-up (not
            // an enrollment); sessions from before this field need one proof.
            factor_at_us: record.proof_at_us.unwrap_or(0),
        }
    }
}

fn network(ip: IpAddr) -> u64 {
    // The /24 (IPv4) or /48 (IPv6) a workstation sits in: "a network never seen" is coarser
    // than the address, so DHCP renewals inside a ward are not news.
    let (v4, v6);
    let bytes: &[u8] = match ip {
        IpAddr::V4(a) => {
            v4 = a.octets();
            &v4[..3]
        }
        IpAddr::V6(a) => {
            v6 = a.octets();
            &v6[..6]
        }
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

/// A stylesheet, script, image or font, or anything the profile classes as a file.
fn is_asset(path: &str, class: &str) -> bool {
    const STATIC: &[&str] = &[
        ".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".woff", ".woff2",
    ];
    let lower = path.to_ascii_lowercase();
    class == "file" || STATIC.iter().any(|e| lower.ends_with(e))
}

/// Read and score one request; `body`: its body, once read.
#[allow(clippy::too_many_arguments)]
pub fn observe(
    detector: &Detector,
    portal: &Portal,
    request: &Request,
    method: &str,
    subject: &Subject,
    body: Option<&crate::http::BodyReader>,
    now_us: i64,
    seen: &Seen,
) -> (Action, Option<(u64, String)>) {
    let Some(profile) = portal.config.profile.as_deref() else {
        return (Action::Allow, None);
    };
    let path = portal.config.policy_path(&request.target.path);
    let query = request.target.query.as_deref();
    // What the portal's script sees, query and body, read the portal's way (`crate::http`).
    let (merged, json) = super::params::portal_params(profile, query, body);
    let params = Some(merged.as_str());
    let class = portal.config.class_of(method, path, params);
    let reading = &profile.reading;
    let r = reading.read_request(
        method,
        path,
        params,
        json.as_ref(),
        class,
        profile.query_reading,
    );
    let raw = r.patient.as_deref().map(|id| (detector.pseudonym(id), id));
    let patient = raw.map(|(h, id)| (h, id.parse::<i64>().ok()));
    let shown = raw.map(|(h, id)| (h, id.to_string()));
    // Rows a listing asks for count now only where no `[[records]]` rule counts its answer.
    let counted_later = records::rule_for(
        &reading.records,
        method,
        path,
        params,
        profile.query_reading,
    )
    .is_some();
    let records = reading.paging.records.iter().any(|c| c == class) && !counted_later;
    let event = Event {
        at_us: now_us,
        patient,
        current: r.current,
        page: r.page,
        record_rows: r.page.filter(|_| records).map_or(0, |p| p.size as u64),
        export: false,
        asset: is_asset(path, class),
        denied: false,
        bytes: 0,
        network: network(subject.ip),
    };
    let asked = r.page.filter(|p| p.explicit).map_or(0, |p| p.size);
    let action = detector.observe(subject, &event, asked, reading.paging.normal_max, seen);
    (action, shown)
}

impl Watch {
    /// The answer's head: does it carry records (a `[[records]]` rule), or is it a CSV
    /// export? Then its records are counted as they stream, within the identity's allowance.
    /// True when the length must go (the answer may be cut). The allowance is taken chunk by
    /// chunk as the answer streams ([`Watch::on_body`]), not here.
    pub fn on_response(
        &mut self,
        portal: &Portal,
        request: &Request,
        method: &str,
        head: &pingora::http::ResponseHeader,
    ) -> bool {
        let Some(profile) = portal.config.profile.as_deref() else {
            return false;
        };
        let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok());
        let (ctype, disposition) = (header("content-type"), header("content-disposition"));
        let success = head.status.is_success();
        self.export = success && profile.reading.is_export(ctype, disposition);
        let path = portal.config.policy_path(&request.target.path);
        let query = request.target.query.as_deref();
        let rule = records::rule_for(
            &profile.reading.records,
            method,
            path,
            query,
            profile.query_reading,
        );
        self.status = head.status.as_u16();
        let listing_class = || {
            let class = portal.config.class_of(method, path, query);
            profile.reading.paging.records.iter().any(|c| c == class)
        };
        if let (Some(rule), true, false) = (rule, success, method == "HEAD") {
            self.records = Some(Counter::new(rule, ctype, header("content-encoding")));
        } else if self.export && profile.reading.counts_rows(ctype) {
            self.rows = Some(RowCounter::default());
        } else if success && method != "HEAD" && listing_class() {
            // A class of full records that no `[[records]]` rule reads: counted by size.
            let smallest = profile.reading.records.iter().map(|r| r.record_bytes).min();
            let encoding = header("content-encoding");
            self.records = Some(Counter::by_size(smallest.unwrap_or(1024), encoding));
        } else {
            return false;
        }
        // The length would promise records that may never come: stream it chunked instead.
        true
    }

    /// One chunk of the answer: count its records within what the identity may still see
    /// (read under its lock, shared with its other answers streaming now); past it, keep
    /// only whole allowed records (a CSV ends with one line that says why) and drop the rest.
    pub fn on_body(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        detector: Option<(&Detector, &Subject, i64)>,
    ) {
        if self.cut {
            *body = None;
            return;
        }
        let chunk = body.as_deref().unwrap_or(&[]);
        let listing = self.records.as_ref().is_some_and(|c| c.listing);
        let export = self.export;
        let counting = self.records.is_some() || self.rows.is_some();
        let (records, rows) = (&mut self.records, &mut self.rows);
        let mut read = |allowance: Option<u64>| -> (Option<(usize, bool)>, u64) {
            match (records.as_mut(), rows.as_mut()) {
                (Some(counter), _) => {
                    let before = counter.exposure();
                    let keep = counter.feed(chunk, end_of_stream, allowance);
                    let after = counter.exposure();
                    (keep.map(|n| (n, export)), after.saturating_sub(before))
                }
                (None, Some(rows)) if !chunk.is_empty() => {
                    let before = rows.rows();
                    let keep = rows.feed(chunk, allowance);
                    (keep.map(|n| (n, true)), rows.rows().saturating_sub(before))
                }
                _ => (None, 0),
            }
        };
        let keep = match detector {
            Some((d, subject, now_us)) if counting => {
                let mut seen = 0;
                let keep = d.stream(subject, now_us, listing, |a| {
                    let (keep, n) = read(a);
                    seen = n;
                    (keep, n)
                });
                self.streamed += seen;
                keep
            }
            _ => read(None).0,
        };
        if let Some((keep, notice)) = keep {
            let mut out = chunk[..keep.min(chunk.len())].to_vec();
            if notice {
                out.extend_from_slice(CUT_NOTICE);
            }
            *body = Some(Bytes::from(out));
            self.cut = true;
        }
        self.bytes += body.as_ref().map_or(0, |b| b.len() as u64);
    }

    /// Records sent without an id the detector could read (CSV export rows, unreadable
    /// answers by their size, records cut short).
    pub fn rows(&self) -> u64 {
        self.rows.as_ref().map_or(0, |r| r.rows()) + self.records.as_ref().map_or(0, Counter::rows)
    }

    /// What the detector counts of this answer, once it ended (or the exchange did).
    pub fn answer(&mut self, detector: &Detector, denied: bool) -> crate::detect::Answer {
        self.finished = true;
        let (patients, listed) = self.patients(detector);
        crate::detect::Answer {
            denied,
            export: self.export,
            rows: self.rows(),
            patients,
            listed,
            bytes: self.bytes,
            streamed: self.streamed,
            listing: self.records.as_ref().is_some_and(|c| c.listing),
        }
    }

    /// The patients the request and its answer showed: (pseudonym, the portal's id), each
    /// once, at most [`crate::detect::activity::IDS`] (an export's thousands are counted
    /// elsewhere). The pseudonyms [`Watch::answer`] computed are reused.
    pub fn shown(&mut self, detector: &Detector) -> Vec<(u64, String)> {
        if !self.finished {
            self.patients(detector);
        }
        let mut seen = std::collections::HashSet::new();
        self.patient
            .iter()
            .chain(self.answer_ids.iter())
            .filter(|(h, _)| seen.insert(*h))
            .take(crate::detect::activity::IDS)
            .cloned()
            .collect()
    }

    /// The patients the answer showed, as pseudonyms (ids read the way request ids are):
    /// (full records, listing rows).
    pub fn patients(&mut self, detector: &Detector) -> (Vec<u64>, Vec<u64>) {
        let Some(counter) = &self.records else {
            return Default::default();
        };
        let keep = crate::detect::activity::IDS;
        let mut first = Vec::new();
        let mut out: Vec<u64> = Vec::with_capacity(counter.ids.len());
        for id in counter
            .ids
            .iter()
            .filter_map(|id| crate::detect::reading::clean_id(id))
        {
            let h = detector.pseudonym(&id);
            out.push(h);
            if first.len() < keep {
                first.push((h, id));
            }
        }
        let listing = counter.listing;
        self.answer_ids = first;
        out.sort_unstable();
        out.dedup();
        match listing {
            true => (Vec::new(), out),
            false => (out, Vec::new()),
        }
    }
}

// ---- the stage on the gateway's hooks ----

fn count_action(action: &crate::detect::Action) {
    let label = match action {
        crate::detect::Action::Allow => return,
        crate::detect::Action::Held(_) => "held",
        crate::detect::Action::Throttle { .. } => "throttled",
        crate::detect::Action::StepUp => "step_up",
    };
    crate::metrics::METRICS
        .detector_actions
        .with_label_values(&[label])
        .inc();
}

/// The detector's subject for a watched request.
pub(super) fn subject_of(ctx: &RequestCtx, now: u64) -> Option<crate::detect::Subject<'_>> {
    let who = ctx.who.as_ref()?;
    let record = ctx.identity.session()?;
    let super::Admitted { request, portal } = ctx.admitted.as_ref()?;
    let ip = request.client.ip;
    Some(who.subject(&portal.config.name, record, ip, now))
}

pub(super) fn detect_seen<'a>(
    method: &'a str,
    masked: &'a str,
    status: u16,
    request_id: &str,
) -> crate::detect::Seen<'a> {
    crate::detect::Seen {
        method,
        path: masked,
        status,
        request_id: u64::from_str_radix(request_id, 16).unwrap_or(0),
    }
}

impl Gateway {
    /// Stage 4b before forwarding: held, throttled or step-up identities stop here; a
    /// bodiless request is scored now, others once their body is read.
    pub(super) fn watch_request(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        portal: &Arc<Portal>,
        request: &Request,
    ) -> Option<std::result::Result<super::Front, Refusal>> {
        let detector = self.detector.as_ref()?;
        portal.config.profile.as_ref()?;
        let record = ctx
            .identity
            .session()
            .filter(|s| s.is_authenticated() && s.user.is_some())?
            .clone();
        let ua = super::normalise::headers::user_agent(session.req_header());
        let privileged = ctx.live.config.is_privileged(&record.groups);
        let who = Who::new(&record, ua, privileged);
        let (now, now_us) = (self.sessions.now(), self.sessions.now_us());
        let subject = who.subject(&portal.config.name, &record, request.client.ip, now);
        let method = session.req_header().method.as_str();
        ctx.watch.path = super::log::masked_path(&request.target.path);
        let seen = detect_seen(method, &ctx.watch.path, 0, &ctx.request_id);
        let mut action = detector.gate(&subject, now_us, &seen);
        let bodiless = matches!(method, "GET" | "HEAD");
        if action == crate::detect::Action::Allow && bodiless {
            let patient;
            (action, patient) = observe(
                detector, portal, request, method, &subject, None, now_us, &seen,
            );
            ctx.watch.patient = patient;
            ctx.watch.scored = true;
        }
        ctx.who = Some(who);
        count_action(&action);
        match action {
            crate::detect::Action::Allow => None,
            crate::detect::Action::Held(hold) => Some(Err(Refusal::held(hold))),
            crate::detect::Action::Throttle { retry_after } => {
                Some(Err(Refusal::slowed(Reason::Throttled, retry_after)))
            }
            crate::detect::Action::StepUp if bodiless => Some(Ok(super::Front::Redirect(
                super::second_factor::fresh_factor_redirect(&request.target.to_uri()),
            ))),
            crate::detect::Action::StepUp => {
                Some(Err(Refusal::new(401, Reason::SecondFactorRequired)))
            }
        }
    }

    /// Stage 4b once a body is read: score the request with its form or JSON parameters.
    pub(super) fn watch_body(&self, ctx: &mut RequestCtx, method: &str) -> Result<()> {
        let (Some(detector), false) = (&self.detector, ctx.watch.scored) else {
            return Ok(());
        };
        let Some(subject) = subject_of(ctx, self.sessions.now()) else {
            return Ok(());
        };
        let Some(super::Admitted { request, portal }) = ctx.admitted.as_ref() else {
            return Ok(());
        };
        let body = ctx.interception.reader.as_ref();
        let seen = detect_seen(method, &ctx.watch.path, 0, &ctx.request_id);
        let now_us = self.sessions.now_us();
        let (action, patient) = observe(
            detector, portal, request, method, &subject, body, now_us, &seen,
        );
        ctx.watch.patient = patient;
        ctx.watch.scored = true;
        count_action(&action);
        match action {
            crate::detect::Action::Allow => Ok(()),
            crate::detect::Action::Held(hold) => ctx.refuse(Refusal::held(hold)),
            crate::detect::Action::Throttle { retry_after } => {
                ctx.refuse(Refusal::slowed(Reason::Throttled, retry_after))
            }
            crate::detect::Action::StepUp => {
                ctx.refuse(Refusal::new(401, Reason::SecondFactorRequired))
            }
        }
    }
}

#[cfg(test)]
mod tests;
