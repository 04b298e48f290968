//! Revoked token ids. [`Revocations`] is the store-neutral interface (the Redis store
//! of issue 9 implements it too); [`FileRevocations`] is the embedded one: a map
//! `jti → exp` in memory, persisted as JSON lines in `DATA_DIR/revoked.jsonl`
//! (`{"jti":"…","exp":1764353651}`) so a logout survives a restart.
//!
//! The file is shared by every process that opens it (a running gateway, and every CLI
//! command, which opens the identity files too), so nobody keeps it open: each
//! revocation takes the file's lock, opens it, appends one line, fsyncs and closes it —
//! a logout is rare. Opening only reads. Entries whose token has expired (beyond the
//! leeway) are dropped when the file is compacted: under the same lock, re-read (other
//! processes' lines included), pruned and replaced, once the lines appended since the
//! last compaction outnumber the live entries it kept. The file stays bounded by about
//! twice the tokens revoked within one token lifetime, and the work is amortised O(1)
//! (plus O(log n)) per logout.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use super::clock;
use super::private_files::{self, FileError};

/// Lines below which the file is never compacted.
const COMPACT_MIN_LINES: usize = 1024;

/// The revocation store failed; the token is refused (never fail open).
#[derive(Debug, thiserror::Error)]
#[error("revocation store: {0}")]
pub struct RevocationError(pub String);

/// Where revoked token ids live. Async so that network stores fit.
pub trait Revocations: Send + Sync + 'static {
    /// Records that the token `jti`, valid until `expires_at`, is revoked.
    fn revoke<'a>(
        &'a self,
        jti: &'a str,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), RevocationError>>;

    /// Whether `jti` was revoked.
    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, RevocationError>>;
}

/// The embedded store: memory plus an append-only file.
#[derive(Clone)]
pub struct FileRevocations(Arc<Inner>);

struct Inner {
    path: PathBuf,
    leeway_secs: u64,
    live: Mutex<Index>,
    /// Only touched on the blocking pool.
    file: Mutex<FileState>,
    /// The file's stamp when last read: another process (a second gateway on the same
    /// `DATA_DIR`) appending changes it, and the next check reads the file again.
    seen: Mutex<Option<private_files::Stamp>>,
    /// One re-read at a time: the checks of many connections after one change share it.
    refreshing: tokio::sync::Mutex<()>,
}

/// Revoked ids, by id for lookups and by expiry for pruning.
#[derive(Default)]
struct Index {
    by_jti: HashMap<String, u64>,
    by_exp: BTreeSet<(u64, String)>,
}

impl Index {
    fn insert(&mut self, jti: String, exp: u64) {
        if let Some(old) = self.by_jti.insert(jti.clone(), exp) {
            self.by_exp.remove(&(old, jti.clone()));
        }
        self.by_exp.insert((exp, jti));
    }

    /// Drops every entry expired (beyond `leeway_secs`) at `now`: O(log n) per entry
    /// dropped, nothing for the live ones.
    fn prune(&mut self, now: u64, leeway_secs: u64) {
        while let Some((exp, _)) = self.by_exp.first() {
            if alive(*exp, now, leeway_secs) {
                break;
            }
            if let Some((_, jti)) = self.by_exp.pop_first() {
                self.by_jti.remove(&jti);
            }
        }
    }
}

/// What this process knows about the file.
struct FileState {
    /// Lines appended by this process since the last compaction (or open).
    appended: usize,
    /// Live entries after the last compaction (or open).
    kept: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    jti: String,
    exp: u64,
}

impl FileRevocations {
    /// Loads `path` (a missing file is empty) without changing it: other processes may
    /// be appending to it. A torn last line (a crash mid-append) is ignored; any other
    /// bad line refuses to start.
    pub fn open(path: &Path, leeway: Duration) -> Result<FileRevocations, FileError> {
        let leeway_secs = leeway.as_secs();
        let seen = private_files::stamp(path);
        let mut live = Index::default();
        for entry in read_lines(path)? {
            live.insert(entry.jti, entry.exp);
        }
        live.prune(clock::now_unix(), leeway_secs);
        let kept = live.by_jti.len();
        Ok(FileRevocations(Arc::new(Inner {
            path: path.to_path_buf(),
            leeway_secs,
            live: Mutex::new(live),
            file: Mutex::new(FileState { appended: 0, kept }),
            seen: Mutex::new(seen),
            refreshing: tokio::sync::Mutex::new(()),
        })))
    }

