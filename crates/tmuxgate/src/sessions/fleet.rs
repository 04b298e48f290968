//! The session registry across a fleet of gateways sharing backends and a store.
//!
//! tmux holds the sessions; every gateway of a fleet reaches the same servers. The store
//! holds the registry's records (owner, shares, backend, tmux id, integrated-shell nonce),
//! written by the gateway that made a change, and each change is announced:
//!
//! - `session-created`: the others add the session from the store's record (not from the
//!   `@tmuxgate_*` options, which a program in a pane could forge);
//! - `shares-changed`: every gateway (the one that made the change too) takes the shares
//!   from the record and rechecks the channels attached to the session, so a share taken
//!   back on A ends its use on B;
//! - `session-destroyed`: announced *before* the kill, so the others' viewers hear
//!   `session-closed` with reason `destroyed` when tmux then ends their control clients.
//!
//! Writes go through one queue, in order, off the request path; a store that is down costs
//! a logged error, and the records converge at the next start (see `join`).
//!
//! A share changed here is in effect here at once and in the store a moment later. A record
//! read in between (another gateway's `shares-changed` arriving) does not hold it yet, so
//! each entry keeps its changes the store does not hold ([`Unsent`]) and lays them over
//! every record it takes. A gateway also takes its own `shares-changed`: by then the store
//! holds its change and every change made before it elsewhere.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tmux_control::Name;
use tmuxgate_protocol::request::AttachMode;
use tokio::sync::{mpsc, oneshot};

use super::registry::SessionEntry;
use super::{Sessions, access};
use crate::backends::shell;
use crate::store::{Received, SessionRecord, Store, StoreEvent};

/// How long a destroy waits for its announcement before killing the session anyway.
const ANNOUNCE_DEADLINE: Duration = Duration::from_millis(250);

/// How often changes the store refused are tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Changes kept for the store while it is down, at most.
const MAX_PENDING: usize = 10_000;

/// This gateway's side of the fleet's registry.
pub(super) struct Fleet {
    store: Arc<dyn Store>,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

#[derive(Debug)]
enum Outgoing {
    Created(SessionRecord),
    ShareEdit {
        id: String,
        user: String,
        mode: Option<AttachMode>,
        /// Whose [`Unsent`] holds the change until the store does.
        entry: Weak<SessionEntry>,
        /// Whether the store took it, once it has, and whether it changed the record.
        written: Option<bool>,
    },
    Destroyed(String, Option<oneshot::Sender<()>>),
    Gone(String),
}

/// An entry's share changes that the store does not hold yet, oldest first.
#[derive(Debug, Default)]
pub(super) struct Unsent {
    edits: VecDeque<(String, Option<AttachMode>)>,
    /// How many have left `edits` (landed in the store, or dropped).
    landed: u64,
}

impl Outgoing {
    /// A change given up before the store took it. A share change is then never written:
    /// the entry stops laying it over records, so the next record it takes undoes it here
    /// too (logged, as an error: a share taken back comes back).
    fn dropped(&self) {
        if let Outgoing::ShareEdit {
            id,
            user,
            entry,
            written: None,
            ..
        } = self
        {
            tracing::error!(session = %id, %user,
                "fleet: a share change was given up before the store took it; it is undone");
            if let Some(entry) = entry.upgrade() {
                entry.share_landed();
            }
        }
    }
}

impl SessionEntry {
    fn unsent(&self) -> std::sync::MutexGuard<'_, Unsent> {
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves whenever the store may have taken one of its unsent changes; read before
    /// reading its record.
    fn landed(&self) -> u64 {
        self.unsent().landed
    }

    /// The oldest unsent change is being written: a record read from now on may hold it,
    /// or not, and one whose read overlaps the write is refused.
    fn share_writing(&self) {
        self.unsent().landed += 1;
    }

    /// The oldest unsent change is in the store (or given up).
    fn share_landed(&self) {
        let mut unsent = self.unsent();
        unsent.edits.pop_front();
        unsent.landed += 1;
    }

    /// Takes the shares `stored` in the store's record, with the changes the store does not
    /// hold yet laid over them. Refused (`false`) when one of those landed since `landed`
    /// was read: the record may predate it and the change is no longer laid over it.
    /// Callers hold `sharing`.
    fn take_stored_shares(&self, stored: &str, landed: u64) -> bool {
        let unsent = self.unsent();
        if unsent.landed != landed {
            return false;
        }
        let mut shares = access::decode_shares(stored);
        for (user, mode) in &unsent.edits {
            match mode {
                Some(mode) => access::set_share(&mut shares, user, *mode),
                None => access::remove_share(&mut shares, user),
            };
        }
        self.edit_shares(|current| *current = shares);
        true
    }

