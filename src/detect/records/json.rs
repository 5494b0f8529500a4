//! A streaming JSON reader that counts the elements of one array (the records) and picks each
//! element's patient id, chunk by chunk, in memory bounded by nesting depth and key length:
//! a 5,000-record page is counted as it passes, and can be cut before the record that spends
//! the identity's allowance. Hand-written because no maintained crate streams JSON by pointer
//! with byte offsets; anything it cannot follow is reported, and counted by size instead.

use super::Hit;

/// Containers deeper than this are not followed (the answer is then read by its size).
const MAX_DEPTH: usize = 128;
/// Keys and captured values longer than this never match / are cut (ids are short).
const MAX_TEXT: usize = 256;

#[derive(Debug, Clone)]
pub struct Shape {
    /// Keys from the root to the records array; `None`: the whole document is one record.
    pub array: Option<Vec<String>>,
    /// Pointers (keys) inside one record to its patient id; the first found wins.
    pub ids: Vec<Vec<String>>,
    /// FHIR: a record whose `resource.resourceType` is `Patient` is that patient
    /// (`resource.id`); other resources name theirs through `ids` (`subject.reference`…).
    pub fhir: bool,
}

#[derive(Debug)]
struct Frame {
    array: bool,
    /// The key (object) or index (array) of the value being read inside this container.
    key: Key,
    /// This container's path matches the records array's path so far.
    on_path: bool,
    /// This container is the records array.
    records: bool,
    /// Id pointers (by bit) whose keys match the path from the record to this container.
    mask: u64,
    /// Depth below the record (0: the record itself).
    rel: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    None,
    Text(String),
    /// Too long to match anything.
    Long,
    Index(u64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Value,
    /// After `{` or `,` in an object: a key or `}`.
    Key,
    Colon,
    /// After a value: `,` or a closing bracket.
    After,
    Str {
        key: bool,
    },
    Escape {
        key: bool,
    },
    Unicode {
        key: bool,
        left: u8,
        code: u32,
    },
    Scalar,
}

#[derive(Debug)]
pub struct Scanner {
    shape: Shape,
    /// Extra pointer slots used by the FHIR rule: `resource.resourceType`, `resource.id`.
    pointers: Vec<Vec<String>>,
    stack: Vec<Frame>,
    state: State,
    text: Vec<u8>,
    text_long: bool,
    /// The pointer slot the value being read fills, if any.
    capture: Option<usize>,
    /// Inside a record: the stack depth of its container (its own frame sits above it).
    record_at: Option<usize>,
    found: Vec<Option<String>>,
    done: bool,
    pub error: bool,
}

impl Scanner {
    pub fn new(shape: Shape) -> Self {
        let mut pointers = shape.ids.clone();
        if shape.fhir {
            pointers.push(vec!["resource".into(), "resourceType".into()]);
            pointers.push(vec!["resource".into(), "id".into()]);
        }
        pointers.truncate(62);
        let found = vec![None; pointers.len()];
        Self {
            shape,
            pointers,
            stack: Vec::new(),
            state: State::Value,
            text: Vec::new(),
            text_long: false,
            capture: None,
            record_at: None,
            found,
            done: false,
            error: false,
        }
    }

    /// Reads `chunk`; reports each record's start (its offset in `chunk`) and end (its id).
    pub fn feed(&mut self, chunk: &[u8], hit: &mut dyn FnMut(Hit)) {
        for (i, &b) in chunk.iter().enumerate() {
            if self.error || self.done {
                if !self.done || !b.is_ascii_whitespace() {
                    self.error = true;
                }
                return;
            }
            if !self.byte(i, b, hit) {
                self.error = true;
                return;
            }
        }
    }

    /// The document ended: was it whole?
    pub fn finish(&mut self, hit: &mut dyn FnMut(Hit)) {
        if self.state == State::Scalar {
            self.end_value(hit);
        }
        if !self.done {
            self.error = true;
        }
    }

