//! User names as the portal's database compares them (threat model 39).
//!
//! A portal that looks users up with `WHERE username = ?` treats every spelling its collation
//! calls equal as one account: under MariaDB's `utf8mb4_general_ci`, `Élise`, `elise` and
//! `ELISE ` all log in as `elise`. Factors, locks, budgets and privileged packs must therefore
//! be keyed by [`Collation::canonical`], or a variant spelling escapes them.
//!
//! `utf8mb4_general_ci` compares one weight per character, with no expansions or ignorable
//! characters, so mapping each character to one representative of its weight class gives a
//! key that is equal exactly when the names are. The classes come from the server itself
//! (`scripts/gen-collation-table`, checked against it by the `collation` integration test).
//! What MariaDB 10.11 says, some of it unexpected:
//! - case and accents fold (`É` = `e`), and so do `ß`, `ſ` = `s` (one `s`: `straße` = `strase`,
//!   not `strasse`), `İ`, `ı` = `i`, `µ` = `μ`, and the combining ypogegrammeni = `ι`;
//! - `ẞ` is not `ß`, `æ` is not `ae`, `ø` is not `o`, Kelvin `K` is not `K`;
//! - full-width letters fold case only: `Ａ` = `ａ`, but not `a`;
//! - trailing U+0020 is ignored (PAD SPACE); no-break space, tab and leading spaces count;
//! - every character outside the BMP weighs 0xFFFD, so `a😀` = `a🙂` = `a\u{FFFD}`.
//!
//! `utf8mb4_unicode_ci` is not offered: it expands (`ß` = `ss`) and ignores characters, so
//! it needs more than a per-character table.

mod general_ci;

/// A database collation a portal compares user names under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collation {
    /// `binary`: the bytes as they are; trailing spaces count.
    Binary,
    /// `utf8mb4_bin`: code points, trailing spaces ignored.
    Utf8mb4Bin,
    /// `utf8mb4_general_ci`: case and accents folded, trailing spaces ignored.
    Utf8mb4GeneralCi,
    /// `utf8mb4_general_nopad_ci`: folded as `utf8mb4_general_ci`; trailing spaces count.
    Utf8mb4GeneralNopadCi,
}

/// The one weight every character outside the BMP has in `utf8mb4_general_ci`.
const OUTSIDE_BMP: char = '\u{FFFD}';

impl Collation {
    /// The collation of this name, as MariaDB spells it (in any case).
    pub fn parse(name: &str) -> Option<Collation> {
        [
            Collation::Binary,
            Collation::Utf8mb4Bin,
            Collation::Utf8mb4GeneralCi,
            Collation::Utf8mb4GeneralNopadCi,
        ]
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// MariaDB's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Collation::Binary => "binary",
            Collation::Utf8mb4Bin => "utf8mb4_bin",
            Collation::Utf8mb4GeneralCi => "utf8mb4_general_ci",
            Collation::Utf8mb4GeneralNopadCi => "utf8mb4_general_nopad_ci",
        }
    }

    /// A key for `name`: two names are equal under this collation exactly when their keys
    /// are. Readable, for logs and admin commands: each character becomes a representative
    /// of its class, lower-case where there is one (`Dr.Martin` -> `dr.martin`).
    pub fn canonical(self, name: &str) -> String {
        // PAD SPACE: the shorter name compares as if padded with spaces, and only U+0020
        // weighs as a space.
        let padded = name.trim_end_matches(' ');
        match self {
            Collation::Binary => name.to_string(),
            Collation::Utf8mb4Bin => padded.to_string(),
            Collation::Utf8mb4GeneralCi => padded.chars().map(fold_general_ci).collect(),
            Collation::Utf8mb4GeneralNopadCi => name.chars().map(fold_general_ci).collect(),
        }
    }
}

/// The representative of `c`'s weight class in `utf8mb4_general_ci`.
fn fold_general_ci(c: char) -> char {
    let Ok(code) = u16::try_from(u32::from(c)) else {
        return OUTSIDE_BMP;
    };
    match general_ci::FOLD.binary_search_by_key(&code, |&(from, _)| from) {
        Ok(i) => char::from_u32(general_ci::FOLD[i].1.into())
            .expect("the table's representatives are characters (tested)"),
        Err(_) => c,
    }
}

#[cfg(test)]
mod tests;