    /// The record the store keeps.
    pub(super) fn record(&self) -> SessionRecord {
        SessionRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            backend: self.backend.id.clone(),
            owner: self.owner.clone(),
            shares: access::encode_shares(&self.shares()),
            created_at: self.created_at,
            tmux_id: self.tmux_id.to_string(),
            mark: self.mark.as_deref().map(str::to_owned),
        }
    }
}

impl Sessions {
    /// Joins the fleet of `store` (only a shared store has one). The sessions found in tmux
    /// take their owner and shares from the store's records where it has them, and are
    /// written to it where it does not; sessions the store lists that this gateway did not
    /// find (made by another gateway while this one started) are added. From then on every
    /// change here is written and announced.
    pub async fn join_fleet(self: &Arc<Self>, store: Arc<dyn Store>) {
        let (outbox, queued) = mpsc::unbounded_channel();
        match store.sessions().await {
            Ok(records) => {
                for entry in self.registry.all() {
                    match records.iter().find(|r| r.id == entry.id) {
                        Some(record) if same_session(record, &entry) => {
                            self.take_record(&entry, record);
                        }
                        // The store knows this id for another tmux session: the store's
                        // stands (the resync below adopts that one, once its tmux session
                        // confirms the id), and this one, whose options claim the id, is
                        // dropped.
                        Some(_) => {
                            tracing::warn!(session = %entry.id, backend = %entry.backend.id,
                                "fleet: a tmux session claims an id the store gives another");
                            self.registry.remove(&entry.id);
                        }
                        None => {
                            let _ = outbox.send(Outgoing::Created(entry.record()));
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "fleet: could not read the session records"),
        }
        self.hub_settings.fleet.set(store.clone());
        let fleet = Fleet {
            store: store.clone(),
            outbox,
        };
        if self.fleet.set(fleet).is_ok() {
            // Ends when the outbox's senders are gone (the sessions are dropped).
            let state = (queued, VecDeque::new());
            let restart = crate::supervise::RESTART_BACKOFF;
            crate::supervise::spawn_supervised_with("fleet-outbox", None, restart, state, {
                move |run| deliver(store.clone(), run)
            });
        }
        self.resync_fleet().await;
    }

    /// An entry found in tmux, with the owner and shares of the store's `record` (tmux's
    /// copies can be rewritten from inside a pane). Only before any hub exists (start-up).
    fn take_record(&self, entry: &Arc<SessionEntry>, record: &SessionRecord) {
        let shares = access::decode_shares(&record.shares);
        if entry.owner == record.owner {
            entry.edit_shares(|s| *s = shares);
            return;
        }
        if record
            .owner
            .as_deref()
            .is_some_and(|o| !access::is_user_name(o))
        {
            return;
        }
        let replaced = SessionEntry::new(
            entry.id.clone(),
            entry.name.clone(),
            entry.backend.clone(),
            entry.tmux_id,
            entry.created_at,
            entry.size(),
            (record.owner.clone(), shares),
        )
        .with_mark(entry.mark.clone());
        tracing::warn!(session = %entry.id, "fleet: tmux named another owner than the store; the store's stands");
        self.registry.remove(&entry.id);
        self.registry.insert(Arc::new(replaced));
    }

    pub(super) fn announce_created(&self, entry: &SessionEntry) {
        if let Some(fleet) = self.fleet.get() {
            let _ = fleet.outbox.send(Outgoing::Created(entry.record()));
        }
    }

    /// Announces one user's share set to `mode` (`None`: taken back), a change already in
    /// effect here. Callers hold the entry's `sharing`.
    pub(super) fn announce_share(
        &self,
        entry: &Arc<SessionEntry>,
        user: &str,
        mode: Option<AttachMode>,
    ) {
        if let Some(fleet) = self.fleet.get() {
            entry.unsent().edits.push_back((user.to_owned(), mode));
            let change = Outgoing::ShareEdit {
                id: entry.id.clone(),
                user: user.to_owned(),
                mode,
                entry: Arc::downgrade(entry),
                written: None,
            };
            if fleet.outbox.send(change).is_err() {
                // The outbox is gone (shutting down): this change will not land.
                entry.unsent().edits.pop_back();
            }
        }
    }

    /// Takes `entry`'s shares from its record in the store (see [`Unsent`]), and wakes its
    /// channels to check them. Reads again while this gateway's own changes land meanwhile,
    /// up to three times; then the announcement of the last of them reads it again.
    async fn refresh_shares(&self, store: &dyn Store, entry: &SessionEntry) {
        for _ in 0..3 {
            let landed = entry.landed();
            match store.session(&entry.id).await {
                Ok(Some(record)) if same_session(&record, entry) => {
                    let _order = entry.sharing.lock().await;
                    if entry.take_stored_shares(&record.shares, landed) {
                        return Self::wake_channels(entry);
                    }
                }
                Ok(_) => return,
                Err(e) => return tracing::warn!(error = %e, "fleet: could not read new shares"),
            }
        }
        tracing::debug!(session = %entry.id, "fleet: shares still changing here; left to their announcement");
    }

    /// Announces a destroy about to happen, waiting at most [`ANNOUNCE_DEADLINE`].
    pub(super) async fn announce_destroying(&self, id: &str) {
        let Some(fleet) = self.fleet.get() else {
            return;
        };
        let (done, delivered) = oneshot::channel();
        let _ = fleet
            .outbox
            .send(Outgoing::Destroyed(id.to_owned(), Some(done)));
        if tokio::time::timeout(ANNOUNCE_DEADLINE, delivered)
            .await
            .is_err()
        {
            // The others may then tell their viewers `exited`, not `destroyed`.
            tracing::warn!(session = id, "fleet: a destroy's announcement was late");
        }
    }

    /// Reads every record afresh: adds the sessions this gateway does not list, takes the
    /// shares of those it does, writes back the records of its sessions the store lost (a
    /// Redis restarted without them), and removes the records of sessions that ended (an
    /// exit leaves its record to this). Runs after a gap in the events and every
    /// [`super::super::store::fleet::RESYNC`]; a backend that does not answer is skipped.
    pub async fn resync_fleet(&self) {
        let Some(fleet) = self.fleet.get() else {
            return;
        };
        let landed: std::collections::HashMap<String, u64> = (self.registry.all().iter())
            .map(|entry| (entry.id.clone(), entry.landed()))
            .collect();
        let records = match fleet.store.sessions().await {
            Ok(records) => records,
            Err(e) => return tracing::warn!(error = %e, "fleet: could not read the records"),
        };
        for entry in self.registry.all() {
            let known = records.iter().any(|r| r.id == entry.id);
            if !known && !entry.is_lost() && !entry.is_destroying() {
                let _ = fleet.outbox.send(Outgoing::Created(entry.record()));
            }
        }
        for record in records {
            match self.registry.get(&record.id) {
                None => {
                    let Some(backend) = self.backend_of(&record).filter(|b| b.admits()) else {
                        continue;
                    };
                    if !self.adopt(&record).await && backend.admits() {
                        let _ = fleet.outbox.send(Outgoing::Gone(record.id.clone()));
                    }
                }
                Some(entry) if same_session(&record, &entry) => {
                    let order = entry.sharing.lock().await;
                    let taken = landed
                        .get(&entry.id)
                        .is_some_and(|landed| entry.take_stored_shares(&record.shares, *landed));
                    drop(order);
                    if taken {
                        Self::wake_channels(&entry);
                    } else {
                        self.refresh_shares(&*fleet.store, &entry).await;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Applies what a gateway announced about a session: another's announcements, and this
    /// one's own `shares-changed`.
    pub async fn on_fleet_event(&self, received: &Received) {
        let Some(fleet) = self.fleet.get() else {
            return;
        };
        match &received.event {
            // This gateway's own too (see the module's documentation).
            StoreEvent::SharesChanged { session_id } => {
                if let Some(entry) = self.registry.get(session_id) {
                    self.refresh_shares(&*fleet.store, &entry).await;
                }
            }
            _ if received.from == fleet.store.instance() => {}
            StoreEvent::SessionCreated { session_id } => {
                let record = match fleet.store.session(session_id).await {
                    Ok(Some(record)) => record,
                    Ok(None) => return,
                    Err(e) => {
                        return tracing::warn!(error = %e, "fleet: could not read a new session");
                    }
                };
                match self.registry.get(session_id) {
                    None => {
                        self.adopt(&record).await;
                    }
                    // Announced again after a destroy that failed: it lives.
                    Some(entry) if entry.is_destroying() && same_session(&record, &entry) => {
                        entry.mark_live();
                    }
                    Some(_) => {}
                }
            }
            StoreEvent::SessionDestroyed { session_id } => {
                if let Some(entry) = self.registry.get(session_id) {
                    entry.mark_destroying();
                    // A hub ends when tmux ends its client, and removes the entry then.
                    if entry.live_hub().is_none() {
                        self.registry.remove(session_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn backend_of(&self, record: &SessionRecord) -> Option<&Arc<crate::backends::Backend>> {
        self.pool.all().iter().find(|b| b.id == record.backend)
    }

    /// Registers a session another gateway created, from the store's record, once its
    /// backend confirms that the tmux session the record names carries the record's id
    /// (a stale record must not bind another session, tmux ids restart with a server).
    /// Whether it was added.
    async fn adopt(&self, record: &SessionRecord) -> bool {
        let (Some(backend), Ok(tmux_id)) = (self.backend_of(record), record.tmux_id.parse()) else {
            tracing::warn!(session = %record.id, backend = %record.backend,
                "fleet: a session on a backend this gateway does not have");
            return false;
        };
        let valid = Name::new(&record.name).is_ok()
            && super::is_public_id(&record.id)
            && record.owner.as_deref().is_none_or(access::is_user_name)
            && record.mark.as_deref().is_none_or(shell::is_nonce);
        if !valid || backend.public_id_of(tmux_id).await.as_deref() != Some(record.id.as_str()) {
            return false;
        }
        let entry = SessionEntry::new(
            record.id.clone(),
            record.name.clone(),
            backend.clone(),
            tmux_id,
            record.created_at,
            self.default_size,
            (record.owner.clone(), access::decode_shares(&record.shares)),
        )
        .with_mark(record.mark.as_deref().map(Into::into));
        self.registry.insert(Arc::new(entry))
    }
}

/// Whether `record` is about `entry`'s tmux session (same backend, same tmux id).
fn same_session(record: &SessionRecord, entry: &SessionEntry) -> bool {
    record.backend == entry.backend.id && record.tmux_id == entry.tmux_id.to_string()
}

/// Writes the queued changes to the store and announces them, in order. A change the store
/// refuses (it is down) is kept, with every later one behind it, and tried again every
/// [`RETRY`] until it lands: records and announcements converge once the store is back.
async fn deliver(store: Arc<dyn Store>, mut run: Outbox) {
    let (queued, pending) = &mut *run.state;
    if run.restarted
        && let Some(change) = pending.pop_front()
    {
        // The change being shared when the task panicked: it could panic again. The
        // records are repaired at the next resync.
        change.dropped();
        tracing::error!(
            ?change,
            "fleet: dropped the session change that was being shared"
        );
    }
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            change = queued.recv() => match change {
                Some(change) => pending.push_back(change),
                None => return,
            },
            _ = retry.tick(), if !pending.is_empty() => {}
        }
        while let Some(change) = pending.front_mut() {
            crate::supervise::faults::wait(|| format!("fleet-outbox:{}", store.instance())).await;
            let result = send(&*store, change).await;
            // A destroy waits for its announcement's first attempt only.
            if let Outgoing::Destroyed(_, done) = change
                && let Some(done) = done.take()
            {
                let _ = done.send(());
            }
            match result {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(e) => {
                    tracing::warn!(error = %e, pending = pending.len(),
                        "fleet: could not share a session change; will retry");
                    break;
                }
            }
        }
        if pending.len() > MAX_PENDING {
            // A long outage: the oldest changes go; the records are repaired at the next
            // start (`join_fleet`) or resync.
            tracing::error!(
                dropped = pending.len() - MAX_PENDING,
                "fleet: too many unshared session changes"
            );
            for change in pending.drain(..pending.len() - MAX_PENDING) {
                change.dropped();
            }
        }
    }
}

/// What [`deliver`] owns: the changes queued for it, and those it has taken and not
/// shared yet (oldest first). It outlives a panic of the task.
type Outbox = crate::supervise::Resumed<(mpsc::UnboundedReceiver<Outgoing>, VecDeque<Outgoing>)>;

/// Writes and announces `change`; a share change that the store took and whose
/// announcement failed is only announced when tried again.
async fn send(store: &dyn Store, change: &mut Outgoing) -> crate::store::StoreResult<()> {
    match change {
        Outgoing::Created(record) => {
            let event = StoreEvent::SessionCreated {
                session_id: record.id.clone(),
            };
            put_and_announce(store, record, &event).await
        }
        Outgoing::ShareEdit {
            id,
            user,
            mode,
            entry,
            written,
        } => {
            let changed = match *written {
                Some(changed) => changed,
                None => {
                    if let Some(entry) = entry.upgrade() {
                        entry.share_writing();
                    }
                    let changed = store
                        .edit_share(id, user, mode.map(access::mode_name))
                        .await?;
                    *written = Some(changed);
                    if let Some(entry) = entry.upgrade() {
                        entry.share_landed();
                    }
                    changed
                }
            };
            if changed {
                let event = StoreEvent::SharesChanged {
                    session_id: id.clone(),
                };
                store.publish(&event).await?;
            }
            Ok(())
        }
        Outgoing::Destroyed(id, _) => {
            let event = StoreEvent::SessionDestroyed {
                session_id: id.clone(),
            };
            store.remove_session(id).await?;
            store.publish(&event).await
        }
        Outgoing::Gone(id) => store.remove_session(id).await.map(drop),
    }
}

async fn put_and_announce(
    store: &dyn Store,
    record: &SessionRecord,
    event: &StoreEvent,
) -> crate::store::StoreResult<()> {
    store.put_session(record).await?;
    store.publish(event).await
}
