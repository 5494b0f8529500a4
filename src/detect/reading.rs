//! Reading requests the way the portal does, for detection: which patient a request touches,
//! which page of a listing it asks for, and whether a response is an export. Declared per
//! portal product in its profile (`[[patient]]`, `[paging]`, `[export]`); pure functions, so
//! each profile's extraction is unit-tested without sockets.

use serde::Deserialize;

use crate::http::is_media_type;
use crate::policy::matcher::{param, Matcher, QueryReading};

/// A profile's reading rules, validated.
#[derive(Debug, Clone)]
pub struct Reading {
    pub patients: Vec<PatientSource>,
    /// Where answers carry patient records (`[[records]]`): what is counted as exposed.
    pub records: Vec<super::records::RecordRule>,
    pub paging: Paging,
    pub export: ExportMarkers,
}

/// Where one kind of request carries its patient identifier; the first matching source wins.
#[derive(Debug, Clone)]
pub struct PatientSource {
    pub matcher: Matcher,
    pub from: IdFrom,
    /// Without an explicit id, the request shows the session's current patient (Mediboard
    /// keeps it in the PHP session).
    pub current: bool,
}

#[derive(Debug, Clone)]
pub enum IdFrom {
    /// A query or form parameter, read as the portal reads repeats.
    Param(String),
    /// The first capture group of a regex over the path.
    Path(regex::Regex),
    /// A JSON pointer into a JSON request body (`/subject/reference`).
    Json(String),
    /// Only the session's current patient.
    Current,
}

/// Paging parameters; `records`: classes whose listing rows are full patient records.
#[derive(Debug, Clone)]
pub struct Paging {
    pub offset: Vec<String>,
    pub page: Vec<String>,
    pub size: Vec<String>,
    pub default_size: u32,
    /// Larger pages than this are a signal (the portal's own UI never asks for them).
    pub normal_max: u32,
    pub records: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ExportMarkers {
    /// Media types (lower case, no parameters) that mark a response as an export.
    pub content_types: Vec<String>,
    /// `Content-Disposition: attachment` marks an export.
    pub attachment: bool,
    /// Count the rows of CSV exports as they stream (each row one patient record).
    pub count_rows: bool,
}

impl Default for Reading {
    fn default() -> Self {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Self {
            patients: Vec::new(),
            records: Vec::new(),
            paging: Paging {
                offset: names(&["offset", "start", "_offset"]),
                page: names(&["page"]),
                size: names(&["limit", "count", "_count", "page_size", "per_page"]),
                default_size: 20,
                normal_max: 100,
                records: names(&["list"]),
            },
            export: ExportMarkers {
                content_types: names(&[
                    "text/csv",
                    "application/zip",
                    "application/pdf",
                    "application/vnd.ms-excel",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ]),
                attachment: true,
                count_rows: true,
            },
        }
    }
}

/// What the request side says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestReading {
    /// The identifier as the portal reads it (kept in memory only, never logged).
    pub patient: Option<String>,
    /// The request shows the session's current patient.
    pub current: bool,
    pub page: Option<Page>,
}

/// One page of a listing, in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub size: u32,
    /// The size was asked for explicitly.
    pub explicit: bool,
}

