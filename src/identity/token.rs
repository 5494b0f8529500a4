//! Session tokens: an opaque random id, MAC-signed, so forged or mangled cookies are refused
//! without touching the session store. The token carries no personal data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// 256-bit session id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub [u8; 32]);

impl std::fmt::Debug for SessionId {
    // Never print a live session id: it is a bearer credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.fingerprint())
    }
}

impl SessionId {
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// How stores name the session (the SHA-256 of the id, in hex), never by the id itself:
    /// a copy of a store's keys is no bearer token.
    pub fn stored_name(&self) -> String {
        use sha2::Digest;
        Sha256::digest(self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A short, non-reversible label for logs and the SOC console.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let h = Sha256::digest(self.0);
        h[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

const MAC_LEN: usize = 16;
/// Longest token accepted: base64 of 32 + 16 bytes plus the separator.
const MAX_TOKEN_LEN: usize = 43 + 1 + 22;

/// Signs and verifies tokens with a secret key.
#[derive(Clone)]
pub struct TokenCodec {
    key: Vec<u8>,
}

impl TokenCodec {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, id: &SessionId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"vigie-session-v1");
        mac.update(&id.0);
        mac
    }

    pub fn encode(&self, id: &SessionId) -> String {
        let tag = self.mac(id).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(id.0),
            URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
        )
    }

    /// The id, if the token is well-formed and its MAC verifies (in constant time).
    pub fn decode(&self, token: &str) -> Option<SessionId> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (id, tag) = token.split_once('.')?;
        let id: [u8; 32] = URL_SAFE_NO_PAD.decode(id).ok()?.try_into().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let id = SessionId(id);
        self.mac(&id)
            .verify_truncated_left(&tag)
            .ok()
            .filter(|_| tag.len() == MAC_LEN)?;
        Some(id)
    }
}

#[cfg(test)]
mod tests;
