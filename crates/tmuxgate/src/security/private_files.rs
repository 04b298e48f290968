//! Files only the gateway's user may read: `DATA_DIR` itself (created 0700), reading
//! files that hold hashes or keys (refused when group or others have any access), atomic
//! replacement (temporary file in the same directory, fsync, rename, fsync of the
//! directory) and an advisory lock for read-modify-write cycles between the gateway and
//! the CLI.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Permission bits of group and others.
const GROUP_OTHER_BITS: u32 = 0o077;

/// A file or directory under `DATA_DIR` that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// An I/O error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Too open to trust, or not ours.
    #[error("{}: {reason}", path.display())]
    Insecure {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Its content is not what the gateway writes.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The parse error (never the file's content).
        reason: String,
    },
}

impl FileError {
    /// Wraps an I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> FileError {
        let path = path.to_path_buf();
        FileError::Io { path, source }
    }

    /// A content error about `path`.
    pub fn format(path: &Path, reason: impl ToString) -> FileError {
        let (path, reason) = (path.to_path_buf(), reason.to_string());
        FileError::Format { path, reason }
    }
}

/// Creates `dir` (mode 0700, parents as needed) or checks the existing one: a real
/// directory, owned by us (or we are root), that nobody else may write. Loose read
/// permissions are tightened, as for the tmux socket directory.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    let io = |source| FileError::io(dir, source);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    let uid = current_uid();
    if !meta.is_dir() || (meta.uid() != uid && uid != 0) {
        let reason = "not a directory owned by the gateway's user".to_owned();
        return Err(insecure(dir, reason));
    }
    if meta.mode() & 0o022 != 0 {
        let reason = format!("writable by group or others: chmod 700 {}", dir.display());
        return Err(insecure(dir, reason));
    }
    if meta.mode() & GROUP_OTHER_BITS != 0 {
        let tight = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(dir, tight).map_err(io)?;
    }
    Ok(())
}

/// Reads `path`, or `None` when it does not exist. Refuses a file that group or others
/// may access (its secrets may already have leaked; `chmod 600` after checking) and
/// anything but a regular file.
pub fn read_private(path: &Path) -> Result<Option<String>, FileError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(FileError::io(path, error)),
    };
    if !meta.is_file() {
        return Err(insecure(path, "not a regular file".to_owned()));
    }
    if meta.mode() & GROUP_OTHER_BITS != 0 {
        let reason = format!(
            "mode {:03o} lets group or others read it: chmod 600 {} (and replace its \
             secrets if others could read them)",
            meta.mode() & 0o777,
            path.display()
        );
        return Err(insecure(path, reason));
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|error| FileError::io(path, error))
}

/// Replaces `path` with `contents` atomically, mode 0600: readers see the old file or
/// the new one, never a mix, even across a crash. The new file keeps the old one's
/// owner when we may set it (root editing the gateway user's file).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let dir = parent(path);
    let temp = temp_path(path);
    let io = |source| FileError::io(&temp, source);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| keep_owner(path, &file))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io(error));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| FileError::io(dir, error))
}

/// An exclusive advisory lock on `<path>.lock`, held until dropped.
#[derive(Debug)]
pub struct FileLock(#[allow(dead_code)] File);

/// Waits for the lock that guards read-modify-write cycles of `path`.
pub fn lock(path: &Path) -> Result<FileLock, FileError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let io = |source| FileError::io(&lock_path, source);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(FileLock(file))
}

/// What identifies one version of a file: a replaced or rewritten file changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    modified_ns: i128,
    len: u64,
}

/// The [`Stamp`] of `path`, or `None` when it does not exist (or cannot be read).
pub fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    let modified_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    Some(Stamp {
        inode: meta.ino(),
        modified_ns,
        len: meta.len(),
    })
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The uid this process runs as, from the owner of `/proc/self` (no `unsafe`).
pub fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

fn insecure(path: &Path, reason: String) -> FileError {
    let path = path.to_path_buf();
    FileError::Insecure { path, reason }
}

/// `.<name>.<pid>.<random>.tmp` beside `path`: unique, hidden, same file system.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy().into_owned());
    let unique = rand::random::<u64>();
    let temp = format!(".{name}.{}.{unique:016x}.tmp", std::process::id());
    parent(path).join(temp)
}

/// Gives `file` the owner of the file it replaces, when that differs and we may.
fn keep_owner(replaced: &Path, file: &File) -> std::io::Result<()> {
    let Ok(old) = std::fs::metadata(replaced) else {
        return Ok(());
    };
    let new = file.metadata()?;
    if (old.uid(), old.gid()) == (new.uid(), new.gid()) {
        return Ok(());
    }
    match std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())) {
        Err(error) if error.kind() == ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map_or(0, |m| m.mode() & 0o777)
    }

    #[test]
    fn private_dir_is_created_0700_and_tightened() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir)?;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750))
            .map_err(|e| FileError::io(&dir, e))?;
        ensure_private_dir(&dir)?;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770))
            .map_err(|e| FileError::io(&dir, e))?;
        let refused = ensure_private_dir(&dir).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|m| m.contains("chmod 700")));
        Ok(())
    }

    #[test]
    fn write_is_atomic_0600_and_leaves_no_temporary_file() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("users.toml");
        write_private(&path, b"one")?;
        let first = stamp(&path);
        write_private(&path, b"two")?;
        assert_eq!(read_private(&path)?.as_deref(), Some("two"));
        assert_eq!(mode(&path), 0o600);
        assert_ne!(stamp(&path), first, "a rename gives a new inode");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .map_err(|e| FileError::io(tmp.path(), e))?
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, ["users.toml"]);
        Ok(())
    }

    #[test]
    fn readable_by_others_is_refused_and_missing_is_none() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("jwt-keys.toml");
        assert_eq!(read_private(&path)?, None);
        write_private(&path, b"secret")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| FileError::io(&path, e))?;
        let refused = read_private(&path).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|m| m.contains("mode 644") && m.contains("chmod 600")));
        Ok(())
    }

    #[test]
    fn lock_is_exclusive_between_handles() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("users.toml");
        let held = lock(&path)?;
        let other =
            File::open(tmp.path().join("users.toml.lock")).map_err(|e| FileError::io(&path, e))?;
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
        Ok(())
    }
}
