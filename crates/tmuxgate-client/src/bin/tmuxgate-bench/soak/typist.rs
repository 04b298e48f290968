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

/// How long a session may take to print its prefill.
const PREFILL_WAIT: Duration = Duration::from_secs(60);

/// Types into the session of `slot` until the task is aborted. A session it types into
/// first prints `prefill` bytes (see `--prefill-kib`).
pub async fn typist(
    url: String,
    slots: Slots,
    slot: usize,
    (pace, prefill): (Pace, u64),
    tally: Tally,
) {
    let mut ticks = tokio::time::interval_at(pace.first, pace.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The session already prefilled: a typist starting over in it finds `cat` running.
    let mut prefilled = None;
    loop {
        let at = (&slots, slot);
        let Err(e) = type_session(&url, at, (prefill, &mut prefilled), &mut ticks, &tally).await;
        forget_if_gone(&slots, slot, &e);
        tally.error(Worker::Typist, format!("{e:#}"));
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One connection's life: attach, start `cat`, then one key per tick, a CR every
/// [`LINE_BYTES`] keys (its own tick) so `cat`'s line never fills.
async fn type_session(
    url: &str,
    (slots, slot): (&Slots, usize),
    (prefill, prefilled): (u64, &mut Option<String>),
    ticks: &mut Interval,
    tally: &Tally,
) -> anyhow::Result<Infallible> {
    let client = conn::connect(url).await.context("connect")?;
    let session = slot_session(&client, slots, slot)
        .await
        .context("session")?;
    let mut attachment = conn::attach_live(&client, &session, AttachMode::Write)
        .await
        .context("attach")?;
    if prefill > 0 && prefilled.as_deref() != Some(session.as_str()) {
        print_prefill(&client, &mut attachment, prefill).await?;
        *prefilled = Some(session);
    }
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

/// Has the session's shell print `bytes` of lines (80 columns), and waits until it has
/// and its prompt is back.
pub(super) async fn print_prefill(
    client: &Client,
    attachment: &mut Attachment,
    bytes: u64,
) -> anyhow::Result<()> {
    let command = format!(
        "head -c {bytes} /dev/zero | tr '\\0' x | fold -w 79; echo prefill-done-$((40+2))\r"
    );
    client
        .send_input(attachment.channel, command.as_bytes())
        .await?;
    conn::wait_for_needle(attachment, b"prefill-done-42", PREFILL_WAIT)
        .await
        .context("waiting for the prefill")?;
    settle(attachment).await.context("after the prefill")
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
