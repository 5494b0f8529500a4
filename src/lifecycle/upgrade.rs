//! The socket a zero-downtime upgrade passes the listening sockets through
//! (`vigie run --upgrade`, then SIGQUIT to the running gateway). Whoever answers on it gets
//! the gateway's ports, so the running gateway hands them over only to a socket made by its
//! own user, in a directory nobody else can write (no one else could have put it there).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Whether `dir` is safe to hold the upgrade socket: owned by this user (or root), and
/// writable by nobody else.
pub fn safe_directory(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("upgrade socket directory {}: {e}", dir.display()))?;
    let me = current_uid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "upgrade socket directory {} belongs to uid {}, not this gateway's user ({me})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "upgrade socket directory {} is writable by others (mode {:o}): anyone could put a \
             socket there and receive the gateway's ports; use a directory only the gateway's \
             user writes (the state directory, mode 0700), [server] upgrade_socket",
            dir.display(),
            meta.mode() & 0o7777
        ));
    }
    safe_path(dir)
}

/// Before handing the sockets over: the socket exists, was made by this user, in a safe
/// directory.
pub fn check_handover(socket: &Path) -> Result<(), String> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    safe_directory(dir)?;
    let meta = std::fs::symlink_metadata(socket).map_err(|e| {
        format!(
            "no new gateway waits on {} ({e}): start `vigie run --upgrade` first",
            socket.display()
        )
    })?;
    if !meta.file_type().is_socket() {
        return Err(format!("{} is not a socket", socket.display()));
    }
    if meta.uid() != current_uid() {
        return Err(format!(
            "{} was made by uid {}, not by this gateway's user: not handing the ports to it",
            socket.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// No symlink on the way to `dir` (one could be swapped between the check and the
/// handover), and no folder above it that others may write without the sticky bit (they could
/// rename what lies below).
fn safe_path(dir: &Path) -> Result<(), String> {
    let real = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if real != dir {
        return Err(format!(
            "upgrade socket directory {} is reached through a symlink ({}): name the real folder",
            dir.display(),
            real.display()
        ));
    }
    for above in real.ancestors().skip(1) {
        let meta = std::fs::metadata(above).map_err(|e| format!("{}: {e}", above.display()))?;
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o002 != 0 && !sticky {
            return Err(format!(
                "{} (above the upgrade socket) is writable by others: anyone could swap the \
                 folders below it",
                above.display()
            ));
        }
    }
    Ok(())
}

fn current_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_socket_of_this_user_in_a_private_directory_is_handed_over_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("vigie-upgrade.sock");
        let e = check_handover(&path).unwrap_err();
        assert!(e.contains("no new gateway waits"), "{e}");
        std::fs::write(&path, "").unwrap();
        assert!(check_handover(&path).unwrap_err().contains("not a socket"));
        std::fs::remove_file(&path).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert_eq!(check_handover(&path), Ok(()));
        // Made by someone else (a squatter with write access, in another layout): refused.
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = check_handover(&path).unwrap_err();
        assert!(e.contains("made by uid 65534"), "{e}");
        // Reached through a symlink: it could be swapped between the check and the handover.
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        let link = dir.path().with_extension("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let e = check_handover(&link.join("vigie-upgrade.sock")).unwrap_err();
        assert!(e.contains("through a symlink"), "{e}");
        std::fs::remove_file(&link).unwrap();
        // A directory others can write: a squatter could have made the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = check_handover(&path).unwrap_err();
        assert!(e.contains("writable by others"), "{e}");
    }
}
