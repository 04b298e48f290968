//! The soak's other workers: read-only viewers, the `command-execute` worker and connect
//! churn, plus the session slots they share with the typists. Every worker runs until the
//! task is aborted; a failure is counted in the [`Tally`] and the worker tries again after
//! [`RETRY_PAUSE`] on a new connection, so one failure never ends the run.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tmuxgate_client::protocol::ErrorCode;
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Client, ClientError};
use tokio::task::JoinSet;

use super::tally::{Tally, Worker};
use crate::conn;

/// What a worker waits after a failure before trying again: a broken gateway is retried
/// once a second per worker, not in a spin.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Churned connections still open at once; a tick finding this many is counted as a
/// failure instead of opening another.
pub const CHURN_IN_FLIGHT: usize = 64;
/// How long a viewer waits for a frame before waiting again (idle sessions are normal).
const VIEWER_WAIT: Duration = Duration::from_secs(3600);

/// Sessions made by this run, numbered across slots (names must not repeat).
static SESSIONS_MADE: AtomicUsize = AtomicUsize::new(0);

/// The session of each typist (and of the exec worker), shared so viewers follow a typist
/// whose session had to be made again, and so the run can destroy them all at the end.
#[derive(Clone)]
pub struct Slots(Arc<Mutex<Vec<Option<String>>>>);

