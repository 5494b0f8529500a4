//! A request body fed chunk by chunk into the reader its content type calls for, as PHP
//! picks it: only for `POST`, only `application/x-www-form-urlencoded` and
//! `multipart/form-data` (the media type cut at `;`, `,` or a space, case ignored). A form
//! declared or grown past `post_max_size` is unreadable: PHP reads none of it, a portal with
//! a larger limit all of it. A JSON body is kept whole (bounded) for
//! the detector's JSON pointers; PHP does not read it into `$_POST`.

use super::form::Form;
use super::multipart::Multipart;
use super::{media_type, RequestSpec, Vars, Wanted, FORM, MAX_KEPT};

#[derive(Debug, Clone)]
enum BodyKind {
    /// Not read by the portal's language (another method, type or size).
    Ignored,
    Form(Box<FormState>),
    Multipart(Box<Multipart>),
    Json(Vec<u8>),
}

#[derive(Debug, Clone, Default)]
struct FormState(Form);

/// One request body on its way to the portal. Its `Debug` shows no value: they may be
/// patient ids or a password.
#[derive(Clone)]
pub struct BodyReader {
    spec: RequestSpec,
    wanted: Wanted,
    kind: BodyKind,
    post: Vars,
    seen: u64,
    /// The JSON body outgrew [`MAX_KEPT`].
    json_overflow: bool,
    unreadable: bool,
}

impl BodyReader {
    pub fn new(
        spec: &RequestSpec,
        wanted: Wanted,
        method: &str,
        content_type: Option<&str>,
        content_length: Option<u64>,
    ) -> Self {
        // PHP reads forms from a POST only; JSON is kept whatever the method.
        let kind = match content_type.map(kind_of) {
            Some(k) if method == "POST" || matches!(k, BodyKind::Json(_)) => k,
            _ => BodyKind::Ignored,
        };
        // Declared past `post_max_size`: PHP reads none of it, but a portal with a larger
        // limit (or another language) reads it all, so a form that large is unreadable (and
        // refused on its head) rather than read as empty.
        let too_large = content_length.is_some_and(|n| n > spec.post_max_size);
        let form = matches!(kind, BodyKind::Form(_) | BodyKind::Multipart(_));
        Self {
            spec: spec.clone(),
            wanted,
            kind: if too_large { BodyKind::Ignored } else { kind },
            post: Vars::default(),
            seen: 0,
            json_overflow: false,
            unreadable: too_large && form,
        }
    }

    /// Keeps these names too (before the first chunk): the names other readers ask for.
    pub fn want<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        if let Some(set) = self.wanted.0.as_mut() {
            set.extend(names.into_iter().map(|n| n.as_bytes().to_vec()));
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        if self.seen > self.spec.post_max_size {
            // A form without a length that grows past the limit: PHP would not read it, and
            // the gateway cannot tell what the portal makes of it. (A JSON body is only the
            // detector's hint, past 64 KiB already dropped.)
            if matches!(self.kind, BodyKind::Form(_) | BodyKind::Multipart(_)) {
                self.unreadable = true;
                self.kind = BodyKind::Ignored;
                self.post = Vars::default();
            }
            return;
        }
        let (spec, post, wanted) = (&self.spec, &mut self.post, &self.wanted);
        match &mut self.kind {
            BodyKind::Ignored => {}
            BodyKind::Form(f) => f.0.feed(spec, post, wanted, chunk),
            BodyKind::Multipart(m) => m.feed(spec, post, wanted, chunk),
            BodyKind::Json(buf) if buf.len() + chunk.len() <= MAX_KEPT => {
                buf.extend_from_slice(chunk)
            }
            BodyKind::Json(_) => self.json_overflow = true,
        }
    }

    /// The body ended.
    pub fn finish(&mut self) {
        let (spec, post, wanted) = (&self.spec, &mut self.post, &self.wanted);
        match &mut self.kind {
            BodyKind::Form(f) => f.0.finish(spec, post, wanted),
            BodyKind::Multipart(m) => m.finish(spec, post, wanted),
            _ => {}
        }
    }

    /// What the portal's language reads of the body were it cut here: PHP under Apache's
    /// mod_php fills `$_POST` from the parts of a body that stopped short, so a prefix the
    /// gateway lets go before the end is read as a whole body of its own. Bounded state only
    /// is copied (a line, a kept value, the wanted names).
    pub fn so_far(&self) -> BodyReader {
        let mut cut = self.clone();
        cut.finish();
        cut
    }

    /// Bytes held between chunks (besides the kept values): bounded whatever the body's size.
    pub fn held(&self) -> usize {
        match &self.kind {
            BodyKind::Form(f) => f.0.held(),
            BodyKind::Multipart(m) => m.held(),
            BodyKind::Json(b) => b.capacity(),
            BodyKind::Ignored => 0,
        }
    }

    /// `$_POST`, wanted names only.
    pub fn post(&self) -> &Vars {
        &self.post
    }

    /// The whole JSON body, when it was one and fit.
    pub fn json(&self) -> Option<&[u8]> {
        match &self.kind {
            BodyKind::Json(b) if !self.json_overflow && !b.is_empty() => Some(b),
            _ => None,
        }
    }

    /// A wanted name or value too long to keep, or a form past `post_max_size` (declared so,
    /// or grown so): the caller must not guess what the portal read.
    pub fn unreadable(&self) -> bool {
        self.unreadable
            || match &self.kind {
                BodyKind::Form(f) => f.0.unreadable,
                BodyKind::Multipart(m) => m.unreadable,
                _ => false,
            }
    }
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("names", &self.post.map.len())
            .field("bytes", &self.seen)
            .field("unreadable", &self.unreadable())
            .finish()
    }
}

/// The media type as PHP's SAPI cuts it: up to `;`, `,` or a space, lower-cased.
fn kind_of(content_type: &str) -> BodyKind {
    let media = media_type(content_type);
    let is = |m: &str| media.eq_ignore_ascii_case(m);
    if is(FORM) {
        BodyKind::Form(Box::default())
    } else if is("multipart/form-data") {
        match boundary(content_type) {
            Some(b) => BodyKind::Multipart(Box::new(Multipart::new(b.as_bytes()))),
            None => BodyKind::Ignored,
        }
    } else if is("application/json") {
        BodyKind::Json(Vec::new())
    } else {
        BodyKind::Ignored
    }
}

/// The boundary as rfc1867 finds it: the first `boundary` (exact case, else any case), the
/// next `=` after it, then a quoted value or one up to `,` or `;`.
fn boundary(content_type: &str) -> Option<&str> {
    let at = content_type
        .find("boundary")
        .or_else(|| content_type.to_ascii_lowercase().find("boundary"))?;
    let rest = &content_type[at..];
    let value = &rest[rest.find('=')? + 1..];
    let b = match value.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => &value[..value.find([',', ';']).unwrap_or(value.len())],
    };
    Some(b)
}
