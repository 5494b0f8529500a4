//! A `multipart/form-data` body as PHP's rfc1867 handler reads it, streamed: lines are cut
//! at LF (a CR before it dropped) or, without one, at the handler's buffer size; a part
//! starts after a line equal to `--boundary`. A part without `Content-Disposition` is
//! skipped up to the next such line, uncounted; otherwise the first one (folded lines
//! appended) gives `name` and `filename` in PHP's quoting, and the value ends at the next
//! `\n--boundary`, one CR before it dropped. Parts with a filename go to `$_FILES`, not
//! `$_POST`; a part with neither name nor filename ends the parse, and so does the part past
//! `max_multipart_body_parts`; values past `max_input_vars` are dropped.

use super::{top_name, RequestSpec, Vars, Wanted, MAX_KEPT};

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Boundary,
    Headers,
    Value,
    Done,
}

#[derive(Debug, Clone)]
pub(super) struct Multipart {
    boundary: Vec<u8>,
    /// `\n--boundary`: where a value ends.
    next: Vec<u8>,
    /// PHP's buffer: a line without LF this long is a line of its own.
    bufsize: usize,
    state: State,
    line: Vec<u8>,
    /// The first `Content-Disposition` of the part, and whether the header being read is it.
    disposition: Option<Vec<u8>>,
    in_disposition: bool,
    /// The current part's name, when its value is kept (a wanted name).
    keep: Option<Vec<u8>>,
    value: Vec<u8>,
    /// Unresolved bytes of a value that may begin `next`.
    tail: Vec<u8>,
    parts: usize,
    vars_seen: usize,
    pub unreadable: bool,
}

impl Multipart {
    pub fn new(boundary: &[u8]) -> Self {
        let mut line = b"--".to_vec();
        line.extend_from_slice(boundary);
        let mut next = b"\n".to_vec();
        next.extend_from_slice(&line);
        Self {
            // rfc1867.c: `boundary_len + 6`, at least FILLUNIT (5 KiB).
            bufsize: (boundary.len() + 6).max(5 * 1024),
            boundary: line,
            next,
            state: State::Boundary,
            line: Vec::new(),
            disposition: None,
            in_disposition: false,
            keep: None,
            value: Vec::new(),
            tail: Vec::new(),
            parts: 0,
            vars_seen: 0,
            unreadable: false,
        }
    }

    pub fn feed(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted, chunk: &[u8]) {
        let mut rest = chunk;
        while !rest.is_empty() {
            rest = match self.state {
                State::Done => return,
                State::Value => self.value_bytes(spec, vars, wanted, rest),
                State::Boundary | State::Headers => {
                    let room = self.bufsize - self.line.len();
                    let scan = &rest[..rest.len().min(room)];
                    match scan.iter().position(|b| *b == b'\n') {
                        Some(i) => {
                            self.line.extend_from_slice(&scan[..i]);
                            if self.line.last() == Some(&b'\r') {
                                self.line.pop();
                            }
                            self.end_line(spec, wanted);
                            &rest[i + 1..]
                        }
                        None => {
                            self.line.extend_from_slice(scan);
                            if self.line.len() == self.bufsize {
                                self.end_line(spec, wanted);
                            }
                            &rest[scan.len()..]
                        }
                    }
                }
            };
        }
    }

    /// Bytes held between chunks.
    pub fn held(&self) -> usize {
        let d = self.disposition.as_ref().map_or(0, Vec::capacity);
        self.line.capacity() + self.value.capacity() + self.tail.capacity() + d
    }

    /// The body ended: a value without its closing boundary still counts (less what could
    /// have begun one); headers without their blank line end the headers, and the line still
    /// unterminated in PHP's buffer is the part's value.
    pub fn finish(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted) {
        if self.state == State::Headers {
            let unterminated = std::mem::take(&mut self.line);
            self.start_part(spec, wanted);
            if self.state == State::Value {
                self.value_bytes(spec, vars, wanted, &unterminated);
            }
        }
        if self.state == State::Value {
            let partial = !self.tail.is_empty();
            self.end_value(spec, vars, wanted, partial);
        }
        self.state = State::Done;
    }

    fn end_line(&mut self, spec: &RequestSpec, wanted: &Wanted) {
        let mut line = std::mem::take(&mut self.line);
        // PHP reads lines as C strings.
        if let Some(nul) = line.iter().position(|b| *b == 0) {
            line.truncate(nul);
        }
        match self.state {
            State::Boundary if line == self.boundary => {
                self.state = State::Headers;
                self.disposition = None;
                self.in_disposition = false;
            }
            State::Headers if line.is_empty() => self.start_part(spec, wanted),
            State::Headers => self.header_line(&line),
            _ => {}
        }
    }

    fn header_line(&mut self, line: &[u8]) {
        let colon = (!is_space(line[0]))
            .then(|| line.iter().position(|b| *b == b':'))
            .flatten();
        let append = |d: &mut Vec<u8>, bytes: &[u8], unreadable: &mut bool| {
            if d.len() + bytes.len() > MAX_KEPT {
                *unreadable = true;
            } else {
                d.extend_from_slice(bytes);
            }
        };
        match colon {
            Some(i) => {
                let first = self.disposition.is_none()
                    && line[..i].eq_ignore_ascii_case(b"content-disposition");
                self.in_disposition = first;
                if first {
                    let skip = line[i + 1..]
                        .iter()
                        .position(|b| !is_space(*b))
                        .unwrap_or(line.len() - i - 1);
                    let mut d = Vec::new();
                    append(&mut d, &line[i + 1 + skip..], &mut self.unreadable);
                    self.disposition = Some(d);
                }
            }
            None if self.in_disposition => {
                if let Some(d) = self.disposition.as_mut() {
                    append(d, line, &mut self.unreadable);
                }
            }
            None => {}
        }
    }

