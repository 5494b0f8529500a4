//! Property tests of the parsers an attacker feeds (threat model case 35): whatever comes in,
//! no panic, and each keeps the promise the gateway relies on. Case counts sized for CI.

use proptest::prelude::*;

use crate::http::{read_all, BodyReader, Raw, RequestSpec, Wanted, MAX_KEPT};
use crate::identity::token::{SessionId, TokenCodec};
use crate::identity::vault::{parse_cookie_header, upstream_cookie_header, VaultedCookie};

/// 300 cases a property in the suite; `PROPTEST_CASES=20000` for a deeper search by hand.
fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok());
    ProptestConfig {
        cases: cases.unwrap_or(300),
        ..ProptestConfig::default()
    }
}

/// The pieces normalisation bypasses are built from.
const TARGET_PIECES: &[&str] = &[
    "/",
    "//",
    "..",
    ".",
    ";",
    "%2e",
    "%2F",
    "%25",
    "%c0%af",
    "%61",
    "?",
    "&",
    "=",
    "\\",
    "http://ehr.local",
];

/// The separators and escapes that matter in a portal's form bodies.
const FORM_PIECES: &[&str] = &[
    "&",
    "=",
    "[]",
    "[a]",
    "+",
    "%26",
    "%3D",
    "%5B",
    "%",
    "patient_id",
    ".",
    " ",
];

/// Request targets made of those pieces and plain text.
fn target() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(TARGET_PIECES).prop_map(str::to_string),
        1 => "[a-zA-Z0-9_~-]{1,6}",
        1 => "%[0-9a-fA-F]{2}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// Bodies of the shapes a portal's forms take.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(FORM_PIECES).prop_map(str::to_string),
        1 => "[a-z0-9]{1,4}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat().into_bytes())
}

fn multipart_body() -> impl Strategy<Value = Vec<u8>> {
    let part = (
        "[a-z_\\[\\]]{1,8}",
        prop::option::of("[a-z.]{1,6}"),
        "[a-z0-9 =&\r\n-]{0,20}",
    )
        .prop_map(|(name, file, value)| {
            let file = file.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n"
            )
        });
    prop::collection::vec(part, 0..5)
        .prop_map(|parts| format!("{}--XyZ--\r\n", parts.concat()).into_bytes())
}

/// JSON request bodies (an API call naming a patient) of a given total length: short ones, and
/// ones within a few bytes of the bound on what is kept.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let len = prop_oneof![
        3 => 30usize..300,
        1 => (MAX_KEPT - 3)..(MAX_KEPT + 3),
    ];
    (any::<u32>(), len).prop_map(|(id, len)| {
        let doc = |pad: &str| format!("{{\"patient\":{{\"id\":{id}}},\"pad\":\"{pad}\"}}");
        let pad = " ".repeat(len.saturating_sub(doc("").len()));
        doc(&pad).into_bytes()
    })
}

fn read(content_type: &str, body: &[u8], chunk: usize) -> crate::http::Superglobals {
    let raw = Raw {
        method: "POST",
        query: b"",
        cookie: None,
        content_type: Some(content_type),
        body,
    };
    read_all(&RequestSpec::php(), &Wanted::all(), raw, chunk)
}

