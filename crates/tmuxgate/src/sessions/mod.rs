//! Sessions: the registry of tmux sessions, their hubs, pane logs and snapshots, and the
//! operations the wire protocol exposes (create, list, attach, destroy).

pub mod access;
mod fleet;
#[doc(hidden)]
pub mod fuzz;
mod hub;
pub mod input;
pub mod log;
pub mod marks;
mod placement;
pub mod registry;
pub mod snapshot;
pub mod view;

use std::sync::Arc;

use rand::RngCore;
use tmux_control::{Name, PaneId};
use tmuxgate_protocol::request::{AttachMode, SessionAttach, SessionOptions};
use tmuxgate_protocol::response::SessionInfo;
use tokio::sync::mpsc;

use crate::backends::{Backend, BackendError, BackendEvent, NewSession, Pin, Pool, PoolLayout};
pub use hub::{FleetLink, HoldGuard, Hub, HubSettings, ViewerGuard};
use registry::Registry;
pub use registry::SessionEntry;
pub use snapshot::Snapshot;
pub use view::{PaneStatus, PaneView};

/// Why a session's viewers lost it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Someone destroyed it.
    Destroyed,
    /// Its shell (or pane) exited.
    Exited,
    /// Its tmux server died.
    BackendLost,
    /// The gateway's connection to it ended while the session runs on (for example `tmux
    /// detach` typed inside it); attaching again works.
    Detached,
}

impl CloseReason {
    /// Wire spelling for `session-closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Destroyed => "destroyed",
            CloseReason::Exited => "exited",
            CloseReason::BackendLost => "backend-lost",
            CloseReason::Detached => "detached",
        }
    }
}

