//! The Redis store's event reader: a stream read with blocking `XREAD`, on a connection of
//! its own, resumed after the last event passed whenever Redis comes back.

use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::Received;
use super::redis::{CALL_TIMEOUT, EVENT_BLOCK_MS, RedisSettings, connect};

/// Reads the event stream after `last`, on a connection of its
/// own (a blocking read would hold up other commands), until `tx` is dropped. Survives
/// Redis outages: it reconnects with backoff and resumes after the last event it passed.
pub(super) async fn read_events(
    settings: RedisSettings,
    stream: String,
    mut last: String,
    tx: mpsc::Sender<Received>,
) {
    let mut backoff = Duration::from_millis(100);
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
                continue;
            }
        };
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
                    break;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}
