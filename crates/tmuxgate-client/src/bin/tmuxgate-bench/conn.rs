//! Connections as the scenarios use them: clients that keep offsets only (constant memory
//! per connection), attachments that count as live once their first frame arrived, many
//! viewers opened with bounded concurrency, and a search for a line across frame borders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tmuxgate_client::protocol::frame::FrameKind;
use tmuxgate_client::protocol::request::{AttachMode, SessionAttach};
use tmuxgate_client::{Attachment, Client, ClientError, ClientOptions};
use tokio::task::JoinSet;

use crate::limits::{self, FileLimit};
use crate::stats::Latency;

/// Deadline of one request, attach or wait in the scenarios.
pub const STEP: Duration = Duration::from_secs(30);

/// A connection that keeps no output bytes (see `ClientOptions::keep_output`), trusting the
/// run's certificate under `--tls` and presenting the run's token.
pub async fn connect(url: &str) -> Result<Client, ClientError> {
    connect_from(url, None).await
}

/// [`connect`] from a chosen local address (`127.0.0.2`, ... play distinct clients).
pub async fn connect_from(
    url: &str,
    local: Option<std::net::IpAddr>,
) -> Result<Client, ClientError> {
    let mut options = ClientOptions::default()
        .keep_output(false)
        .request_timeout(STEP);
    if let Some(config) = crate::tls::client_config() {
        options = options.tls(config);
    }
    if let Some(token) = crate::auth::token() {
        options = options.token(&token);
    }
    if let Some(local) = local {
        options = options.bind(local);
    }
    Client::connect_with(url, options).await
}

/// An attach request for the session's active pane, without a size (so it never resizes).
pub fn attach_request(session_id: &str, mode: AttachMode) -> SessionAttach {
    SessionAttach {
        session_id: session_id.into(),
        mode,
        resume_from: None,
        resume_log_id: None,
        cols: None,
        rows: None,
        target: None,
    }
}

/// Attaches and waits for the channel's first frame (the SNAPSHOT): the viewer is live.
pub async fn attach_live(
    client: &Client,
    session_id: &str,
    mode: AttachMode,
) -> Result<Attachment, ClientError> {
    let mut attachment = client.attach(attach_request(session_id, mode)).await?;
    if attachment.snapshot {
        let frame = attachment.next_frame(STEP).await?;
        if frame.kind != FrameKind::Snapshot {
            return Err(ClientError::Protocol(
                "first frame is not a SNAPSHOT".into(),
            ));
        }
    }
    Ok(attachment)
}

/// One connection with one live attachment.
pub struct Viewer {
    /// The connection.
    pub client: Client,
    /// Its channel.
    pub attachment: Attachment,
}

/// Viewers opened by [`open_viewers`], how long each took, and why opening stopped early.
pub struct Opened {
    /// The viewers, in the order they finished.
    pub viewers: Vec<Viewer>,
    /// Connect + attach + first frame, per viewer.
    pub latency: Latency,
    /// Wall time for all of them.
    pub elapsed: Duration,
    /// Why fewer than asked were opened (a machine limit, or the error).
    pub stopped: Option<String>,
}

/// Opens viewer `first .. first + count`, viewer `i` attached to `sessions[i % len]` in
/// `mode`, at most `concurrency` connecting at once. Stops at the first failure and says
/// why (see [`limits::explain`]).
pub async fn open_viewers(
    url: &str,
    sessions: &[String],
    range: std::ops::Range<usize>,
    concurrency: usize,
    mode: AttachMode,
    file_limit: &FileLimit,
) -> Opened {
    let sessions: Arc<[String]> = sessions.into();
    let started = Instant::now();
    let mut opened = Opened {
        viewers: Vec::with_capacity(range.len()),
        latency: Latency::new(),
        elapsed: Duration::ZERO,
        stopped: None,
    };
    let mut tasks = JoinSet::new();
    let mut next = range.start;
    // The first failure stops new connects; the note is written once the ones in flight
    // have finished, so its counts are final.
    let mut failure: Option<String> = None;
    loop {
        while failure.is_none() && next < range.end && tasks.len() < concurrency.max(1) {
            let (url, sessions) = (url.to_string(), sessions.clone());
            let session = sessions[next % sessions.len()].clone();
            tasks.spawn(async move {
                let t0 = Instant::now();
                let client = connect(&url).await?;
                let attachment = attach_live(&client, &session, mode).await?;
                Ok::<_, ClientError>((Viewer { client, attachment }, t0.elapsed()))
            });
            next += 1;
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok((viewer, took))) => {
                opened.latency.record(took);
                opened.viewers.push(viewer);
            }
            Ok(Err(e)) if failure.is_none() => {
                let why = limits::explain(&e, file_limit).unwrap_or_default();
                let sep = if why.is_empty() { "" } else { " — " };
                failure = Some(format!("{e}{sep}{why}"));
            }
            Ok(Err(_)) => {}
            Err(e) => failure = Some(format!("a connect task failed: {e}")),
        }
    }
    opened.stopped = failure.map(|why| {
        format!(
            "stopped with {} connections open ({} of the {} asked in this step): {why}",
            range.start + opened.viewers.len(),
            opened.viewers.len(),
            range.len(),
        )
    });
    opened.elapsed = started.elapsed();
    opened
}

/// Finds `needle` in a stream fed frame by frame, keeping only the last `needle.len() - 1`
/// bytes between frames.
pub struct Needle {
    needle: Vec<u8>,
    tail: Vec<u8>,
}

impl Needle {
    /// Looks for `needle` (not empty).
    pub fn new(needle: &[u8]) -> Needle {
        Needle {
            needle: needle.to_vec(),
            tail: Vec::new(),
        }
    }

    /// Feeds the next bytes; true once the needle has been seen.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        let keep = self.needle.len().saturating_sub(1);
        self.tail.extend_from_slice(data);
        let found = self
            .tail
            .windows(self.needle.len())
            .any(|w| w == self.needle.as_slice());
        let drop = self.tail.len().saturating_sub(keep);
        self.tail.drain(..drop);
        found
    }
}

/// Reads `attachment`'s frames until its stream contains `needle`; returns when it did.
pub async fn wait_for_needle(
    attachment: &mut Attachment,
    needle: &[u8],
    timeout: Duration,
) -> Result<Instant, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut search = Needle::new(needle);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = attachment.next_frame(left).await?;
        if search.feed(&frame.data) {
            return Ok(Instant::now());
        }
    }
}

/// A session name unique to this run (`bench-KIND-PID-N`), so runs against one `--url`
/// gateway, concurrent or after a failed one, do not collide.
pub fn session_name(kind: &str, n: usize) -> String {
    format!("bench-{kind}-{}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needle_is_found_across_frames() {
        let mut needle = Needle::new(b"hello");
        assert!(!needle.feed(b"xxhe"));
        assert!(!needle.feed(b"l"));
        assert!(needle.feed(b"lo world"));
        let mut other = Needle::new(b"ab");
        assert!(!other.feed(b"a"));
        assert!(!other.feed(b"cb"));
    }
}
