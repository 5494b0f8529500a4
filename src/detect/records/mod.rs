//! Counting what actually left: where a profile says an answer carries patient records
//! (`[[records]]`: a JSON array and the id inside each record, FHIR Bundle entries, CSV rows,
//! HTML rows by a pattern), the answer is read as it streams, compressed or not, and every
//! record and distinct patient id is counted, whatever the request asked for. An answer the
//! rule cannot read is counted by its size. The request-side reading ([`super::reading`])
//! stays an early hint (an oversized page is refused before it is served), never the count.

pub mod decode;
pub mod json;
pub mod text;

#[cfg(test)]
mod tests;

use serde::Deserialize;

use crate::http::is_media_type;
use crate::policy::matcher::{Matcher, QueryReading};

/// What a reader reports while an answer streams.
#[derive(Debug, Clone, PartialEq)]
pub enum Hit {
    /// A record begins at this offset of the (decoded) chunk.
    Start(usize),
    /// The record ended; its patient id, when the rule found one.
    End(Option<String>),
}

/// One `[[records]]` rule, validated.
#[derive(Debug, Clone)]
pub struct RecordRule {
    pub matcher: Matcher,
    pub format: Format,
    /// Bytes one record takes in this answer, to count an unreadable answer by its size.
    pub record_bytes: u64,
    /// The rows are a listing (names, a ward), not full records: they count against the
    /// wider listing thresholds, so opening the patient list is not reading 50 records.
    pub listing: bool,
}

#[derive(Debug, Clone)]
pub enum Format {
    Json(json::Shape),
    Csv { id_column: Option<String> },
    Html(regex::bytes::Regex),
}

impl Format {
    /// The media type an answer must have to be read this way.
    fn reads(&self, content_type: Option<&str>) -> bool {
        let t = content_type.unwrap_or("");
        match self {
            Format::Json(_) => {
                let essence = t
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            }
            Format::Csv { .. } => {
                is_media_type(t, "text/csv") || is_media_type(t, "application/csv")
            }
            Format::Html(_) => is_media_type(t, "text/html") || t.is_empty(),
        }
    }
}

/// The first rule that covers a request.
pub fn rule_for<'a>(
    rules: &'a [RecordRule],
    method: &str,
    path: &str,
    params: Option<&str>,
    reading: QueryReading,
) -> Option<&'a RecordRule> {
    rules
        .iter()
        .find(|r| r.matcher.matches(method, path, params, reading))
}

enum Reader {
    Json(json::Scanner),
    Csv(text::Csv),
    Html(text::Pattern),
    /// Not readable as the rule says: only its size counts.
    Size,
}

/// One answer being counted.
pub struct Counter {
    reader: Reader,
    decoder: Option<decode::Decoder>,
    record_bytes: u64,
    /// The rule's rows are a listing.
    pub listing: bool,
    /// The rule reads the whole document as one record: its size bounds what it may hold
    /// (a list served where one record was expected counts as the records its bytes hold).
    whole: bool,
    /// Records begun (each one counts against the allowance at its first byte).
    pub started: u64,
    /// Ids of ended records, as read (kept in memory only, never logged).
    pub ids: Vec<String>,
    /// Records ended without an id the rule could read.
    pub anonymous: u64,
    /// Bytes that could not be read (after a parse error, or an unknown encoding).
    unread: u64,
    decoded: u64,
}

/// Distinct ids kept per answer; past it, further records count as anonymous rows.
const MAX_IDS: usize = 50_000;

impl Counter {
    /// Starts counting an answer with these headers under `rule`.
    pub fn new(rule: &RecordRule, content_type: Option<&str>, encoding: Option<&str>) -> Self {
        let (reader, decoder) = match decode::for_header(encoding) {
            decode::Encoding::Unknown => (Reader::Size, None),
            _ if !rule.format.reads(content_type) => (Reader::Size, None),
            e => {
                let reader = match &rule.format {
                    Format::Json(shape) => Reader::Json(json::Scanner::new(shape.clone())),
                    Format::Csv { id_column } => Reader::Csv(text::Csv::new(id_column.clone())),
                    Format::Html(re) => Reader::Html(text::Pattern::new(re.clone())),
                };
                let decoder = match e {
                    decode::Encoding::Decoded(d) => Some(*d),
                    _ => None,
                };
                (reader, decoder)
            }
        };
        Self {
            reader,
            decoder,
            record_bytes: rule.record_bytes.max(1),
            listing: rule.listing,
            whole: matches!(&rule.format, Format::Json(shape) if shape.array.is_none()),
            started: 0,
            ids: Vec::new(),
            anonymous: 0,
            unread: 0,
            decoded: 0,
        }
    }

