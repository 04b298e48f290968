//! The session hub: one tmux control connection per attached session, shared by all its
//! viewers.
//!
//! The control client's reader calls [`Shared::on_notification`] for every `%output`, which
//! appends to that pane's [`PaneLog`] and bumps the pane's status watch; viewers wake and
//! copy from their own offsets. A hub task sends coalesced input (keystrokes that arrive
//! while a `send-keys` is in flight ride in the next one), refreshes pane sizes after layout
//! changes and works out why the session ended when the connection closes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tmux_control::{Command, ControlClient, Notification, PaneId, Target};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::log::PaneLog;
use super::registry::SessionEntry;
use super::snapshot::{self, Snapshot, SnapshotError};
use super::{CloseReason, SessionError};

/// Largest input backlog per hub; beyond it input is refused until tmux catches up.
pub const MAX_PENDING_INPUT_BYTES: usize = 1 << 20;

/// What every viewer of a pane watches: new output, size, viewers and the end.
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
}

/// One streamed pane: its log and its status.
pub struct PaneView {
    /// tmux pane id.
    pub pane: PaneId,
    /// Output log.
    pub log: Arc<PaneLog>,
    status: watch::Sender<PaneStatus>,
}

impl PaneView {
    /// A receiver of this pane's status changes.
    pub fn subscribe(&self) -> watch::Receiver<PaneStatus> {
        self.status.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> PaneStatus {
        *self.status.borrow()
    }

    fn update(&self, f: impl FnOnce(&mut PaneStatus)) {
        self.status.send_if_modified(|s| {
            let before = *s;
            f(s);
            *s != before
        });
    }
}

/// Settings a hub needs from the gateway.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// Pane log capacity.
    pub ring_bytes: usize,
    /// History lines in snapshots.
    pub snapshot_history_lines: u32,
    /// Private directory for capture files.
    pub capture_dir: PathBuf,
    /// How long a hub stays after its last viewer left (so a quick reconnect resumes exactly).
    pub linger: Duration,
}

/// State the tmux reader task touches.
#[derive(Default)]
struct Shared {
    panes: Mutex<HashMap<PaneId, Arc<PaneView>>>,
    input: Mutex<InputQueue>,
    wake: Notify,
    refresh: AtomicBool,
    exited: AtomicBool,
}

#[derive(Default)]
struct InputQueue {
    chunks: Vec<(PaneId, Vec<u8>)>,
    bytes: usize,
}

