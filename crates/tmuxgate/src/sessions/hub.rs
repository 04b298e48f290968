//! The session hub: one tmux control connection per attached session, shared by all its
//! viewers.
//!
//! The control client's reader calls `Shared::on_notification` for every `%output`, which
//! appends to that pane's log and bumps the pane's status watch; viewers wake and copy from
//! their own offsets. A hub task sends coalesced input, refreshes pane sizes after layout
//! changes and works out why the connection ended. A hub lingers `HUB_LINGER` after its last
//! viewer left, then detaches; a viewer can only join a hub that is not detaching.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tmux_control::{Command, ControlClient, Notification, PaneId, SessionId, Target};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::input::{self, InputQueue};
use super::registry::SessionEntry;
use super::snapshot::{self, Snapshot, SnapshotError};
use super::view::PaneView;
use super::{CloseReason, SessionError};
use crate::backends::BackendError;
use crate::backends::health::BACKEND_CALL_TIMEOUT;

/// Settings a hub needs from the gateway.
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// Pane log capacity.
    pub ring_bytes: usize,
    /// History lines in snapshots.
    pub snapshot_history_lines: u32,
    /// How long a hub stays after its last viewer left (so a quick reconnect resumes exactly).
    pub linger: Duration,
    /// Counts snapshots captured from tmux (the `tmuxgate_snapshot_captures_total` metric).
    pub captures: Arc<AtomicU64>,
    /// Where `BACKEND_LOST` is recorded.
    pub audit: crate::audit::Audit,
    /// The fleet's store, once this gateway joined one (`Sessions::join_fleet`).
    pub fleet: FleetLink,
}

/// The fleet's store, set once when the gateway joins a fleet; shared by every hub.
#[derive(Clone, Default)]
pub struct FleetLink(Arc<std::sync::OnceLock<Arc<dyn crate::store::Store>>>);

impl FleetLink {
    pub(super) fn set(&self, store: Arc<dyn crate::store::Store>) {
        let _ = self.0.set(store);
    }

    fn get(&self) -> Option<&Arc<dyn crate::store::Store>> {
        self.0.get()
    }
}

impl std::fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.get().is_some() {
            "FleetLink(joined)"
        } else {
            "FleetLink(none)"
        })
    }
}

/// Viewer-count changes reach the viewers at most this often per session: a burst of joins
/// (a class opening one shared terminal) would otherwise cost every viewer one event per
/// join, quadratic in the audience. The last count always goes out.
pub const VIEWER_EVENT_INTERVAL: Duration = Duration::from_millis(250);

/// Cached snapshots are reused while the pane has printed at most this much since: the
/// joiner gets the snapshot plus those bytes, exactly as a resume would.
const SNAPSHOT_REUSE_BYTES: u64 = 32 * 1024;

/// Most pane ids remembered as belonging to the session.
const KNOWN_PANES_MAX: usize = 64;

/// State the tmux reader task touches.
struct Shared {
    session: SessionId,
    panes: Mutex<HashMap<PaneId, Arc<PaneView>>>,
    input: Mutex<InputQueue>,
    wake: Notify,
    refresh: AtomicBool,
    ended: AtomicBool,
    /// Bumped, in stream order, by every notification that may change the session's panes
    /// (`Notification::may_change_panes`) and by this hub's own resizes: anything cached
    /// about panes, windows or layout (the active pane, snapshots) is valid only while it is
    /// unchanged since the cached answer's reply.
    topology: AtomicU64,
    /// The viewer count changed and is not yet published.
    viewers_changed: AtomicBool,
}

/// The tmux reader's side of a hub: appends output as it is read and wakes each pane's
/// viewers once per read from tmux (one wake-up per batch of `%output` lines, not per line).
#[derive(Clone)]
struct Reader {
    shared: Arc<Shared>,
    /// Panes with output appended since the last flush.
    appended: Vec<Arc<PaneView>>,
}

impl tmux_control::Handler for Reader {
    fn notification(&mut self, n: Notification) {
        let Notification::Output { pane, data } = n else {
            return self.shared.on_notification(n);
        };
        if let Some(view) = self.appended.iter().find(|v| v.pane == pane) {
            return view.append(&data);
        }
        let view = lock(&self.shared.panes).get(&pane).cloned();
        if let Some(view) = view {
            view.append(&data);
            self.appended.push(view);
        }
    }

