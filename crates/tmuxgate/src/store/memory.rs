//! The embedded store: everything in this process, nothing shared. The default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};

use super::{
    BlockRecord, Received, SessionRecord, Store, StoreEvent, StoreInfo, StoreResult,
    new_instance_id,
};
use crate::abuse::gcra::Quota;

/// Events kept for subscribers that fall behind.
const EVENT_BACKLOG: usize = 1024;

/// See the module documentation.
pub struct MemoryStore {
    instance: String,
    epoch: Instant,
    state: Mutex<State>,
    events: broadcast::Sender<Received>,
}

#[derive(Default)]
struct State {
    /// GCRA theoretical arrival times, ns since `epoch`.
    tats: HashMap<String, u64>,
    /// jti → expiry (ms since the epoch).
    revoked: HashMap<String, u64>,
    blocks: HashMap<String, BlockRecord>,
    counts: HashMap<(String, String), u64>,
    sessions: HashMap<String, SessionRecord>,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            instance: new_instance_id(),
            epoch: Instant::now(),
            state: Mutex::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, StoreResult<T>> {
    futures_util::future::ready(Ok(value)).boxed()
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn instance(&self) -> &str {
        &self.instance
    }

    fn take<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
        cost: u64,
    ) -> BoxFuture<'a, StoreResult<Result<(), Duration>>> {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut state = self.state();
        let taken = match state.tats.get_mut(key) {
            Some(tat) => quota.take(tat, now, cost),
            None => {
                let mut tat = 0;
                let taken = quota.take(&mut tat, now, cost);
                if taken.is_ok() {
                    state.tats.insert(key.to_owned(), tat);
                }
                taken
            }
        };
        // Forget buckets as good as new, so the map stays as small as the busy keys.
        if state.tats.len() > 4096 {
            state.tats.retain(|_, tat| !quota.is_idle(*tat, now));
        }
        ready(taken)
    }

    fn revoke<'a>(&'a self, jti: &'a str, expires_ms: u64) -> BoxFuture<'a, StoreResult<()>> {
        let now = super::now_ms();
        let mut state = self.state();
        state.revoked.retain(|_, exp| *exp > now);
        state.revoked.insert(jti.to_owned(), expires_ms);
        ready(())
    }

    fn is_revoked<'a>(&'a self, jti: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        let revoked = self
            .state()
            .revoked
            .get(jti)
            .is_some_and(|exp| *exp > now_ms);
        ready(revoked)
    }

    fn block<'a>(&'a self, block: &'a BlockRecord) -> BoxFuture<'a, StoreResult<()>> {
        self.state()
            .blocks
            .insert(block.address.clone(), block.clone());
        ready(())
    }

    fn unblock<'a>(&'a self, address: &'a str, now_ms: u64) -> BoxFuture<'a, StoreResult<bool>> {
        let was = self
            .state()
            .blocks
            .remove(address)
            .is_some_and(|b| b.until_ms > now_ms);
        ready(was)
    }

    fn blocks(&self, now_ms: u64) -> BoxFuture<'_, StoreResult<Vec<BlockRecord>>> {
        let mut state = self.state();
        state.blocks.retain(|_, b| b.until_ms > now_ms);
        let mut blocks: Vec<_> = state.blocks.values().cloned().collect();
        blocks.sort_by(|a, b| a.address.cmp(&b.address));
        ready(blocks)
    }

    fn count_add<'a>(
        &'a self,
        scope: &'a str,
        key: &'a str,
        max: u32,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        let mut state = self.state();
        let count = state
            .counts
            .entry((scope.to_owned(), key.to_owned()))
            .or_default();
        let added = *count < u64::from(max);
        if added {
            *count += 1;
        }
        ready(added)
    }

    fn count_reset<'a>(
        &'a self,
        counts: &'a [(&'static str, String, u32)],
    ) -> BoxFuture<'a, StoreResult<()>> {
        let mut state = self.state();
        state.counts = counts
            .iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(scope, key, n)| (((*scope).to_owned(), key.clone()), u64::from(*n)))
            .collect();
        ready(())
    }

    fn count_remove<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let mut state = self.state();
        let id = (scope.to_owned(), key.to_owned());
        if let Some(count) = state.counts.get_mut(&id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.counts.remove(&id);
            }
        }
        ready(())
    }

    fn count<'a>(&'a self, scope: &'a str, key: &'a str) -> BoxFuture<'a, StoreResult<u64>> {
        let id = (scope.to_owned(), key.to_owned());
        let count = self.state().counts.get(&id).copied().unwrap_or(0);
        ready(count)
    }

    fn heartbeat(&self, _ttl: Duration) -> BoxFuture<'_, StoreResult<()>> {
        ready(())
    }

    fn put_session<'a>(&'a self, session: &'a SessionRecord) -> BoxFuture<'a, StoreResult<()>> {
        self.state()
            .sessions
            .insert(session.id.clone(), session.clone());
        ready(())
    }

    fn remove_session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        ready(self.state().sessions.remove(id).is_some())
    }

    fn edit_share<'a>(
        &'a self,
        id: &'a str,
        user: &'a str,
        mode: Option<&'a str>,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        use crate::sessions::access;
        let mut state = self.state();
        let Some(record) = state.sessions.get_mut(id) else {
            return ready(false);
        };
        let mut shares = access::decode_shares(&record.shares);
        shares.retain(|s| s.user != user);
        let mode = match mode {
            Some("read") => Some(tmuxgate_protocol::request::AttachMode::Read),
            Some("write") => Some(tmuxgate_protocol::request::AttachMode::Write),
            _ => None,
        };
        if let Some(mode) = mode {
            access::set_share(&mut shares, user, mode);
        }
        record.shares = access::encode_shares(&shares);
        ready(true)
    }

    fn session<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<SessionRecord>>> {
        ready(self.state().sessions.get(id).cloned())
    }

    fn sessions(&self) -> BoxFuture<'_, StoreResult<Vec<SessionRecord>>> {
        let mut sessions: Vec<_> = self.state().sessions.values().cloned().collect();
        sessions.sort_by(|a, b| a.id.cmp(&b.id));
        ready(sessions)
    }

    fn publish<'a>(&'a self, event: &'a StoreEvent) -> BoxFuture<'a, StoreResult<()>> {
        let _ = self.events.send(Received {
            from: self.instance.clone(),
            event: event.clone(),
        });
        ready(())
    }

    fn subscribe(&self) -> BoxFuture<'_, StoreResult<mpsc::Receiver<Received>>> {
        let mut events = self.events.subscribe();
        let (tx, rx) = mpsc::channel(EVENT_BACKLOG);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => {
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "store events: a subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        ready(rx)
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        ready(())
    }

    fn check(&self) -> BoxFuture<'_, StoreResult<StoreInfo>> {
        let state = self.state();
        let keys = vec![
            ("rateLimits".to_owned(), state.tats.len() as u64),
            ("revocations".to_owned(), state.revoked.len() as u64),
            ("blocks".to_owned(), state.blocks.len() as u64),
            ("counts".to_owned(), state.counts.len() as u64),
            ("sessions".to_owned(), state.sessions.len() as u64),
        ];
        ready(StoreInfo {
            kind: "memory",
            version: None,
            latency_us: 0,
            keys,
        })
    }
}
