//! What one gateway tells the others through the shared store, and applies from them.
//!
//! - **Blocks.** Every block imposed or lifted here ([`BlockChange`]) is written to the
//!   store and announced, with its end and reason. Blocks announced by other instances are
//!   applied to this gateway's own table (no read), which stays the only thing consulted on
//!   the accept path (one atomic load while nothing is blocked). Changes the store could
//!   not take are kept and tried again every [`RETRY`]. At start, every [`RESYNC`] and after
//!   a gap in the events, the store's blocks are applied here.
//!
//! - **Revocations.** A token revoked here is already in the store (see
//!   `store::revocations`); the fleet is told, and every other gateway has its connections
//!   recheck their tokens at once ([`Authenticator::poke`]), so a connection open on B with a
//!   token revoked on A closes within a round trip, not only at its next authentication.
//!
//! - **Sessions.** Announcements of sessions created, destroyed or shared elsewhere go to
//!   [`Sessions::on_fleet_event`] (`sessions/fleet.rs`).
//!
//! With the embedded store there is no fleet and nothing runs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{BlockRecord, Received, Store, StoreEvent, now_ms};
use crate::abuse::blocks::{BlockChange, Blocks};
use crate::security::Authenticator;
use crate::sessions::Sessions;

/// How often the store's blocks are applied here in full, besides the events.
pub const RESYNC: Duration = Duration::from_secs(30);

/// How often block changes the store could not take are tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Block changes kept for the store while it is down, at most (the oldest go first).
const MAX_UNSHARED: usize = 10_000;

/// What the fleet task reads, set up before the gateway accepts connections: the store's
/// events and this gateway's block changes and revocations. It outlives the task, so a run
/// that panicked loses nothing it had not taken out yet (`supervise::spawn_supervised_with`).
pub struct Feeds {
    events: tokio::sync::mpsc::Receiver<Received>,
    local: tokio::sync::mpsc::UnboundedReceiver<BlockChange>,
    revoked: tokio::sync::watch::Receiver<u64>,
    /// Block changes the store has not taken yet (it is down), oldest first.
    unshared: std::collections::VecDeque<BlockChange>,
}

impl Feeds {
    /// `events`: the store's subscription; `blocks`: [`Blocks::share_changes`]; `auth`: the
    /// authenticator, whose revocations are announced.
    pub fn new(
        events: tokio::sync::mpsc::Receiver<Received>,
        blocks: tokio::sync::mpsc::UnboundedReceiver<BlockChange>,
        auth: Option<&Authenticator>,
    ) -> Feeds {
        // Without authentication there are no tokens: the sender is dropped at once, so
        // `changed()` fails and that branch of the loop below is off.
        let revoked = auth.map_or_else(
            || tokio::sync::watch::channel(0).1,
            Authenticator::revoked_here,
        );
        Feeds {
            events,
            local: blocks,
            revoked,
            unshared: std::collections::VecDeque::new(),
        }
    }
}

/// The parts of this gateway that the fleet's events reach.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub blocks: Arc<Blocks>,
    pub auth: Option<Authenticator>,
    pub sessions: Arc<Sessions>,
    /// Ends [`run`] (the gateway shuts down).
    pub cancel: CancellationToken,
}

