//! Differential: a seeded corpus of requests (repeats, folding, encodings, NUL, arrays,
//! multipart quirks, bodies past 64 KiB, past `max_input_vars`, `post_max_size` and the
//! nesting limit, JSON and PUT bodies) goes to the real PHP 8 runtime and to Vigie's reader
//! (`vigie::http`); every difference in `$_GET`, `$_POST`, `$_REQUEST` or `$_COOKIE` fails.

mod corpus;
mod corpus_multipart;
mod cut;

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use vigie::http::{read_all, Raw, RequestSpec, Superglobals, Value, Vars, Wanted};

use crate::common::*;
use crate::prelogin::{php_server, PhpPortal};
use corpus::Case;

/// `php -S` with the fixture echoing what PHP parsed, under these ini settings.
fn params_server(ini: &[String]) -> PhpPortal {
    let mut settings = vec!["display_errors=0"];
    settings.extend(ini.iter().map(String::as_str));
    php_server(
        &crate::prelogin::fixture("params.php"),
        &settings,
        &[],
        tempfile::tempdir().unwrap(),
    )
}

/// The ini settings a spec stands for.
fn ini_of(spec: &RequestSpec) -> Vec<String> {
    vec![
        format!("max_input_vars={}", spec.max_input_vars),
        format!("max_input_nesting_level={}", spec.max_input_nesting_level),
        format!("post_max_size={}", spec.post_max_size),
        format!("max_multipart_body_parts={}", spec.max_multipart_body_parts),
        format!("request_order={}", spec.request_order),
    ]
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vars_of(json: &serde_json::Value) -> Vars {
    let mut map = BTreeMap::new();
    for (k, v) in json.as_object().expect("an object") {
        let value = match v.as_str() {
            Some(hex) => Value::Scalar(unhex(hex)),
            None => Value::Array,
        };
        map.insert(unhex(k), value);
    }
    Vars { map }
}

/// What PHP parsed from `case`.
fn php_reads(port: u16, case: &Case) -> Superglobals {
    let mut head = format!("{} /p.php", case.method).into_bytes();
    if !case.query.is_empty() {
        head.push(b'?');
        head.extend_from_slice(&case.query);
    }
    head.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(c) = &case.cookie {
        head.extend_from_slice(b"Cookie: ");
        head.extend_from_slice(c);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(t) = &case.content_type {
        head.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
    }
    head.extend_from_slice(format!("Content-Length: {}\r\n\r\n", case.body.len()).as_bytes());
    head.extend_from_slice(&case.body);
    let resp = raw(port, &head).expect("php answers");
    let json: serde_json::Value =
        serde_json::from_slice(&resp.body).unwrap_or_else(|_| panic!("PHP said: {}", resp.text()));
    Superglobals {
        get: vars_of(&json["get"]),
        post: vars_of(&json["post"]),
        cookie: vars_of(&json["cookie"]),
        request: vars_of(&json["request"]),
        unreadable: false,
    }
}

fn vigie_reads(spec: &RequestSpec, wanted: &Wanted, case: &Case, chunk: usize) -> Superglobals {
    let raw = Raw {
        method: case.method,
        query: &case.query,
        cookie: case.cookie.as_deref(),
        content_type: case.content_type.as_deref(),
        body: &case.body,
    };
    read_all(spec, wanted, raw, chunk)
}

/// Only the names a detector would ask for.
fn only(vars: &Vars, names: &[&str]) -> Vars {
    let mut out = vars.clone();
    out.map
        .retain(|k, _| names.iter().any(|n| n.as_bytes() == k));
    out
}

fn globals(g: &Superglobals) -> String {
    let vars = |v: &Vars| {
        v.map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::Scalar(s) => {
                        format!("{:?}", String::from_utf8_lossy(&s[..s.len().min(60)]))
                    }
                    Value::Array => "[…]".into(),
                };
                format!("{:?}: {v}", String::from_utf8_lossy(k))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "GET {{{}}} POST {{{}}} COOKIE {{{}}} REQUEST {{{}}}",
        vars(&g.get),
        vars(&g.post),
        vars(&g.cookie),
        vars(&g.request)
    )
}

fn shown(case: &Case) -> String {
    let cut = |b: &[u8]| {
        let s = String::from_utf8_lossy(&b[..b.len().min(1500)]).into_owned();
        format!("{s:?}{}", if b.len() > 1500 { " …" } else { "" })
    };
    format!(
        "{} ?{} cookie={:?} type={:?} body({} bytes)={}",
        case.method,
        cut(&case.query),
        case.cookie.as_deref().map(cut),
        case.content_type,
        case.body.len(),
        cut(&case.body)
    )
}

/// The two ini settings the differentials run PHP under: its defaults, and limits tight
/// enough for the generated requests to pass them.
fn settings() -> [RequestSpec; 2] {
    let tight = RequestSpec {
        max_input_vars: 40,
        max_input_nesting_level: 5,
        post_max_size: 200 * 1024,
        max_multipart_body_parts: 60,
        ..RequestSpec::php()
    };
    [RequestSpec::php(), tight]
}

#[test]
fn vigie_reads_requests_exactly_as_php_does() {
    let [default, tight] = settings();
    let servers = [
        (params_server(&ini_of(&default)), &default),
        (params_server(&ini_of(&tight)), &tight),
    ];
    // Seeded, so a failure replays; `VIGIE_PHP_SEED` explores other corpora.
    let seed = std::env::var("VIGIE_PHP_SEED").map_or(15, |s| s.parse().unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut kinds, mut large) = (BTreeMap::new(), 0);
    let started = std::time::Instant::now();
    let (mut cases, mut differences, mut non_empty, mut refused) = (0, 0, 0, 0);
    let mut oversized = 0;
    let wanted_names = ["patient_id", "page", "a"];
    let wanted = Wanted::names(wanted_names);
    for n in 0..3000 {
        let (php, spec) = &servers[n % 2];
        let case = corpus::generate(&mut rng, spec);
        let kind = match case.content_type.as_deref().unwrap_or("") {
            t if t.to_ascii_lowercase().starts_with("multipart") => "multipart",
            t if t.to_ascii_lowercase().contains("urlencoded") => "urlencoded",
            "application/json" => "json",
            "" => "no body",
            _ => "other type",
        };
        *kinds.entry(kind).or_insert(0) += 1;
        large += (case.body.len() > 64 * 1024) as u32;
        let chunk = rng.random_range(1..9000);
        let said = php_reads(php.port, &case);
        let ours = vigie_reads(spec, &Wanted::all(), &case, chunk);
        let picked = vigie_reads(spec, &wanted, &case, chunk);
        cases += 1;
        non_empty += !(said.post.map.is_empty() && said.get.map.is_empty()) as u32;
        let same = |a: &Superglobals, b: &Superglobals| {
            (&a.get, &a.post, &a.cookie, &a.request) == (&b.get, &b.post, &b.cookie, &b.request)
        };
        // A form declared past `post_max_size`: PHP reads none of it, but the gateway refuses
        // it on its head (a portal with a larger limit would read it all), reading nothing.
        let over = case.body.len() as u64 > spec.post_max_size && ours.unreadable;
        oversized += over as u32;
        let whole_ok = if over {
            picked.unreadable && said.post.map.is_empty()
        } else {
            same(&ours, &said) && !ours.unreadable
        };
        // A wanted value too long to keep: the gateway refuses the request, reads nothing.
        refused += picked.unreadable as u32;
        let picked_ok = picked.unreadable
            || ["get", "post", "cookie", "request"].iter().all(|which| {
                let (a, b) = match *which {
                    "get" => (&picked.get, &said.get),
                    "post" => (&picked.post, &said.post),
                    "cookie" => (&picked.cookie, &said.cookie),
                    _ => (&picked.request, &said.request),
                };
                *a == only(b, &wanted_names)
            });
        if !(whole_ok && picked_ok) {
            differences += 1;
            if differences <= 8 {
                eprintln!(
                    "DIFFERENCE (case {n}, chunk {chunk}, all names read alike: {}):\n  {}\n  PHP:   {}\n  Vigie: {}\n",
                    whole_ok,
                    shown(&case),
                    globals(&said),
                    globals(&ours)
                );
            }
        }
    }
    eprintln!(
        "{cases} cases ({non_empty} with parameters, {refused} refused as unreadable, {oversized} of them forms past post_max_size) in {:?}, {differences} differences",
        started.elapsed()
    );
    eprintln!("bodies: {kinds:?}, {large} past 64 KiB");
    assert_eq!(differences, 0, "Vigie and PHP read requests differently");
    assert!(
        non_empty > cases / 2,
        "the corpus mostly carries parameters"
    );
}
