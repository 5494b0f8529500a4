//! A urlencoded body as PHP's `add_post_vars` reads it, streamed: pairs split on `&` only
//! (empty pieces count toward `max_input_vars`), the piece that passes the limit still
//! registered, everything after it dropped. Only a wanted name's value is held.

use super::{top_name, url_decode, RequestSpec, Vars, Wanted};

#[derive(Debug, Clone, Default)]
pub(super) struct Form {
    /// The current piece: its name, then its value while the name is wanted.
    piece: Vec<u8>,
    /// Where the value starts in `piece`, once `=` was seen.
    eq: Option<usize>,
    /// The name is not wanted: the rest of the value is skipped.
    skip: bool,
    count: usize,
    done: bool,
    pub unreadable: bool,
}

impl Form {
    pub fn feed(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted, chunk: &[u8]) {
        let mut rest = chunk;
        while !self.done && !rest.is_empty() {
            let (part, end) = match rest.iter().position(|b| *b == b'&') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = if end { &rest[part.len() + 1..] } else { &[] };
            self.take(wanted, part);
            if end {
                self.end_piece(spec, vars, wanted);
            }
        }
    }

    /// Bytes held between chunks.
    pub fn held(&self) -> usize {
        self.piece.capacity()
    }

    pub fn finish(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted) {
        // The last piece counts even when empty only if something was sent after a `&`.
        if !self.done && (!self.piece.is_empty() || self.eq.is_some() || self.skip) {
            self.end_piece(spec, vars, wanted);
        }
    }

    fn take(&mut self, wanted: &Wanted, mut part: &[u8]) {
        if self.skip {
            return;
        }
        if self.eq.is_none() {
            if let Some(i) = part.iter().position(|b| *b == b'=') {
                self.piece.extend_from_slice(&part[..i]);
                self.eq = Some(self.piece.len());
                part = &part[i + 1..];
                let name = top_name(&url_decode(&self.piece, true));
                if !name.is_some_and(|n| wanted.wants(&n)) {
                    self.skip = true;
                    return;
                }
            }
        }
        if self.piece.len() + part.len() > wanted.cap() {
            // A name this long, or a wanted value this long, is not guessed at.
            self.unreadable = true;
            self.skip = true;
            return;
        }
        self.piece.extend_from_slice(part);
    }

    fn end_piece(&mut self, spec: &RequestSpec, vars: &mut Vars, wanted: &Wanted) {
        if !self.skip {
            let (name, value) = match self.eq {
                Some(i) => (&self.piece[..i], &self.piece[i..]),
                None => (&self.piece[..], &b""[..]),
            };
            let name = url_decode(name, true);
            let value = url_decode(value, true);
            spec.add(vars, wanted, &name, &value, false);
        }
        self.piece.clear();
        self.eq = None;
        self.skip = false;
        self.count += 1;
        if self.count > spec.max_input_vars {
            self.done = true;
        }
    }
}