impl Reading {
    /// `params`: the query, with a urlencoded form body appended (the portal reads both);
    /// `json`: a JSON request body, when there was one.
    pub fn read_request(
        &self,
        method: &str,
        path: &str,
        params: Option<&str>,
        json: Option<&serde_json::Value>,
        class: &str,
        reading: QueryReading,
    ) -> RequestReading {
        let mut out = RequestReading::default();
        if let Some(src) = self
            .patients
            .iter()
            .find(|s| s.matcher.matches(method, path, params, reading))
        {
            let raw = match &src.from {
                IdFrom::Param(name) => param(params, name, reading),
                IdFrom::Path(re) => re
                    .captures(path)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_str().to_string()),
                IdFrom::Json(pointer) => json.and_then(|j| j.pointer(pointer)).and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                }),
                IdFrom::Current => None,
            };
            out.patient = raw.as_deref().and_then(clean_id);
            out.current = out.patient.is_none() && src.current;
        }
        if self.paging.records.iter().any(|c| c == class) || class == "search" {
            out.page = self.page(params, reading);
        }
        out
    }

    fn page(&self, params: Option<&str>, reading: QueryReading) -> Option<Page> {
        let first = |names: &[String]| {
            names
                .iter()
                .find_map(|n| param(params, n, reading))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        // The largest size asked under any of the names: a decoy `limit=1` next to the
        // `per_page=10000` the portal reads must not hide the big page. A size that is not a
        // plain count (DataTables' `-1` for "all", PHP's `1e5`) may be read as everything.
        let size = self
            .paging
            .size
            .iter()
            .filter_map(|n| param(params, n, reading))
            .filter(|v| !v.is_empty())
            // Plain digits as sent, or everything: a portal that fails to parse `0 ` falls
            // back to its default page, one that reads `20 ` as 20 gets no more than asked.
            .map(|v| match v.bytes().all(|b| b.is_ascii_digit()) {
                true => v.parse::<u64>().unwrap_or(u64::MAX),
                false => u64::MAX,
            })
            .max();
        let explicit = size.is_some();
        let size = size
            .unwrap_or(self.paging.default_size as u64)
            .min(u32::MAX as u64) as u32;
        let offset = match (first(&self.paging.offset), first(&self.paging.page)) {
            (Some(o), _) => o,
            (None, Some(p)) => p.saturating_mul(size as u64),
            (None, None) => 0,
        };
        Some(Page {
            offset,
            size,
            explicit,
        })
    }

    /// Whether a response with these headers is an export.
    pub fn is_export(&self, content_type: Option<&str>, disposition: Option<&str>) -> bool {
        let attached = self.export.attachment
            && disposition.is_some_and(|d| {
                d.trim_start()
                    .get(..10)
                    .is_some_and(|p| p.eq_ignore_ascii_case("attachment"))
            });
        attached
            || content_type.is_some_and(|t| {
                self.export
                    .content_types
                    .iter()
                    .any(|m| is_media_type(t, m))
            })
    }

    pub fn counts_rows(&self, content_type: Option<&str>) -> bool {
        self.export.count_rows
            && content_type.is_some_and(|t| {
                is_media_type(t, "text/csv") || is_media_type(t, "application/csv")
            })
    }
}

/// An identifier as the portal would look it up: FHIR references (`Patient/123`, an absolute
/// `https://…/Patient/123`, optionally with `/_history/2`) keep their id; any other value is
/// kept whole, however long: a PHP portal over MySQL reads `17/0` or `17` padded with zeros as
/// patient 17, so cutting or dropping such values would hide the patient read.
pub fn clean_id(raw: &str) -> Option<String> {
    let value = raw.trim();
    let id = reference_id(value).unwrap_or(value).trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The id of a FHIR reference: `Type/id` alone, or at the end of an absolute URL.
fn reference_id(value: &str) -> Option<&str> {
    let (absolute, rest) = match value.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            (true, rest)
        }
        _ => (false, value),
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    if segs.len() >= 4 && segs[segs.len() - 2] == "_history" {
        segs.truncate(segs.len() - 2);
    }
    let n = segs.len();
    if n < 2 || (!absolute && n != 2) {
        return None;
    }
    let (kind, id) = (segs[n - 2], segs[n - 1]);
    let is_type = kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind.bytes().all(|b| b.is_ascii_alphanumeric());
    is_type.then_some(id)
}

/// Counts CSV rows as an export streams, and says where to cut once an allowance is spent.
#[derive(Debug, Default)]
pub struct RowCounter {
    /// Line ends seen (the first line is the header).
    pub lines: u64,
}

impl RowCounter {
    /// Rows so far (header excluded).
    pub fn rows(&self) -> u64 {
        self.lines.saturating_sub(1)
    }

    /// Counts the rows in `chunk`. Once the header and `allowance` rows have passed, returns
    /// the length of the chunk's prefix to keep: nothing of a further row leaves.
    pub fn feed(&mut self, chunk: &[u8], allowance: Option<u64>) -> Option<usize> {
        let full = |lines: u64| allowance.is_some_and(|a| lines > a);
        if full(self.lines) {
            return (!chunk.is_empty()).then_some(0);
        }
        for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            self.lines += 1;
            if full(self.lines) && i + 1 < chunk.len() {
                return Some(i + 1);
            }
        }
        None
    }
}

