//! Whose pages these are: the portal's own name (and logo) on every page the gateway shows
//! in front of it, so a clinician who expects "Mediboard — CHU" does not meet an unknown
//! product name on a login step and suspect phishing.

use std::sync::Arc;

use bytes::Bytes;

/// Where a portal's logo is served, on the portal's own host.
pub const LOGO_PATH: &str = "/.vigie/logo";
/// Larger files are refused by the configuration check (a logo, not a photo).
pub const MAX_LOGO_BYTES: usize = 256 * 1024;

pub struct Brand {
    pub name: String,
    pub logo: Option<Logo>,
    /// The help desk's number or extension, on every refusal page (`[[portal]] help_desk`).
    pub help_desk: Option<String>,
    /// The hospital's time zone (`policy.time_zone`): times on pages are in it.
    pub zone: jiff::tz::TimeZone,
}

pub struct Logo {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl std::fmt::Debug for Brand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The logo's bytes are compared by length and a digest, not printed.
        let logo = self.logo.as_ref().map(|l| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(&l.bytes);
            format!("{} {} bytes {:x}", l.content_type, l.bytes.len(), digest)
        });
        f.debug_struct("Brand")
            .field("name", &self.name)
            .field("logo", &logo)
            .field("help_desk", &self.help_desk)
            .field("zone", &self.zone.iana_name())
            .finish()
    }
}

static DEFAULT: once_cell::sync::Lazy<Arc<Brand>> = once_cell::sync::Lazy::new(|| {
    Arc::new(Brand {
        name: "Vigie".into(),
        logo: None,
        help_desk: None,
        zone: jiff::tz::TimeZone::system(),
    })
});

impl Brand {
    /// For pages shown before any portal is known (an unknown host, a malformed request).
    pub fn neutral() -> Arc<Brand> {
        DEFAULT.clone()
    }
}

/// The image type of `bytes`, from its first bytes: PNG, JPEG, GIF or WebP. SVG is refused:
/// it can carry script, and the logo is served from the portal's own origin.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_first_bytes_and_svg_is_not_one() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a"), Some("image/gif"));
        assert_eq!(image_type(b"RIFF1234WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b"\x89PNG"), None);
    }
}
