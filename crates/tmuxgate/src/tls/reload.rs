//! Reloading on file change: [`watch`] polls the certificate and key files every
//! `TLS_RELOAD_INTERVAL` and reloads once a change has settled.
//!
//! Polling `stat` rather than subscribing to inotify works the same for every way a
//! certificate is replaced: written in place, renamed over (certbot, `mv`), or a Kubernetes
//! secret volume swapping its `..data` symlink (`stat` follows links). A file's [`Stamp`]
//! (device, inode, size, modification time) changes in all of these. Certificate and key
//! are two files that cannot be replaced together, so a change is acted on only when two
//! polls in a row see the same stamps: a renewal caught between its two renames is not
//! loaded (and logged as a mismatch), it is loaded one interval later, whole.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::Tls;

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    device: u64,
    inode: u64,
    size: u64,
    modified: Option<SystemTime>,
}

/// The certificate's and the key's stamps; `None` for a file that cannot be `stat`ed.
pub type Stamps = [Option<Stamp>; 2];

/// The stamps of `cert` and `key` now (following symbolic links).
pub fn stamps(cert: &Path, key: &Path) -> Stamps {
    [stamp(cert), stamp(key)]
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        device: meta.dev(),
        inode: meta.ino(),
        size: meta.size(),
        modified: meta.modified().ok(),
    })
}

/// Decides, poll by poll, whether to reload.
#[derive(Debug)]
pub struct Settle {
    previous: Stamps,
}

impl Settle {
    /// Starts from the stamps of the files as loaded.
    pub fn new(loaded: Stamps) -> Settle {
        Settle { previous: loaded }
    }

    /// Whether to reload, given the stamps seen `now` and those of the last load: the files
    /// differ from what was loaded and are unchanged since the previous poll.
    pub fn observe(&mut self, now: Stamps, loaded: Stamps) -> bool {
        let settled = now == self.previous;
        self.previous = now;
        settled && now != loaded
    }
}

/// Polls `tls`'s files every `interval` until `shutdown`; `ZERO` returns at once (SIGHUP
/// and [`crate::ServerHandle::reload_tls`] still reload).
pub async fn watch(tls: Arc<Tls>, interval: Duration, shutdown: CancellationToken) {
    if interval.is_zero() {
        return;
    }
    let mut settle = Settle::new(tls.loaded_stamps());
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (cert, key) = tls.paths();
        // `stat` can block (network file systems): off the async workers.
        let now = match tokio::task::spawn_blocking(move || stamps(&cert, &key)).await {
            Ok(now) => now,
            // A panic is this task's: its supervisor starts it again.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => return,
        };
        if settle.observe(now, tls.loaded_stamps()) {
            // The outcome is logged, counted and published by `reload` itself.
            let _ = tls.reload().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(inode: u64) -> Option<Stamp> {
        Some(Stamp {
            device: 1,
            inode,
            size: 100,
            modified: None,
        })
    }

    #[test]
    fn unchanged_files_are_not_reloaded() {
        let loaded = [at(1), at(2)];
        let mut settle = Settle::new(loaded);
        assert!(!settle.observe(loaded, loaded));
        assert!(!settle.observe(loaded, loaded));
    }

    #[test]
    fn a_change_is_reloaded_once_it_has_settled() {
        let loaded = [at(1), at(2)];
        let mut settle = Settle::new(loaded);
        let half = [at(3), at(2)];
        assert!(
            !settle.observe(half, loaded),
            "the certificate alone was renamed"
        );
        let whole = [at(3), at(4)];
        assert!(
            !settle.observe(whole, loaded),
            "then the key: not yet settled"
        );
        assert!(
            settle.observe(whole, loaded),
            "unchanged for one poll: reload"
        );
        assert!(!settle.observe(whole, whole), "loaded: nothing more to do");
    }

    #[test]
    fn a_failed_load_is_not_retried_until_the_files_change_again() {
        let bad = [at(3), at(2)];
        let mut settle = Settle::new([at(1), at(2)]);
        assert!(!settle.observe(bad, [at(1), at(2)]));
        assert!(settle.observe(bad, [at(1), at(2)]));
        // `reload` records the stamps it read even when loading failed.
        assert!(!settle.observe(bad, bad));
        assert!(!settle.observe([at(3), at(4)], bad));
        assert!(settle.observe([at(3), at(4)], bad));
    }

    #[test]
    fn missing_files_count_as_a_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert.pem");
        assert_eq!(stamps(&path, &path), [None, None]);
        std::fs::write(&path, b"x").expect("write");
        let first = stamps(&path, &path);
        assert!(first[0].is_some());
        let renamed = dir.path().join("new.pem");
        std::fs::write(&renamed, b"x").expect("write");
        std::fs::rename(&renamed, &path).expect("rename");
        assert_ne!(stamps(&path, &path), first, "a rename changes the inode");
    }
}
