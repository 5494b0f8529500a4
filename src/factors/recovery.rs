//! Recovery codes: ten single-use codes shown once, stored only as keyed digests.

/// No 0/o, 1/l/i: codes are read off paper.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
pub const COUNT: usize = 10;
const LEN: usize = 10;

/// Fresh codes, formatted `xxxxx-xxxxx` (about 49 bits each).
pub fn generate() -> Vec<String> {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let raw: String = (0..LEN)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &raw[..5], &raw[5..])
        })
        .collect()
}

/// The canonical form of a typed code (case, dashes and spaces ignored), or `None` when it
/// cannot be a code at all.
pub fn normalise(raw: &str) -> Option<String> {
    if raw.len() > 32 {
        return None;
    }
    let s: String = raw
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests;
