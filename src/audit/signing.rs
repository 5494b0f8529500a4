//! The Ed25519 key that signs audit checkpoints: the newest key of `[assertion] key_dir` when
//! set (one directory the replicas share), else a key kept beside the database
//! (`<database>.audit-key.pem`, mode 0600, made on first start). `vigie audit verify` trusts
//! the keys of that directory and that file, nothing else: a checkpoint forged by someone
//! who can write the store but holds neither is refused.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::{Signer as OsslSigner, Verifier as OsslVerifier};

use super::chain::{Checkpoint, Problem};

pub struct Signer {
    key: PKey<Private>,
    public: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.public)
    }
}

/// The key file beside `database`.
pub fn key_file_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".audit-key.pem");
    PathBuf::from(name)
}

fn public_of(key: &PKey<Private>) -> Result<String, String> {
    let raw = key.raw_public_key().map_err(|e| e.to_string())?;
    Ok(STANDARD.encode(raw))
}

fn read_key(path: &Path) -> Result<PKey<Private>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = PKey::private_key_from_pem(&pem)
        .map_err(|_| format!("{}: not a private key in PEM", path.display()))?;
    if key.id() != Id::ED25519 {
        return Err(format!("{}: not an Ed25519 key", path.display()));
    }
    Ok(key)
}

/// The `*.pem` files of `dir`, sorted by name (the last one signs, as for assertions).
fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    files.sort();
    Ok(files)
}

impl Signer {
    /// The newest key of `key_dir`, else the one in `file` (made when missing).
    pub fn load(key_dir: Option<&Path>, file: &Path) -> Result<Self, String> {
        let key = match key_dir {
            Some(dir) => {
                let newest = pem_files(dir)?
                    .pop()
                    .ok_or_else(|| format!("{}: no *.pem key", dir.display()))?;
                read_key(&newest)?
            }
            None if file.exists() => read_key(file)?,
            None => {
                let key = PKey::generate_ed25519().map_err(|e| e.to_string())?;
                let pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
                write_private(file, &pem).map_err(|e| format!("{}: {e}", file.display()))?;
                key
            }
        };
        Ok(Self {
            public: public_of(&key)?,
            key,
        })
    }

    /// A key for this process only (tests).
    pub fn ephemeral() -> Self {
        let key = PKey::generate_ed25519().expect("Ed25519 key generation");
        Self {
            public: public_of(&key).expect("an Ed25519 key has a raw public key"),
            key,
        }
    }

    pub fn public(&self) -> &str {
        &self.public
    }

    pub fn sign(&self, chain: &str, seq: i64, mac: &str, at_us: i64) -> Checkpoint {
        let material = Checkpoint::material(chain, seq, mac, at_us);
        let signature = OsslSigner::new_without_digest(&self.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(&material))
            .expect("Ed25519 signing of a short message");
        Checkpoint {
            chain: chain.into(),
            seq,
            mac: mac.into(),
            at_us,
            signer: self.public.clone(),
            signature: STANDARD.encode(signature),
        }
    }
}

fn write_private(path: &Path, pem: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(pem)
}

/// The public keys `vigie audit verify` trusts: every key of `key_dir`, and the key file.
pub fn trusted_keys(key_dir: Option<&Path>, file: &Path) -> Result<Vec<String>, String> {
    let mut files = match key_dir {
        Some(dir) => pem_files(dir)?,
        None => Vec::new(),
    };
    if file.exists() {
        files.push(file.to_path_buf());
    }
    files.iter().map(|f| public_of(&read_key(f)?)).collect()
}

/// Whether `cp`'s signature is good, by its own signer's key.
fn signed(cp: &Checkpoint) -> bool {
    let (Ok(public), Ok(signature)) = (STANDARD.decode(&cp.signer), STANDARD.decode(&cp.signature))
    else {
        return false;
    };
    let Ok(key) = PKey::public_key_from_raw_bytes(&public, Id::ED25519) else {
        return false;
    };
    let material = Checkpoint::material(&cp.chain, cp.seq, &cp.mac, cp.at_us);
    OsslVerifier::new_without_digest(&key)
        .and_then(|mut v| v.verify_oneshot(&signature, &material))
        .unwrap_or(false)
}

/// What the checkpoints given to `verify` are worth.
#[derive(Debug, Default)]
pub struct Sorted {
    /// Signed by a trusted key: they vouch for their chain's entries.
    pub good: Vec<Checkpoint>,
    /// A signature that does not match what it signs: someone edited the checkpoint.
    pub problems: Vec<Problem>,
    /// Well signed, by a key verify does not know (another replica's own key file): not
    /// counted, which hides nothing (a checkpoint only adds checks) but vouches for nothing.
    pub unknown_signers: Vec<(String, i64)>,
}

/// Sort checkpoints by what their signature proves.
pub fn trusted(all: Vec<Checkpoint>, keys: &[String]) -> Sorted {
    let mut out = Sorted::default();
    for cp in all {
        if !signed(&cp) {
            out.problems.push(Problem::BadCheckpoint {
                chain: cp.chain,
                seq: cp.seq,
                why: "its signature is wrong (edited after signing)".into(),
            });
        } else if !keys.contains(&cp.signer) {
            out.unknown_signers.push((cp.chain, cp.seq));
        } else {
            out.good.push(cp);
        }
    }
    out
}

/// The checkpoints published in a log file or a SIEM's JSON-lines sink: lines of JSON whose
/// `event` (at the top or in `fields`) is `audit_checkpoint`, or ECS events whose
/// `event.action` is (the checkpoint in `vigie.audit`). Other lines are skipped.
pub fn from_log(text: &str) -> Vec<Checkpoint> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let fields = match (v.get("fields"), v.pointer("/event/action")) {
                (Some(f), _) if f.get("event").is_some() => f.clone(),
                (_, Some(a)) if a == "audit_checkpoint" => {
                    let mut f = v.pointer("/vigie/audit").cloned()?;
                    f["event"] = serde_json::json!("audit_checkpoint");
                    f
                }
                _ => v,
            };
            (fields.get("event")?.as_str()? == "audit_checkpoint")
                .then(|| serde_json::from_value(fields).ok())
                .flatten()
        })
        .collect()
}
