//! The session hub: one tmux control connection per attached session, shared by all its
//! viewers.
//!
//! The control client's reader calls `Shared::on_notification` for every `%output`, which
//! appends to that pane's log and bumps the pane's status watch; viewers wake and copy from
//! their own offsets. A hub task sends coalesced input, refreshes pane sizes after layout
//! changes and works out why the connection ended. A hub lingers `HUB_LINGER` after its last
//! viewer left, then detaches; a viewer can only join a hub that is not detaching.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tmux_control::{Command, ControlClient, Notification, PaneId, SessionId, Target};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::input::{self, InputQueue};
use super::registry::SessionEntry;
use super::snapshot::{self, Snapshot, SnapshotError};
use super::view::PaneView;
use super::{CloseReason, SessionError};

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
struct Shared {
    session: SessionId,
    panes: Mutex<HashMap<PaneId, Arc<PaneView>>>,
    input: Mutex<InputQueue>,
    wake: Notify,
    refresh: AtomicBool,
    ended: AtomicBool,
}

impl Shared {
    fn on_notification(&self, n: Notification) {
        match n {
            Notification::Output { pane, data } => {
                let view = lock(&self.panes).get(&pane).cloned();
                if let Some(view) = view {
                    view.append(&data);
                }
            }
            Notification::LayoutChange { .. }
            | Notification::WindowClose { .. }
            | Notification::UnlinkedWindowClose { .. }
            | Notification::WindowPaneChanged { .. } => {
                self.refresh.store(true, Ordering::Release);
                self.wake.notify_one();
            }
            // Switched to another session (`switch-client` typed in a pane): this connection
            // no longer follows ours, so it ends like a detach.
            Notification::SessionChanged { session, .. } if session != self.session => self.end(),
            Notification::Exit { .. } => self.end(),
            _ => {}
        }
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Viewer count and detach decision, under one lock so a join cannot race a detach.
#[derive(Default)]
struct Life {
    viewers: u32,
    generation: u64,
    detaching: bool,
}

/// A live attachment point for one session.
pub struct Hub {
    /// The session.
    pub entry: Arc<SessionEntry>,
    client: ControlClient,
    shared: Arc<Shared>,
    settings: HubSettings,
    life: Mutex<Life>,
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
        let shared = Arc::new(Shared {
            session: entry.tmux_id,
            panes: Mutex::default(),
            input: Mutex::default(),
            wake: Notify::new(),
            refresh: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        });
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
            life: Mutex::default(),
            cancel: CancellationToken::new(),
            stopped: CancellationToken::new(),
            closed_tx,
        });
        tokio::spawn(hub.clone().run());
        Ok(hub)
    }

    /// Viewers attached now.
    pub fn viewer_count(&self) -> u32 {
        lock(&self.life).viewers
    }

    /// Whether this hub is detaching or its connection ended.
    pub fn is_closing(&self) -> bool {
        self.cancel.is_cancelled() || self.client.is_closed() || lock(&self.life).detaching
    }

    /// Registers a viewer, unless the hub is already detaching. The guard unregisters it.
    pub fn try_join(self: &Arc<Self>) -> Option<ViewerGuard> {
        let mut life = lock(&self.life);
        if life.detaching || self.cancel.is_cancelled() {
            return None;
        }
        life.viewers += 1;
        self.publish_viewers(life.viewers);
        Some(ViewerGuard { hub: self.clone() })
    }

    /// The pane a viewer asked for (validated to belong to this session), or the active one.
    pub async fn resolve_pane(&self, target: Option<PaneId>) -> Result<PaneId, SessionError> {
        let cmd = Command::new("display-message").flag("-p");
        let cmd = match target {
            Some(pane) => cmd.flag_value("-t", pane),
            None => cmd.flag_value("-t", self.entry.tmux_id),
        };
        let line = self
            .query(cmd.arg_quoted("#{session_id} #{pane_id}")?)
            .await?;
        let (session, pane) = line.split_once(' ').ok_or(SessionError::PaneNotFound)?;
        match pane.parse::<PaneId>() {
            Ok(pane) if session == self.entry.tmux_id.to_string() => Ok(pane),
            _ => Err(SessionError::PaneNotFound),
        }
    }

    /// The view of `pane`, created (with a fresh log) on first use.
    pub async fn view(&self, pane: PaneId) -> Result<Arc<PaneView>, SessionError> {
        if let Some(view) = lock(&self.shared.panes).get(&pane) {
            return Ok(view.clone());
        }
        let (cols, rows) = self.pane_size(pane).await?;
        let viewers = self.viewer_count();
        let mut panes = lock(&self.shared.panes);
        let view = panes.entry(pane).or_insert_with(|| {
            Arc::new(PaneView::new(
                pane,
                self.settings.ring_bytes,
                cols,
                rows,
                viewers,
            ))
        });
        Ok(view.clone())
    }

    /// A snapshot of `view`'s pane at an exact log offset.
    pub async fn snapshot(&self, view: &PaneView) -> Result<Snapshot, SnapshotError> {
        let dir = &self.settings.capture_dir;
        let lines = self.settings.snapshot_history_lines;
        snapshot::take(&self.client, view.pane, view.log.clone(), dir, lines).await
    }

    /// Queues input for a pane. Returns false when the backlog is full.
    pub fn input(&self, pane: PaneId, data: &[u8]) -> bool {
        if !lock(&self.shared.input).push(pane, data) {
            return false;
        }
        self.shared.wake.notify_one();
        true
    }

    /// Makes this client's size the session's size (the most recent writer wins).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SessionError> {
        let cmd = Command::new("refresh-client").flag_value("-C", format!("{cols}x{rows}"));
        self.client.command(cmd).await?;
        self.shared.refresh.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Detaches now and waits until the tmux client has exited (gateway shutdown): a
    /// successor gateway must not connect while it is still leaving (see `Sessions::close_all`).
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.stopped.cancelled().await;
    }

    /// One line of a command's output; a command tmux refuses means the pane is gone.
    async fn query(&self, cmd: Command) -> Result<String, SessionError> {
        let block = match self.client.command(cmd).await {
            Ok(reply) => reply.single()?,
            Err(tmux_control::Error::Command { .. }) => return Err(SessionError::PaneNotFound),
            Err(e) => return Err(e.into()),
        };
        let line = block.lines.first().ok_or(SessionError::PaneNotFound)?;
        Ok(String::from_utf8_lossy(line).into_owned())
    }

    async fn pane_size(&self, pane: PaneId) -> Result<(u16, u16), SessionError> {
        let cmd = Command::new("display-message")
            .flag("-p")
            .flag_value("-t", pane);
        let line = self
            .query(cmd.arg_quoted("#{pane_width} #{pane_height}")?)
            .await?;
        let parsed = line
            .split_once(' ')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
        parsed.ok_or(SessionError::PaneNotFound)
    }

    async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = self.cancel.cancelled() => break,
            }
            let queued = lock(&self.shared.input).take();
            input::send(&self.client, queued, &self.cancel).await;
            if self.shared.refresh.swap(false, Ordering::AcqRel) {
                self.refresh_sizes().await;
            }
            if self.shared.ended.load(Ordering::Acquire) {
                self.on_end().await;
                break;
            }
        }
        let churn = self.entry.backend.churn().await;
        self.client.clone().shutdown().await;
        drop(churn);
        self.stopped.cancel();
    }

    async fn refresh_sizes(&self) {
        let views: Vec<_> = lock(&self.shared.panes).values().cloned().collect();
        let single = views.len() == 1;
        for view in views {
            match self.pane_size(view.pane).await {
                Ok((cols, rows)) => {
                    if single {
                        // The listed size is the pane's when there is one; tmux's window
                        // size is not tracked separately.
                        self.entry.set_size(cols, rows);
                    }
                    view.update(|s| (s.cols, s.rows) = (cols, rows));
                }
                Err(SessionError::PaneNotFound) => {
                    // The pane closed; the session lives on in its other panes.
                    lock(&self.shared.panes).remove(&view.pane);
                    view.update(|s| s.closed = Some(CloseReason::Exited));
                }
                Err(_) => {}
            }
        }
    }

    /// The connection ended: decide why, tell the viewers and the registry.
    async fn on_end(&self) {
        let reason = if self.entry.is_destroying() {
            CloseReason::Destroyed
        } else if !self.entry.backend.probe().await {
            CloseReason::BackendLost
        } else if self.entry.backend.has_session(self.entry.tmux_id).await {
            CloseReason::Detached
        } else {
            CloseReason::Exited
        };
        for view in lock(&self.shared.panes).values() {
            view.update(|s| s.closed = Some(reason));
        }
        let _ = self.closed_tx.send((self.entry.id.clone(), reason));
    }

    /// Publishes the viewer count; called with the `life` lock held, so counts go out in
    /// order.
    fn publish_viewers(&self, n: u32) {
        for view in lock(&self.shared.panes).values() {
            view.update(|s| s.viewers = n);
        }
    }

    fn viewer_left(self: &Arc<Self>) {
        let generation = {
            let mut life = lock(&self.life);
            life.viewers -= 1;
            self.publish_viewers(life.viewers);
            if life.viewers > 0 {
                return;
            }
            life.generation += 1;
            life.generation
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the runtime is going away, and the hub with it
        };
        let hub = self.clone();
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(hub.settings.linger) => {}
                _ = hub.cancel.cancelled() => return,
            }
            let mut life = lock(&hub.life);
            if life.viewers == 0 && life.generation == generation {
                life.detaching = true;
                drop(life);
                tracing::debug!(session = %hub.entry.id, "last viewer gone: detaching");
                hub.cancel.cancel();
            }
        });
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
