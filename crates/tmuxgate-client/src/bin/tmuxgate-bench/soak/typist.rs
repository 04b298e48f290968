//! A soak typist: one write connection typing into `cat` at a human pace, timing every
//! keystroke's echo. Its session runs the gateway's integrated shell (the soak's gateway
//! has no `DEFAULT_COMMAND`, as `command-execute` needs), so the typist first types
//! `exec cat` and waits for proof that `cat` answers. Any failure is counted and the typist
//! starts over on a new connection, in the same session while it exists.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tmuxgate_client::protocol::request::AttachMode;
use tmuxgate_client::{Attachment, Client, ClientError};
use tokio::time::Interval;

use super::tally::{Tally, Worker};
use super::workers::{RETRY_PAUSE, Slots, forget_if_gone, slot_session};
use crate::conn;
use crate::typing::{EchoPath, GatewayEcho, LINE_BYTES};

/// How long the pane has to show that `cat` runs, per try.
const READY_WAIT: Duration = Duration::from_secs(5);
/// Tries at that before the typist gives up on this connection.
const READY_TRIES: u32 = 3;
/// Output silence that means the pane has printed everything typed so far.
const QUIET: Duration = Duration::from_millis(300);

/// When a typist keys: at `first`, then every `period` (late keys are skipped, the phase
/// is kept).
pub struct Pace {
    /// The first key.
    pub first: tokio::time::Instant,
    /// Between two keys.
    pub period: Duration,
}

/// Types into the session of `slot` until the task is aborted.
pub async fn typist(url: String, slots: Slots, slot: usize, pace: Pace, tally: Tally) {
    let mut ticks = tokio::time::interval_at(pace.first, pace.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let Err(e) = type_session(&url, &slots, slot, &mut ticks, &tally).await;
        forget_if_gone(&slots, slot, &e);
        tally.error(Worker::Typist, format!("{e:#}"));
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One connection's life: attach, start `cat`, then one key per tick, a CR every
/// [`LINE_BYTES`] keys (its own tick) so `cat`'s line never fills.
async fn type_session(
    url: &str,
    slots: &Slots,
    slot: usize,
    ticks: &mut Interval,
    tally: &Tally,
) -> anyhow::Result<Infallible> {
    let client = conn::connect(url).await.context("connect")?;
    let session = slot_session(&client, slots, slot)
        .await
        .context("session")?;
    let attachment = conn::attach_live(&client, &session, AttachMode::Write)
        .await
        .context("attach")?;
    let mut echo = start_cat(client, attachment).await?;
    let (mut line, mut typed) = (0u64, 0u64);
    loop {
        ticks.tick().await;
        if line == LINE_BYTES {
            echo.round_trip(b"\r", line + 4).await?;
            line = 0;
            continue;
        }
        let byte = b'a' + (typed % 26) as u8;
        typed += 1;
        let started = Instant::now();
        let (arrived, echoed) = echo.round_trip(&[byte], 1).await?;
        ensure!(
            echoed == byte,
            "typed {:?} but the pane echoed {:?}",
            byte as char,
            echoed as char
        );
        tally.echo(arrived - started);
        line += 1;
    }
}

/// Types `exec cat` (harmless if `cat` already runs: it prints the line back), then a
/// marker line until the pane shows it twice (the tty's echo, then `cat`'s copy: a shell
/// would answer `command not found`), then waits for silence: the echo offsets start there.
async fn start_cat(client: Client, mut attachment: Attachment) -> anyhow::Result<GatewayEcho> {
    let channel = attachment.channel;
    client.send_input(channel, b"exec cat\r").await?;
    for attempt in 0..READY_TRIES {
        let tag = format!("soak{attempt}ready");
        client
            .send_input(channel, format!("{tag}\r").as_bytes())
            .await?;
        let needle = format!("{tag}\r\n{tag}\r\n");
        match conn::wait_for_needle(&mut attachment, needle.as_bytes(), READY_WAIT).await {
            Ok(_) => {
                settle(&mut attachment).await?;
                return Ok(GatewayEcho::new(client, attachment));
            }
            Err(ClientError::Timeout) => continue,
            Err(e) => return Err(e).context("waiting for `cat`"),
        }
    }
    bail!("the pane did not run `cat` {READY_TRIES} × {READY_WAIT:?} after `exec cat`")
}

/// Reads frames until none came for [`QUIET`].
async fn settle(attachment: &mut Attachment) -> Result<(), ClientError> {
    loop {
        match attachment.next_frame(QUIET).await {
            Ok(_) => {}
            Err(ClientError::Timeout) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
