//! The tamper-evident audit trail (docs/audit.md): one JSON line per security event,
//! hash-chained, written to `AUDIT_LOG` by one writer thread.
//!
//! [`Audit::record`] never blocks and never awaits: it puts the event in a bounded
//! channel and returns. When the channel is full the event is dropped and counted
//! (`tmuxgate_audit_dropped_total`), and the writer says how many in the diagnostic log
//! (at most every [`DROP_REPORT_INTERVAL`]). The writer is an OS thread, not a task, so
//! file I/O (a slow or full disk) never occupies an async worker; it drains what is queued
//! in batches, one `write` per batch.

mod event;
mod line;
pub mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use event::{EventKind, Metadata, Outcome, Record};
pub use line::{Chain, GENESIS, hash_hex, severity};
pub use writer::OpenError;

/// Events queued for the writer at most; beyond, [`Audit::record`] drops them.
pub const QUEUE_CAPACITY: usize = 8192;

/// The writer reports dropped events at most this often.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What the writer counts; shown on `/metrics`.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Lines written.
    pub written: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Lines lost to write errors (disk full, I/O error).
    pub write_failures: AtomicU64,
    /// Files rotated.
    pub rotations: AtomicU64,
    /// `seq` of the last line written (with `written` > 0): compare with the file's last
    /// line to see that nothing was cut off its end.
    pub last_seq: AtomicU64,
    /// The last write failed (disk full, I/O error): events are being lost until one works.
    pub failing: std::sync::atomic::AtomicBool,
}

/// The audit log as `/health` shows it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditStatus {
    /// `ok`, `failing` (the last write failed: events are being lost) or `off`.
    pub state: &'static str,
    /// Lines written since start.
    pub written: u64,
    /// Lines lost to write errors since start.
    pub write_failures: u64,
}

impl AuditCounters {
    /// For `/health`; `on`: whether an audit log is written at all.
    pub fn status(&self, on: bool) -> AuditStatus {
        use std::sync::atomic::Ordering::Relaxed;
        AuditStatus {
            state: match (on, self.failing.load(Relaxed)) {
                (false, _) => "off",
                (true, true) => "failing",
                (true, false) => "ok",
            },
            written: self.written.load(Relaxed),
            write_failures: self.write_failures.load(Relaxed),
        }
    }
}

/// Where and how the log is written.
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// The file (`AUDIT_LOG`).
    pub path: PathBuf,
    /// Rotate before a line would take the file over this size; 0: never (`AUDIT_MAX_BYTES`).
    pub max_bytes: u64,
    /// Rotated files kept (`AUDIT_KEEP`): `path.1` (newest) to `path.N`.
    pub keep: usize,
}

/// A message to the writer.
enum Msg {
    Record(Record),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// A handle to the audit log; cheap to clone. With the log off, records go nowhere.
#[derive(Clone)]
pub struct Audit {
    tx: Option<mpsc::Sender<Msg>>,
    counters: Arc<AuditCounters>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").field("on", &self.is_on()).finish()
    }
}

impl Audit {
    /// No audit log (`AUDIT_LOG=` given empty).
    pub fn off(counters: Arc<AuditCounters>) -> Audit {
        Audit { tx: None, counters }
    }

    /// Opens (or creates, 0600) the log, continues its chain from its last line, and
    /// starts the writer thread. Fails when the file cannot be used at all: a gateway
    /// configured to audit does not start without its log. Later write errors only
    /// count and log.
    pub fn start(
        settings: AuditSettings,
        counters: Arc<AuditCounters>,
    ) -> Result<Audit, OpenError> {
        let writer = writer::Writer::open(settings, counters.clone())?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("tmuxgate-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(OpenError::Thread)?;
        Ok(Audit {
            tx: Some(tx),
            counters,
        })
    }

    /// Queues `record` for the log. Never waits: when the queue is full the event is
    /// dropped and counted.
    pub fn record(&self, record: Record) {
        let Some(tx) = &self.tx else { return };
        tracing::debug!(target: "audit", event = record.kind.name(), source = ?record.source);
        if tx.try_send(Msg::Record(record)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every event recorded before this call has been written (or failed).
    /// For shutdown and tests; never on a connection's path.
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Writes what is queued, closes the file and releases its lock, so that a gateway
    /// started next (in this process too) can open it. Events recorded later are lost
    /// (counted as dropped). Called by `serve` as it returns.
    pub async fn close(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Whether events are written anywhere.
    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// The writer's counters.
    pub fn counters(&self) -> &AuditCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests;
