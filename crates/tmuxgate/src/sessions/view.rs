//! A streamed pane as its viewers see it: the output log and a status watch (end offset,
//! size, viewer count, end of life) that wakes every viewer's connection task.

use std::sync::Arc;

use tmux_control::PaneId;
use tokio::sync::watch;

use super::CloseReason;
use super::log::PaneLog;
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
}

impl PaneView {
    /// A view with a fresh log.
    pub fn new(pane: PaneId, ring_bytes: usize, cols: u16, rows: u16, viewers: u32) -> PaneView {
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
        }
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
        self.log.append(data);
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
