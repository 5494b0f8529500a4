//! One compact JSON line per alert, appended to a file (for Filebeat, Vector, or `jq`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Alert, Sink, SinkError};

pub struct JsonlSink {
    path: PathBuf,
    file: File,
}

/// Append-only, created 0600: alerts name users and carry pseudonyms.
pub(crate) fn open_private(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

impl JsonlSink {
    pub fn open(path: &Path) -> Result<Self, SinkError> {
        Ok(Self {
            path: path.to_path_buf(),
            file: open_private(path, true)?,
        })
    }

    /// After logrotate moved or removed the file, write to a new one at the configured path.
    #[cfg(unix)]
    fn reopen_if_rotated(&mut self) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let ours = self.file.metadata()?;
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|m| m.dev() == ours.dev() && m.ino() == ours.ino());
        if !same {
            self.file = open_private(&self.path, true)?;
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn reopen_if_rotated(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn deliver_event(&mut self, ecs: &Value) -> Result<(), SinkError> {
        self.write(ecs)
    }

    fn deliver(&mut self, _alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        self.write(ecs)
    }
}

impl JsonlSink {
    fn write(&mut self, ecs: &Value) -> Result<(), SinkError> {
        self.reopen_if_rotated()?;
        let mut line = serde_json::to_vec(ecs)?;
        line.push(b'\n');
        // One write per line, so concurrent readers never see half a record.
        self.file.write_all(&line)?;
        self.file.flush()?;
        Ok(())
    }
}
