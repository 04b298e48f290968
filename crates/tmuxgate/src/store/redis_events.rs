//! The Redis store's event reader: a stream read with blocking `XREAD`, on a connection of
//! its own, resumed after the last event passed whenever Redis comes back.

use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::Received;
use super::redis::{CALL_TIMEOUT, Conn, EVENT_BLOCK_MS, RedisSettings, connect};
use crate::supervise::Resumed;

/// Where the reader is: the last event passed on, and to whom. It outlives a panic of the
/// reader, which starts again after it (`supervise`).
pub(super) struct Cursor {
    /// The id of the last event passed on (`0-0`: none yet, on a stream empty at first).
    pub last: String,
    /// The subscriber.
    pub tx: mpsc::Sender<Received>,
}

/// Reads the event stream after the cursor, on a connection of its own (a blocking read
/// would hold up other commands), until the subscriber is gone. Survives Redis outages: it
/// reconnects with backoff and resumes after the last event it passed. A reader started
/// again after a panic has the subscriber resync first: the event it was at may be lost.
pub(super) async fn read_events(settings: RedisSettings, stream: String, mut run: Resumed<Cursor>) {
    let Cursor { last, tx } = &mut *run.state;
    if run.restarted && tx.send(resync()).await.is_err() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    let mut reconnecting = false;
    loop {
        if tx.is_closed() {
            return;
        }
        let mut conn = match connect(&settings).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "store events: cannot reach Redis; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                reconnecting = true;
                continue;
            }
        };
        if reconnecting && lost_track(&mut conn, &stream, last).await {
            // The last event passed is gone (trimmed, or Redis restarted without it): events
            // after it may be gone too. The subscriber reads the state afresh.
            tracing::warn!("store events: the stream lost events while away; resyncing");
            if tx.send(resync()).await.is_err() {
                return;
            }
        }
        loop {
            let from = last.clone();
            let options = redis::streams::StreamReadOptions::default()
                .block(EVENT_BLOCK_MS)
                .count(256);
            let read: redis::RedisResult<Option<redis::streams::StreamReadReply>> =
                tokio::time::timeout(
                    Duration::from_millis(EVENT_BLOCK_MS as u64) + CALL_TIMEOUT,
                    conn.xread_options(&[&stream], &[&from], &options),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "event read timed out",
                    )))
                });
            match read {
                Ok(reply) => {
                    // Only a read that worked resets the backoff: a lasting error (an ACL
                    // without XREAD, a key of the wrong type) must not spin.
                    backoff = Duration::from_millis(100);
                    for key in reply.into_iter().flat_map(|r| r.keys) {
                        for entry in key.ids {
                            last.clone_from(&entry.id);
                            let from: Option<String> = entry.get("from");
                            let event: Option<String> = entry.get("event");
                            let parsed = event
                                .as_deref()
                                .and_then(|json| serde_json::from_str(json).ok());
                            if let (Some(from), Some(event)) = (from, parsed)
                                && tx.send(Received { from, event }).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "store events: reading failed; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    reconnecting = true;
                    break;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}

/// The event that has the subscriber read the state afresh.
fn resync() -> Received {
    Received {
        from: String::new(),
        event: super::StoreEvent::Resync {},
    }
}

/// Whether the event `last` (the last one passed on) is no longer in the stream, so events
/// after it may have been lost. `0-0` (nothing passed yet, on a stream empty at subscribe)
/// has nothing to lose. A failed check counts as lost: a resync is cheap, a gap is not.
async fn lost_track(conn: &mut Conn, stream: &str, last: &str) -> bool {
    if last == "0-0" {
        return false;
    }
    let found: redis::RedisResult<redis::streams::StreamRangeReply> =
        tokio::time::timeout(CALL_TIMEOUT, conn.xrange_count(stream, last, last, 1))
            .await
            .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))));
    !found.is_ok_and(|range| !range.ids.is_empty())
}