    /// How many revocations are held (expired ones may linger until the next compaction).
    pub fn len(&self) -> usize {
        self.index().by_jti.len()
    }

    /// Whether no revocation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the file again if it changed since it was last read (on the blocking pool).
    async fn refresh(&self) -> Result<(), RevocationError> {
        if self.is_current() {
            return Ok(());
        }
        let _one = self.0.refreshing.lock().await;
        if self.is_current() {
            return Ok(()); // read by the check that held the lock before this one
        }
        let stamp = private_files::stamp(&self.0.path);
        let store = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let lines = read_lines(&store.0.path)?;
            let mut live = store.index();
            for entry in lines {
                live.insert(entry.jti, entry.exp);
            }
            // The stamp from before the read: a change during it is read next time.
            *store.0.seen.lock().unwrap_or_else(|e| e.into_inner()) = stamp;
            Ok::<(), FileError>(())
        });
        read.await
            .map_err(|e| RevocationError(e.to_string()))?
            .map_err(|e| RevocationError(e.to_string()))
    }

    /// Whether the file is as it was when last read (or written by this process).
    fn is_current(&self) -> bool {
        *self.0.seen.lock().unwrap_or_else(|e| e.into_inner()) == private_files::stamp(&self.0.path)
    }

    /// After this process changed the file from `before`: if it had read everything up to
    /// then, it has now read everything (its own change included).
    fn wrote(&self, before: Option<private_files::Stamp>) {
        let mut seen = self.0.seen.lock().unwrap_or_else(|e| e.into_inner());
        if *seen == before {
            *seen = private_files::stamp(&self.0.path);
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.0.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one line under the lock; compacts when the appended lines outnumber
    /// the entries kept at the last compaction.
    fn persist(&self, jti: &str, exp: u64) -> Result<(), FileError> {
        let path = &self.0.path;
        let line = Line {
            jti: jti.to_owned(),
            exp,
        };
        let line = serde_json::to_string(&line).map_err(|e| FileError::format(path, e))?;
        let mut state = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        let _lock = private_files::lock(path)?;
        let io = |e| FileError::io(path, e);
        if ends_torn(path).map_err(io)? {
            // Compaction drops the torn line.
            (state.kept, state.appended) = (self.compact_locked()?, 0);
        }
        let before = private_files::stamp(path);
        append_line(path, &line).map_err(io)?;
        self.wrote(before);
        state.appended += 1;
        if state.appended > COMPACT_MIN_LINES.max(state.kept) {
            (state.kept, state.appended) = (self.compact_locked()?, 0);
        }
        Ok(())
    }

    /// Rewrites the file with the live entries only (atomically), merging what other
    /// processes appended; the caller holds the file lock. Returns the entries kept.
    fn compact_locked(&self) -> Result<usize, FileError> {
        let on_disk = read_lines(&self.0.path)?;
        let mut live = self.index();
        for entry in on_disk {
            live.insert(entry.jti, entry.exp);
        }
        live.prune(clock::now_unix(), self.0.leeway_secs);
        let mut text = String::new();
        for (exp, jti) in &live.by_exp {
            let line = Line {
                jti: jti.clone(),
                exp: *exp,
            };
            let line =
                serde_json::to_string(&line).map_err(|e| FileError::format(&self.0.path, e))?;
            text.push_str(&line);
            text.push('\n');
        }
        let kept = live.by_jti.len();
        drop(live);
        private_files::write_private(&self.0.path, text.as_bytes())?;
        // Everything on disk was merged above, under the lock: the new file is read.
        *self.0.seen.lock().unwrap_or_else(|e| e.into_inner()) = private_files::stamp(&self.0.path);
        Ok(kept)
    }

    /// Compacts now (tests).
    #[cfg(test)]
    fn compact(&self) -> Result<usize, FileError> {
        let _lock = private_files::lock(&self.0.path)?;
        self.compact_locked()
    }
}

/// The complete lines of `path` (a missing file has none).
fn read_lines(path: &Path) -> Result<Vec<Line>, FileError> {
    let text = private_files::read_private(path)?.unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|e| FileError::format(path, e)))
        .collect()
}

/// Opens `path` (creating it 0600), appends `line`, fsyncs and closes it.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

/// Whether `path` ends in a torn line (a crash mid-append): appending after it would
/// turn it into a bad complete line.
fn ends_torn(path: &Path) -> std::io::Result<bool> {
    let file = match File::open(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        opened => opened?,
    };
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.read_exact_at(&mut last, len - 1)?;
    }
    Ok(last[0] != b'\n')
}