// ---- the profile's TOML sections ----

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PatientSection {
    pub path: Option<String>,
    pub path_regex: Option<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    pub param: Option<String>,
    pub capture: Option<String>,
    pub json: Option<String>,
    #[serde(default)]
    pub current: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PagingSection {
    pub offset: Option<Vec<String>>,
    pub page: Option<Vec<String>>,
    pub size: Option<Vec<String>>,
    pub default_size: Option<i64>,
    pub normal_max: Option<i64>,
    pub records: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSection {
    pub content_types: Option<Vec<String>>,
    pub attachment: Option<bool>,
    pub count_rows: Option<bool>,
}

type Report<'a> = &'a mut dyn FnMut(&str, String, &str);

/// Validates the sections into a [`Reading`], reporting each problem by key; `patients`
/// come with their matchers, built by the config validator as endpoint classes are.
pub fn build(
    patients: Vec<(Matcher, &PatientSection)>,
    paging: &PagingSection,
    export: &ExportSection,
    err: Report<'_>,
) -> Reading {
    let mut r = Reading::default();
    for (i, (matcher, p)) in patients.into_iter().enumerate() {
        let key = format!("patient[{i}]");
        let from = match (&p.param, &p.capture, &p.json) {
            (Some(name), None, None) if !name.is_empty() => IdFrom::Param(name.clone()),
            (None, Some(re), None) => match regex::Regex::new(re) {
                Ok(re) if re.captures_len() >= 2 => IdFrom::Path(re),
                Ok(_) => {
                    err(
                        &format!("{key}.capture"),
                        "the pattern has no capture group".into(),
                        "put the identifier in parentheses, e.g. '^/patients/(\\d+)$'",
                    );
                    IdFrom::Current
                }
                Err(e) => {
                    err(
                        &format!("{key}.capture"),
                        format!("invalid regex: {e}"),
                        "see https://docs.rs/regex for the syntax",
                    );
                    IdFrom::Current
                }
            },
            (None, None, Some(ptr)) if ptr.starts_with('/') => IdFrom::Json(ptr.clone()),
            (None, None, Some(ptr)) => {
                err(
                    &format!("{key}.json"),
                    format!("`{ptr}` is not a JSON pointer"),
                    "start it with `/`, e.g. \"/subject/reference\"",
                );
                IdFrom::Current
            }
            (None, None, None) if p.current => IdFrom::Current,
            _ => {
                err(
                    &key,
                    "say where the identifier is".into(),
                    "give exactly one of `param`, `capture` or `json` (or only `current = true`)",
                );
                IdFrom::Current
            }
        };
        r.patients.push(PatientSource {
            matcher,
            from,
            current: p.current,
        });
    }
    let lower = |v: &Vec<String>| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
    if let Some(v) = &paging.offset {
        r.paging.offset = v.clone();
    }
    if let Some(v) = &paging.page {
        r.paging.page = v.clone();
    }
    if let Some(v) = &paging.size {
        r.paging.size = v.clone();
    }
    if let Some(v) = &paging.records {
        r.paging.records = v.clone();
    }
    for (name, value, slot) in [
        (
            "paging.default_size",
            paging.default_size,
            &mut r.paging.default_size,
        ),
        (
            "paging.normal_max",
            paging.normal_max,
            &mut r.paging.normal_max,
        ),
    ] {
        match value {
            None => {}
            Some(v) if (1..=100_000).contains(&v) => *slot = v as u32,
            Some(v) => err(name, format!("{v} is out of range"), "use 1 to 100000 rows"),
        }
    }
    if let Some(v) = &export.content_types {
        r.export.content_types = lower(v);
    }
    if let Some(v) = export.attachment {
        r.export.attachment = v;
    }
    if let Some(v) = export.count_rows {
        r.export.count_rows = v;
    }
    r
}

#[cfg(test)]
mod tests;
