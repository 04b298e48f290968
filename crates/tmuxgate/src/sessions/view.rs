//! A streamed pane as its viewers see it: the output log and a status watch (end offset,
//! size, viewer count, end of life) that wakes every viewer's connection task.

use std::sync::{Arc, Mutex};

use tmux_control::PaneId;
use tokio::sync::watch;

use super::CloseReason;
use super::log::PaneLog;
use super::marks::{Marks, Scanner};
use super::snapshot::SnapshotCache;

/// What every viewer of a pane watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaneStatus {
    /// End offset of the pane log.
    pub end: u64,
    /// Pane width.
    pub cols: u16,
    /// Pane height.
    pub rows: u16,
    /// Viewers attached to the session.
    pub viewers: u32,
    /// Set once the pane or session is gone.
    pub closed: Option<CloseReason>,
    /// Bumped when the session's shares change: attached channels re-check their access.
    pub access: u32,
}

/// One streamed pane: its log and its status.
pub struct PaneView {
    /// tmux pane id.
    pub pane: PaneId,
    /// Output log.
    pub log: Arc<PaneLog>,
    /// The last snapshot taken, shared by viewers that join while it is current; the lock
    /// also makes concurrent joiners wait for one capture instead of each taking their own.
    pub snapshot: tokio::sync::Mutex<SnapshotCache>,
    status: watch::Sender<PaneStatus>,
    /// Shell-integration marks, scanned from the output when the shell prints them.
    marks: Option<MarkWatch>,
}

/// The marks of one pane and a watch bumped whenever one arrives.
struct MarkWatch {
    nonce: Arc<str>,
    scanner: Mutex<Scanner>,
    seen: watch::Sender<u64>,
}

impl PaneView {
    /// A view with a fresh log.
    /// `nonce`: the integrated shell's, when the session runs it.
    pub fn new(
        pane: PaneId,
        ring_bytes: usize,
        (cols, rows): (u16, u16),
        viewers: u32,
        nonce: Option<Arc<str>>,
    ) -> PaneView {
        let log = Arc::new(PaneLog::new(PaneLog::next_base(), ring_bytes));
        let status = PaneStatus {
            end: log.end(),
            cols,
            rows,
            viewers,
            closed: None,
            access: 0,
        };
        PaneView {
            pane,
            log,
            snapshot: tokio::sync::Mutex::default(),
            status: watch::Sender::new(status),
            marks: nonce.map(|nonce| MarkWatch {
                nonce,
                scanner: Mutex::default(),
                seen: watch::Sender::new(0),
            }),
        }
    }

    /// The marks so far (defaults when the shell prints none).
    pub fn marks(&self) -> Marks {
        self.marks
            .as_ref()
            .map(|m| lock(&m.scanner).marks())
            .unwrap_or_default()
    }

    /// Changes the marks state (the executor's claim), under the scanner's lock.
    pub fn update_marks<T>(&self, f: impl FnOnce(&mut Marks) -> T) -> Option<T> {
        let m = self.marks.as_ref()?;
        Some(f(lock(&m.scanner).marks_mut()))
    }

    /// A receiver that changes whenever a mark arrives.
    pub fn subscribe_marks(&self) -> Option<watch::Receiver<u64>> {
        self.marks.as_ref().map(|m| m.seen.subscribe())
    }

    /// A receiver of this pane's status changes.
    pub fn subscribe(&self) -> watch::Receiver<PaneStatus> {
        self.status.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> PaneStatus {
        *self.status.borrow()
    }

    /// Appends output; viewers wake at the next [`PaneView::wake`].
    pub fn append(&self, data: &[u8]) {
        let end = self.log.append(data);
        if let Some(m) = &self.marks {
            let at = end - data.len() as u64;
            if lock(&m.scanner).scan(&m.nonce, data, at) {
                m.seen.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes the viewers if output was appended since the last call.
    pub fn wake(&self) {
        let end = self.log.end();
        self.update(|s| s.end = end);
    }

    /// Changes the status; viewers wake only if something changed.
    pub fn update(&self, f: impl FnOnce(&mut PaneStatus)) {
        self.status.send_if_modified(|s| {
            let before = *s;
            f(s);
            *s != before
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
