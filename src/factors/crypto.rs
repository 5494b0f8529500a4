//! Second-factor secrets at rest: XChaCha20-Poly1305 under a key ring read from a file or an
//! environment variable. The first key seals; every key opens, so a key rotates by putting a
//! new line first: records sealed under an older key are re-sealed the next time they are read.
//! Keyed digests (recovery codes, invitations) name their key too, so they survive rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const NONCE: usize = 24;

struct Key {
    id: String,
    aead: XChaCha20Poly1305,
    /// A separate key for digests, derived so one secret serves both uses.
    mac: [u8; 32],
}

/// The keys, current first. A reload may add keys (and put a new one first), never remove or
/// change one: what it sealed could no longer be opened.
pub struct KeyRing {
    keys: arc_swap::ArcSwap<Vec<Key>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("sealed record is malformed")]
    Malformed,
    #[error("sealed under key `{0}`, which is not in the key ring")]
    UnknownKey(String),
    #[error("sealed record failed authentication (wrong key, or tampered)")]
    Tampered,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.keys.load();
        let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "KeyRing({ids:?})")
    }
}

impl KeyRing {
    /// Parse `ID:BASE64` lines (32 bytes each; `#` comments and blank lines ignored).
    /// Errors say which line is wrong, never what it holds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((id, b64)) = line.split_once(':') else {
                return Err(format!("line {}: expected ID:BASE64", n + 1));
            };
            let id = id.trim();
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "line {}: key id must be 1-32 letters, digits, `-` or `_`",
                    n + 1
                ));
            }
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("line {}: the key is not valid base64", n + 1))?;
            let bytes: [u8; 32] = raw
                .try_into()
                .map_err(|_| format!("line {}: a key is exactly 32 bytes", n + 1))?;
            if keys.iter().any(|k: &Key| k.id == id) {
                return Err(format!("line {}: key id `{id}` appears twice", n + 1));
            }
            keys.push(Key::new(id, &bytes));
        }
        if keys.is_empty() {
            return Err("no key found".into());
        }
        Ok(Self::of(keys))
    }

    fn of(keys: Vec<Key>) -> Self {
        Self {
            keys: arc_swap::ArcSwap::from_pointee(keys),
        }
    }

    /// Whether `next` may replace this ring at a reload: every key here is in it, unchanged.
    /// `Ok(true)` when it differs (a key added, another one first).
    pub fn accepts(&self, next: &KeyRing) -> Result<bool, String> {
        let (mine, theirs) = (self.keys.load(), next.keys.load());
        for k in mine.iter() {
            match theirs.iter().find(|t| t.id == k.id) {
                Some(t) if t.mac == k.mac => {}
                Some(_) => return Err(format!("key `{}` changed: what it sealed could no longer be opened; give the new key another id", k.id)),
                None => return Err(format!("key `{}` was removed: what it sealed could no longer be opened; keep it (a restart is needed to drop a key)", k.id)),
            }
        }
        let same =
            mine.len() == theirs.len() && mine.iter().zip(theirs.iter()).all(|(a, b)| a.id == b.id);
        Ok(!same)
    }

    /// Take `next`'s keys (checked by [`KeyRing::accepts`]): new seals use its first key.
    pub fn adopt(&self, next: &KeyRing) {
        self.keys.store(next.keys.load_full());
    }

    /// A ring of one random key: the demo and tests, whose data dies with the process.
    pub fn ephemeral() -> Self {
        Self::of(vec![Key::new("ephemeral", &rand::random::<[u8; 32]>())])
    }

    /// A new key line, for `vigie keys factor-key`.
    pub fn generate_line(id: &str) -> String {
        format!("{id}:{}", STANDARD.encode(rand::random::<[u8; 32]>()))
    }

    pub fn current_id(&self) -> String {
        self.keys.load()[0].id.clone()
    }

    /// Seal `plain`, bound to `aad` (the user name: a record cannot be moved to another user).
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let keys = self.keys.load();
        let key = &keys[0];
        let nonce: [u8; NONCE] = rand::random();
        let ct = key
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory sizes");
        let mut out = Vec::with_capacity(2 + key.id.len() + NONCE + ct.len());
        out.push(VERSION);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Open a sealed record; the flag says it was sealed under an older key.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<(Vec<u8>, bool), CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Malformed)?;
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
        if version != VERSION || rest.len() < id_len as usize + NONCE {
            return Err(CryptoError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len as usize);
        let (nonce, ct) = rest.split_at(NONCE);
        let id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
        let keys = self.keys.load();
        let pos = keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_string()))?;
        let plain = keys[pos]
            .aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::Tampered)?;
        Ok((plain, pos > 0))
    }

    /// `ID:HEX` keyed digests of `data` under every key, current first: a stored digest is
    /// found whichever key made it.
    pub fn digests(&self, purpose: &str, data: &[u8]) -> Vec<String> {
        self.keys
            .load()
            .iter()
            .map(|k| {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&k.mac).expect("any length");
                mac.update(purpose.as_bytes());
                mac.update(&[0]);
                mac.update(data);
                let tag = mac.finalize().into_bytes();
                let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}:{hex}", k.id)
            })
            .collect()
    }
}

impl Key {
    fn new(id: &str, bytes: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("any length");
        mac.update(b"vigie digest key v1");
        Self {
            id: id.to_string(),
            aead: XChaCha20Poly1305::new(bytes.into()),
            mac: mac.finalize().into_bytes().into(),
        }
    }
}

#[cfg(test)]
mod tests;