    fn start_part(&mut self, spec: &RequestSpec, wanted: &Wanted) {
        let Some(cd) = self.disposition.as_deref() else {
            // No `Content-Disposition`: PHP skips the part line by line, uncounted.
            self.state = State::Boundary;
            return;
        };
        self.parts += 1;
        if self.parts > spec.max_multipart_body_parts {
            self.state = State::Done;
            return;
        }
        let (name, filename) = disposition(cd);
        self.value.clear();
        self.tail.clear();
        self.keep = None;
        match (name, filename) {
            (Some(name), None) => {
                self.vars_seen += 1;
                let register = self.vars_seen <= spec.max_input_vars;
                if register && top_name(&name).is_some_and(|n| wanted.wants(&n)) {
                    self.keep = Some(name);
                }
            }
            (None, None) => {
                // "File Upload Mime headers garbled": PHP stops reading the body.
                self.state = State::Done;
                return;
            }
            _ => {}
        }
        self.state = State::Value;
    }

    fn value_bytes<'a>(
        &mut self,
        spec: &RequestSpec,
        vars: &mut Vars,
        wanted: &Wanted,
        chunk: &'a [u8],
    ) -> &'a [u8] {
        let mut work = std::mem::take(&mut self.tail);
        work.extend_from_slice(chunk);
        let n = self.next.len();
        let found = work.windows(n).position(|w| w == self.next.as_slice());
        let (body_end, resume) = match found {
            Some(i) => (i, Some(i)),
            None => {
                // Hold back the longest end of `work` that could begin `\n--boundary`.
                let hold = (1..n.min(work.len() + 1))
                    .rev()
                    .find(|k| work[work.len() - k..] == self.next[..*k])
                    .unwrap_or(0);
                (work.len() - hold, None)
            }
        };
        self.keep_bytes(wanted, &work[..body_end]);
        match resume {
            Some(i) => {
                self.end_value(spec, vars, wanted, true);
                self.state = State::Boundary;
                // Skip the `\n` (it ends an empty line); bytes after it that were held back
                // begin the next line.
                let held = work.len() - chunk.len();
                let from = (i + 1).max(held);
                self.line = work[i + 1..from].to_vec();
                &chunk[from - held..]
            }
            None => {
                self.tail = work[body_end..].to_vec();
                &[]
            }
        }
    }

    fn keep_bytes(&mut self, wanted: &Wanted, bytes: &[u8]) {
        if self.keep.is_none() {
            // Only the last byte matters (a CR the boundary would drop).
            if let Some(b) = bytes.last() {
                self.value.clear();
                self.value.push(*b);
            }
            return;
        }
        if self.value.len() + bytes.len() > wanted.cap() {
            self.unreadable = true;
            self.keep = None;
            return;
        }
        self.value.extend_from_slice(bytes);
    }

    fn end_value(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted, bound: bool) {
        if bound && self.value.last() == Some(&b'\r') {
            self.value.pop();
        }
        if let Some(name) = self.keep.take() {
            spec.add(vars, wanted, &name, &self.value, false);
        }
        self.value.clear();
        self.tail.clear();
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `name` and `filename` of a `Content-Disposition` value, as PHP's `php_ap_getword` and
/// `php_ap_getword_conf` split and unquote them (the last of each wins).
fn disposition(cd: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (mut name, mut filename) = (None, None);
    let mut rest = skip_space(cd);
    while !rest.is_empty() {
        let (pair, after) = getword(rest, b';');
        rest = skip_space(after);
        if !pair.contains(&b'=') {
            continue;
        }
        let (key, value) = getword(pair, b'=');
        if key.eq_ignore_ascii_case(b"name") {
            name = Some(getword_conf(value));
        } else if key.eq_ignore_ascii_case(b"filename") {
            filename = Some(getword_conf(value));
        }
    }
    (name, filename)
}

fn skip_space(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|b| !is_space(*b)).unwrap_or(s.len())..]
}

/// Up to `stop` outside quotes; the stops after it are skipped.
fn getword(line: &[u8], stop: u8) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < line.len() && line[pos] != stop {
        let quote = line[pos];
        if quote == b'"' || quote == b'\'' {
            pos += 1;
            while pos < line.len() && line[pos] != quote {
                if line[pos] == b'\\' && line.get(pos + 1) == Some(&quote) {
                    pos += 2;
                } else {
                    pos += 1;
                }
            }
            if pos < line.len() {
                pos += 1;
            }
        } else {
            pos += 1;
        }
    }
    if pos >= line.len() {
        return (line, &[]);
    }
    let word = &line[..pos];
    while pos < line.len() && line[pos] == stop {
        pos += 1;
    }
    (word, &line[pos..])
}

/// A quoted word (up to its closing quote, `\\` and `\<quote>` unescaped) or a bare one (up
/// to white space, `\\` unescaped).
fn getword_conf(s: &[u8]) -> Vec<u8> {
    let s = skip_space(s);
    let (body, quote) = match s.first() {
        Some(q @ (b'"' | b'\'')) => (&s[1..], Some(*q)),
        _ => {
            let end = s.iter().position(|b| is_space(*b)).unwrap_or(s.len());
            (&s[..end], None)
        }
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() && Some(body[i]) != quote {
        let escaped = body[i] == b'\\'
            && body
                .get(i + 1)
                .is_some_and(|n| *n == b'\\' || Some(*n) == quote);
        if escaped {
            i += 1;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}