/// Session operation failures; mapped to wire error codes in `crate::error`.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such session.
    #[error("session not found")]
    NotFound,
    /// The target pane does not exist in this session.
    #[error("pane not found in this session")]
    PaneNotFound,
    /// A request field failed validation.
    #[error("{0}")]
    Invalid(String),
    /// Another live session has this name.
    #[error("a session with this name already exists")]
    NameTaken,
    /// The session's backend was lost.
    #[error("the backend holding this session was lost")]
    Lost,
    /// The pending input backlog is full.
    #[error("input backlog full; slow down")]
    InputBacklog,
    /// Backend failure.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// tmux failure.
    #[error(transparent)]
    Tmux(#[from] tmux_control::Error),
    /// A command could not be built.
    #[error(transparent)]
    Build(#[from] tmux_control::command::CommandError),
    /// Snapshot failure.
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
}

/// Where a new attachment's stream starts.
pub enum Start {
    /// Exactly at the offset the client asked for.
    Resume(u64),
    /// With a snapshot; the stream continues at `snapshot.offset`.
    Snapshot(Arc<Snapshot>),
}

/// A viewer attached to one pane of a session.
pub struct Attachment {
    /// The session's hub.
    pub hub: Arc<Hub>,
    /// The pane streamed.
    pub view: Arc<PaneView>,
    /// Read or write.
    pub mode: AttachMode,
    _guard: ViewerGuard,
}

/// The gateway's sessions across all backends.
pub struct Sessions {
    pool: Pool,
    registry: Registry,
    hub_settings: HubSettings,
    closed_tx: mpsc::UnboundedSender<(String, CloseReason)>,
    default_size: (u16, u16),
    /// Set once this gateway joined a fleet (a shared store): see [`fleet`].
    fleet: std::sync::OnceLock<fleet::Fleet>,
}

impl Sessions {
    /// Starts the backends, rediscovers their sessions and starts the supervisor task.
    pub async fn start(
        settings: crate::backends::BackendSettings,
        layout: PoolLayout,
        hub_settings: HubSettings,
        default_size: (u16, u16),
    ) -> Result<Arc<Sessions>, BackendError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let pool = Pool::start(settings, layout, events_tx).await?;
        pool.watch(&hub_settings.audit);
        let sessions = Arc::new(Sessions {
            pool,
            registry: Registry::default(),
            hub_settings,
            closed_tx,
            default_size,
            fleet: std::sync::OnceLock::new(),
        });
        for backend in sessions.pool.all() {
            sessions.reconcile(backend, true).await;
        }
        tracing::info!(
            sessions = sessions.registry.live_count(),
            "sessions rediscovered"
        );
        let weak = Arc::downgrade(&sessions);
        crate::supervise::spawn_supervised_with(
            "session-events",
            None,
            crate::supervise::RESTART_BACKOFF,
            (events_rx, closed_rx),
            move |run| supervise(weak.clone(), run),
        );
        Ok(sessions)
    }

    /// The integrated shell sessions run, if they run it.
    pub fn shell(&self) -> Option<&crate::backends::shell::ShellIntegration> {
        self.pool.shell()
    }

    /// The backends.
    pub fn backends(&self) -> &[Arc<Backend>] {
        self.pool.all()
    }

    /// Stops probing and restarting the backends (gateway shutdown).
    pub fn stop_health_checks(&self) {
        self.pool.stop_health_checks();
    }

    /// Live sessions.
    pub fn count(&self) -> usize {
        self.registry.live_count()
    }

    /// Output bytes the attached sessions' pane logs hold now (at most `RING_BUFFER_BYTES`
    /// per pane): the gateway's memory that grows with output, by design.
    pub fn log_bytes(&self) -> u64 {
        let hubs = self.registry.all().into_iter().filter_map(|e| e.live_hub());
        hubs.map(|hub| hub.output_held_bytes()).sum()
    }

    /// Live sessions on one backend.
    pub fn count_on(&self, backend: usize) -> usize {
        self.registry
            .on_backend(backend)
            .iter()
            .filter(|e| !e.is_lost())
            .count()
    }

    /// Creates a session on the backend the balancing strategy picks among those matching
    /// `options.backend` and `options.labels`.
    pub async fn create(
        &self,
        name: &str,
        options: &SessionOptions,
        owner: Option<&str>,
    ) -> Result<(SessionInfo, Arc<Backend>), SessionError> {
        if owner.is_some_and(|o| !access::is_user_name(o)) {
            return Err(SessionError::Invalid("invalid owner".into()));
        }
        let name = Name::new(name)
            .map_err(|_| SessionError::Invalid("`name` must match [A-Za-z0-9_-]{1,64}".into()))?;
        let cols = valid_dimension("cols", options.cols.unwrap_or(self.default_size.0))?;
        let rows = valid_dimension("rows", options.rows.unwrap_or(self.default_size.1))?;
        let cwd = options.cwd.as_deref().map(valid_cwd).transpose()?;
        placement::valid_pin(options)?;
        if self.registry.name_taken(name.as_str()) {
            return Err(SessionError::NameTaken);
        }
        let pin = Pin {
            backend: options.backend.as_deref(),
            labels: &options.labels,
        };
        let backend = self.pool.place(pin, &self.placement_snapshot()).await?;
        let public_id = new_public_id();
        let created_at = tmuxgate_protocol::now_millis();
        let mark = self
            .pool
            .shell()
            .map(|_| crate::backends::shell::new_nonce());
        let new = NewSession {
            public_id: &public_id,
            name: &name,
            cols,
            rows,
            cwd,
            created_at,
            owner,
            mark: mark.as_deref(),
        };
        let created = backend.create_session(&new).await;
        let tmux_id = created.map_err(|e| match e {
            // tmux refuses a duplicate name on the same server (a session the registry does
            // not list, e.g. one a user created by hand).
            BackendError::Tmux(tmux_control::Error::Command { message })
                if message.contains("duplicate session") =>
            {
                SessionError::NameTaken
            }
            other => SessionError::Backend(other),
        })?;
        let entry = Arc::new(
            SessionEntry::new(
                public_id,
                name.to_string(),
                backend.clone(),
                tmux_id,
                created_at,
                (cols, rows),
                (owner.map(str::to_owned), Vec::new()),
            )
            .with_mark(mark.map(Into::into)),
        );
        if !self.registry.insert(entry.clone()) {
            let _ = backend.kill_session(tmux_id).await;
            return Err(SessionError::NameTaken);
        }
        self.announce_created(&entry);
        Ok((entry.info(Some(0)), backend))
    }

    /// Every live session.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut list: Vec<_> = self
            .registry
            .all()
            .into_iter()
            .filter(|e| !e.is_lost())
            .map(|e| e.info(Some(e.live_hub().map_or(0, |h| h.viewer_count()))))
            .collect();
        list.sort_by(|a, b| (a.created_at, &a.session_id).cmp(&(b.created_at, &b.session_id)));
        list
    }

    /// Looks up a session that can be used.
    pub fn get(&self, id: &str) -> Result<Arc<SessionEntry>, SessionError> {
        let entry = self.registry.get(id).ok_or(SessionError::NotFound)?;
        if entry.is_lost() {
            return Err(SessionError::Lost);
        }
        if entry.is_destroying() {
            return Err(SessionError::NotFound);
        }
        // An open circuit breaker: fail now rather than wait for a server that does not answer.
        if !entry.backend.admits() {
            return Err(BackendError::Unavailable(entry.backend.id.clone()).into());
        }
        Ok(entry)
    }

    /// Shares a session with `user` (at most `mode`), or changes the share's mode; returns the
    /// mode it had. Stored in tmux first, then in effect: a failed write changes nothing.
    /// Channels attached through a write share made `read` learn it at once (the entry's
    /// access epoch, and a wake-up through their pane status).
    pub async fn share(
        &self,
        id: &str,
        user: &str,
        mode: AttachMode,
    ) -> Result<Option<AttachMode>, SessionError> {
        if !access::is_user_name(user) {
            return Err(SessionError::Invalid(
                "`user` is not a valid user name".into(),
            ));
        }
        let entry = self.get(id)?;
        let _order = entry.sharing.lock().await;
        let mut shares = entry.shares();
        let before = access::set_share(&mut shares, user, mode);
        let encoded = access::encode_shares(&shares);
        entry.backend.set_shares(entry.tmux_id, &encoded).await?;
        entry.edit_shares(|current| *current = shares);
        Self::wake_channels(&entry);
        self.announce_share(&entry, user, Some(mode));
        Ok(before)
    }

    /// Takes `user`'s share back. In effect at once (their channels attached through it
    /// end), then stored in tmux; if that write fails the error says so, and the share is
    /// gone until the gateway restarts.
    pub async fn unshare(&self, id: &str, user: &str) -> Result<AttachMode, SessionError> {
        let entry = self.get(id)?;
        let _order = entry.sharing.lock().await;
        let (before, encoded) = entry.edit_shares(|shares| {
            let before = access::remove_share(shares, user);
            (before, access::encode_shares(shares))
        });
        let before = before.ok_or(SessionError::NotFound)?;
        Self::wake_channels(&entry);
        self.announce_share(&entry, user, None);
        entry.backend.set_shares(entry.tmux_id, &encoded).await?;
        Ok(before)
    }

    /// Wakes the channels attached to `entry` so they compare its access epoch now.
    fn wake_channels(entry: &SessionEntry) {
        if let Some(hub) = entry.live_hub() {
            hub.access_changed();
        }
    }

    /// The entry for `id` whatever its state (lost, being destroyed): for callers that must
    /// decide visibility before telling anything about the session.
    pub fn lookup(&self, id: &str) -> Option<Arc<SessionEntry>> {
        self.registry.get(id)
    }

    /// Attaches a viewer: joins (or opens) the hub, picks the pane, and decides between an
    /// exact resume and a snapshot.
    pub async fn attach(&self, req: &SessionAttach) -> Result<(Attachment, Start), SessionError> {
        let entry = self.get(&req.session_id)?;
        let target = parse_target(req.target.as_deref())?;
        let size = match (req.cols, req.rows) {
            (Some(c), Some(r)) => Some((valid_dimension("cols", c)?, valid_dimension("rows", r)?)),
            _ => None,
        };
        let (hub, guard) = self.join(&entry).await?;
        let pane = hub.resolve_pane(target).await?;
        let view = hub.view(pane).await?;
        if let (AttachMode::Write, Some((cols, rows))) = (req.mode, size) {
            hub.resize(cols, rows).await?;
        }
        let same_log = req
            .resume_log_id
            .as_deref()
            .is_none_or(|id| id == view.log.id());
        let start = match req.resume_from {
            Some(offset) if same_log && view.log.start() <= offset && offset <= view.log.end() => {
                Start::Resume(offset)
            }
            _ => Start::Snapshot(hub.snapshot(&view).await?),
        };
        Ok((
            Attachment {
                hub,
                view,
                mode: req.mode,
                _guard: guard,
            },
            start,
        ))
    }

    /// Joins the session's hub as a viewer, opening one if there is none or the one there is
    /// detaching. Joining first means every error path after it releases the viewer, and so
    /// the hub.
    async fn join(
        &self,
        entry: &Arc<SessionEntry>,
    ) -> Result<(Arc<Hub>, ViewerGuard), SessionError> {
        loop {
            let hub = self.hub(entry).await?;
            if let Some(guard) = hub.try_join() {
                return Ok((hub, guard));
            }
        }
    }

    /// The session's hub, kept attached (without counting as a viewer) while the guard
    /// lives: for running commands.
    pub async fn hold(
        &self,
        entry: &Arc<SessionEntry>,
    ) -> Result<(Arc<Hub>, HoldGuard), SessionError> {
        loop {
            let hub = self.hub(entry).await?;
            if let Some(guard) = hub.try_hold() {
                return Ok((hub, guard));
            }
        }
    }

    async fn hub(&self, entry: &Arc<SessionEntry>) -> Result<Arc<Hub>, SessionError> {
        if let Some(hub) = entry.live_hub() {
            return Ok(hub);
        }
        let _opening = entry.opening.lock().await;
        if let Some(hub) = entry.live_hub() {
            return Ok(hub);
        }
        let hub = Hub::open(
            entry.clone(),
            self.hub_settings.clone(),
            self.closed_tx.clone(),
        )
        .await?;
        *entry.hub.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&hub);
        Ok(hub)
    }

    /// Kills a session; its viewers get `session-closed`.
    pub async fn destroy(&self, id: &str) -> Result<Arc<Backend>, SessionError> {
        let entry = self.get(id)?;
        entry.mark_destroying();
        self.announce_destroying(id).await;
        if let Err(e) = entry.backend.kill_session(entry.tmux_id).await {
            // Already gone (it exited meanwhile) counts as destroyed; otherwise it lives on.
            if entry.backend.has_session(entry.tmux_id).await || entry.backend.admin().is_err() {
                entry.mark_live();
                self.announce_created(&entry);
                return Err(e.into());
            }
        }
        // Gone for every request after this response; viewers hear it from the hub, which
        // keeps its own reference to the entry.
        self.registry.remove(id);
        Ok(entry.backend.clone())
    }

    /// Detaches every hub, then the admin connections, and waits until their tmux clients
    /// have exited (gateway shutdown); tmux sessions keep running.
    ///
    /// Waiting matters: tmux 3.3a (and up to at least 3.5a) crashes, losing every session,
    /// when a client's departure is announced while another control client is still
    /// connecting, which is what a gateway restarted right after this one would be doing.
    pub async fn close_all(&self) {
        let hubs = self
            .registry
            .all()
            .into_iter()
            .filter_map(|e| e.hub.lock().unwrap_or_else(|e| e.into_inner()).upgrade());
        futures_util::future::join_all(hubs.map(|hub| async move { hub.shutdown().await })).await;
        self.pool.shutdown().await;
    }

    /// Brings the registry in step with what a backend holds: drops entries whose tmux
    /// session is gone and, at start-up (`adopt`), registers the sessions found.
    ///
    /// Entries registered after the listing began are left alone: the listing may predate
    /// them.
    async fn reconcile(&self, backend: &Arc<Backend>, adopt: bool) {
        let horizon = registry::registration_horizon();
        let found = match backend.discover().await {
            Ok(found) => found,
            Err(e) => return tracing::warn!(backend = %backend.id, error = %e, "discovery failed"),
        };
        for entry in self.registry.on_backend(backend.index) {
            let present = found
                .iter()
                .any(|d| d.public_id == entry.id && d.tmux_id == entry.tmux_id);
            let settled =
                entry.registered < horizon && !entry.is_destroying() && entry.live_hub().is_none();
            if !present && settled {
                self.registry.remove(&entry.id);
            } else if present && entry.is_lost() {
                // The admin connection died but the server did not.
                entry.mark_live();
            }
        }
        if !adopt {
            return;
        }
        for d in found {
            if self.registry.get(&d.public_id).is_none() {
                let entry = SessionEntry::new(
                    d.public_id,
                    d.name,
                    backend.clone(),
                    d.tmux_id,
                    d.created_at,
                    self.default_size,
                    (d.owner, d.shares),
                )
                .with_mark(d.mark.map(Into::into));
                self.registry.insert(Arc::new(entry));
            }
        }
    }

    fn on_hub_closed(&self, id: &str, reason: CloseReason) {
        match reason {
            CloseReason::BackendLost => {
                if let Some(entry) = self.registry.get(id) {
                    entry.mark_lost();
                }
            }
            CloseReason::Destroyed | CloseReason::Exited => {
                self.registry.remove(id);
            }
            CloseReason::Detached => {}
        }
    }

    async fn on_backend_event(&self, event: BackendEvent) {
        match event {
            BackendEvent::SessionsChanged(i) => {
                if let Some(backend) = self.pool.get(i) {
                    self.reconcile(backend, false).await;
                }
            }
            BackendEvent::Lost(i) => {
                if let Some(backend) = self.pool.get(i) {
                    if backend.state() == crate::backends::BackendState::Up {
                        let kind = crate::audit::EventKind::BackendLost;
                        let record = crate::audit::Record::new(kind, None).backend(&backend.id);
                        self.hub_settings.audit.record(record);
                    }
                    backend.mark_lost();
                    for entry in self.registry.on_backend(i) {
                        entry.mark_lost();
                    }
                }
            }
        }
    }
}