impl Slots {
    /// `n` empty slots.
    pub fn new(n: usize) -> Slots {
        Slots(Arc::new(Mutex::new(vec![None; n])))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<String>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session of `slot`, if made.
    pub fn get(&self, slot: usize) -> Option<String> {
        self.lock().get(slot).cloned().flatten()
    }

    fn set(&self, slot: usize, id: Option<String>) {
        if let Some(entry) = self.lock().get_mut(slot) {
            *entry = id;
        }
    }

    /// Every session made and not known gone.
    pub fn all(&self) -> Vec<String> {
        self.lock().iter().flatten().cloned().collect()
    }
}

/// The session of `slot`, made on `client` when there is none yet.
pub async fn slot_session(
    client: &Client,
    slots: &Slots,
    slot: usize,
) -> Result<String, ClientError> {
    if let Some(id) = slots.get(slot) {
        return Ok(id);
    }
    let name = conn::session_name("soak", SESSIONS_MADE.fetch_add(1, Ordering::Relaxed));
    let id = client.create_session(&name, 80, 24).await?.session_id;
    slots.set(slot, Some(id.clone()));
    Ok(id)
}

/// Empties `slot` when `error` says its session no longer exists (the next try makes one).
pub fn forget_if_gone(slots: &Slots, slot: usize, error: &anyhow::Error) {
    if let Some(ClientError::Server {
        code: ErrorCode::NotFound,
        ..
    }) = error.downcast_ref::<ClientError>()
    {
        slots.set(slot, None);
    }
}

/// A read-only viewer of `slot`'s session: reads (and drops) every frame; a stream that
/// ends or breaks is a failure.
pub async fn viewer(url: String, slots: Slots, slot: usize, tally: Tally) {
    loop {
        let Err(e) = watch(&url, &slots, slot, &tally).await;
        tally.error(Worker::Viewer, format!("{e:#}"));
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn watch(url: &str, slots: &Slots, slot: usize, tally: &Tally) -> anyhow::Result<Infallible> {
    // Until its typist made the session there is nothing to watch (not a failure).
    let session = loop {
        match slots.get(slot) {
            Some(id) => break id,
            None => tokio::time::sleep(RETRY_PAUSE).await,
        }
    };
    let client = conn::connect(url).await.context("connect")?;
    let mut attachment = conn::attach_live(&client, &session, AttachMode::Read)
        .await
        .context("attach")?;
    let _live = tally.live_viewer();
    loop {
        match attachment.next_frame(VIEWER_WAIT).await {
            Ok(_) | Err(ClientError::Timeout) => {}
            Err(e) => return Err(e).context("viewing"),
        }
    }
}

/// Runs `command` through `command-execute` every `every` in the session of `slot`,
/// timing each; a failed command is counted and the next one still runs on time.
/// Its session first prints `prefill` bytes, as the typists' do.
pub async fn exec(
    url: String,
    (slots, slot): (Slots, usize),
    (command, prefill): (String, u64),
    every: Duration,
    tally: Tally,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prefilled = None;
    loop {
        let at = (&slots, slot);
        let fill = (prefill, &mut prefilled);
        let Err(e) = run_commands(&url, at, &command, fill, &mut ticks, &tally).await;
        forget_if_gone(&slots, slot, &e);
        tally.error(Worker::Exec, format!("{e:#}"));
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One connection's commands; returns when the connection or the session is gone.
async fn run_commands(
    url: &str,
    (slots, slot): (&Slots, usize),
    command: &str,
    (prefill, prefilled): (u64, &mut Option<String>),
    ticks: &mut tokio::time::Interval,
    tally: &Tally,
) -> anyhow::Result<Infallible> {
    let client = conn::connect(url).await.context("connect")?;
    let session = slot_session(&client, slots, slot)
        .await
        .context("session")?;
    if prefill > 0 && prefilled.as_deref() != Some(session.as_str()) {
        let mut attachment = conn::attach_live(&client, &session, AttachMode::Write)
            .await
            .context("attach for the prefill")?;
        super::typist::print_prefill(&client, &mut attachment, prefill).await?;
        client.detach(attachment.channel).await?;
        *prefilled = Some(session.clone());
    }
    loop {
        ticks.tick().await;
        let started = Instant::now();
        match client.execute(&session, command).await {
            Ok(result) if result.exit_code == Some(0) => tally.exec(started.elapsed()),
            Ok(result) => tally.error(
                Worker::Exec,
                format!("`{command}` ended with status {:?}", result.exit_code),
            ),
            // The request failed, the connection and the session are fine.
            Err(e @ ClientError::Timeout) => tally.error(Worker::Exec, e),
            Err(ClientError::Server { code, message }) if code != ErrorCode::NotFound => {
                tally.error(Worker::Exec, format!("{}: {message}", code.as_str()));
            }
            Err(e) => return Err(e).context("command-execute"),
        }
    }
}

/// Opens `per_second` connections a second, each sending one request (`heartbeat` and
/// `session-list` in turn) and closing.
pub async fn churn(url: String, per_second: f64, tally: Tally) {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut in_flight = JoinSet::new();
    for n in 0u64.. {
        ticks.tick().await;
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() >= CHURN_IN_FLIGHT {
            let why = format!("{CHURN_IN_FLIGHT} churned connections still open: one skipped");
            tally.error(Worker::Churn, why);
            continue;
        }
        let (url, tally) = (url.clone(), tally.clone());
        in_flight.spawn(async move {
            match churn_one(&url, n % 2 == 1).await {
                Ok(()) => tally.churned(),
                Err(e) => tally.error(Worker::Churn, e),
            }
        });
    }
}

async fn churn_one(url: &str, list: bool) -> Result<(), ClientError> {
    let client = conn::connect(url).await?;
    match list {
        true => drop(client.list_sessions().await?),
        false => drop(client.heartbeat().await?),
    }
    client.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_forget_only_gone_sessions() {
        let slots = Slots::new(2);
        slots.set(0, Some("s1".into()));
        slots.set(1, Some("s2".into()));
        forget_if_gone(&slots, 0, &anyhow::Error::new(ClientError::Timeout));
        assert_eq!(slots.get(0).as_deref(), Some("s1"));
        let gone = ClientError::Server {
            code: ErrorCode::NotFound,
            message: "no such session".into(),
        };
        forget_if_gone(&slots, 0, &anyhow::Error::new(gone).context("attach"));
        assert_eq!((slots.get(0), slots.all()), (None, vec!["s2".to_string()]));
    }
}