    /// An answer of a listing class no rule reads: only its size counts (fail closed).
    pub fn by_size(record_bytes: u64, encoding: Option<&str>) -> Self {
        // Decoded bytes are what the records take: a compressed answer is no smaller.
        let decoder = match decode::for_header(encoding) {
            decode::Encoding::Decoded(d) => Some(*d),
            _ => None,
        };
        Self {
            reader: Reader::Size,
            decoder,
            record_bytes: record_bytes.max(1),
            listing: false,
            whole: false,
            started: 0,
            ids: Vec::new(),
            anonymous: 0,
            unread: 0,
            decoded: 0,
        }
    }

    /// Counts one chunk as sent (`last`: the answer ends with it). Once more than
    /// `allowance` records have begun, returns how much of the chunk may still leave: the
    /// bytes before that record (plain answers), or nothing (compressed ones).
    pub fn feed(&mut self, chunk: &[u8], last: bool, allowance: Option<u64>) -> Option<usize> {
        let mut cut = None;
        match self.decoder.take() {
            None if matches!(self.reader, Reader::Size) => self.unread += chunk.len() as u64,
            None => self.read(chunk, last, allowance, &mut cut),
            Some(mut d) => {
                let mut over = None;
                let mut result = d.feed(chunk, &mut |piece| {
                    self.read(piece, false, allowance, &mut over)
                });
                if last && result.is_ok() {
                    result = d.finish(&mut |piece| self.read(piece, false, allowance, &mut over));
                }
                if last {
                    self.read(&[], true, allowance, &mut over);
                }
                if result.is_err() || self.decoded > decode::MAX_DECODED {
                    // Not what the header says, or too large to read: the rest is only size.
                    self.reader = Reader::Size;
                    self.unread += chunk.len() as u64;
                } else {
                    self.decoder = Some(d);
                }
                cut = over.map(|_| 0);
            }
        }
        // Records counted by size leave as their bytes do: past the allowance, nothing more.
        let by_size = self.whole || matches!(self.reader, Reader::Size);
        if by_size && cut.is_none() && allowance.is_some_and(|a| self.exposure() > a) {
            cut = Some(0);
        }
        cut
    }

    fn read(&mut self, piece: &[u8], last: bool, allowance: Option<u64>, cut: &mut Option<usize>) {
        self.decoded += piece.len() as u64;
        let (mut started, mut ids, mut anonymous) = (0u64, Vec::new(), 0u64);
        let base = self.started;
        let mut hit = |h: Hit| match h {
            Hit::Start(at) => {
                started += 1;
                if cut.is_none() && allowance.is_some_and(|a| base + started > a) {
                    *cut = Some(at);
                }
            }
            Hit::End(Some(id)) => ids.push(id),
            Hit::End(None) => anonymous += 1,
        };
        let failed = match &mut self.reader {
            Reader::Json(s) => {
                s.feed(piece, &mut hit);
                if last {
                    s.finish(&mut hit);
                }
                s.error
            }
            Reader::Csv(c) => {
                c.feed(piece, last, &mut hit);
                false
            }
            Reader::Html(p) => {
                p.feed(piece, last, &mut hit);
                false
            }
            Reader::Size => {
                // Decoded bytes of an answer only its size can count.
                self.unread += piece.len() as u64;
                false
            }
        };
        self.started += started;
        self.anonymous += anonymous;
        for id in ids {
            if self.ids.len() < MAX_IDS {
                self.ids.push(id);
            } else {
                self.anonymous += 1;
            }
        }
        if failed {
            self.reader = Reader::Size;
            self.unread += piece.len() as u64;
        }
    }

    /// Records the answer exposed without a readable id: anonymous records, a record begun
    /// but never ended (the answer was cut), and what the unread bytes would hold.
    /// Records this answer has shown so far, for the allowance: begun, and unread by size.
    pub fn exposure(&self) -> u64 {
        let read = match self.whole {
            true => self.started.max(self.decoded / self.record_bytes),
            false => self.started,
        };
        read + self.unread.div_ceil(self.record_bytes)
    }

