//! Records in text answers, read as they stream: HTML rows found by a pattern whose first
//! capture group is the patient id, and CSV rows with an optional id column. A row split
//! across two chunks is read once, whole; memory is bounded by the longest row kept.

use regex::bytes::Regex;

use super::Hit;

/// A match this close to the end of what has arrived may still grow: it waits for more.
const LOOKAHEAD: usize = 512;
/// Bytes kept between chunks at most (a row longer than this is still counted, by its start).
const CARRY: usize = 8 * 1024;

#[derive(Debug)]
pub struct Pattern {
    re: Regex,
    carry: Vec<u8>,
    /// A match still growing at the end of the last chunk was counted (its start) already:
    /// its bytes have left, so it counts against the allowance before its id is known.
    early: bool,
}

impl Pattern {
    pub fn new(re: Regex) -> Self {
        Self {
            re,
            carry: Vec::new(),
            early: false,
        }
    }

    /// Reads `chunk` (`last`: nothing follows); a record starts at each match.
    pub fn feed(&mut self, chunk: &[u8], last: bool, hit: &mut dyn FnMut(Hit)) {
        let kept = self.carry.len();
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let settled = if last {
            buf.len()
        } else {
            buf.len().saturating_sub(LOOKAHEAD)
        };
        let mut at = 0;
        while let Some(c) = self.re.captures_at(&buf, at) {
            let m = c.get(0).expect("group 0");
            if m.end() > settled && !last {
                if !self.early {
                    self.early = true;
                    hit(Hit::Start(m.start().saturating_sub(kept)));
                }
                break;
            }
            if !std::mem::take(&mut self.early) {
                hit(Hit::Start(m.start().saturating_sub(kept)));
            }
            let id = c
                .get(1)
                .map(|g| String::from_utf8_lossy(g.as_bytes()).into_owned());
            hit(Hit::End(id));
            at = if m.end() > m.start() {
                m.end()
            } else {
                m.end() + 1
            };
            if at > buf.len() {
                break;
            }
        }
        if !last {
            let from = at.max(buf.len().saturating_sub(CARRY));
            self.carry = buf[from..].to_vec();
        }
    }
}

#[derive(Debug)]
pub struct Csv {
    /// The id column's name; its index once the header is read.
    column: Option<String>,
    index: Option<usize>,
    separator: u8,
    header: bool,
    line: Vec<u8>,
    /// The current line began in this chunk at this offset (reported once).
    started: bool,
}

impl Csv {
    pub fn new(column: Option<String>) -> Self {
        Self {
            column,
            index: None,
            separator: b',',
            header: true,
            line: Vec::new(),
            started: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8], last: bool, hit: &mut dyn FnMut(Hit)) {
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                self.end_line(hit);
                continue;
            }
            if !self.header && !self.started && b != b'\r' {
                self.started = true;
                hit(Hit::Start(i));
            }
            if self.line.len() < CARRY {
                self.line.push(b);
            }
        }
        if last && (self.started || !self.line.is_empty()) {
            self.end_line(hit);
        }
    }

    fn end_line(&mut self, hit: &mut dyn FnMut(Hit)) {
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if self.header {
            self.header = false;
            self.separator = if line.contains(&b';') { b';' } else { b',' };
            self.index = self.column.as_ref().and_then(|name| {
                line.split(|b| *b == self.separator)
                    .position(|f| unquote(f).eq_ignore_ascii_case(name.as_bytes()))
            });
            return;
        }
        if !self.started {
            return;
        }
        self.started = false;
        let id = self
            .index
            .and_then(|n| line.split(|b| *b == self.separator).nth(n))
            .map(|f| String::from_utf8_lossy(unquote(f)).into_owned());
        hit(Hit::End(id));
    }
}

fn unquote(field: &[u8]) -> &[u8] {
    let f = field.trim_ascii();
    f.strip_prefix(b"\"")
        .and_then(|f| f.strip_suffix(b"\""))
        .unwrap_or(f)
}