proptest! {
    #![proptest_config(cases())]

    /// The canonical form is a fixed point: what the portal receives normalises to itself, so
    /// the policy and the portal read one path.
    #[test]
    fn the_target_normaliser_never_panics_and_its_canonical_form_is_a_fixed_point(raw in target()) {
        if let Ok(t) = crate::http::normalise_target(&raw) {
            prop_assert!(t.path.starts_with('/'), "{raw:?} -> {:?}", t.path);
            let again = crate::http::normalise_target(&t.to_uri());
            prop_assert_eq!(again.as_ref().map(|a| (&a.path, &a.query)), Ok((&t.path, &t.query)), "{}", raw);
        }
    }

    /// A body streamed in pieces of any size is read as the whole body is: the way an attacker
    /// cuts the TCP stream changes nothing in what the detector and the policy see.
    #[test]
    fn a_form_is_read_the_same_however_its_body_is_cut(body in form_body(), chunk in 1usize..64) {
        let ct = "application/x-www-form-urlencoded";
        prop_assert_eq!(read(ct, &body, chunk), read(ct, &body, usize::MAX));
    }

    #[test]
    fn a_multipart_body_is_read_the_same_however_it_is_cut(body in multipart_body(), chunk in 1usize..64) {
        let ct = "multipart/form-data; boundary=XyZ";
        prop_assert_eq!(read(ct, &body, chunk), read(ct, &body, usize::MAX));
    }

    /// A JSON body, where the detector's pointers find the patient id, is kept whole however
    /// it is cut and whatever method carries it; past the bound it is dropped whole, never
    /// kept in part (a truncated body could read as another document).
    #[test]
    fn a_json_body_is_kept_whole_however_it_is_cut(
        body in json_body(),
        chunk in prop_oneof![1usize..64, 1000usize..5000],
        method in prop::sample::select(&["POST", "PUT", "PATCH", "DELETE"][..]),
    ) {
        let mut reader = BodyReader::new(
            &RequestSpec::php(),
            Wanted::all(),
            method,
            Some("Application/JSON; charset=utf-8"),
            None,
        );
        for piece in body.chunks(chunk) {
            reader.feed(piece);
        }
        reader.finish();
        let kept = (body.len() <= MAX_KEPT).then_some(&body[..]);
        prop_assert_eq!(reader.json(), kept, "{} bytes in pieces of {}", body.len(), chunk);
    }

    /// Anyone's token decodes to nothing unless the gateway made it; ours round-trips, and one
    /// changed character makes it nobody's.
    #[test]
    fn session_tokens_decode_only_as_made(junk in "\\PC{0,120}", id in any::<[u8; 32]>(), at in 0usize..64) {
        let codec = TokenCodec::new(b"a key of the gateway's own, 32 b");
        let _ = codec.decode(&junk);
        let token = codec.encode(&SessionId(id));
        prop_assert_eq!(codec.decode(&token), Some(SessionId(id)));
        let at = at % token.len();
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        if changed != token {
            prop_assert_eq!(codec.decode(&changed), None);
        }
    }

    /// Whatever cookies the browser sends, under whatever spelling, the portal's session cookie
    /// upstream is the vault's, once, as PHP reads it too, and the gateway's own never goes.
    #[test]
    fn a_browser_copy_of_a_session_cookie_never_goes_upstream(
        pairs in prop::collection::vec((prop_oneof![
            Just("mediboard_session"), Just("mediboard.session"), Just("mediboard session"),
            Just("mediboard[session"), Just("mediboard_session[]"), Just("Mediboard_session"),
            Just("vigie"), Just("__Host-vigie"), Just("lang"), Just("csrf"),
        ], "[a-zA-Z0-9=;, _.]{0,12}"), 0..8),
        vault_value in "[a-f0-9]{8,32}",
    ) {
        let header: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let header = header.join("; ");
        let vault = [VaultedCookie { name: "mediboard_session".into(), value: vault_value.clone() }];
        let gateway = ["vigie".to_string(), "__Host-vigie".to_string()];
        let sessions = ["mediboard_session".to_string()];
        let out = upstream_cookie_header([header.as_str()].into_iter(), &gateway, &sessions, &vault, None)
            .unwrap_or_default();
        let sent: Vec<(&str, &str)> = parse_cookie_header(&out).collect();
        let session: Vec<&str> = sent.iter().filter(|(k, _)| *k == "mediboard_session").map(|(_, v)| *v).collect();
        prop_assert_eq!(session, vec![vault_value.as_str()], "{}", out);
        let php = crate::http::read_cookies(
            &crate::http::RequestSpec::php(),
            out.as_bytes(),
            &crate::http::Wanted::names(["mediboard_session"]),
        );
        prop_assert_eq!(php.scalar("mediboard_session"), Some(vault_value.clone()), "{}", out);
        prop_assert!(sent.iter().all(|(k, _)| !gateway.iter().any(|g| g == k)), "{}", out);
    }

    /// A configuration file of any content is refused with errors, never a panic.
    #[test]
    fn the_config_loader_never_panics(text in "(\\[[a-z_.]{1,12}\\]\n|[a-z_]{1,10} = (\"[^\"\n]{0,10}\"|[0-9]{1,6}|true|\\[\\])\n|#.*\n){0,12}") {
        let _ = crate::config::Config::from_toml(std::path::Path::new("props.toml"), &text);
    }
}

/// The names a profile reads, as a client may spell them to PHP or to a servlet container:
/// encoded, with PHP's folded bytes, a NUL, array brackets, a dangling `[`.
const NAME_SPELLINGS: &[&str] = &[
    "patient_id",
    "%70atient_id",
    "patient.id",
    "patient id",
    "+patient_id",
    "patient_id%00junk",
    "patient_id[]",
    "patient_id[k]",
    "patient_id[",
    "patient_id]",
    "limit",
    "per_page",
    "per_page[]",
    "page",
    "raw",
    "r%61w",
    "other",
];

/// The names the profile's rules ask for.
const READ_NAMES: &[&str] = &[
    "patient_id",
    "patient_id]",
    "limit",
    "per_page",
    "page",
    "raw",
];