/// The backends' events and the hubs' ends, applied to the registry until the sessions
/// are dropped. After a panic, the events being applied may have been lost: every backend
/// that is up is listed again, and the sessions of every other one are marked lost (a hub
/// that ended meanwhile is already out of the way: closing hubs are not handed out).
async fn supervise(sessions: std::sync::Weak<Sessions>, mut run: SessionFeeds) {
    if run.restarted {
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        for backend in sessions.pool.all() {
            match backend.state() {
                crate::backends::BackendState::Up => sessions.reconcile(backend, false).await,
                crate::backends::BackendState::Down => {
                    sessions
                        .registry
                        .on_backend(backend.index)
                        .iter()
                        .for_each(|e| e.mark_lost());
                }
            }
        }
    }
    let (events, closed) = &mut *run.state;
    loop {
        tokio::select! {
            Some(first) = events.recv() => {
                let Some(sessions) = sessions.upgrade() else { return };
                // Coalesce a burst (a pane looping `tmux new -d`): each backend is listed
                // once per burst, however many `%sessions-changed` it sent.
                let mut batch = vec![first];
                while let Ok(event) = events.try_recv() {
                    if !batch.contains(&event) {
                        batch.push(event);
                    }
                }
                for event in batch {
                    sessions.on_backend_event(event).await;
                }
            }
            Some((id, reason)) = closed.recv() => {
                let Some(sessions) = sessions.upgrade() else { return };
                sessions.on_hub_closed(&id, reason);
            }
            else => return,
        }
    }
}

