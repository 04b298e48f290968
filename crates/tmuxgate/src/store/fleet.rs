//! What one gateway tells the others through the shared store, and applies from them.
//!
//! - **Blocks.** Every block imposed or lifted here ([`BlockChange`]) is written to the
//!   store and announced; blocks announced by other instances are read back and applied
//!   to this gateway's own table, which stays the only thing consulted on the accept path
//!   (one atomic load while nothing is blocked). At start, and every [`RESYNC`] (so state
//!   converges after a Redis outage), the store's blocks are applied here.
//!
//! With the embedded store there is no fleet and nothing runs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{BlockRecord, Received, Store, StoreEvent, now_ms};
use crate::abuse::blocks::{BlockChange, Blocks};

/// How often the store's blocks are applied here in full, besides the events.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Shares blocks between this gateway and the fleet until `cancel`.
pub async fn share_blocks(store: Arc<dyn Store>, blocks: Arc<Blocks>, cancel: CancellationToken) {
    if store.kind() == "memory" {
        return;
    }
    let mut local = blocks.share_changes();
    let mut events = loop {
        match store.subscribe().await {
            Ok(events) => break events,
            Err(e) => {
                tracing::warn!(error = %e, "fleet: cannot subscribe to the store; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = cancel.cancelled() => return,
                }
            }
        }
    };
    resync(&*store, &blocks).await;
    let mut tick = tokio::time::interval(RESYNC);
    tick.tick().await;
    loop {
        tokio::select! {
            Some(change) = local.recv() => publish(&*store, change).await,
            Some(received) = events.recv() => apply(&*store, &blocks, received).await,
            _ = tick.tick() => resync(&*store, &blocks).await,
            () = cancel.cancelled() => return,
        }
    }
}

/// Writes a local change to the store and tells the fleet. A failure is logged: the block
/// holds here, and reaches the others when an administrator repeats it.
async fn publish(store: &dyn Store, change: BlockChange) {
    let (written, event) = match change {
        BlockChange::Blocked(info) => {
            let record = BlockRecord {
                address: info.address.to_string(),
                until_ms: info.until,
                reason: info.reason.clone(),
            };
            let event = StoreEvent::Blocked {
                address: record.address.clone(),
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
    if let Err(e) = shared {
        tracing::error!(error = %e, ?event, "fleet: could not share a block change");
    }
}

async fn apply(store: &dyn Store, blocks: &Blocks, received: Received) {
    if received.from == store.instance() {
        return;
    }
    match received.event {
        StoreEvent::Blocked { address } => {
            // The event names the address; the store has its end and reason.
            match store.blocks(now_ms()).await {
                Ok(all) => {
                    for block in all.iter().filter(|b| b.address == address) {
                        apply_block(blocks, block);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "fleet: could not read a shared block"),
            }
        }
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
