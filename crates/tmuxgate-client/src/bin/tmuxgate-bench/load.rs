//! The background load of `echo-load`, on its own thread with its own runtime: K typing
//! sessions, each with a writer typing at R keys/s, and V read-only viewers that read and
//! drop every frame. On its own thread, the load's frames do not queue in front of the
//! measured echo in this tool's runtime (they still share the machine's cores).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tmuxgate_client::Client;
use tmuxgate_client::protocol::request::AttachMode;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::conn::{self, open_viewers};
use crate::limits::FileLimit;

/// Keys a typist types before ending the line with a CR (its `cat` then prints it).
const TYPIST_LINE_BYTES: u64 = 40;

/// What load to generate.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The gateway.
    pub url: String,
    /// Sessions viewers may watch besides the typing ones (the measured session).
    pub extra_sessions: Vec<String>,
    /// Whether viewers watch only `extra_sessions` (else: spread over all sessions).
    pub viewers_on_extra_only: bool,
    /// Read-only viewers.
    pub viewers: usize,
    /// Typing sessions.
    pub typing: usize,
    /// Keys per second per typing session.
    pub rate: f64,
    /// Connections opened at once.
    pub concurrency: usize,
    /// Seed of the typists' phases.
    pub seed: u64,
    /// This process's open-file limit, to explain failed connects.
    pub files: FileLimit,
}

/// The running load.
pub struct Load {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
    keys: Arc<AtomicU64>,
    /// Viewers attached.
    pub viewers: usize,
    /// Why fewer viewers than asked are attached.
    pub stopped: Option<String>,
}

/// What the load thread reports once everything runs.
struct Ready {
    viewers: usize,
    stopped: Option<String>,
}

impl Load {
    /// Starts the load thread and waits until every typist types and every viewer is live.
    pub async fn start(spec: LoadSpec) -> anyhow::Result<Load> {
        let (stop, stopped) = watch::channel(false);
        let keys = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = oneshot::channel();
        let counter = keys.clone();
        let thread = std::thread::Builder::new()
            .name("bench-load".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(run(spec, counter, stopped, ready_tx))
            })?;
        match ready.await {
            Ok(ready) => Ok(Load {
                stop,
                thread,
                keys,
                viewers: ready.viewers,
                stopped: ready.stopped,
            }),
            Err(_) => Err(join(thread)
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("load ended early"))),
        }
    }

    /// Keys typed so far, by all typists together.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    /// Stops typing, closes every load connection and waits for the thread.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || join(thread)).await?
    }
}

fn join(thread: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))?
}

/// The load thread: typists, viewers, then wait for the stop and clean up.
async fn run(
    spec: LoadSpec,
    keys: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    ready: oneshot::Sender<Ready>,
) -> anyhow::Result<()> {
    let admin = conn::connect(&spec.url).await?;
    let mut typists = JoinSet::new();
    let mut typed_sessions = Vec::new();
    // Each typist keys at its own phase of the period, drawn at random (seeded, so runs
    // repeat): independent people typing, not bursts shaped by how fast their sessions
    // happened to be created.
    let epoch = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / spec.rate.max(0.001));
    let mut phases = StdRng::seed_from_u64(spec.seed);
    for k in 0..spec.typing {
        let client = conn::connect(&spec.url).await?;
        let session = client
            .create_session(&conn::session_name("typist", k), 80, 24)
            .await
            .context("creating a typing session")?;
        let attachment = conn::attach_live(&client, &session.session_id, AttachMode::Write).await?;
        typed_sessions.push(session.session_id);
        let phase = period.mul_f64(phases.random::<f64>());
        let typist = type_until(
            keys.clone(),
            client,
            attachment.channel,
            (epoch + phase, period),
            stop.clone(),
        );
        typists.spawn(typist);
        // The typist's own output is read and dropped by its connection.
        drop(attachment);
    }
    let mut watched = spec.extra_sessions.clone();
    if !spec.viewers_on_extra_only || watched.is_empty() {
        watched.extend(typed_sessions.iter().cloned());
    }
    let opened = open_viewers(
        &spec.url,
        &watched,
        0..spec.viewers,
        spec.concurrency,
        AttachMode::Read,
        &spec.files,
    )
    .await;
    // Viewers keep reading (and dropping) every frame; only their connections are kept.
    let viewers: Vec<Client> = opened.viewers.into_iter().map(|v| v.client).collect();
    let _ = ready.send(Ready {
        viewers: viewers.len(),
        stopped: opened.stopped,
    });
    let _ = stop.wait_for(|stop| *stop).await;
    typists.join_all().await;
    drop(viewers);
    for id in typed_sessions {
        let _ = admin.destroy_session(&id).await;
    }
    Ok(())
}

/// Types one key at `start` and every `period` after it (a CR every [`TYPIST_LINE_BYTES`])
/// until told to stop, counting them in `keys`. Late ticks are skipped, keeping the phase.
async fn type_until(
    keys: Arc<AtomicU64>,
    client: Client,
    channel: u32,
    (start, period): (tokio::time::Instant, Duration),
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(start, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut typed = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let key: &[u8] = match typed % TYPIST_LINE_BYTES {
            n if n == TYPIST_LINE_BYTES - 1 => b"\r",
            n => &[b'a' + (n % 26) as u8],
        };
        if client.send_input(channel, key).await.is_err() {
            return;
        }
        typed += 1;
        keys.fetch_add(1, Ordering::Relaxed);
    }
}
