//! The churn lock: keeps control clients joining or leaving a tmux server apart from the
//! notifications the gateway's own session creation and destruction fire.
//!
//! tmux without the fix of tmux PR #4980 (3.3a here; 3.5a still has the bug) crashes, on a
//! NULL `control_state` in `control_write`, when a control notification fires while a
//! control client is between identifying itself and starting control mode. Within one
//! gateway an async mutex keeps the gateway's own triggers out of that window. Several
//! gateways sharing a server (a fleet, or a gateway restarting while the old one drains)
//! also take an exclusive `flock` on a file beside the socket, so the window is kept clear
//! across processes too. Triggers from inside panes cannot be kept out, which is one more
//! reason backends are separate trust domains.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

/// Longest this gateway waits for another process's hold on the file lock.
const PATIENCE: Duration = Duration::from_secs(1);

/// One server's churn lock.
pub struct ChurnLock {
    local: Mutex<()>,
    /// The lock file shared with other processes, when the server is reached through a
    /// local socket.
    file: Option<PathBuf>,
}

/// Held while a control client joins or leaves, or a session is created or destroyed.
pub struct ChurnGuard<'a> {
    _local: MutexGuard<'a, ()>,
    /// Closing it releases the `flock`.
    _file: Option<File>,
}

impl ChurnLock {
    /// A lock for a server whose socket is `socket` (`None`: not a local socket, so only
    /// this process's own triggers are serialised).
    pub fn new(socket: Option<PathBuf>) -> ChurnLock {
        let file = socket.map(|s| {
            let mut name = s.into_os_string();
            name.push(".churn");
            PathBuf::from(name)
        });
        ChurnLock {
            local: Mutex::new(()),
            file,
        }
    }

    /// Takes the lock: this process's first, then the file's. Cancel-safe.
    pub async fn lock(&self) -> ChurnGuard<'_> {
        let local = self.local.lock().await;
        let file = match &self.file {
            Some(path) => lock_file(path.clone()).await,
            None => None,
        };
        ChurnGuard {
            _local: local,
            _file: file,
        }
    }
}

/// Opens `path` (a description of its own, so each holder's lock is independent) and locks
/// it exclusively, polling with an async backoff: no thread waits, and a caller that gives
/// up leaves nothing behind. A peer that holds it longer than [`PATIENCE`] (a gateway
/// stopped with SIGSTOP while it held it) is not waited for: this gateway goes on without
/// the file lock, and says so, rather than stall every session of the fleet. A file that
/// cannot be opened or locked (a read-only directory) is skipped the same way.
async fn lock_file(path: PathBuf) -> Option<File> {
    let opened = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = match opened {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open the churn lock file");
            return None;
        }
    };
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                tracing::warn!(path = %path.display(),
                    "another process has held the churn lock too long; going on without it");
                return None;
            }
            Err(TryLockError::Error(error)) => {
                tracing::warn!(path = %path.display(), %error, "cannot lock the churn lock file");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("backend-0.sock");
        // Two locks on one socket stand for two processes: each opens its own description.
        let (one, two) = (
            ChurnLock::new(Some(socket.clone())),
            ChurnLock::new(Some(socket)),
        );
        let held = one.lock().await;
        let waiting = tokio::spawn(async move {
            let _guard = two.lock().await;
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the file lock kept the second holder out"
        );
        drop(held);
        waiting.await.expect("the second holder got the lock");
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_the_lock_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("backend-0.sock");
        let (one, two) = (
            ChurnLock::new(Some(socket.clone())),
            ChurnLock::new(Some(socket)),
        );
        let held = one.lock().await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), two.lock()).await;
        assert!(gave_up.is_err(), "the lock was held");
        drop(held);
        let guard = tokio::time::timeout(Duration::from_secs(5), two.lock())
            .await
            .expect("the lock is free again");
        assert!(guard._file.is_some(), "and this holder has the file lock");
    }

    #[tokio::test]
    async fn a_holder_that_never_lets_go_is_not_waited_for_forever() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("backend-0.sock");
        let (one, two) = (
            ChurnLock::new(Some(socket.clone())),
            ChurnLock::new(Some(socket)),
        );
        let _held = one.lock().await;
        let guard = tokio::time::timeout(PATIENCE * 5, two.lock())
            .await
            .expect("given up on the file lock after PATIENCE");
        assert!(guard._file.is_none(), "went on without the file lock");
    }
}