    fn flush(&mut self) {
        for view in self.appended.drain(..) {
            view.wake();
        }
    }
}

impl Shared {
    /// Every notification but output.
    fn on_notification(&self, n: Notification) {
        if n.may_change_panes() {
            self.topology.fetch_add(1, Ordering::AcqRel);
        }
        match n {
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
            // Keys may now drive a mode, not the shell: the executor must look again.
            Notification::PaneModeChanged { pane } => lock(&self.input).disturb(pane),
            Notification::Exit { .. } => self.end(),
            _ => {}
        }
    }

    fn topology(&self) -> u64 {
        self.topology.load(Ordering::Acquire)
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
    /// Commands being executed (they keep the hub, but are not viewers).
    holds: u32,
    generation: u64,
    detaching: bool,
}

/// Pane ids tmux confirmed for this session, valid while `epoch` is the current topology.
#[derive(Default)]
struct KnownPanes {
    epoch: u64,
    active: Option<PaneId>,
    members: Vec<PaneId>,
}

/// A live attachment point for one session.
pub struct Hub {
    /// The session.
    pub entry: Arc<SessionEntry>,
    client: ControlClient,
    shared: Arc<Shared>,
    settings: HubSettings,
    life: Mutex<Life>,
    known: Mutex<KnownPanes>,
    cancel: CancellationToken,
    /// Cancelled once the hub task has ended and its tmux client has exited.
    stopped: CancellationToken,
    /// Whether the viewers and the registry were told the hub ended.
    closed: AtomicBool,
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
            topology: AtomicU64::new(0),
            viewers_changed: AtomicBool::new(false),
        });
        let reader = Reader {
            shared: shared.clone(),
            appended: Vec::new(),
        };
        // One deadline for waiting behind other joins and for attaching.
        let deadline = Instant::now() + BACKEND_CALL_TIMEOUT;
        let churn = entry.backend.churn_by(deadline).await?;
        let attach = ControlClient::spawn(
            entry.backend.spawn_options(Target::Attach(entry.tmux_id)),
            reader.clone(),
        );
        let client = match entry.backend.bounded(deadline, attach).await {
            // Seen rarely under load in tests: the control client ended before tmux said
            // it was attached, while the session lives on. Once more, then give up.
            Err(BackendError::Tmux(tmux_control::Error::Exited { reason }))
                if entry.backend.has_session(entry.tmux_id).await =>
            {
                tracing::warn!(session = %entry.id, ?reason,
                    "tmux control client ended before attaching; retrying once");
                let options = entry.backend.spawn_options(Target::Attach(entry.tmux_id));
                let retry = ControlClient::spawn(options, reader);
                let deadline = Instant::now() + BACKEND_CALL_TIMEOUT;
                entry.backend.bounded(deadline, retry).await?
            }
            other => other?,
        };
        drop(churn);
        client.set_command_timeout(BACKEND_CALL_TIMEOUT);
        let hub = Arc::new(Hub {
            entry,
            client,
            shared,
            settings,
            life: Mutex::default(),
            known: Mutex::default(),
            cancel: CancellationToken::new(),
            stopped: CancellationToken::new(),
            closed: AtomicBool::new(false),
            closed_tx,
        });
        crate::supervise::spawn_contained("session-hub", hub.clone().run(), {
            let hub = hub.clone();
            async move { hub.after_panic().await }
        });
        Ok(hub)
    }

    /// Tells every channel attached to this session to check its access again (a share
    /// changed).
    pub fn access_changed(&self) {
        let views: Vec<_> = lock(&self.shared.panes).values().cloned().collect();
        for view in views {
            view.update(|s| s.access = s.access.wrapping_add(1));
        }
    }

    /// Viewers attached now.
    pub fn viewer_count(&self) -> u32 {
        lock(&self.life).viewers
    }

    /// Output its panes' logs hold now (at most the ring size per pane): how much the
    /// session printed lately, for placement. Read once per `session-create`.
    pub fn output_held_bytes(&self) -> u64 {
        let panes = lock(&self.shared.panes);
        panes.values().map(|v| v.log.end() - v.log.start()).sum()
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
        self.viewers_changed();
        Some(ViewerGuard { hub: self.clone() })
    }

    /// The pane a viewer asked for (validated to belong to this session), or the active one.
    /// Answers are remembered until the next non-output notification, so viewers joining a
    /// quiet session cost tmux nothing.
    pub async fn resolve_pane(&self, target: Option<PaneId>) -> Result<PaneId, SessionError> {
        {
            let known = lock(&self.known);
            if known.epoch == self.shared.topology() {
                match (target, known.active) {
                    (None, Some(active)) => return Ok(active),
                    (Some(pane), _) if known.members.contains(&pane) => return Ok(pane),
                    _ => {}
                }
            }
        }
        let cmd = Command::new("display-message").flag("-p");
        let cmd = match target {
            Some(pane) => cmd.flag_value("-t", pane),
            None => cmd.flag_value("-t", self.entry.tmux_id),
        };
        let (line, epoch) = self
            .query(cmd.arg_quoted("#{session_id} #{pane_id}")?)
            .await?;
        let (session, pane) = line.split_once(' ').ok_or(SessionError::PaneNotFound)?;
        let pane = match pane.parse::<PaneId>() {
            Ok(pane) if session == self.entry.tmux_id.to_string() => pane,
            _ => return Err(SessionError::PaneNotFound),
        };
        let mut known = lock(&self.known);
        if epoch > known.epoch {
            *known = KnownPanes {
                epoch,
                ..KnownPanes::default()
            };
        }
        if epoch == known.epoch {
            if target.is_none() {
                known.active = Some(pane);
            }
            if !known.members.contains(&pane) && known.members.len() < KNOWN_PANES_MAX {
                known.members.push(pane);
            }
        }
        Ok(pane)
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
            let nonce = self.entry.mark.clone();
            Arc::new(PaneView::new(
                pane,
                self.settings.ring_bytes,
                (cols, rows),
                viewers,
                nonce,
            ))
        });
        Ok(view.clone())
    }

    /// A snapshot of `view`'s pane at an exact log offset. Viewers joining together share
    /// one: a cached snapshot is reused while the layout is unchanged and the bytes printed
    /// since are still in the log and few (the joiner replays them from the snapshot's
    /// offset, as on resume).
    pub async fn snapshot(&self, view: &PaneView) -> Result<Arc<Snapshot>, SnapshotError> {
        let asked = Instant::now();
        let mut cache = view.snapshot.lock().await;
        if cache.failed_at.is_some_and(|failed| failed >= asked) {
            return Err(SnapshotError::Shared);
        }
        if let Some(snap) = cache.snap.as_ref() {
            let reusable = snap.epoch == self.shared.topology()
                && view.log.start() <= snap.offset
                && view.log.end() - snap.offset <= SNAPSHOT_REUSE_BYTES;
            if reusable {
                return Ok(snap.clone());
            }
        }
        let Some(captures) = self.entry.backend.captures() else {
            cache.failed_at = Some(Instant::now());
            return Err(SnapshotError::Tmux(tmux_control::Error::Exited {
                reason: None,
            }));
        };
        let lines = self.settings.snapshot_history_lines;
        let shared = self.shared.clone();
        let taken = snapshot::take(
            &self.client,
            view.pane,
            view.log.clone(),
            move || shared.topology(),
            &captures,
            lines,
        )
        .await;
        let snap = match taken {
            Ok(snap) => Arc::new(snap),
            Err(e) => {
                cache.failed_at = Some(Instant::now());
                return Err(e);
            }
        };
        self.settings.captures.fetch_add(1, Ordering::Relaxed);
        cache.snap = Some(snap.clone());
        Ok(snap)
    }

    /// Queues input for a pane. Returns false when the backlog is full.
    pub fn input(&self, pane: PaneId, data: &[u8]) -> bool {
        if !lock(&self.shared.input).push(pane, data) {
            return false;
        }
        self.shared.wake.notify_one();
        true
    }

    /// What is known of the line being edited in `pane` (for the command executor).
    pub fn line(&self, pane: PaneId) -> input::Line {
        lock(&self.shared.input).line(pane)
    }

    /// Queues the executor's input if `check` accepts the pane's line state, atomically
    /// with respect to viewers' input; `clean_after` records the line as empty after it.
    pub fn input_checked(
        &self,
        pane: PaneId,
        data: &[u8],
        check: impl FnOnce(input::Line) -> bool,
        clean_after: bool,
    ) -> bool {
        if !lock(&self.shared.input).push_checked(pane, data, check, clean_after) {
            return false;
        }
        self.shared.wake.notify_one();
        true
    }

    /// Records the line in `pane` as empty if nothing was typed since `typed`.
    pub fn mark_clean(&self, pane: PaneId, typed: u64) -> bool {
        lock(&self.shared.input).mark_clean(pane, typed)
    }

    /// Keeps the hub attached while a command runs, without counting as a viewer.
    pub fn try_hold(self: &Arc<Self>) -> Option<HoldGuard> {
        let mut life = lock(&self.life);
        if life.detaching || self.cancel.is_cancelled() {
            return None;
        }
        life.holds += 1;
        Some(HoldGuard { hub: self.clone() })
    }

    /// One line of `#{...}` formats about `pane`, e.g. `#{pane_in_mode}`.
    pub async fn pane_formats(&self, pane: PaneId, formats: &str) -> Result<String, SessionError> {
        let cmd = Command::new("display-message")
            .flag("-p")
            .flag_value("-t", pane);
        Ok(self.query(cmd.arg_quoted(formats)?).await?.0)
    }

    /// Makes this client's size the session's size (the most recent writer wins).
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SessionError> {
        let cmd = Command::new("refresh-client").flag_value("-C", format!("{cols}x{rows}"));
        self.client.command(cmd).await?;
        // tmux reports the new layout (%layout-change) only after later replies: a snapshot
        // cached before this resize must not be reused by anyone, this caller included.
        self.shared.topology.fetch_add(1, Ordering::AcqRel);
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

    /// One line of a command's output, and the topology epoch at its reply; a command tmux
    /// refuses means the pane is gone.
    async fn query(&self, cmd: Command) -> Result<(String, u64), SessionError> {
        let shared = self.shared.clone();
        let (block, epoch) = match self
            .client
            .command_with(cmd, move || shared.topology())
            .await
        {
            Ok((reply, epoch)) => (reply.single()?, epoch),
            Err(tmux_control::Error::Command { .. }) => return Err(SessionError::PaneNotFound),
            Err(e) => return Err(e.into()),
        };
        let line = block.lines.first().ok_or(SessionError::PaneNotFound)?;
        Ok((String::from_utf8_lossy(line).into_owned(), epoch))
    }

    async fn pane_size(&self, pane: PaneId) -> Result<(u16, u16), SessionError> {
        let cmd = Command::new("display-message")
            .flag("-p")
            .flag_value("-t", pane);
        let (line, _) = self
            .query(cmd.arg_quoted("#{pane_width} #{pane_height}")?)
            .await?;
        let parsed = line
            .split_once(' ')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
        parsed.ok_or(SessionError::PaneNotFound)
    }

    async fn run(self: Arc<Self>) {
        // When the viewer count may next be published, and whether a change waits for it.
        let mut viewers_next = Instant::now();
        let mut viewers_due = false;
        let mut inflight = input::InFlight::new();
        loop {
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                Some(reply) = inflight.next(), if !inflight.is_empty() => {
                    input::settled(reply);
                }
                _ = tokio::time::sleep_until(viewers_next), if viewers_due => {}
                _ = self.cancel.cancelled() => break,
            }
            crate::supervise::faults::check(|| format!("hub:{}", self.entry.id));
            let queued = lock(&self.shared.input).take();
            input::send(&self.client, queued, &mut inflight, &self.cancel).await;
            if self.shared.refresh.swap(false, Ordering::AcqRel) {
                self.refresh_sizes().await;
            }
            viewers_due |= self.shared.viewers_changed.swap(false, Ordering::AcqRel);
            if viewers_due && Instant::now() >= viewers_next {
                viewers_due = false;
                viewers_next = Instant::now() + VIEWER_EVENT_INTERVAL;
                let n = self.viewer_count();
                for view in lock(&self.shared.panes).values() {
                    view.update(|s| s.viewers = n);
                }
            }
            if self.shared.ended.load(Ordering::Acquire) {
                self.on_end().await;
                break;
            }
        }
        self.stop_client().await;
    }

    /// The hub task panicked: its viewers and the registry are told why the hub ended, and
    /// its tmux client is stopped. Usually the gateway let go of a session that runs on
    /// (`detached`: attaching again makes a new hub). If the tmux connection had ended (the
    /// panic came while finding out why), the reason is sought again, `detached` should
    /// that panic too.
    async fn after_panic(&self) {
        use futures_util::FutureExt;
        // Whatever happens below, shutdown (`close_all`) does not wait for this hub forever.
        let _stopped = self.stopped.clone().drop_guard();
        lock(&self.life).detaching = true;
        self.cancel.cancel();
        let reason = match self.shared.ended.load(Ordering::Acquire) {
            true => std::panic::AssertUnwindSafe(self.end_reason())
                .catch_unwind()
                .await
                .unwrap_or(CloseReason::Detached),
            false => CloseReason::Detached,
        };
        self.close(reason);
        self.stop_client().await;
    }

    async fn stop_client(&self) {
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
        let reason = self.end_reason().await;
        self.close(reason);
    }

    /// Why the tmux connection ended.
    async fn end_reason(&self) -> CloseReason {
        let alive = self.entry.backend.probe().await;
        let present = alive && self.entry.backend.has_session(self.entry.tmux_id).await;
        // Asked after the round trips: a destroy announced by another gateway of a fleet
        // may reach this one while tmux is already ending the client.
        let destroying = self.entry.is_destroying();
        match (alive, present) {
            (false, _) if destroying => CloseReason::Destroyed,
            (false, _) => CloseReason::BackendLost,
            // A destroy that failed (elsewhere) leaves the session: this is a detach.
            (true, true) => CloseReason::Detached,
            (true, false) if destroying || self.destroyed_elsewhere().await => {
                CloseReason::Destroyed
            }
            (true, false) => CloseReason::Exited,
        }
    }

    /// Tells the viewers and the registry the hub has ended, and why (once).
    fn close(&self, reason: CloseReason) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for view in lock(&self.shared.panes).values() {
            view.update(|s| s.closed = Some(reason));
        }
        let _ = self.closed_tx.send((self.entry.id.clone(), reason));
    }

    /// Whether another gateway of the fleet destroyed the session: a destroy removes the
    /// session's record before the kill, an exit leaves it (for the periodic resync). So a
    /// late announcement still gives this gateway's viewers the right reason.
    async fn destroyed_elsewhere(&self) -> bool {
        let Some(store) = self.settings.fleet.get() else {
            return false;
        };
        let record = tokio::time::timeout(BACKEND_CALL_TIMEOUT, store.session(&self.entry.id));
        matches!(record.await, Ok(Ok(None)))
    }

    /// Has the hub task publish the viewer count (at most every `VIEWER_EVENT_INTERVAL`).
    fn viewers_changed(&self) {
        self.shared.viewers_changed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }

    fn viewer_left(self: &Arc<Self>) {
        {
            let mut life = lock(&self.life);
            life.viewers -= 1;
            self.viewers_changed();
        }
        self.maybe_linger();
    }

    fn hold_released(self: &Arc<Self>) {
        lock(&self.life).holds -= 1;
        self.maybe_linger();
    }

    /// Starts the linger once neither viewers nor commands keep the hub.
    fn maybe_linger(self: &Arc<Self>) {
        let generation = {
            let mut life = lock(&self.life);
            if life.viewers > 0 || life.holds > 0 {
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
            if life.viewers == 0 && life.holds == 0 && life.generation == generation {
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

/// Keeps the hub attached while a command runs.
pub struct HoldGuard {
    hub: Arc<Hub>,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.hub.hold_released();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