/// Shares blocks and revocations between this gateway and the fleet until `cancel`.
/// `restarted`: an earlier run panicked, perhaps in the middle of an event; the sessions
/// and tokens are checked again as after a gap in the events.
pub async fn run(parts: &Parts, feeds: &mut Feeds, restarted: bool) {
    let Parts {
        store,
        blocks,
        auth,
        sessions,
        cancel,
    } = parts;
    let Feeds {
        events,
        local,
        revoked,
        unshared,
    } = feeds;
    if restarted {
        sessions.resync_fleet().await;
        if let Some(auth) = auth {
            auth.poke();
        }
    }
    resync(&**store, blocks).await;
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(RESYNC);
    tick.tick().await;
    loop {
        tokio::select! {
            Some(change) = local.recv() => {
                unshared.push_back(change);
                flush(&**store, unshared).await;
            }
            _ = retry.tick(), if !unshared.is_empty() => flush(&**store, unshared).await,
            Ok(()) = revoked.changed() => {
                if let Err(e) = store.publish(&StoreEvent::TokensRevoked {}).await {
                    tracing::error!(error = %e, "fleet: could not announce a revocation");
                }
            }
            Some(received) = events.recv() => {
                crate::supervise::faults::check(|| format!("fleet:{}", store.instance()));
                let ours = received.from == store.instance();
                match (&received.event, auth) {
                    (StoreEvent::TokensRevoked {}, Some(auth)) if !ours => auth.poke(),
                    (StoreEvent::Resync {}, _) => {
                        resync(&**store, blocks).await;
                        sessions.resync_fleet().await;
                        if let Some(auth) = auth {
                            auth.poke();
                        }
                    }
                    (
                        StoreEvent::SessionCreated { .. }
                        | StoreEvent::SessionDestroyed { .. }
                        | StoreEvent::SharesChanged { .. },
                        _,
                    ) => sessions.on_fleet_event(&received).await,
                    _ => apply(&**store, blocks, received).await,
                }
            }
            _ = tick.tick() => {
                resync(&**store, blocks).await;
                sessions.resync_fleet().await;
            }
            () = cancel.cancelled() => return,
        }
    }
}

/// Shares the changes in `unshared`, in order, until one fails (it stays, with those
/// behind it, for the next try).
async fn flush(store: &dyn Store, unshared: &mut std::collections::VecDeque<BlockChange>) {
    while let Some(change) = unshared.front() {
        if !publish(store, change.clone()).await {
            if unshared.len() > MAX_UNSHARED {
                unshared.drain(..unshared.len() - MAX_UNSHARED);
            }
            return;
        }
        unshared.pop_front();
    }
}

/// Writes a local change to the store and tells the fleet; whether both worked. A failure
/// is logged: the block holds here meanwhile, and is shared when the store is back.
async fn publish(store: &dyn Store, change: BlockChange) -> bool {
    let (written, event) = match change {
        BlockChange::Blocked(info) => {
            let record = BlockRecord {
                address: info.address.to_string(),
                until_ms: info.until,
                reason: info.reason.clone(),
            };
            let event = StoreEvent::Blocked {
                address: record.address.clone(),
                until_ms: record.until_ms,
                reason: record.reason.clone(),
            };
            (store.block(&record).await, event)
        }
        BlockChange::Unblocked(ip) => {
            let address = ip.to_string();
            let written = store.unblock(&address, now_ms()).await.map(drop);
            (written, StoreEvent::Unblocked { address })
        }
    };
    let shared = match written {
        Ok(()) => store.publish(&event).await,
        Err(e) => Err(e),
    };
    match shared {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, ?event, "fleet: could not share a block change; will retry");
            false
        }
    }
}

async fn apply(store: &dyn Store, blocks: &Blocks, received: Received) {
    if received.from == store.instance() {
        return;
    }
    match received.event {
        StoreEvent::Blocked {
            address,
            until_ms,
            reason,
        } => apply_block(
            blocks,
            &BlockRecord {
                address,
                until_ms,
                reason,
            },
        ),
        StoreEvent::Unblocked { address } => {
            if let Ok(ip) = address.parse::<IpAddr>() {
                blocks.apply_shared_unblock(ip);
            }
        }
        _ => {}
    }
}

fn apply_block(blocks: &Blocks, block: &BlockRecord) {
    if let Ok(ip) = block.address.parse::<IpAddr>() {
        blocks.apply_shared(ip, block.until_ms, &block.reason);
    }
}

async fn resync(store: &dyn Store, blocks: &Blocks) {
    match store.blocks(now_ms()).await {
        Ok(all) => all.iter().for_each(|b| apply_block(blocks, b)),
        Err(e) => tracing::warn!(error = %e, "fleet: could not read the shared blocks"),
    }
}
