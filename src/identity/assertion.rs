//! Signed identity assertions for portals that trust a gateway-set identity: a short-lived
//! JWT (EdDSA, with `kid`) on every forwarded request, public keys at `/.well-known/jwks.json`.
//!
//! Keys are Ed25519 PEM files in a folder; the newest (by file name) signs, the others stay
//! published so tokens signed before a rotation still verify until they expire.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The only algorithm accepted, fixed in code (threat model 13): no `none`, no HMAC confusion.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;

/// What a portal learns about the person behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub groups: Vec<String>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    /// Authentication level (`password`, `second_factor`, `phishing_resistant`).
    pub acr: String,
    /// Session fingerprint, to correlate with the gateway's logs.
    pub sid: String,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// Raw public key, base64url (the JWK `x`).
    x: String,
}

pub struct AssertionKeys {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for AssertionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        write!(f, "AssertionKeys({kids:?})")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key folder `{0}`: {1}")]
    Folder(String, std::io::Error),
    #[error("no `.pem` key in `{0}`: create one with `vigie keys generate --dir {0}`")]
    Empty(String),
    #[error("`{0}` is not an Ed25519 private key in PEM: {1}")]
    BadKey(String, String),
}

/// A new Ed25519 private key, PKCS#8 PEM.
pub fn generate_pem() -> Vec<u8> {
    let key = openssl::pkey::PKey::generate_ed25519().expect("Ed25519 key generation");
    key.private_key_to_pem_pkcs8().expect("PEM encoding")
}

fn signing_key(kid: String, pem: &[u8]) -> Result<SigningKey, String> {
    let pkey = openssl::pkey::PKey::private_key_from_pem(pem).map_err(|e| e.to_string())?;
    if pkey.id() != openssl::pkey::Id::ED25519 {
        return Err("not an Ed25519 key".into());
    }
    let raw = pkey.raw_public_key().map_err(|e| e.to_string())?;
    let encoding = EncodingKey::from_ed_pem(pem).map_err(|e| e.to_string())?;
    Ok(SigningKey {
        kid,
        encoding,
        x: URL_SAFE_NO_PAD.encode(raw),
    })
}

impl AssertionKeys {
    /// Every `*.pem` in `dir`, sorted by name; the last one signs.
    pub fn load_dir(dir: &Path) -> Result<Self, KeyError> {
        let shown = dir.display().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| KeyError::Folder(shown.clone(), e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        files.sort();
        let mut keys = Vec::new();
        for f in files {
            let pem =
                std::fs::read(&f).map_err(|e| KeyError::Folder(f.display().to_string(), e))?;
            let kid = f
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned());
            keys.push(
                signing_key(kid, &pem).map_err(|e| KeyError::BadKey(f.display().to_string(), e))?,
            );
        }
        if keys.is_empty() {
            return Err(KeyError::Empty(shown));
        }
        Ok(Self { keys })
    }

    /// One key for this process only (demo, or a gateway without gateway-owned logins).
    pub fn ephemeral() -> Self {
        let kid = format!("ephemeral-{:08x}", rand::random::<u32>());
        Self {
            keys: vec![signing_key(kid, &generate_pem()).expect("a fresh key is valid")],
        }
    }

    pub fn sign(&self, claims: &AssertionClaims) -> String {
        let key = self.keys.last().expect("at least one key");
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("EdDSA signing cannot fail with a valid key")
    }

    /// `(kid, x)` of every published key.
    pub fn public_keys(&self) -> Vec<(String, String)> {
        self.keys
            .iter()
            .map(|k| (k.kid.clone(), k.x.clone()))
            .collect()
    }

    /// The JWKS document.
    pub fn jwks_json(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": k.x, "kid": k.kid, "use": "sig", "alg": "EdDSA" }))
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Verify an assertion the way a portal should: EdDSA only, a published `kid`, signature,
/// issuer, audience, expiry and not-before, no leeway.
pub fn verify(
    token: &str,
    keys: &[(String, String)],
    issuer: &str,
    audience: &str,
) -> Result<AssertionClaims, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.alg != ALGORITHM {
        return Err(VerifyError::Algorithm);
    }
    let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
    let (_, x) = keys
        .iter()
        .find(|(k, _)| *k == kid)
        .ok_or(VerifyError::UnknownKey)?;
    let key =
        DecodingKey::from_ed_components(x).map_err(|e| VerifyError::Invalid(e.to_string()))?;
    let mut v = Validation::new(ALGORITHM);
    v.algorithms = vec![ALGORITHM];
    v.leeway = 0;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    jsonwebtoken::decode::<AssertionClaims>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
