//! [`PolicyStore`]: the policy in force, shared as `Arc<Policy>`, reloaded from
//! `POLICY_FILE` on demand or when the file changes (polled: mtime, length, inode).
//! A bad file never replaces a good policy: the old one stays and the error is logged.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::{Policy, PolicyError};

/// How often [`PolicyStore::watch`] looks at the file.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of the file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The current policy and where it came from.
#[derive(Debug)]
pub struct PolicyStore {
    path: Option<PathBuf>,
    current: RwLock<Arc<Policy>>,
    /// The text and fingerprint of the last file read (good or bad).
    seen: Mutex<(Option<String>, Option<Fingerprint>)>,
}

impl PolicyStore {
    /// Loads `path` (an error if it is bad), or the built-in policy for `None`.
    pub fn new(path: Option<PathBuf>) -> Result<PolicyStore, PolicyError> {
        let (policy, seen) = match &path {
            None => (Policy::builtin(), (None, None)),
            Some(path) => {
                let fingerprint = fingerprint(path);
                let text = read(path)?;
                (Policy::from_toml(&text)?, (Some(text), fingerprint))
            }
        };
        Ok(PolicyStore {
            path,
            current: RwLock::new(Arc::new(policy)),
            seen: Mutex::new(seen),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The policy file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the file; `Ok(true)` if its text changed and the new policy is in force,
    /// `Ok(false)` if unchanged (or there is no file). On error the old policy stays.
    pub fn reload(&self) -> Result<bool, PolicyError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let fingerprint = fingerprint(path);
        let text = read(path)?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.1 = fingerprint;
        if seen.0.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let policy = Policy::from_toml(&text)?;
        seen.0 = Some(text);
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(policy);
        Ok(true)
    }

    /// Polls the file every [`WATCH_INTERVAL`] and reloads when it changed, until
    /// `cancel`. Logs reloads at info and failures at warn.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        self.watch_every(WATCH_INTERVAL, cancel).await;
    }

    /// [`PolicyStore::watch`] with another interval (tests).
    pub async fn watch_every(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let Some(path) = self.path.clone() else {
            return;
        };
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let now = fingerprint(&path);
            let last = self
                .seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .1
                .clone();
            if now == last {
                continue;
            }
            match self.reload() {
                Ok(true) => tracing::info!(path = %path.display(), "command policy reloaded"),
                Ok(false) => {}
                Err(err) => {
                    self.seen
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .1 = now;
                    tracing::warn!(path = %path.display(), error = %err, "command policy not reloaded; keeping the old one");
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Fingerprint {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}
