//! [`EventQueue`]: server events kept for `wait_event`, and a live broadcast for streams.
//!
//! Events are buffered (bounded) so a test that asks for an event *after* it arrived still
//! sees it; events that do not match a wait stay queued for the next one.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tmuxgate_protocol::Event;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use crate::ClientError;
use crate::options::EVENT_BACKLOG;

/// Capacity of the live broadcast; slower subscribers see `Lagged`.
const LIVE_CAPACITY: usize = 256;

/// Buffered and live events of one connection.
pub(crate) struct EventQueue {
    backlog: Mutex<VecDeque<Event>>,
    arrived: Notify,
    /// Made on the first [`subscribe`](Self::subscribe): a broadcast channel allocates all
    /// its slots up front (tens of KiB), too much for thousands of benchmark connections
    /// that never subscribe.
    live: OnceLock<broadcast::Sender<Event>>,
}

impl EventQueue {
    pub(crate) fn new() -> EventQueue {
        EventQueue {
            backlog: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
            live: OnceLock::new(),
        }
    }

    /// Queues an event (dropping the oldest beyond [`EVENT_BACKLOG`]) and wakes waiters.
    pub(crate) fn push(&self, event: Event) {
        if let Some(live) = self.live.get() {
            // No live subscriber is the normal case, not an error.
            let _ = live.send(event.clone());
        }
        let mut backlog = lock(&self.backlog);
        if backlog.len() >= EVENT_BACKLOG {
            let dropped = backlog.pop_front();
            tracing::debug!(?dropped, "event backlog full: dropping the oldest event");
        }
        backlog.push_back(event);
        drop(backlog);
        self.arrived.notify_waiters();
    }

    /// Wakes every waiter so it notices the connection closed.
    pub(crate) fn wake(&self) {
        self.arrived.notify_waiters();
    }

    /// A live stream of events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live
            .get_or_init(|| broadcast::channel(LIVE_CAPACITY).0)
            .subscribe()
    }

    /// Waits for the first queued or future event matching `matches`, leaving the others
    /// queued. `closed` reports a closed connection, checked when nothing matches.
    pub(crate) async fn wait(
        &self,
        mut matches: impl FnMut(&Event) -> bool,
        timeout: Duration,
        closed: impl Fn() -> Option<ClientError>,
    ) -> Result<Event, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before looking, so an event pushed in between still wakes us.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(event) = self.take(&mut matches) {
                return Ok(event);
            }
            if let Some(err) = closed() {
                return Err(err);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(ClientError::Timeout);
            }
        }
    }

    fn take(&self, matches: &mut impl FnMut(&Event) -> bool) -> Option<Event> {
        let mut backlog = lock(&self.backlog);
        let at = backlog.iter().position(matches)?;
        backlog.remove(at)
    }
}

/// Locks a std mutex, ignoring poisoning: the data are plain queues that stay consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
