//! Generated multipart bodies: boundary spellings, name quoting, files, folded and missing
//! headers, bare LF line ends, preambles, missing closing boundaries, many parts, big values.

use rand::seq::IndexedRandom;
use rand::Rng;
use vigie::http::RequestSpec;

use super::corpus::Case;

type R = rand_chacha::ChaCha8Rng;

/// A part name as a client could spell it in `Content-Disposition`.
fn disposition(rng: &mut R, name: &[u8]) -> Vec<u8> {
    let plain = !name
        .iter()
        .any(|b| b.is_ascii_whitespace() || b"\"';\\".contains(b));
    let quoted = |q: u8| {
        let mut v = vec![q];
        for &b in name {
            if b == q || b == b'\\' {
                v.push(b'\\');
            }
            v.push(b);
        }
        v.push(q);
        v
    };
    let spelled = match rng.random_range(0..6) {
        0 if plain => name.to_vec(),
        1 => quoted(b'\''),
        _ => quoted(b'"'),
    };
    let key: &[u8] = [&b"name="[..], b"NAME=", b"name=", b"name ="]
        .choose(rng)
        .unwrap();
    let mut cd = b"form-data; ".to_vec();
    if rng.random_bool(0.02) {
        // A header line longer than PHP's 5 KiB buffer, cut into pieces there.
        cd.extend_from_slice(b"x=\"");
        cd.extend(std::iter::repeat_n(b'a', rng.random_range(5000..11000)));
        cd.extend_from_slice(b"\"; ");
    }
    if rng.random_bool(0.1) {
        cd.extend_from_slice(b"filename=\"f.txt\"; ");
    }
    cd.extend_from_slice(key);
    cd.extend(spelled);
    if rng.random_bool(0.05) {
        cd.extend_from_slice(b"; filename=\"\"");
    }
    if rng.random_bool(0.05) {
        cd.extend_from_slice(b"; name=\"page\"");
    }
    cd
}

pub fn multipart(rng: &mut R, spec: &RequestSpec, case: &mut Case) {
    const BOUNDARIES: &[&str] = &["XyZ", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "b=c", "q"];
    let b = *BOUNDARIES.choose(rng).unwrap();
    let types = [
        format!("multipart/form-data; boundary={b}"),
        format!("multipart/form-data; boundary=\"{b}\""),
        format!("Multipart/Form-Data; charset=utf-8; boundary={b}"),
        format!("multipart/form-data; BOUNDARY={b}; charset=utf-8"),
        format!("multipart/form-data,boundary={b}"),
        "multipart/form-data".to_string(),
    ];
    case.method = if rng.random_bool(0.95) { "POST" } else { "PUT" };
    case.content_type = Some(types.choose(rng).unwrap().clone());
    let eol: &[u8] = if rng.random_bool(0.85) {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut body = Vec::new();
    if rng.random_bool(0.2) {
        body.extend_from_slice(b"a preamble line");
        body.extend_from_slice(eol);
    }
    let parts = match rng.random_range(0..15) {
        0 => spec.max_input_vars + rng.random_range(0..4) - 2,
        1 => spec.max_multipart_body_parts + rng.random_range(0..4) - 2,
        _ => rng.random_range(1..6),
    };
    for _ in 0..parts {
        body.extend_from_slice(b"--");
        body.extend_from_slice(b.as_bytes());
        body.extend_from_slice(eol);
        let name: Vec<u8> = super::corpus::name_for_multipart(rng, spec);
        match rng.random_range(0..40) {
            0 => {} // no Content-Disposition: PHP stops there
            1 => {
                body.extend_from_slice(b"Content-Disposition: form-data;");
                body.extend_from_slice(eol);
                body.extend_from_slice(b" name=\"");
                body.extend(name.iter().filter(|b| **b != b'"'));
                body.extend_from_slice(b"\"");
                body.extend_from_slice(eol);
            }
            2 => {
                body.extend_from_slice(b"content-disposition:form-data;name=");
                body.extend(name.iter().filter(|b| !b.is_ascii_whitespace()));
                body.extend_from_slice(eol);
            }
            _ => {
                body.extend_from_slice(b"Content-Disposition: ");
                body.extend(disposition(rng, &name));
                body.extend_from_slice(eol);
            }
        }
        if rng.random_bool(0.2) {
            body.extend_from_slice(b"Content-Type: text/plain; charset=utf-8");
            body.extend_from_slice(eol);
        }
        body.extend_from_slice(eol);
        let mut v = super::corpus::value_for_multipart(rng);
        if rng.random_bool(0.02) {
            v.extend(std::iter::repeat_n(b'y', rng.random_range(66_000..100_000)));
        }
        body.extend(v);
        body.extend_from_slice(eol);
    }
    if rng.random_bool(0.05) {
        // A last part whose headers run into the end of the body: what is left unterminated
        // in PHP's buffer is the part's value.
        body.extend_from_slice(b"--");
        body.extend_from_slice(b.as_bytes());
        body.extend_from_slice(eol);
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"patient_id\"");
        body.extend_from_slice(eol);
        body.extend(super::corpus::value_for_multipart(rng));
        case.body = body;
        return;
    }
    if rng.random_bool(0.9) {
        body.extend_from_slice(b"--");
        body.extend_from_slice(b.as_bytes());
        body.extend_from_slice(b"--");
        body.extend_from_slice(eol);
    }
    case.body = body;
}