impl Shared {
    fn on_notification(&self, n: Notification) {
        match n {
            Notification::Output { pane, data } => {
                let view = lock(&self.panes).get(&pane).cloned();
                if let Some(view) = view {
                    let end = view.log.append(&data);
                    view.update(|s| s.end = end);
                }
            }
            Notification::LayoutChange { .. }
            | Notification::WindowClose { .. }
            | Notification::UnlinkedWindowClose { .. }
            | Notification::WindowPaneChanged { .. } => {
                self.refresh.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            Notification::Exit { .. } => {
                self.exited.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            _ => {}
        }
    }
}

/// A live attachment point for one session.
pub struct Hub {
    /// The session.
    pub entry: Arc<SessionEntry>,
    client: ControlClient,
    shared: Arc<Shared>,
    settings: HubSettings,
    viewers: AtomicU32,
    zero_generation: AtomicU64,
    snapshot_seq: AtomicU64,
    cancel: CancellationToken,
    /// Cancelled once the hub task has ended and its tmux client has exited.
    stopped: CancellationToken,
    closed_tx: mpsc::UnboundedSender<(String, CloseReason)>,
}

impl Hub {
    /// Attaches a control connection to the session and starts the hub task.
    pub async fn open(
        entry: Arc<SessionEntry>,
        settings: HubSettings,
        closed_tx: mpsc::UnboundedSender<(String, CloseReason)>,
    ) -> Result<Arc<Hub>, SessionError> {
        let shared = Arc::new(Shared::default());
        let reader = shared.clone();
        let options = entry.backend.spawn_options(Target::Attach(entry.tmux_id));
        let churn = entry.backend.churn().await;
        let client = ControlClient::spawn(options, move |n| reader.on_notification(n)).await?;
        drop(churn);
        let hub = Arc::new(Hub {
            entry,
            client,
            shared,
            settings,
            viewers: AtomicU32::new(0),
            zero_generation: AtomicU64::new(0),
            snapshot_seq: AtomicU64::new(0),
            cancel: CancellationToken::new(),
            stopped: CancellationToken::new(),
            closed_tx,
        });
        tokio::spawn(hub.clone().run());
        Ok(hub)
    }

    /// Viewers attached now.
    pub fn viewer_count(&self) -> u32 {
        self.viewers.load(Ordering::Acquire)
    }

    /// Whether this hub is shutting down or its connection ended.
    pub fn is_closing(&self) -> bool {
        self.cancel.is_cancelled() || self.client.is_closed()
    }

    /// The pane a viewer asked for (validated to belong to this session), or the active one.
    pub async fn resolve_pane(&self, target: Option<PaneId>) -> Result<PaneId, SessionError> {
        let cmd = Command::new("display-message").flag("-p");
        let cmd = match target {
            Some(pane) => cmd.flag_value("-t", pane),
            None => cmd.flag_value("-t", self.entry.tmux_id),
        };
        let line = first_line(&self.client, cmd.arg_quoted("#{session_id} #{pane_id}")?).await;
        let line = line.map_err(|_| SessionError::PaneNotFound)?;
        let (session, pane) = line.split_once(' ').ok_or(SessionError::PaneNotFound)?;
        let pane: PaneId = pane.parse().map_err(|_| SessionError::PaneNotFound)?;
        if session != self.entry.tmux_id.to_string() {
            return Err(SessionError::PaneNotFound);
        }
        Ok(pane)
    }

    /// The view of `pane`, created (with a fresh log) on first use.
    pub async fn view(&self, pane: PaneId) -> Result<Arc<PaneView>, SessionError> {
        if let Some(view) = lock(&self.shared.panes).get(&pane) {
            return Ok(view.clone());
        }
        let (cols, rows) = self.pane_size(pane).await?;
        let mut panes = lock(&self.shared.panes);
        let view = panes.entry(pane).or_insert_with(|| {
            let log = Arc::new(PaneLog::new(
                PaneLog::base_for_now(),
                self.settings.ring_bytes,
            ));
            let status = PaneStatus {
                end: log.end(),
                cols,
                rows,
                viewers: self.viewers.load(Ordering::Acquire),
                closed: None,
            };
            Arc::new(PaneView {
                pane,
                log,
                status: watch::Sender::new(status),
            })
        });
        Ok(view.clone())
    }

    /// Registers a viewer; the returned guard unregisters it when dropped.
    pub fn join(self: &Arc<Self>) -> ViewerGuard {
        let n = self.viewers.fetch_add(1, Ordering::AcqRel) + 1;
        self.publish_viewers(n);
        ViewerGuard { hub: self.clone() }
    }

    /// A snapshot of `view`'s pane at an exact log offset.
    pub async fn snapshot(&self, view: &PaneView) -> Result<Snapshot, SnapshotError> {
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let dir = &self.settings.capture_dir;
        let lines = self.settings.snapshot_history_lines;
        let seq = seq ^ (u64::from(self.entry.tmux_id.0) << 40);
        snapshot::take(&self.client, view.pane, view.log.clone(), dir, lines, seq).await
    }

    /// Queues input for a pane. Returns false when the backlog is full.
    pub fn input(&self, pane: PaneId, data: &[u8]) -> bool {
        let mut queue = lock(&self.shared.input);
        if queue.bytes + data.len() > MAX_PENDING_INPUT_BYTES {
            return false;
        }
        queue.bytes += data.len();
        match queue.chunks.last_mut() {
            Some((p, buf)) if *p == pane => buf.extend_from_slice(data),
            _ => queue.chunks.push((pane, data.to_vec())),
        }
        drop(queue);
        self.shared.wake.notify_one();
        true
    }

    /// Makes this client's size the session's size (the most recent writer wins).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SessionError> {
        let size = format!("{cols}x{rows}");
        let cmd = Command::new("refresh-client").flag_value("-C", size);
        self.client.command(cmd).await?.check()?;
        self.request_refresh();
        Ok(())
    }

    fn request_refresh(&self) {
        self.shared.refresh.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    async fn pane_size(&self, pane: PaneId) -> Result<(u16, u16), SessionError> {
        let cmd = Command::new("display-message")
            .flag("-p")
            .flag_value("-t", pane);
        let line = first_line(
            &self.client,
            cmd.arg_quoted("#{pane_width} #{pane_height}")?,
        )
        .await;
        let line = line.map_err(|_| SessionError::PaneNotFound)?;
        let (w, h) = line.split_once(' ').ok_or(SessionError::PaneNotFound)?;
        Ok((
            w.parse().map_err(|_| SessionError::PaneNotFound)?,
            h.parse().map_err(|_| SessionError::PaneNotFound)?,
        ))
    }

    async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = self.cancel.cancelled() => break,
            }
            self.flush_input().await;
            if self.shared.refresh.swap(false, Ordering::AcqRel) {
                self.refresh_sizes().await;
            }
            if self.shared.exited.load(Ordering::Acquire) {
                self.on_exit().await;
                break;
            }
        }
        let churn = self.entry.backend.churn().await;
        self.client.clone().shutdown().await;
        drop(churn);
        self.stopped.cancel();
    }

    async fn flush_input(&self) {
        let chunks = {
            let mut queue = lock(&self.shared.input);
            queue.bytes = 0;
            std::mem::take(&mut queue.chunks)
        };
        let mut commands = Vec::new();
        for (pane, data) in chunks {
            commands.clear();
            tmux_control::encode_input(pane, &data, &mut commands);
            for cmd in commands.drain(..) {
                if let Err(e) = self.client.command(cmd).await {
                    tracing::debug!(session = %self.entry.id, error = %e, "send-keys failed");
                }
            }
        }
    }

    async fn refresh_sizes(&self) {
        let views: Vec<_> = lock(&self.shared.panes).values().cloned().collect();
        for view in views {
            match self.pane_size(view.pane).await {
                Ok((cols, rows)) => {
                    self.entry.set_size(cols, rows);
                    view.update(|s| (s.cols, s.rows) = (cols, rows));
                }
                Err(_) if !self.client.is_closed() => {
                    view.update(|s| s.closed = Some(CloseReason::Exited))
                }
                Err(_) => {}
            }
        }
    }

    async fn on_exit(&self) {
        let reason = if self.entry.is_destroying() {
            CloseReason::Destroyed
        } else if self.entry.backend.probe().await {
            CloseReason::Exited
        } else {
            CloseReason::BackendLost
        };
        for view in lock(&self.shared.panes).values() {
            view.update(|s| s.closed = Some(reason));
        }
        let _ = self.closed_tx.send((self.entry.id.clone(), reason));
    }

    fn publish_viewers(&self, n: u32) {
        for view in lock(&self.shared.panes).values() {
            view.update(|s| s.viewers = n);
        }
    }

    fn viewer_left(self: &Arc<Self>) {
        let n = self.viewers.fetch_sub(1, Ordering::AcqRel) - 1;
        self.publish_viewers(n);
        if n > 0 {
            return;
        }
        let generation = self.zero_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the runtime is going away, and the hub with it
        };
        let hub = self.clone();
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(hub.settings.linger) => {}
                _ = hub.cancel.cancelled() => return,
            }
            let still_idle = hub.viewers.load(Ordering::Acquire) == 0
                && hub.zero_generation.load(Ordering::Acquire) == generation;
            if still_idle {
                tracing::debug!(session = %hub.entry.id, "last viewer gone: detaching");
                hub.cancel.cancel();
            }
        });
    }

    /// Detaches now and waits until the tmux client has exited (gateway shutdown): a
    /// successor gateway must not connect while it is still leaving (see `Sessions::close_all`).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.stopped.cancelled().await;
    }
}

/// Keeps a viewer counted while it lives.
pub struct ViewerGuard {
    hub: Arc<Hub>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.hub.viewer_left();
    }
}

async fn first_line(client: &ControlClient, cmd: Command) -> Result<String, SessionError> {
    let block = client.command(cmd).await?.single()?;
    let line = block.lines.first().ok_or(SessionError::PaneNotFound)?;
    Ok(String::from_utf8_lossy(line).into_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
