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

/// A code as typed: six ASCII digits, or the two halves apps display (`123 456`,
/// `123-456`: one ASCII space or hyphen between them), given back as six digits. Anything
/// else (five or seven digits, other spaces, full-width digits, NUL, signs) is refused
/// before any comparison (threat model 19).
pub fn parse_code(raw: &str) -> Option<String> {
    let digits = |s: &str| s.len() == DIGITS / 2 && s.bytes().all(|b| b.is_ascii_digit());
    let b = raw.as_bytes();
    match raw.len() {
        DIGITS if b.iter().all(u8::is_ascii_digit) => Some(raw.to_string()),
        7 if matches!(b[DIGITS / 2], b' ' | b'-')
            && digits(&raw[..DIGITS / 2])
            && digits(&raw[DIGITS / 2 + 1..]) =>
        {
            Some(format!("{}{}", &raw[..DIGITS / 2], &raw[DIGITS / 2 + 1..]))
        }
        _ => None,
    }
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
    let code = code.as_str();
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
mod tests;