    /// A listing's rows without an id are names only: just its unread bytes count.
    pub fn rows(&self) -> u64 {
        let open = self
            .started
            .saturating_sub(self.ids.len() as u64 + self.anonymous);
        let unread = self.unread.div_ceil(self.record_bytes);
        match (self.listing, self.whole) {
            (true, _) => unread,
            // One document read as one record: what its size holds beyond the ids it named.
            (false, true) => self.exposure().saturating_sub(self.ids.len() as u64),
            (false, false) => self.anonymous + open + unread,
        }
    }
}

// ---- the profile's TOML section ----

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RecordsSection {
    pub path: Option<String>,
    pub path_regex: Option<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub query: std::collections::BTreeMap<String, String>,
    /// JSON pointer to the array of records (`""`: the document is the array).
    pub json: Option<String>,
    /// JSON pointers, inside one record, to its patient id (the first found wins).
    #[serde(default)]
    pub json_id: Vec<String>,
    /// A FHIR Bundle: records are `/entry`, ids the entry's patient reference or id.
    #[serde(default)]
    pub fhir: bool,
    /// CSV rows are records; `csv_id` names the id column.
    #[serde(default)]
    pub csv: bool,
    pub csv_id: Option<String>,
    /// A regex matching one record of an HTML page; its first group is the patient id.
    pub html: Option<String>,
    pub record_bytes: Option<i64>,
    #[serde(default)]
    pub listing: bool,
}

type Report<'a> = &'a mut dyn FnMut(&str, String, &str);

fn pointer(key: &str, p: &str, err: Report<'_>) -> Vec<String> {
    if !p.is_empty() && !p.starts_with('/') {
        err(
            key,
            format!("`{p}` is not a JSON pointer"),
            "start it with `/`, e.g. \"/patients\" (\"\" for the document itself)",
        );
    }
    p.split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Validates one `[[records]]` table (its matcher built by the caller, as for classes).
pub fn build(
    i: usize,
    matcher: Matcher,
    s: &RecordsSection,
    err: Report<'_>,
) -> Option<RecordRule> {
    let key = format!("records[{i}]");
    let ids: Vec<Vec<String>> = s
        .json_id
        .iter()
        .map(|p| pointer(&format!("{key}.json_id"), p, err))
        .collect();
    let kinds = [
        s.json.is_some() || !s.json_id.is_empty(),
        s.fhir,
        s.csv,
        s.html.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        err(
            &key,
            "say how the answer carries its records".into(),
            "give exactly one of `json` (with `json_id`), `fhir = true`, `csv = true` or `html`",
        );
        return None;
    }
    let format = if s.fhir {
        let reference = |k: &str| {
            vec![
                "resource".to_string(),
                k.to_string(),
                "reference".to_string(),
            ]
        };
        Format::Json(json::Shape {
            array: Some(vec!["entry".into()]),
            ids: if ids.is_empty() {
                vec![
                    reference("subject"),
                    reference("patient"),
                    reference("beneficiary"),
                ]
            } else {
                ids
            },
            fhir: true,
        })
    } else if s.csv {
        Format::Csv {
            id_column: s.csv_id.clone(),
        }
    } else if let Some(re) = &s.html {
        match regex::bytes::Regex::new(re) {
            Ok(re) => Format::Html(re),
            Err(e) => {
                err(
                    &format!("{key}.html"),
                    format!("invalid regex: {e}"),
                    "e.g. html = 'data-patient-id=\"(\\d+)\"'",
                );
                return None;
            }
        }
    } else {
        Format::Json(json::Shape {
            array: s
                .json
                .as_deref()
                .map(|p| pointer(&format!("{key}.json"), p, err)),
            ids,
            fhir: false,
        })
    };
    let record_bytes = match s.record_bytes {
        None => 1024,
        Some(n) if (16..=1_000_000).contains(&n) => n as u64,
        Some(n) => {
            err(
                &format!("{key}.record_bytes"),
                format!("{n} is out of range"),
                "use 16 to 1000000 bytes",
            );
            1024
        }
    };
    Some(RecordRule {
        matcher,
        format,
        record_bytes,
        listing: s.listing,
    })
}