/// What [`supervise`] reads: the backends' events and the hubs' ends.
type SessionFeeds = crate::supervise::Resumed<(
    mpsc::UnboundedReceiver<BackendEvent>,
    mpsc::UnboundedReceiver<(String, CloseReason)>,
)>;

/// A new opaque session id: `s_` and 24 hex digits (96 random bits).
pub fn new_public_id() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(26);
    id.push_str("s_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Whether `id` has the shape of [`new_public_id`].
pub fn is_public_id(id: &str) -> bool {
    id.len() == 26 && id.starts_with("s_") && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A terminal dimension within 2..=1000.
/// A request's `target`: a pane id like `%3`, or none (the active pane).
pub fn parse_target(target: Option<&str>) -> Result<Option<PaneId>, SessionError> {
    target
        .map(|t| t.parse::<PaneId>())
        .transpose()
        .map_err(|_| SessionError::Invalid("`target` must be a pane id like %3".into()))
}

pub(crate) fn valid_dimension(field: &str, value: u16) -> Result<u16, SessionError> {
    if (2..=1000).contains(&value) {
        Ok(value)
    } else {
        Err(SessionError::Invalid(format!(
            "`{field}` must be between 2 and 1000"
        )))
    }
}

/// A working directory must be absolute and plain: tmux expands `-c` as a format, so `#`
/// (formats, `#(command)`) and anything unusual are refused outright.
fn valid_cwd(cwd: &str) -> Result<&str, SessionError> {
    let plain = cwd
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+@ ".contains(&b));
    if cwd.starts_with('/') && cwd.len() <= 1024 && plain {
        Ok(cwd)
    } else {
        Err(SessionError::Invalid(
            "`cwd` must be an absolute path of letters, digits and /._-+@".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_random_and_recognised() {
        let (a, b) = (new_public_id(), new_public_id());
        assert!(is_public_id(&a) && is_public_id(&b));
        assert_ne!(a, b);
        assert!(!is_public_id("s_xyz"));
        assert!(!is_public_id("$3"));
    }

    #[test]
    fn working_directories_cannot_smuggle_formats() {
        assert!(valid_cwd("/home/user/src").is_ok());
        assert!(valid_cwd("/tmp/#(touch x)").is_err());
        assert!(valid_cwd("relative").is_err());
        assert!(valid_cwd("/a\nb").is_err());
    }
}
