//! Differential: a body cut short. The gateway lets an upload past its 4 MiB hold go on before
//! the end, and judges each chunk first as the whole body it may become
//! (`BodyReader::so_far`), because PHP reads a body that stopped short: under mod_php a client
//! gone mid-body still leaves `$_POST` filled from what came. `php-cgi` reads its body from
//! stdin by the same SAPI code, so a prefix on stdin under the full `CONTENT_LENGTH` is such a
//! body. The seeded corpus is cut at random points; every difference in `$_POST` fails.

use std::io::Write;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use vigie::http::{BodyReader, RequestSpec, Vars, Wanted};

use super::corpus::{self, Case};

/// `$_POST` as `php-cgi` reads `prefix` of `case`'s body, its length declared whole.
fn php_reads_cut(spec: &RequestSpec, case: &Case, prefix: &[u8]) -> Vars {
    let mut cmd = Command::new("php-cgi");
    cmd.arg("-d").arg("display_errors=0");
    for setting in super::ini_of(spec) {
        cmd.arg("-d").arg(setting);
    }
    cmd.env_clear()
        .env("REQUEST_METHOD", case.method)
        .env("CONTENT_LENGTH", case.body.len().to_string())
        .env("SCRIPT_FILENAME", crate::prelogin::fixture("params.php"))
        .env("REDIRECT_STATUS", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1");
    if let Some(t) = &case.content_type {
        cmd.env("CONTENT_TYPE", t);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("php-cgi runs (scripts/install-deps installs it)");
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread: PHP may write a large answer before it has read the whole
    // body, or stop reading early (a body it ignores; a broken pipe is not a failure).
    let prefix = prefix.to_vec();
    let writing = std::thread::spawn(move || {
        let _ = stdin.write_all(&prefix);
    });
    let out = child.wait_with_output().unwrap();
    writing.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("php-cgi said: {text}"));
    super::vars_of(&json["post"])
}

/// `$_POST` as the gateway judges `prefix`: fed in `chunk`-byte pieces, then read as cut there.
fn vigie_reads_cut(spec: &RequestSpec, case: &Case, prefix: &[u8], chunk: usize) -> Option<Vars> {
    let declared = Some(case.body.len() as u64);
    let ct = case.content_type.as_deref();
    let mut reader = BodyReader::new(spec, Wanted::all(), case.method, ct, declared);
    for piece in prefix.chunks(chunk) {
        reader.feed(piece);
    }
    let cut = reader.so_far();
    // Unreadable: the gateway refuses, nothing of it goes on.
    (!cut.unreadable()).then(|| cut.post().clone())
}

#[test]
fn vigie_reads_a_body_cut_short_as_php_does() {
    let specs = super::settings();
    let seed = std::env::var("VIGIE_PHP_SEED").map_or(21, |s| s.parse().unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut cases, mut differences, mut non_empty, mut skipped) = (0usize, 0, 0usize, 0);
    while cases < 600 {
        let spec = &specs[cases % 2];
        let case = corpus::generate(&mut rng, spec);
        if case.body.is_empty() || case.method != "POST" {
            continue;
        }
        // Anywhere, and often near the end, where the last part is begun but not ended.
        let len = case.body.len();
        let at = if rng.random_bool(0.5) {
            rng.random_range(0..=len)
        } else {
            len - rng.random_range(0..=len.min(120))
        };
        let prefix = &case.body[..at];
        let chunk = rng.random_range(1..9000);
        let Some(ours) = vigie_reads_cut(spec, &case, prefix, chunk) else {
            skipped += 1;
            continue;
        };
        let said = php_reads_cut(spec, &case, prefix);
        cases += 1;
        non_empty += !said.map.is_empty() as usize;
        if ours != said {
            differences += 1;
            if differences <= 8 {
                eprintln!(
                    "DIFFERENCE (cut at {at} of {len}, chunk {chunk}):\n  {}\n  PHP:   {:?}\n  Vigie: {:?}\n",
                    super::shown(&case),
                    said.map.keys().map(|k| String::from_utf8_lossy(k)).collect::<Vec<_>>(),
                    ours.map.keys().map(|k| String::from_utf8_lossy(k)).collect::<Vec<_>>(),
                );
            }
        }
    }
    eprintln!(
        "{cases} cut bodies ({non_empty} with parameters; {skipped} more unreadable, refused), {differences} differences"
    );
    assert_eq!(differences, 0, "Vigie and PHP read a cut body differently");
    assert!(
        non_empty > cases / 2,
        "the cut bodies mostly carry parameters"
    );
}
