//! User-name keys against the real MariaDB on 127.0.0.1:3306 (threat model 39): two names must
//! have equal keys exactly when the server's `=` says they are equal, or a spelling the portal
//! takes for an account escapes that account's factors, locks and budgets.
//!
//! Strings go to the server as hex literals, so no quoting or client character set is involved.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigie::identity::collation::Collation;

/// Statements to the server in one session (so temporary tables live until the end); the
/// rows of the output, tab-separated fields.
fn mariadb(sql: &str) -> Vec<Vec<String>> {
    let mut child = Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client runs");
    let mut stdin = child.stdin.take().unwrap();
    let sql = sql.to_string();
    // Written from a thread: the server's answer must not wait on the rest of the input.
    let writer = std::thread::spawn(move || stdin.write_all(sql.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "mariadb on 127.0.0.1:3306 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn literal(s: &str) -> String {
    let hex: String = s.bytes().map(|b| format!("{b:02X}")).collect();
    format!("_utf8mb4 X'{hex}'")
}

/// Every character of the blocks user names are spelled in, characters with known surprises,
/// random BMP characters (fixed seed) and a few outside the BMP.
fn code_points() -> Vec<char> {
    let mut rng = ChaCha8Rng::seed_from_u64(39);
    let mut set: BTreeSet<char> = BTreeSet::new();
    let ranges = [
        0x0000..=0x024F, // ASCII, Latin-1, Latin Extended-A and -B
        0x0300..=0x04FF, // combining marks, Greek, Cyrillic
        0x1E00..=0x1FFF, // Latin Extended Additional, Greek Extended
        0xFF00..=0xFFFF, // full-width and half-width forms, specials
    ];
    set.extend(ranges.into_iter().flatten().filter_map(char::from_u32));
    set.extend([
        '\u{2126}', '\u{212A}', '\u{212B}', '\u{2160}', '\u{24B6}', '\u{3000}',
    ]);
    while set.len() < 3500 {
        set.extend(char::from_u32(rng.random_range(0..=0xFFFF)));
    }
    set.extend(['😀', '🙂', '\u{10000}', '\u{10FFFF}', '\u{1D400}']);
    set.into_iter().collect()
}

/// Pairs (by code point, smaller first) MariaDB's `utf8mb4_general_ci` calls equal.
fn mariadb_equal_pairs(chars: &[char]) -> BTreeSet<(u32, u32)> {
    let rows: Vec<String> = chars
        .iter()
        .map(|&c| format!("({}, {})", u32::from(c), literal(&c.to_string())))
        .collect();
    let sql = format!(
        "CREATE TEMPORARY TABLE cp (n INT PRIMARY KEY, c VARCHAR(1) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin);\n\
         INSERT INTO cp VALUES {};\n\
         SELECT a.n, b.n FROM cp a JOIN cp b ON a.c = b.c COLLATE utf8mb4_general_ci WHERE a.n < b.n;\n",
        rows.join(",\n")
    );
    mariadb(&sql)
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect()
}

fn show(n: u32) -> String {
    format!("U+{n:04X} {:?}", char::from_u32(n).unwrap())
}

#[test]
fn code_point_keys_agree_with_mariadb() {
    let started = std::time::Instant::now();
    let chars = code_points();
    let theirs = mariadb_equal_pairs(&chars);
    let mut by_key: HashMap<String, Vec<u32>> = HashMap::new();
    for &c in &chars {
        by_key
            .entry(Collation::Utf8mb4GeneralCi.canonical(&c.to_string()))
            .or_default()
            .push(c.into());
    }
    let mut ours = BTreeSet::new();
    for class in by_key.values() {
        for (i, &a) in class.iter().enumerate() {
            ours.extend(class[i + 1..].iter().map(|&b| (a.min(b), a.max(b))));
        }
    }
    let missed: Vec<_> = theirs.difference(&ours).take(20).collect();
    let extra: Vec<_> = ours.difference(&theirs).take(20).collect();
    let describe = |pairs: Vec<&(u32, u32)>| -> Vec<String> {
        pairs
            .into_iter()
            .map(|&(a, b)| format!("{} = {}", show(a), show(b)))
            .collect()
    };
    assert!(
        missed.is_empty() && extra.is_empty(),
        "over {} characters ({} equal pairs for MariaDB):\nequal for MariaDB, not for us: {:#?}\nequal for us, not for MariaDB: {:#?}",
        chars.len(),
        theirs.len(),
        describe(missed),
        describe(extra)
    );
    // Enough equal pairs that a gap in the table would show.
    assert!(theirs.len() > 3000, "{}", theirs.len());
    eprintln!(
        "{} characters, {} equal pairs, {:?}",
        chars.len(),
        theirs.len(),
        started.elapsed()
    );
}

/// A random name and a variant of it: characters swapped for ones MariaDB says are equal,
/// sometimes one character changed, spaces (and look-alikes) added at either end.
fn name_pair(
    rng: &mut ChaCha8Rng,
    chars: &[char],
    equal: &HashMap<char, Vec<char>>,
) -> (String, String) {
    const PLAIN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    let len = rng.random_range(1..=8);
    let name: Vec<char> = (0..len)
        .map(|_| {
            if rng.random_bool(0.6) {
                PLAIN[rng.random_range(0..PLAIN.len())].into()
            } else {
                chars[rng.random_range(0..chars.len())]
            }
        })
        .collect();
    let mut variant: Vec<char> = name
        .iter()
        .map(|c| match equal.get(c) {
            Some(others) if rng.random_bool(0.7) => others[rng.random_range(0..others.len())],
            _ => *c,
        })
        .collect();
    if rng.random_bool(0.25) {
        let i = rng.random_range(0..variant.len());
        variant[i] = chars[rng.random_range(0..chars.len())];
    }
    let mut name: String = name.into_iter().collect();
    let mut variant: String = variant.into_iter().collect();
    for s in [&mut name, &mut variant] {
        // Mostly plain spaces (ignored), sometimes characters that only look like padding.
        let ends = [" ", " ", "  ", "\u{A0}", "\t", "\u{3000}"];
        if rng.random_bool(0.4) {
            s.push_str(ends[rng.random_range(0..ends.len())]);
        }
        if rng.random_bool(0.05) {
            s.insert(0, ' ');
        }
    }
    (name, variant)
}

#[test]
fn name_keys_agree_with_mariadb() {
    let started = std::time::Instant::now();
    let chars = code_points();
    let mut equal: HashMap<char, Vec<char>> = HashMap::new();
    for (a, b) in mariadb_equal_pairs(&chars) {
        let (a, b) = (char::from_u32(a).unwrap(), char::from_u32(b).unwrap());
        equal.entry(a).or_default().push(b);
        equal.entry(b).or_default().push(a);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(3939);
    let pairs: Vec<(String, String)> = (0..3000)
        .map(|_| name_pair(&mut rng, &chars, &equal))
        .collect();
    let rows: Vec<String> = pairs
        .iter()
        .enumerate()
        .map(|(i, (a, b))| format!("({i}, {}, {})", literal(a), literal(b)))
        .collect();
    // VARCHAR keeps trailing spaces; the lengths read back prove it did.
    let sql = format!(
        "CREATE TEMPORARY TABLE p (i INT PRIMARY KEY, a VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, b VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin);\n\
         INSERT INTO p VALUES {};\n\
         SELECT i, OCTET_LENGTH(a), OCTET_LENGTH(b), a = b COLLATE utf8mb4_general_ci, a = b COLLATE utf8mb4_general_nopad_ci, a = b, BINARY a = BINARY b FROM p ORDER BY i;\n",
        rows.join(",\n")
    );
    let answers = mariadb(&sql);
    assert_eq!(answers.len(), pairs.len());
    let collations = [
        Collation::Utf8mb4GeneralCi,
        Collation::Utf8mb4GeneralNopadCi,
        Collation::Utf8mb4Bin,
        Collation::Binary,
    ];
    let mut equal_count = [0; 4];
    for (row, (a, b)) in answers.iter().zip(&pairs) {
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            (&*a.len().to_string(), &*b.len().to_string())
        );
        for (k, collation) in collations.into_iter().enumerate() {
            let theirs = row[3 + k] == "1";
            let ours = collation.canonical(a) == collation.canonical(b);
            assert_eq!(
                ours,
                theirs,
                "{}: {a:?} vs {b:?}: MariaDB says {}, keys {:?} and {:?}",
                collation.name(),
                if theirs { "equal" } else { "different" },
                collation.canonical(a),
                collation.canonical(b)
            );
            equal_count[k] += usize::from(theirs);
        }
    }
    // Both answers common enough to mean something.
    assert!(
        equal_count[0] > 1000 && equal_count[0] < 2500,
        "{equal_count:?}"
    );
    eprintln!(
        "{} name pairs, equal per collation {equal_count:?}, {:?}",
        pairs.len(),
        started.elapsed()
    );
}
