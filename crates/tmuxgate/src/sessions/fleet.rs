//! The session registry across a fleet of gateways sharing backends and a store.
//!
//! tmux holds the sessions; every gateway of a fleet reaches the same servers. The store
//! holds the registry's records (owner, shares, backend, tmux id, integrated-shell nonce),
//! written by the gateway that made a change, and each change is announced:
//!
//! - `session-created`: the others add the session from the store's record (not from the
//!   `@tmuxgate_*` options, which a program in a pane could forge);
//! - `shares-changed`: the others take the new shares from the record and recheck the
//!   channels attached to the session, so a share taken back on A ends its use on B;
//! - `session-destroyed`: announced *before* the kill, so the others' viewers hear
//!   `session-closed` with reason `destroyed` when tmux then ends their control clients.
//!
//! Writes go through one queue, in order, off the request path; a store that is down costs
//! a logged error, and the records converge at the next start (see `join`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::registry::SessionEntry;
use super::{Sessions, access};
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

enum Outgoing {
    Created(SessionRecord),
    SharesChanged(SessionRecord),
    Destroyed(String, Option<oneshot::Sender<()>>),
    Gone(String),
}

impl SessionEntry {
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
    /// Joins the fleet of `store` (only a shared store has one): the records of sessions
    /// found in tmux take their owner and shares from the store when it has them, and are
    /// written to it when it does not; from then on every change here is written and
    /// announced.
    pub async fn join_fleet(self: &Arc<Self>, store: Arc<dyn Store>) {
        let (outbox, queued) = mpsc::unbounded_channel();
        match store.sessions().await {
            Ok(records) => {
                for entry in self.registry.all() {
                    match records.iter().find(|r| r.id == entry.id) {
                        Some(record) if record.tmux_id == entry.tmux_id.to_string() => {
                            entry.edit_shares(|s| *s = access::decode_shares(&record.shares));
                        }
                        _ => {
                            let _ = outbox.send(Outgoing::Created(entry.record()));
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "fleet: could not read the session records"),
        }
        let fleet = Fleet {
            store: store.clone(),
            outbox,
        };
        if self.fleet.set(fleet).is_ok() {
            tokio::spawn(deliver(store, queued));
        }
    }

    pub(super) fn announce_created(&self, entry: &SessionEntry) {
        if let Some(fleet) = self.fleet.get() {
            let _ = fleet.outbox.send(Outgoing::Created(entry.record()));
        }
    }

    pub(super) fn announce_shares(&self, entry: &SessionEntry) {
        if let Some(fleet) = self.fleet.get() {
            let _ = fleet.outbox.send(Outgoing::SharesChanged(entry.record()));
        }
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
        let _ = tokio::time::timeout(ANNOUNCE_DEADLINE, delivered).await;
    }

    /// A session that is gone from tmux (exited, or destroyed elsewhere): its record goes.
    pub(super) fn forget_record(&self, id: &str) {
        if let Some(fleet) = self.fleet.get() {
            let _ = fleet.outbox.send(Outgoing::Gone(id.to_owned()));
        }
    }

    /// Reads every record afresh (the event stream may have lost announcements): adds the
    /// sessions this gateway does not list, takes the shares of those it does, and writes
    /// back the records of its sessions the store lost (a Redis restarted without them).
    pub async fn resync_fleet(&self) {
        let Some(fleet) = self.fleet.get() else {
            return;
        };
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
                    // Only a session tmux still has: a record outlives a session that ended
                    // while no gateway could remove it.
                    let backend = self.pool.all().iter().find(|b| b.id == record.backend);
                    let tmux_id = record.tmux_id.parse().ok();
                    let present = match (backend, tmux_id) {
                        (Some(backend), Some(id)) => backend.has_session(id).await,
                        _ => false,
                    };
                    match present {
                        true => self.adopt(&record),
                        false if backend.is_some_and(|b| b.admits()) => {
                            self.forget_record(&record.id);
                        }
                        false => {}
                    }
                }
                Some(entry) if record.tmux_id == entry.tmux_id.to_string() => {
                    let _order = entry.sharing.lock().await;
                    entry.edit_shares(|s| *s = access::decode_shares(&record.shares));
                    Self::wake_channels(&entry);
                }
                Some(_) => {}
            }
        }
    }

    /// Applies what another gateway announced about a session.
    pub async fn on_fleet_event(&self, received: &Received) {
        let Some(fleet) = self.fleet.get() else {
            return;
        };
        if received.from == fleet.store.instance() {
            return;
        }
        match &received.event {
            StoreEvent::SessionCreated { session_id } => {
                if self.registry.get(session_id).is_some() {
                    return;
                }
                match fleet.store.session(session_id).await {
                    Ok(Some(record)) => self.adopt(&record),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "fleet: could not read a new session"),
                }
            }
            StoreEvent::SharesChanged { session_id } => {
                let Some(entry) = self.registry.get(session_id) else {
                    return;
                };
                match fleet.store.session(session_id).await {
                    Ok(Some(record)) => {
                        let _order = entry.sharing.lock().await;
                        entry.edit_shares(|s| *s = access::decode_shares(&record.shares));
                        Self::wake_channels(&entry);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "fleet: could not read new shares"),
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

    /// Registers a session another gateway created, from the store's record.
    fn adopt(&self, record: &SessionRecord) {
        let backend = self.pool.all().iter().find(|b| b.id == record.backend);
        let (Some(backend), Ok(tmux_id)) = (backend, record.tmux_id.parse()) else {
            return tracing::warn!(session = %record.id, backend = %record.backend,
                "fleet: a session on a backend this gateway does not have");
        };
        if record
            .owner
            .as_deref()
            .is_some_and(|o| !access::is_user_name(o))
        {
            return;
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
        self.registry.insert(Arc::new(entry));
    }
}

/// Writes the queued changes to the store and announces them, in order. A change the store
/// refuses (it is down) is kept, with every later one behind it, and tried again every
/// [`RETRY`] until it lands: records and announcements converge once the store is back.
async fn deliver(store: Arc<dyn Store>, mut queued: mpsc::UnboundedReceiver<Outgoing>) {
    let mut pending = VecDeque::new();
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
            pending.drain(..pending.len() - MAX_PENDING);
        }
    }
}

async fn send(store: &dyn Store, change: &Outgoing) -> crate::store::StoreResult<()> {
    match change {
        Outgoing::Created(record) => {
            let event = StoreEvent::SessionCreated {
                session_id: record.id.clone(),
            };
            put_and_announce(store, record, &event).await
        }
        Outgoing::SharesChanged(record) => {
            let event = StoreEvent::SharesChanged {
                session_id: record.id.clone(),
            };
            put_and_announce(store, record, &event).await
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
