//! The session key of a gateway that has none configured, made once into its state
//! directory: cookies signed before a restart still open after it, and patient pseudonyms
//! stay the same for the SOC.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Random bytes of a new key.
const LEN: usize = 32;

/// Where the key of the database at `database` is kept: beside it, named after it (two
/// gateways sharing a directory do not share a key).
pub fn path_for(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".session-key");
    database.with_file_name(name)
}

/// The key in `path`, made (random, readable by its owner only) if there is none yet.
pub fn load_or_create(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let key: [u8; LEN] = rand::random();
            file.write_all(&key)?;
            file.sync_all()?;
            Ok(key.to_vec())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            super::sqlite::owner_only(path);
            let key = std::fs::read(path)?;
            if key.len() < LEN {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} holds {} bytes, fewer than {LEN}: remove it to have a new one made (every session ends)",
                        path.display(),
                        key.len()
                    ),
                ));
            }
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