/// Whether a token expiring at `exp` could still be accepted at `now`.
fn alive(exp: u64, now: u64, leeway_secs: u64) -> bool {
    exp.saturating_add(leeway_secs) >= now
}

impl Revocations for FileRevocations {
    fn revoke<'a>(
        &'a self,
        jti: &'a str,
        expires_at: SystemTime,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        Box::pin(async move {
            let exp = clock::unix(expires_at);
            // In memory first: refused from now on even if the disk write fails.
            self.index().insert(jti.to_owned(), exp);
            let (store, jti) = (self.clone(), jti.to_owned());
            tokio::task::spawn_blocking(move || store.persist(&jti, exp))
                .await
                .map_err(|e| RevocationError(e.to_string()))?
                .map_err(|e| RevocationError(e.to_string()))
        })
    }

    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, RevocationError>> {
        Box::pin(async move {
            self.refresh().await?;
            Ok(self.index().by_jti.contains_key(jti))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn in_an_hour() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    #[tokio::test]
    async fn a_revocation_survives_a_restart() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let store = FileRevocations::open(&path, Duration::from_secs(30))?;
        store.revoke("jti-1", in_an_hour()).await?;
        assert!(store.is_revoked("jti-1").await?);
        assert!(!store.is_revoked("jti-2").await?);
        let reopened = FileRevocations::open(&path, Duration::from_secs(30))?;
        assert!(reopened.is_revoked("jti-1").await?);
        Ok(())
    }

    #[tokio::test]
    async fn expired_entries_are_dropped_when_the_file_is_compacted() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let store = FileRevocations::open(&path, Duration::ZERO)?;
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        store.revoke("old", long_ago).await?;
        store.revoke("new", in_an_hour()).await?;
        assert_eq!(FileRevocations::open(&path, Duration::ZERO)?.len(), 1);
        assert_eq!(store.compact()?, 1);
        assert_eq!(store.len(), 1);
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text.lines().count(), 1, "{text}");
        Ok(())
    }

    #[tokio::test]
    async fn opening_from_another_process_loses_no_logout() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let gateway = FileRevocations::open(&path, Duration::ZERO)?;
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        gateway.revoke("expired", long_ago).await?;
        gateway.revoke("before", in_an_hour()).await?;
        let before = std::fs::read_to_string(&path)?;
        let _cli = FileRevocations::open(&path, Duration::ZERO)?;
        assert_eq!(std::fs::read_to_string(&path)?, before, "open only reads");
        gateway.revoke("after", in_an_hour()).await?;
        let restarted = FileRevocations::open(&path, Duration::ZERO)?;
        assert!(restarted.is_revoked("before").await?);
        assert!(restarted.is_revoked("after").await?);
        Ok(())
    }

    #[tokio::test]
    async fn a_compaction_keeps_what_other_processes_appended() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let one = FileRevocations::open(&path, Duration::ZERO)?;
        let other = FileRevocations::open(&path, Duration::ZERO)?;
        one.revoke("from-one", in_an_hour()).await?;
        other.revoke("from-other", in_an_hour()).await?;
        assert_eq!(other.compact()?, 2);
        one.revoke("later", in_an_hour()).await?;
        let restarted = FileRevocations::open(&path, Duration::ZERO)?;
        assert_eq!(restarted.len(), 3);
        Ok(())
    }

    #[tokio::test]
    async fn growth_is_bounded_by_compaction() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let store = FileRevocations::open(&path, Duration::ZERO)?;
        let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
        for n in 0..(COMPACT_MIN_LINES + 10) {
            store.revoke(&format!("j{n}"), past).await?;
        }
        let lines = std::fs::read_to_string(&path)?.lines().count();
        assert!(lines < 20, "{lines} lines left");
        Ok(())
    }

    #[test]
    fn a_torn_last_line_is_ignored_but_garbage_is_refused() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let exp = clock::now_unix() + 3600;
        let text = format!("{{\"jti\":\"a\",\"exp\":{exp}}}\n{{\"jti\":\"b\",\"ex");
        private_files::write_private(&path, text.as_bytes())?;
        let store = FileRevocations::open(&path, Duration::ZERO)?;
        assert_eq!(store.len(), 1);
        store.persist("c", exp)?;
        let reopened = FileRevocations::open(&path, Duration::ZERO)?;
        assert_eq!(reopened.len(), 2, "the torn line is dropped, not completed");
        private_files::write_private(&path, b"not json\n")?;
        assert!(FileRevocations::open(&path, Duration::ZERO).is_err());
        Ok(())
    }
}
