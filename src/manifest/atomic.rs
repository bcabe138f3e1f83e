//! Writing manifest files so that a reader never sees half of one.
//!
//! The watch daemon reads the desired-state directory whenever it changes, and an editor
//! may have the file open: every write goes through a temporary file in the same directory
//! and a rename, which readers observe as the old file or the new one, never a part. The
//! temporary file's name is hidden (`.mlreg-*.tmp`), and the loader and the daemon skip
//! hidden files, so it is never read as a manifest even if the process dies before the
//! rename.

use std::fs;
use std::io::{self, Write as _};
use std::path::Path;

/// Why [`replace_if_unchanged`] did not write.
#[derive(Debug, thiserror::Error)]
pub enum ReplaceError {
    /// The file no longer holds the text the new one was computed from (a concurrent save).
    #[error("the file changed on disk")]
    ChangedOnDisk,
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Replaces the file at `path` with `after` (see [`write_file_atomically`]), only if it
/// still holds `before`, so a save made meanwhile is never overwritten. A symbolic link is
/// followed: its target is replaced, the link is kept.
pub fn replace_if_unchanged(path: &Path, before: &str, after: &str) -> Result<(), ReplaceError> {
    let target = fs::canonicalize(path)?;
    let current = fs::read(&target)?;
    if current != before.as_bytes() {
        return Err(ReplaceError::ChangedOnDisk);
    }
    write_file_atomically(&target, after)?;
    Ok(())
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename, so
/// a reader (the watch daemon, an editor) sees the old file or the new one, never a part.
/// An existing file's permissions are kept; a new file is readable by everyone.
pub fn write_file_atomically(path: &Path, text: &str) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let permissions = match fs::metadata(path) {
        Ok(metadata) => Some(metadata.permissions()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".mlreg-")
        .suffix(".tmp")
        .tempfile_in(directory)?;
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    match permissions {
        Some(permissions) => fs::set_permissions(temporary.path(), permissions)?,
        None => set_new_file_permissions(temporary.path())?,
    }
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// `rw-r--r--` for a new manifest (a temporary file starts as `rw-------`).
#[cfg(unix)]
fn set_new_file_permissions(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

/// Nothing to do where permissions are not Unix modes.
#[cfg(not(unix))]
fn set_new_file_permissions(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_text_it_was_computed_from() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("m.yaml");
        fs::write(&path, "one\n").expect("write");
        replace_if_unchanged(&path, "one\n", "two\n").expect("replaced");
        assert_eq!(fs::read_to_string(&path).expect("read"), "two\n");
        assert!(matches!(
            replace_if_unchanged(&path, "one\n", "three\n"),
            Err(ReplaceError::ChangedOnDisk)
        ));
        assert_eq!(fs::read_to_string(&path).expect("read"), "two\n");
        let leftovers: Vec<_> = fs::read_dir(directory.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
