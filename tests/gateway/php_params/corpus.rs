//! The generated requests: names and values built from pieces that PHP reads in special
//! ways, encoded in the several ways a client may send them.

use rand::seq::IndexedRandom;
use rand::Rng;
use vigie::http::RequestSpec;

pub struct Case {
    pub method: &'static str,
    pub query: Vec<u8>,
    pub cookie: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

type R = rand_chacha::ChaCha8Rng;

/// A decoded name: a base with PHP's special bytes around it and an index chain after it.
fn name(rng: &mut R, spec: &RequestSpec) -> Vec<u8> {
    const BASES: &[&str] = &[
        "a",
        "b",
        "patient_id",
        "page",
        "patient.id",
        "patient id",
        "x",
        "A",
        "0",
        "12",
        "",
    ];
    let mut n = Vec::new();
    if rng.random_bool(0.1) {
        n.extend_from_slice(b"  ");
    }
    n.extend_from_slice(BASES.choose(rng).unwrap().as_bytes());
    if rng.random_bool(0.05) {
        n.extend_from_slice(b"\0junk");
    }
    if rng.random_bool(0.3) {
        const SUFFIXES: &[&str] = &[
            "[]", "[k]", "[k][]", "[", "[k", "]", "[a][b", "[ ]", "[a]x", "[]]", "[.a", "[x][",
        ];
        n.extend_from_slice(SUFFIXES.choose(rng).unwrap().as_bytes());
    }
    if rng.random_bool(0.02) {
        let depth = spec.max_input_nesting_level + rng.random_range(0..3) - 1;
        n.extend_from_slice("[d]".repeat(depth).as_bytes());
    }
    n
}

fn value(rng: &mut R) -> Vec<u8> {
    match rng.random_range(0..10) {
        0 => Vec::new(),
        1 => (0..rng.random_range(1..8)).map(|_| rng.random()).collect(),
        2 => b"17".to_vec(),
        3 => b" 42 ".to_vec(),
        _ => {
            const ALPHA: &[u8] = b"abcXYZ0189 +%&=;.[]\"'\\-_/\xc3\xa9";
            (0..rng.random_range(1..12))
                .map(|_| *ALPHA.choose(rng).unwrap())
                .collect()
        }
    }
}

/// Percent-encodes for a query or form, each byte one of the ways PHP decodes alike.
fn encode(rng: &mut R, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in raw {
        let safe = b.is_ascii_alphanumeric() || b"._-[]".contains(&b);
        match b {
            b' ' if rng.random_bool(0.5) => out.push(b'+'),
            _ if safe && rng.random_bool(0.8) => out.push(b),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
    if rng.random_bool(0.03) {
        // A stray or malformed escape stays as written.
        out.extend_from_slice([&b"%"[..], b"%zz", b"%4"].choose(rng).unwrap());
    }
    out
}

fn pairs(rng: &mut R, spec: &RequestSpec, count: usize, sep: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        if i > 0 {
            out.extend_from_slice(sep);
            if rng.random_bool(0.05) {
                out.extend_from_slice(sep);
            }
        }
        let n = name(rng, spec);
        out.extend(encode(rng, &n));
        if rng.random_bool(0.93) {
            out.push(b'=');
            let v = value(rng);
            out.extend(encode(rng, &v));
        }
    }
    out
}

fn pair_count(rng: &mut R, spec: &RequestSpec) -> usize {
    match rng.random_range(0..20) {
        0 => spec.max_input_vars + rng.random_range(0..5) - 2,
        1 => 0,
        _ => rng.random_range(1..7),
    }
}

fn cookie(rng: &mut R, spec: &RequestSpec) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rng.random_range(1..5) {
        if i > 0 {
            out.extend_from_slice([&b"; "[..], b";", b";  "].choose(rng).unwrap());
        }
        let n = name(rng, spec);
        out.extend(encode(rng, &n).into_iter().filter(|b| *b != b'+'));
        out.push(b'=');
        let v = value(rng);
        out.extend(encode(rng, &v));
    }
    out
}

pub fn generate(rng: &mut R, spec: &RequestSpec) -> Case {
    let n = pair_count(rng, spec);
    let query = pairs(rng, spec, n.min(spec.max_input_vars + 3), b"&");
    let cookie = rng.random_bool(0.3).then(|| cookie(rng, spec));
    let mut case = Case {
        method: "GET",
        query,
        cookie,
        content_type: None,
        body: Vec::new(),
    };
    match rng.random_range(0..10) {
        0 => {}
        1..=4 => form(rng, spec, &mut case),
        5..=8 => super::corpus_multipart::multipart(rng, spec, &mut case),
        _ => {
            case.method = "POST";
            case.content_type = Some("application/json".into());
            case.body = br#"{"patient_id":"17","a":[1]}"#.to_vec();
        }
    }
    case
}

fn form(rng: &mut R, spec: &RequestSpec, case: &mut Case) {
    const TYPES: &[&str] = &[
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
        "application/x-www-form-urlencoded ;charset=utf-8",
        "application/x-www-form-urlencoded,x",
        "application/x-www-form-urlencodedx",
        "text/plain",
    ];
    case.method = if rng.random_bool(0.9) { "POST" } else { "PUT" };
    case.content_type = Some(TYPES.choose(rng).unwrap().to_string());
    let n = pair_count(rng, spec);
    let mut body = pairs(rng, spec, n, b"&");
    if rng.random_bool(0.15) {
        // Past 64 KiB (and sometimes past post_max_size), the interesting name after it.
        let filler = rng.random_range(66_000..260_000);
        let mut big = b"filler=".to_vec();
        big.extend(std::iter::repeat_n(b'x', filler));
        big.extend_from_slice(b"&patient_id=99&");
        big.extend(body);
        body = big;
    }
    if rng.random_bool(0.1) {
        body.push(b'&');
    }
    case.body = body;
}

/// A part name: no line ends (they would end the header line).
pub fn name_for_multipart(rng: &mut R, spec: &RequestSpec) -> Vec<u8> {
    let mut n = name(rng, spec);
    n.retain(|b| *b != b'\r' && *b != b'\n');
    n
}

/// A part value: any bytes, `--` and line ends included.
pub fn value_for_multipart(rng: &mut R) -> Vec<u8> {
    let mut v = value(rng);
    if rng.random_bool(0.1) {
        v.extend_from_slice(b"\r\n--not the boundary\r\n");
    }
    v
}
