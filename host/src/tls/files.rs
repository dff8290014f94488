//! Crash-safe writes of PEM files with explicit modes.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes a file only the server's user may read (keys).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes, 0o600)
}

/// Writes a file anyone may read (certificates).
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes, 0o644)
}

/// Writes via a temporary file, fsync and rename, so a crash never leaves a torn PEM file.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // `mode` applies only when the file is created; a temporary file left by a crash keeps
    // whatever mode it had, so set it explicitly.
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