    fn byte(&mut self, i: usize, b: u8, hit: &mut dyn FnMut(Hit)) -> bool {
        match self.state {
            State::Str { key } => match b {
                b'"' => {
                    self.state = if key { State::Colon } else { State::After };
                    if key {
                        self.set_key();
                    } else {
                        self.end_value(hit);
                    }
                }
                b'\\' => self.state = State::Escape { key },
                c if c < 0x20 => return false,
                c => self.push_text(c),
            },
            State::Escape { key } => {
                self.state = State::Str { key };
                match b {
                    b'"' | b'\\' | b'/' => self.push_text(b),
                    b'b' => self.push_text(8),
                    b'f' => self.push_text(12),
                    b'n' => self.push_text(b'\n'),
                    b'r' => self.push_text(b'\r'),
                    b't' => self.push_text(b'\t'),
                    b'u' => {
                        self.state = State::Unicode {
                            key,
                            left: 4,
                            code: 0,
                        }
                    }
                    _ => return false,
                }
            }
            State::Unicode { key, left, code } => {
                let Some(d) = (b as char).to_digit(16) else {
                    return false;
                };
                let code = code * 16 + d;
                if left > 1 {
                    self.state = State::Unicode {
                        key,
                        left: left - 1,
                        code,
                    };
                } else {
                    // Surrogate halves are kept as U+FFFD: ids and keys are plain text.
                    let c = char::from_u32(code).unwrap_or('\u{fffd}');
                    let mut utf8 = [0u8; 4];
                    for &x in c.encode_utf8(&mut utf8).as_bytes() {
                        self.push_text(x);
                    }
                    self.state = State::Str { key };
                }
            }
            State::Scalar => {
                if matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z') {
                    self.push_text(b);
                } else {
                    self.end_value(hit);
                    self.state = State::After;
                    return self.byte(i, b, hit);
                }
            }
            _ if b.is_ascii_whitespace() => {}
            State::Value => return self.begin_value(i, b, hit),
            State::Key => match b {
                b'"' => self.start_text(State::Str { key: true }),
                // `{}` only: after a comma a key must follow.
                b'}' if self
                    .stack
                    .last()
                    .is_some_and(|f| !f.array && f.key == Key::None) =>
                {
                    self.close(hit)
                }
                _ => return false,
            },
            State::Colon if b == b':' => self.state = State::Value,
            State::Colon => return false,
            State::After => match (b, self.stack.last().map(|f| f.array)) {
                (b',', Some(true)) => {
                    if let Some(f) = self.stack.last_mut() {
                        f.key = match f.key {
                            Key::Index(n) => Key::Index(n + 1),
                            _ => Key::Index(0),
                        };
                    }
                    self.state = State::Value;
                }
                (b',', Some(false)) => self.state = State::Key,
                (b']', Some(true)) | (b'}', Some(false)) => self.close(hit),
                _ => return false,
            },
        }
        true
    }

    fn start_text(&mut self, state: State) {
        self.text.clear();
        self.text_long = false;
        self.state = state;
    }

    fn push_text(&mut self, b: u8) {
        if self.text.len() < MAX_TEXT {
            self.text.push(b);
        } else {
            self.text_long = true;
        }
    }

    fn set_key(&mut self) {
        let key = if self.text_long {
            Key::Long
        } else {
            Key::Text(String::from_utf8_lossy(&self.text).into_owned())
        };
        if let Some(f) = self.stack.last_mut() {
            f.key = key;
        }
    }

