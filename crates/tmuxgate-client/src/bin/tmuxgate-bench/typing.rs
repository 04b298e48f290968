//! The echo measurement shared by `echo` and `echo-load`, over the gateway or the bare
//! control-mode client: type one printable byte into a pane running `cat` on a cooked tty
//! and time until the tty's echo of it comes back.
//!
//! The tty echoes a printable byte as exactly that byte, and `cat` prints nothing until a
//! line ends, so each sample expects one output byte. Every [`LINE_BYTES`] samples a CR
//! ends the line (not timed): the tty echoes `\r\n`, then `cat` prints the line and its
//! `\r\n`, so the pane's line buffer never fills (Linux caps a cooked line at 4095 bytes).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tmuxgate_client::protocol::frame::FrameKind;
use tmuxgate_client::{Attachment, Client};

use crate::bare::{BareClient, Typer};
use crate::stats::Latency;

/// Samples typed on one line before a CR ends it.
pub const LINE_BYTES: u64 = 64;
/// Deadline of one echo.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// A way to type into a pane and read its output.
pub trait EchoPath {
    /// Types `bytes` and waits until `echo_len` more output bytes arrived; returns when the
    /// last of them arrived, and its value.
    async fn round_trip(&mut self, bytes: &[u8], echo_len: u64) -> anyhow::Result<(Instant, u8)>;
}

/// Types `warmup + samples` bytes through `path`, recording the last `samples` echoes.
pub async fn measure(
    path: &mut impl EchoPath,
    warmup: usize,
    samples: usize,
    latency: &mut Latency,
) -> anyhow::Result<()> {
    let mut line = 0;
    for i in 0..warmup + samples {
        let byte = b'a' + (i % 26) as u8;
        let started = Instant::now();
        let (arrived, echoed) = path.round_trip(&[byte], 1).await?;
        if echoed != byte {
            bail!(
                "typed {:?} but the pane echoed {:?}: is the pane running `cat` on a cooked \
                 tty (DEFAULT_COMMAND='exec cat')?",
                byte as char,
                echoed as char
            );
        }
        if i >= warmup {
            latency.record(arrived - started);
        }
        line += 1;
        if line == LINE_BYTES {
            path.round_trip(b"\r", line + 4).await?;
            line = 0;
        }
    }
    if line > 0 {
        path.round_trip(b"\r", line + 4).await?;
    }
    Ok(())
}

/// Echo through the gateway: binary INPUT frames out, OUTPUT frames back.
pub struct GatewayEcho {
    client: Client,
    attachment: Attachment,
    end: u64,
}

impl GatewayEcho {
    /// Uses a live write attachment (its SNAPSHOT already read).
    pub fn new(client: Client, attachment: Attachment) -> GatewayEcho {
        let end = attachment.end_offset();
        GatewayEcho {
            client,
            attachment,
            end,
        }
    }

    /// The connection, e.g. to destroy the session.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The session typed into.
    pub fn session_id(&self) -> &str {
        &self.attachment.session_id
    }
}

impl EchoPath for GatewayEcho {
    async fn round_trip(&mut self, bytes: &[u8], echo_len: u64) -> anyhow::Result<(Instant, u8)> {
        self.client
            .send_input(self.attachment.channel, bytes)
            .await?;
        self.end += echo_len;
        let deadline = tokio::time::Instant::now() + ECHO_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self
                .attachment
                .next_frame(left)
                .await
                .context("waiting for the echo")?;
            if frame.kind == FrameKind::Snapshot {
                bail!("a SNAPSHOT replaced the stream while waiting for an echo");
            }
            let frame_end = frame.offset + frame.data.len() as u64;
            if frame_end >= self.end {
                let last = frame.data[(self.end - 1 - frame.offset) as usize];
                return Ok((Instant::now(), last));
            }
        }
    }
}

/// Echo through a bare control-mode client: `send-keys` out, `%output` back.
pub struct BareEcho {
    client: BareClient,
    typer: Typer,
    end: u64,
}

impl BareEcho {
    /// Uses a freshly attached client (nothing typed yet).
    pub fn new(client: BareClient) -> BareEcho {
        let (end, typer) = (client.received(), client.typer());
        BareEcho { client, typer, end }
    }

    /// Gives the client back (to shut it down).
    pub fn into_inner(self) -> BareClient {
        self.client
    }
}

impl EchoPath for BareEcho {
    async fn round_trip(&mut self, bytes: &[u8], echo_len: u64) -> anyhow::Result<(Instant, u8)> {
        self.end += echo_len;
        // The reply to send-keys and the echo race; the echo is what a user sees.
        let (typed, echoed) = tokio::join!(
            self.typer.type_bytes(bytes),
            self.client.wait_received(self.end, ECHO_TIMEOUT)
        );
        typed?;
        echoed
    }
}
