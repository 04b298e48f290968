//! Revoked token ids. [`Revocations`] is the store-neutral interface (the Redis store
//! of issue 9 implements it too); [`FileRevocations`] is the embedded one: a map
//! `jti → exp` in memory, persisted as JSON lines in `DATA_DIR/revoked.jsonl`
//! (`{"jti":"…","exp":1764353651}`) so a logout survives a restart.
//!
//! Each revocation appends one line and fsyncs: O(1) per logout. Entries whose token
//! has expired (beyond the leeway) are useless and dropped; the file is rewritten without
//! them at start and whenever dead lines outnumber live ones, so it stays bounded by the
//! tokens revoked within one token lifetime.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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
    /// jti → exp (Unix seconds).
    live: Mutex<HashMap<String, u64>>,
    /// Lines in the file; only touched on the blocking pool.
    file: Mutex<FileState>,
}

struct FileState {
    lines: usize,
    append: Option<File>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    jti: String,
    exp: u64,
}

impl FileRevocations {
    /// Loads `path` (a missing file is empty), dropping expired entries. A torn last
    /// line (a crash mid-append) is ignored; any other bad line refuses to start.
    pub fn open(path: &Path, leeway: Duration) -> Result<FileRevocations, FileError> {
        let leeway_secs = leeway.as_secs();
        let text = private_files::read_private(path)?.unwrap_or_default();
        let mut live = HashMap::new();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            let entry: Line = serde_json::from_str(line).map_err(|e| FileError::format(path, e))?;
            live.insert(entry.jti, entry.exp);
        }
        let now = clock::now_unix();
        live.retain(|_, exp| alive(*exp, now, leeway_secs));
        let store = FileRevocations(Arc::new(Inner {
            path: path.to_path_buf(),
            leeway_secs,
            file: Mutex::new(FileState {
                lines: 0,
                append: None,
            }),
            live: Mutex::new(live),
        }));
        store.compact()?;
        Ok(store)
    }

    /// How many revocations are held (expired ones may linger until the next compaction).
    pub fn len(&self) -> usize {
        self.0.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no revocation is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one line; compacts when dead lines outnumber live ones.
    fn persist(&self, jti: &str, exp: u64) -> Result<(), FileError> {
        let line = serde_json::to_string(&Line {
            jti: jti.to_owned(),
            exp,
        })
        .map_err(|e| FileError::format(&self.0.path, e))?;
        let mut state = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        let io = |e| FileError::io(&self.0.path, e);
        if state.append.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.0.path)
                .map_err(io)?;
            state.append = Some(file);
        }
        if let Some(file) = state.append.as_mut() {
            file.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(io)?;
        }
        state.lines += 1;
        let live = self.prune();
        let compact = state.lines > COMPACT_MIN_LINES && state.lines > 2 * live;
        drop(state);
        if compact {
            self.compact()?;
        }
        Ok(())
    }

    /// Drops expired entries from memory; returns how many remain.
    fn prune(&self) -> usize {
        let now = clock::now_unix();
        let mut live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, exp| alive(*exp, now, self.0.leeway_secs));
        live.len()
    }

    /// Rewrites the file with the live entries only (atomically).
    fn compact(&self) -> Result<(), FileError> {
        let mut state = self.0.file.lock().unwrap_or_else(|e| e.into_inner());
        self.prune();
        let entries: Vec<Line> = {
            let live = self.0.live.lock().unwrap_or_else(|e| e.into_inner());
            live.iter()
                .map(|(jti, exp)| Line {
                    jti: jti.clone(),
                    exp: *exp,
                })
                .collect()
        };
        let mut text = String::new();
        for entry in &entries {
            let line =
                serde_json::to_string(entry).map_err(|e| FileError::format(&self.0.path, e))?;
            text.push_str(&line);
            text.push('\n');
        }
        private_files::write_private(&self.0.path, text.as_bytes())?;
        *state = FileState {
            lines: entries.len(),
            append: None,
        };
        Ok(())
    }
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
            self.0
                .live
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(jti.to_owned(), exp);
            let (store, jti) = (self.clone(), jti.to_owned());
            tokio::task::spawn_blocking(move || store.persist(&jti, exp))
                .await
                .map_err(|e| RevocationError(e.to_string()))?
                .map_err(|e| RevocationError(e.to_string()))
        })
    }

    fn is_revoked<'a>(&'a self, jti: &'a str) -> BoxFuture<'a, Result<bool, RevocationError>> {
        let revoked = self
            .0
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(jti);
        Box::pin(std::future::ready(Ok(revoked)))
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
    async fn expired_entries_are_dropped_and_the_file_compacted() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let path = tmp.path().join("revoked.jsonl");
        let store = FileRevocations::open(&path, Duration::ZERO)?;
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        store.revoke("old", long_ago).await?;
        store.revoke("new", in_an_hour()).await?;
        assert_eq!(store.len(), 1, "the expired entry is pruned at once");
        let reopened = FileRevocations::open(&path, Duration::ZERO)?;
        assert_eq!(reopened.len(), 1);
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text.lines().count(), 1, "{text}");
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
        assert_eq!(FileRevocations::open(&path, Duration::ZERO)?.len(), 1);
        private_files::write_private(&path, b"not json\n")?;
        assert!(FileRevocations::open(&path, Duration::ZERO).is_err());
        Ok(())
    }
}