    /// Where a value starting now sits: is it a record, the records array, an id?
    fn begin_value(&mut self, i: usize, b: u8, hit: &mut dyn FnMut(Hit)) -> bool {
        if b == b']' && self.array_is_fresh() {
            self.close(hit);
            return true;
        }
        let depth = self.stack.len();
        let parent = self.stack.last();
        let is_record = match (&self.shape.array, parent) {
            (None, None) => true,
            (Some(_), Some(p)) => p.records,
            _ => false,
        };
        // Pointer slots still matching once this value's key is added, and its depth below
        // the record.
        let (mask, rel) = match parent {
            _ if is_record => ((1u64 << self.pointers.len()) - 1, 0),
            Some(p) if p.mask != 0 => {
                let mask = (0..self.pointers.len())
                    .filter(|&n| p.mask & (1 << n) != 0)
                    .filter(|&n| key_is(&p.key, self.pointers[n].get(p.rel)))
                    .fold(0u64, |m, n| m | 1 << n);
                (mask, p.rel + 1)
            }
            _ => (0, 0),
        };
        let on_path = match (&self.shape.array, parent) {
            (Some(_), None) => true,
            (Some(path), Some(p)) => {
                p.on_path && depth <= path.len() && key_is(&p.key, path.get(depth - 1))
            }
            _ => false,
        };
        let records_array = on_path && self.shape.array.as_ref().is_some_and(|p| p.len() == depth);
        if is_record {
            self.record_at = Some(depth);
            self.found.iter_mut().for_each(|f| *f = None);
            hit(Hit::Start(i));
        }
        match b {
            b'{' | b'[' => {
                let array = b == b'[';
                if depth >= MAX_DEPTH || (records_array && !array) {
                    // Too deep to follow, or the records "array" is an object.
                    return false;
                }
                self.stack.push(Frame {
                    array,
                    key: if array { Key::Index(0) } else { Key::None },
                    on_path,
                    records: records_array,
                    mask,
                    rel,
                });
                self.state = if array { State::Value } else { State::Key };
            }
            b'"' => {
                self.capture = self.slot_for(mask, rel);
                self.start_text(State::Str { key: false });
            }
            b'0'..=b'9' | b'-' | b't' | b'f' | b'n' => {
                self.capture = self.slot_for(mask, rel);
                self.start_text(State::Scalar);
                self.push_text(b);
            }
            _ => return false,
        }
        true
    }

    /// `]` right after `[`: the array has no element.
    fn array_is_fresh(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|f| f.array && f.key == Key::Index(0))
    }

    /// The pointer slot a scalar fills: one still matching that ends at this depth.
    fn slot_for(&self, mask: u64, rel: usize) -> Option<usize> {
        (0..self.pointers.len()).find(|&n| mask & (1 << n) != 0 && self.pointers[n].len() == rel)
    }

    fn end_value(&mut self, hit: &mut dyn FnMut(Hit)) {
        if let Some(slot) = self.capture.take() {
            if self.found[slot].is_none() && !self.text_long {
                self.found[slot] = Some(String::from_utf8_lossy(&self.text).into_owned());
            }
        }
        self.after_value(hit);
    }

    /// A value (scalar, or a container just closed) ended at the current depth.
    fn after_value(&mut self, hit: &mut dyn FnMut(Hit)) {
        if self.record_at == Some(self.stack.len()) {
            self.record_at = None;
            hit(Hit::End(self.record_id()));
        }
        if self.stack.is_empty() {
            self.done = true;
        }
        self.state = State::After;
    }

    fn close(&mut self, hit: &mut dyn FnMut(Hit)) {
        self.stack.pop();
        self.after_value(hit);
    }

    fn record_id(&mut self) -> Option<String> {
        let n = self.shape.ids.len();
        if self.shape.fhir && self.found[n].as_deref() == Some("Patient") {
            if let Some(id) = self.found[n + 1].take() {
                return Some(id);
            }
        }
        self.found[..n].iter_mut().find_map(Option::take)
    }
}

/// Whether a container's current key is this pointer token.
fn key_is(key: &Key, token: Option<&String>) -> bool {
    match (key, token) {
        (Key::Text(k), Some(t)) => k == t,
        (Key::Index(n), Some(t)) => t.parse::<u64>().ok() == Some(*n),
        _ => false,
    }
}
