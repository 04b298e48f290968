//! The session registry: public ids → sessions on backends.
//!
//! tmux is the source of truth; the registry is rebuilt from the backends' `@tmuxgate_*`
//! user options at start-up and kept in step with `%sessions-changed`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tmux_control::SessionId;
use tmuxgate_protocol::request::AttachMode;
use tmuxgate_protocol::response::{SessionInfo, Share};

use super::hub::Hub;
use crate::backends::Backend;

/// Registration order of entries, for telling apart entries older than a discovery.
static REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// The next registration number; an entry made after this call gets a larger one.
pub fn registration_horizon() -> u64 {
    REGISTRATION.fetch_add(1, Ordering::AcqRel)
}

const LIVE: u8 = 0;
const DESTROYING: u8 = 1;
const LOST: u8 = 2;

/// One session the gateway knows.
pub struct SessionEntry {
    /// Public opaque id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The backend holding it.
    pub backend: Arc<Backend>,
    /// tmux's id for it on that backend.
    pub tmux_id: SessionId,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
    /// Registration number (see [`registration_horizon`]).
    pub registered: u64,
    /// The user who created it (none with authentication off).
    pub owner: Option<String>,
    shares: Mutex<Vec<Share>>,
    /// Bumped whenever `shares` changes: a channel remembers the value it was checked at
    /// and checks again when it differs.
    access: AtomicU32,
    /// Serialises share changes, so memory and tmux see them in one order.
    pub(super) sharing: tokio::sync::Mutex<()>,
    /// Share changes made here that the fleet's store does not hold yet.
    pub(super) unsent: Mutex<super::fleet::Unsent>,
    state: AtomicU8,
    size: Mutex<(u16, u16)>,
    /// The live hub, if any viewer is (or recently was) attached.
    pub(super) hub: Mutex<Weak<Hub>>,
    /// Serialises opening a hub, so concurrent attaches share one control connection.
    pub(super) opening: tokio::sync::Mutex<()>,
    /// Commands for this session run one at a time, in order.
    pub exec: Arc<crate::exec::SessionQueue>,
    /// The nonce its integrated shell's marks carry (`None`: it does not run it).
    pub mark: Option<Arc<str>>,
}

impl SessionEntry {
    /// A live entry.
    pub fn new(
        id: String,
        name: String,
        backend: Arc<Backend>,
        tmux_id: SessionId,
        created_at: u64,
        size: (u16, u16),
        access: (Option<String>, Vec<Share>),
    ) -> SessionEntry {
        SessionEntry {
            id,
            name,
            backend,
            tmux_id,
            created_at,
            registered: REGISTRATION.fetch_add(1, Ordering::AcqRel),
            owner: access.0,
            shares: Mutex::new(access.1),
            access: AtomicU32::new(0),
            sharing: tokio::sync::Mutex::new(()),
            unsent: Mutex::default(),
            state: AtomicU8::new(LIVE),
            size: Mutex::new(size),
            hub: Mutex::new(Weak::new()),
            opening: tokio::sync::Mutex::new(()),
            exec: Default::default(),
            mark: None,
        }
    }

    /// The same entry, recording its shell-integration nonce.
    pub fn with_mark(mut self, mark: Option<Arc<str>>) -> SessionEntry {
        self.mark = mark;
        self
    }

    /// Whether a destroy is under way.
    pub fn is_destroying(&self) -> bool {
        self.state.load(Ordering::Acquire) == DESTROYING
    }

    /// Whether the backend holding it was lost.
    pub fn is_lost(&self) -> bool {
        self.state.load(Ordering::Acquire) == LOST
    }

    pub(super) fn mark_destroying(&self) {
        self.state.store(DESTROYING, Ordering::Release);
    }

    /// Back to live (a destroy failed, or a backend thought lost came back).
    pub(super) fn mark_live(&self) {
        self.state.store(LIVE, Ordering::Release);
    }

    pub(super) fn mark_lost(&self) {
        self.state.store(LOST, Ordering::Release);
    }

    /// Records the latest known size.
    pub fn set_size(&self, cols: u16, rows: u16) {
        *self.size.lock().unwrap_or_else(|e| e.into_inner()) = (cols, rows);
    }

    /// The latest known size.
    pub fn size(&self) -> (u16, u16) {
        *self.size.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who it is shared with.
    pub fn shares(&self) -> Vec<Share> {
        self.shares
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the shares under the entry's lock and bumps [`SessionEntry::access_epoch`];
    /// returns what `f` returns.
    pub(super) fn edit_shares<T>(&self, f: impl FnOnce(&mut Vec<Share>) -> T) -> T {
        let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut shares);
        self.access.fetch_add(1, Ordering::AcqRel);
        out
    }

    /// Changes with every share change; read it before deciding access, and decide again
    /// when it moved.
    pub fn access_epoch(&self) -> u32 {
        self.access.load(Ordering::Acquire)
    }

    /// The access `user` has through ownership or a share (roles aside).
    pub fn grant(&self, user: &str) -> Option<AttachMode> {
        let shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
        super::access::grant(self.owner.as_deref(), &shares, user)
    }

    /// The hub, if one is live.
    pub fn live_hub(&self) -> Option<Arc<Hub>> {
        let hub = self.hub.lock().unwrap_or_else(|e| e.into_inner()).upgrade();
        hub.filter(|h| !h.is_closing())
    }

    /// The wire description; `viewers` from the live hub.
    pub fn info(&self, viewers: Option<u32>) -> SessionInfo {
        let (cols, rows) = self.size();
        SessionInfo {
            session_id: self.id.clone(),
            name: self.name.clone(),
            backend: self.backend.id.clone(),
            created_at: self.created_at,
            viewers,
            cols,
            rows,
            owner: self.owner.clone(),
            shares: self.shares(),
        }
    }
}

/// Public id → entry.
#[derive(Default)]
pub struct Registry {
    sessions: RwLock<HashMap<String, Arc<SessionEntry>>>,
}

impl Registry {
    /// Looks a session up.
    pub fn get(&self, id: &str) -> Option<Arc<SessionEntry>> {
        self.read().get(id).cloned()
    }

    /// Inserts unless the id or (for live sessions) the name is taken; returns false if taken.
    pub fn insert(&self, entry: Arc<SessionEntry>) -> bool {
        let mut map = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        let name_taken = map.values().any(|e| e.name == entry.name && !e.is_lost());
        if name_taken || map.contains_key(&entry.id) {
            return false;
        }
        map.insert(entry.id.clone(), entry);
        true
    }

    /// Whether a live session has this name.
    pub fn name_taken(&self, name: &str) -> bool {
        self.read().values().any(|e| e.name == name && !e.is_lost())
    }

    /// Removes a session.
    pub fn remove(&self, id: &str) -> Option<Arc<SessionEntry>> {
        self.sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// Every entry (including lost ones).
    pub fn all(&self) -> Vec<Arc<SessionEntry>> {
        self.read().values().cloned().collect()
    }

    /// Entries on one backend.
    pub fn on_backend(&self, index: usize) -> Vec<Arc<SessionEntry>> {
        self.read()
            .values()
            .filter(|e| e.backend.index == index)
            .cloned()
            .collect()
    }

    /// Live sessions.
    pub fn live_count(&self) -> usize {
        self.read().values().filter(|e| !e.is_lost()).count()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<SessionEntry>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }
}
