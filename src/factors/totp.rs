//! TOTP (RFC 6238) with `totp-rs`: 6 digits, 30-second steps, one step of tolerance either
//! side. Which step matched is returned so the store can refuse any step not newer than the
//! last one accepted (replay, threat model 18).

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: usize = 6;
/// Secret length: 160 bits, what RFC 4226 recommends and every authenticator app accepts.
pub const SECRET_BYTES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Some(Hash::Sha1),
            "SHA256" => Some(Hash::Sha256),
            "SHA512" => Some(Hash::Sha512),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA1",
            Hash::Sha256 => "SHA256",
            Hash::Sha512 => "SHA512",
        }
    }
    fn algorithm(self) -> Algorithm {
        match self {
            Hash::Sha1 => Algorithm::SHA1,
            Hash::Sha256 => Algorithm::SHA256,
            Hash::Sha512 => Algorithm::SHA512,
        }
    }
}

/// A code as typed: exactly six ASCII digits. Anything else (five or seven digits, spaces,
/// full-width digits, NUL, signs) is refused before any comparison (threat model 19).
pub fn parse_code(raw: &str) -> Option<&str> {
    (raw.len() == DIGITS && raw.bytes().all(|b| b.is_ascii_digit())).then_some(raw)
}

pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; SECRET_BYTES]>().to_vec()
}

fn totp(secret: &[u8], hash: Hash, issuer: &str, account: &str) -> TOTP {
    // totp-rs refuses `:` in labels; it separates issuer and account in the URL.
    let clean = |s: &str| s.replace(':', "_");
    TOTP::new_unchecked(
        hash.algorithm(),
        DIGITS,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(clean(issuer)),
        clean(account),
    )
}

/// The code for unix time `t`.
pub fn code_at(secret: &[u8], hash: Hash, t: u64) -> String {
    totp(secret, hash, "", "").generate(t)
}

/// The step (`t / 30`) whose code `code` is, within one step of `now`; every candidate is
/// compared in constant time.
pub fn matching_step(secret: &[u8], hash: Hash, code: &str, now: u64) -> Option<u64> {
    let code = parse_code(code)?;
    let t = totp(secret, hash, "", "");
    let current = now / STEP_SECONDS;
    let mut found = None;
    for step in current.saturating_sub(1)..=current + 1 {
        let candidate = t.generate(step * STEP_SECONDS);
        if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URL an authenticator app reads from the QR code.
pub fn otpauth_url(secret: &[u8], hash: Hash, issuer: &str, account: &str) -> String {
    totp(secret, hash, issuer, account).get_url()
}

/// The secret as base32, in groups of four for typing by hand.
pub fn secret_for_typing(secret: &[u8]) -> String {
    let b32 = totp(secret, Hash::Sha1, "", "").get_secret_base32();
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The QR code of `url` as inline SVG (no external asset, allowed by the pages' CSP).
pub fn qr_svg(url: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B secret (ASCII "12345678901234567890").
    const RFC: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors() {
        // Appendix B lists 8-digit codes; the last six digits are the 6-digit codes.
        assert_eq!(code_at(RFC, Hash::Sha1, 59), "287082");
        assert_eq!(code_at(RFC, Hash::Sha1, 1_111_111_109), "081804");
        assert_eq!(code_at(RFC, Hash::Sha1, 1_234_567_890), "005924");
    }

    #[test]
    fn one_step_of_tolerance_and_no_more() {
        let s = new_secret();
        let now = 1_700_000_015;
        let step = now / STEP_SECONDS;
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let t = ((step as i64 + offset) as u64) * STEP_SECONDS;
            let code = code_at(&s, Hash::Sha1, t);
            let got = matching_step(&s, Hash::Sha1, &code, now);
            if ok {
                assert_eq!(got, Some(t / STEP_SECONDS), "offset {offset}");
            } else {
                // A far step's code may collide with a near one by chance (1 in 10^6).
                assert_ne!(got, Some(t / STEP_SECONDS), "offset {offset}");
            }
        }
    }

    #[test]
    fn only_six_ascii_digits_are_codes() {
        assert_eq!(parse_code("012345"), Some("012345"));
        for bad in [
            "12345",
            "1234567",
            "123 456",
            " 123456",
            "１２３４５６",
            "12345\0",
            "+12345",
            "-12345",
            "[123456]",
            "",
        ] {
            assert_eq!(parse_code(bad), None, "{bad:?}");
        }
        let s = new_secret();
        let code = code_at(&s, Hash::Sha1, 1000);
        assert_eq!(
            matching_step(&s, Hash::Sha1, &format!("{code} "), 1000),
            None
        );
    }

    #[test]
    fn enrollment_material() {
        let s = new_secret();
        let url = otpauth_url(&s, Hash::Sha1, "Vigie CHU", "dr:martin");
        assert!(url.starts_with("otpauth://totp/"), "{url}");
        assert!(url.contains("secret=") && url.contains("issuer=Vigie"));
        assert!(qr_svg(&url).starts_with("<?xml") || qr_svg(&url).starts_with("<svg"));
        assert_eq!(secret_for_typing(&s).replace(' ', "").len(), 32);
    }
}