/// A query of those names with values, repeats and empty pieces; sometimes with a filler of
/// other variables around PHP's `max_input_vars` (1000) before the last pairs.
fn query() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just(String::new()),
        "[0-9]{1,4}",
        Just("export".to_string()),
        Just("a+b".to_string()),
        Just("%41%00".to_string()),
        Just("1%26raw%3Dexport".to_string()),
    ];
    let pair = (prop::sample::select(NAME_SPELLINGS), value, any::<bool>()).prop_map(
        |(n, v, eq)| match (eq, v.is_empty()) {
            (false, true) => n.to_string(),
            _ => format!("{n}={v}"),
        },
    );
    (
        prop::collection::vec(pair, 0..8),
        prop::option::weighted(0.2, 995usize..1003),
        0usize..8,
    )
        .prop_map(|(mut pairs, filler, at)| {
            if let Some(n) = filler {
                let fill: Vec<String> = (0..n).map(|i| format!("f{i}=1")).collect();
                pairs.insert(at.min(pairs.len()), fill.join("&"));
            }
            pairs.join("&")
        })
}

/// A query with two or more of the profile's page-size names in it, before or after the rest:
/// a decoy size always meets another.
fn paged_query() -> impl Strategy<Value = String> {
    let names = &[
        "limit",
        "count",
        "page_size",
        "per_page",
        "l%69mit",
        "per_page[]",
    ][..];
    let size = (prop::sample::select(names), "[0-9]{1,5}").prop_map(|(n, v)| format!("{n}={v}"));
    (query(), prop::collection::vec(size, 2..4), any::<bool>()).prop_map(|(q, sizes, after)| {
        let sizes = sizes.join("&");
        match (q.is_empty(), after) {
            (true, _) => sizes,
            (false, true) => format!("{q}&{sizes}"),
            (false, false) => format!("{sizes}&{q}"),
        }
    })
}

fn reading_of(first: bool) -> crate::policy::matcher::QueryReading {
    match first {
        true => crate::policy::matcher::QueryReading::First,
        false => crate::policy::matcher::QueryReading::Last,
    }
}

proptest! {
    #![proptest_config(cases())]

    /// A profile's rules read a parameter of the raw query (policy rules, endpoint classes)
    /// as the portal's script does (the one reader, itself compared with PHP 8): a repeat, an
    /// encoded or folded name, an array change both or neither; a query with a decoy past
    /// `max_input_vars`, which the script reads only in part, never reaches the portal.
    #[test]
    fn a_rule_reads_a_query_parameter_as_the_portal_script_does(q in query(), first in any::<bool>()) {
        let reading = reading_of(first);
        let spec = crate::http::RequestSpec::for_reading(reading);
        if !crate::http::reads_whole_query(&spec, q.as_bytes()) {
            return Ok(());
        }
        let script = crate::http::read_query(&spec, q.as_bytes(), &crate::http::Wanted::all());
        for name in READ_NAMES {
            let rule = crate::policy::matcher::param(Some(&q), name, reading);
            prop_assert_eq!(rule, script.scalar(name), "{} in {:.200}", name, q);
        }
    }

    /// The detector's view of a request (the reader's variables as a query) keeps every
    /// scalar the script sees, and an array is never read as a value.
    #[test]
    fn the_detector_view_keeps_what_the_script_sees(q in query(), first in any::<bool>()) {
        let reading = reading_of(first);
        let spec = crate::http::RequestSpec::for_reading(reading);
        let wanted = crate::http::Wanted::names(READ_NAMES.iter().copied());
        let script = crate::http::read_query(&spec, q.as_bytes(), &wanted);
        let view = script.to_query();
        for name in READ_NAMES {
            let read = crate::policy::matcher::param(Some(&view), name, reading);
            prop_assert_eq!(read, script.scalar(name), "{} in {} from {:.200}", name, view, q);
        }
    }

    /// The page the detector counts is never smaller than a size the script reads under any
    /// of the profile's names: a decoy `limit=1` beside the `per_page=10000` the portal
    /// reads does not hide the big page.
    #[test]
    fn the_page_counted_is_never_smaller_than_a_size_the_script_reads(q in paged_query(), first in any::<bool>()) {
        let reading = reading_of(first);
        let spec = crate::http::RequestSpec::for_reading(reading);
        let script = crate::http::read_query(&spec, q.as_bytes(), &crate::http::Wanted::all());
        let profile = crate::detect::reading::Reading::default();
        // The detector is handed the script's variables as a query (`portal_params`), not the
        // raw query: past `max_input_vars` the two differ (and the front refuses such a query).
        let view = script.to_query();
        let page = profile
            .read_request("GET", "/list", Some(&view), None, "list", reading)
            .page
            .expect("a listing is paged");
        for name in &profile.paging.size {
            let Some(v) = script.scalar(name).filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) else {
                continue;
            };
            let asked = v.parse::<u64>().unwrap_or(u64::MAX).min(u32::MAX as u64);
            prop_assert!(page.size as u64 >= asked, "{} = {} but {} counted in {:.200}", name, v, page.size, q);
        }
    }
}
