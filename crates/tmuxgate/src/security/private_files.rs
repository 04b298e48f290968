//! Files only the gateway's user may read: `DATA_DIR` itself (created 0700), reading
//! files that hold hashes or keys (refused when group or others have any access), atomic
//! replacement (temporary file in the same directory, fsync, rename, fsync of the
//! directory) and an advisory lock for read-modify-write cycles between the gateway and
//! the CLI.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
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

/// Reads `path`, or `None` when it does not exist. Trusts nothing about the path: the
/// file is opened without following a symbolic link (and without blocking on a FIFO),
/// and the open descriptor must be a regular file owned by the gateway's user (or we
/// are root) that group and others may not access (its secrets may already have
/// leaked; `chmod 600` after checking), in a directory they may not write (they could
/// swap the file).
pub fn read_private(path: &Path) -> Result<Option<String>, FileError> {
    check_parent(path)?;
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let mut file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            let reason = "a symbolic link: point the setting at the file itself".to_owned();
            return Err(insecure(path, reason));
        }
        Err(error) => return Err(FileError::io(path, error)),
    };
    let meta = file
        .metadata()
        .map_err(|error| FileError::io(path, error))?;
    if let Some(reason) = untrusted(path, &meta, current_uid()) {
        return Err(insecure(path, reason));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|error| FileError::io(path, error))?;
    Ok(Some(text))
}

/// Opens `path` for appending, creating it with mode 0600, under the same rules as
/// [`read_private`]: no symbolic link, a regular file of ours that group and others may
/// not access, in a directory they may not write (the audit log).
pub fn open_private_append(path: &Path) -> Result<File, FileError> {
    check_parent(path)?;
    let opened = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            let reason = "a symbolic link: point the setting at the file itself".to_owned();
            return Err(insecure(path, reason));
        }
        Err(error) => return Err(FileError::io(path, error)),
    };
    let meta = file
        .metadata()
        .map_err(|error| FileError::io(path, error))?;
    match untrusted(path, &meta, current_uid()) {
        Some(reason) => Err(insecure(path, reason)),
        None => Ok(file),
    }
}

/// Why a file with `meta` (from its open descriptor) is not to be trusted by `euid`.
fn untrusted(path: &Path, meta: &std::fs::Metadata, euid: u32) -> Option<String> {
    if !meta.is_file() {
        return Some("not a regular file".to_owned());
    }
    if meta.uid() != euid && euid != 0 {
        return Some(format!(
            "owned by uid {}, not the gateway's user (uid {euid}): check it, then chown it",
            meta.uid()
        ));
    }
    if meta.mode() & GROUP_OTHER_BITS != 0 {
        return Some(format!(
            "mode {:03o} lets group or others read it: chmod 600 {} (and replace its \
             secrets if others could read them)",
            meta.mode() & 0o777,
            path.display()
        ));
    }
    None
}

/// Refuses a file whose directory group or others may write: they could replace it.
fn check_parent(path: &Path) -> Result<(), FileError> {
    let dir = parent(path);
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(FileError::io(dir, error)),
    };
    if meta.mode() & 0o022 != 0 {
        let reason = format!(
            "its directory is writable by group or others: chmod go-w {}",
            dir.display()
        );
        return Err(insecure(path, reason));
    }
    Ok(())
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

/// The effective uid this process runs as.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
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
    fn symlinks_fifos_and_loose_directories_are_refused() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let (real, link) = (tmp.path().join("real.toml"), tmp.path().join("users.toml"));
        write_private(&real, b"secret")?;
        std::os::unix::fs::symlink(&real, &link).map_err(|e| FileError::io(&link, e))?;
        let refused = read_private(&link).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|m| m.contains("symbolic link")));
        let fifo = tmp.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| FileError::io(&fifo, e))?;
        let refused = read_private(&fifo).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|m| m.contains("not a regular file")));
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o770))
            .map_err(|e| FileError::io(tmp.path(), e))?;
        let refused = read_private(&real).err().map(|e| e.to_string());
        assert!(refused.is_some_and(|m| m.contains("chmod go-w")));
        Ok(())
    }

    #[test]
    fn a_file_owned_by_someone_else_is_refused_unless_we_are_root() -> Result<(), FileError> {
        let tmp = tempfile::tempdir().map_err(|e| FileError::io(Path::new("tmp"), e))?;
        let path = tmp.path().join("users.toml");
        write_private(&path, b"secret")?;
        let meta = File::open(&path)
            .and_then(|f| f.metadata())
            .map_err(|e| FileError::io(&path, e))?;
        let owner = meta.uid();
        assert_eq!(untrusted(&path, &meta, owner), None);
        let other = owner.wrapping_add(1).max(1);
        let refused = untrusted(&path, &meta, other);
        assert!(refused.is_some_and(|m| m.contains("owned by uid")));
        assert_eq!(untrusted(&path, &meta, 0), None, "root may read it");
        Ok(())
    }

    #[test]
    fn the_current_uid_is_the_effective_one() {
        let meta = std::fs::metadata("/proc/self");
        assert_eq!(meta.map(|m| m.uid()).ok(), Some(current_uid()));
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
