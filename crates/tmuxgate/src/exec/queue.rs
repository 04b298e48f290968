//! The per-session command queue: a ticket lock. A ticket is taken when the request
//! arrives (in the connection task, so requests keep their order) and refused when
//! `EXEC_QUEUE_DEPTH` commands already wait behind a running one; the job then waits for its
//! number to be served. A ticket dropped before its turn (its request failed early) is
//! skipped, so it never stalls the ones behind it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// One session's queue.
pub struct SessionQueue {
    state: Mutex<State>,
    serving: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    next: u64,
    serving: u64,
    /// Tickets dropped before their turn.
    abandoned: BTreeSet<u64>,
}

impl Default for SessionQueue {
    fn default() -> Self {
        SessionQueue {
            state: Mutex::default(),
            serving: watch::Sender::new(0),
        }
    }
}

/// A place in a queue; the holder runs when [`Ticket::wait`] returns, until it drops.
pub struct Ticket {
    queue: Arc<SessionQueue>,
    number: u64,
}

impl SessionQueue {
    /// Takes the next ticket, unless more than `depth` are running or waiting already.
    pub fn take(queue: &Arc<SessionQueue>, depth: u32) -> Option<Ticket> {
        let number = {
            let mut state = lock(&queue.state);
            if state.next - state.serving > u64::from(depth) {
                return None;
            }
            state.next += 1;
            state.next - 1
        };
        Some(Ticket {
            queue: queue.clone(),
            number,
        })
    }

    /// Tickets running or waiting (abandoned ones not yet skipped included).
    #[cfg(test)]
    fn len(&self) -> u64 {
        let state = lock(&self.state);
        state.next - state.serving
    }

    /// Whether nothing runs or waits.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ticket {
    /// Waits until this ticket is served.
    pub async fn wait(&self) {
        let mut rx = self.queue.serving.subscribe();
        // The sender lives in the queue, which this ticket keeps alive.
        let _ = rx.wait_for(|serving| *serving >= self.number).await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let queue = &self.queue;
        let mut state = lock(&queue.state);
        if state.serving != self.number {
            state.abandoned.insert(self.number);
            return;
        }
        let mut serving = self.number + 1;
        while state.abandoned.remove(&serving) {
            serving += 1;
        }
        state.serving = serving;
        drop(state);
        queue.serving.send_replace(serving);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn tickets_run_in_order_and_abandoned_ones_are_skipped() {
        let q = Arc::new(SessionQueue::default());
        let first = SessionQueue::take(&q, 2).unwrap();
        let second = SessionQueue::take(&q, 2).unwrap();
        let third = SessionQueue::take(&q, 2).unwrap();
        assert!(SessionQueue::take(&q, 2).is_none(), "full at depth 2");
        first.wait().await;
        let waits = tokio::time::timeout(Duration::from_millis(50), third.wait()).await;
        assert!(waits.is_err(), "third waits behind the running first");
        drop(second); // failed before its turn
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), third.wait())
            .await
            .expect("served once the first is done, the second skipped");
        assert_eq!(q.len(), 1);
        drop(third);
        assert!(q.is_empty());
    }
}
