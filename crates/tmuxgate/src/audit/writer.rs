//! The writer thread: renders queued events into chained lines, appends them in batches,
//! rotates by size, and survives write errors (disk full): a failed batch is cut back off
//! the file, its lines are counted as lost, the chain is not advanced (so the file stays
//! verifiable), the error is logged once per failure streak, and the next event tries
//! again (reopening the file if it had to be dropped).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc;

use super::line::{Chain, Risk, render};
use super::{AuditCounters, AuditSettings, DROP_REPORT_INTERVAL, Msg, Record};
use crate::security::private_files::{FileError, open_private_append};

/// Events rendered per batch at most (one `write` each).
const MAX_BATCH: usize = 256;

/// How far from the end of a file its last line is looked for.
const TAIL_BYTES: u64 = 64 * 1024;

/// Why the log could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file (or its directory) is unusable.
    #[error("audit log: {0}")]
    File(#[from] FileError),
    /// Another gateway (or writer) holds the log: two writers would break its chain.
    #[error(
        "audit log {}: in use by another gateway (its .lock is held); give each gateway its own AUDIT_LOG",
        .0.display()
    )]
    InUse(PathBuf),
    /// The writer thread could not be started.
    #[error("audit log: cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

pub(super) struct Writer {
    /// Held while this writer lives: `FILE.lock`, so that two gateways never append to
    /// one chain.
    _lock: File,
    settings: AuditSettings,
    counters: Arc<AuditCounters>,
    file: Option<File>,
    /// Bytes in the file that hold whole, written lines.
    size: u64,
    /// Where the last written line leaves the chain.
    committed: Chain,
    /// Where the lines in `pending` leave it.
    tentative: Chain,
    pending: Vec<u8>,
    pending_lines: u64,
    risk: Risk,
    failing: bool,
    /// A rotation failed and has not succeeded since (logged once per streak).
    rotation_failing: bool,
    drops_reported: u64,
    last_drop_report: Option<Instant>,
}

impl Writer {
    /// Opens the log and finds where its chain stands: after the last line of the file,
    /// or of `FILE.1` when the file is empty (a rotation just before a stop), else at
    /// the genesis.
    pub(super) fn open(
        settings: AuditSettings,
        counters: Arc<AuditCounters>,
    ) -> Result<Writer, OpenError> {
        let lock = lock_exclusively(&settings.path)?;
        let mut file = open_private_append(&settings.path)?;
        let size = cut_partial_line(&mut file).map_err(|e| FileError::io(&settings.path, e))?;
        let committed = match last_line(&mut file, size) {
            Some(line) => chain_after(&line, &settings.path),
            None => {
                let previous = rotated(&settings.path, 1);
                let tail = File::open(&previous).ok().and_then(|mut f| {
                    let len = f.metadata().ok()?.len();
                    last_line(&mut f, len)
                });
                tail.map_or_else(Chain::genesis, |line| chain_after(&line, &previous))
            }
        };
        Ok(Writer {
            _lock: lock,
            settings,
            counters,
            file: Some(file),
            size,
            tentative: committed.clone(),
            committed,
            pending: Vec::with_capacity(64 * 1024),
            pending_lines: 0,
            risk: Risk::default(),
            failing: false,
            rotation_failing: false,
            drops_reported: 0,
            last_drop_report: None,
        })
    }

    /// Writes until every [`super::Audit`] handle is gone or [`super::Audit::close`] asks;
    /// then lets go of the file and its lock (acknowledging the close after that).
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut acks = Vec::new();
        let mut closing = None;
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(msg) = next {
                match msg {
                    Msg::Record(record) => self.push(&record),
                    Msg::Flush(ack) => acks.push(ack),
                    Msg::Close(ack) => closing = Some(ack),
                }
                taken += 1;
                next = match (taken < MAX_BATCH, closing.is_some()) {
                    (true, false) => rx.try_recv().ok(),
                    _ => None,
                };
            }
            self.write_pending();
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
            self.report_drops(false);
            if closing.is_some() {
                break;
            }
        }
        self.write_pending();
        self.report_drops(true);
        tracing::info!(seq = self.committed.next_seq, last_hash = %self.committed.prev_hash,
            "audit log closed");
        drop(self);
        if let Some(ack) = closing {
            let _ = ack.send(());
        }
    }

    /// Renders `record` onto the pending batch, rotating first when it would not fit.
    fn push(&mut self, record: &Record) {
        let score = self.risk.score(record);
        let mut line = render(record, score, &self.tentative);
        let used = self.size + self.pending.len() as u64;
        let max = self.settings.max_bytes;
        if max > 0 && used > 0 && used + line.len() as u64 + 1 > max {
            let failed = !self.write_pending();
            self.rotate();
            if failed {
                line = render(record, score, &self.tentative);
            }
        }
        self.tentative = Chain::after(&line, self.tentative.next_seq);
        self.pending.extend_from_slice(&line);
        self.pending.push(b'\n');
        self.pending_lines += 1;
    }

    /// Appends the pending batch; `false` when it was lost to an error.
    fn write_pending(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let bytes = self.pending.len() as u64;
        let result = self.append();
        self.pending.clear();
        match result {
            Ok(()) => {
                self.size += bytes;
                self.committed = self.tentative.clone();
                let counters = &self.counters;
                counters.written.fetch_add(lines, Ordering::Relaxed);
                let last = self.committed.next_seq.saturating_sub(1);
                counters.last_seq.store(last, Ordering::Relaxed);
                counters.failing.store(false, Ordering::Relaxed);
                if std::mem::take(&mut self.failing) {
                    tracing::warn!(path = %self.settings.path.display(), "audit log writable again");
                }
                true
            }
            Err(error) => {
                self.counters
                    .write_failures
                    .fetch_add(lines, Ordering::Relaxed);
                self.counters.failing.store(true, Ordering::Relaxed);
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(path = %self.settings.path.display(), %error,
                        "cannot write the audit log; events are lost until it is writable again \
                         (see tmuxgate_audit_write_failures_total)");
                }
                self.tentative = self.committed.clone();
                false
            }
        }
    }

    /// One `write` of the batch; on failure whatever part reached the file is cut off.
    fn append(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            let mut file = open_private_append(&self.settings.path).map_err(to_io)?;
            self.size = cut_partial_line(&mut file)?;
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::ErrorKind::NotFound.into());
        };
        let result = file.write_all(&self.pending);
        if result.is_err() && file.set_len(self.size).is_err() {
            self.file = None;
        }
        result
    }

    /// `FILE.(n-1)` → `FILE.n` down to `FILE` → `FILE.1`, dropping what falls past
    /// `AUDIT_KEEP`; then a fresh `FILE`. The chain continues into it.
    fn rotate(&mut self) {
        let path = self.settings.path.clone();
        self.file = None;
        let keep = self.settings.keep.max(1);
        let _ = std::fs::remove_file(rotated(&path, keep));
        for n in (1..keep).rev() {
            let _ = std::fs::rename(rotated(&path, n), rotated(&path, n + 1));
        }
        match std::fs::rename(&path, rotated(&path, 1)) {
            Ok(()) => {
                self.counters.rotations.fetch_add(1, Ordering::Relaxed);
                self.size = 0;
                self.rotation_failing = false;
            }
            Err(error) => {
                if !std::mem::replace(&mut self.rotation_failing, true) {
                    tracing::error!(path = %path.display(), %error,
                        "cannot rotate the audit log; it grows past AUDIT_MAX_BYTES until it can");
                }
            }
        }
    }

    /// Says how many events were dropped since the last report, at most every
    /// [`DROP_REPORT_INTERVAL`] (and at the end, whatever the interval).
    fn report_drops(&mut self, last: bool) {
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped == self.drops_reported {
            return;
        }
        let due = self
            .last_drop_report
            .is_none_or(|at| at.elapsed() >= DROP_REPORT_INTERVAL);
        if due || last {
            tracing::warn!(
                dropped = dropped - self.drops_reported,
                total = dropped,
                "audit events dropped: the queue was full (the log's disk is slow?)"
            );
            self.drops_reported = dropped;
            self.last_drop_report = Some(Instant::now());
        }
    }
}

/// Takes `FILE.lock` (0600) without waiting; [`OpenError::InUse`] when it is held.
fn lock_exclusively(path: &Path) -> Result<File, OpenError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| FileError::io(&lock_path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::InUse(path.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(FileError::io(&lock_path, e).into()),
    }
}

/// `FILE.n`.
pub(crate) fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn to_io(error: FileError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

/// Cuts a torn last line (a crash or a full disk mid-write) off `file`; returns the size
/// left, which ends with a newline or is 0.
fn cut_partial_line(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let keep = match tail(file, len)? {
        (start, bytes) if !bytes.ends_with(b"\n") && !bytes.is_empty() => {
            match bytes.iter().rposition(|b| *b == b'\n') {
                Some(at) => start + at as u64 + 1,
                None if start == 0 => 0,
                // A line longer than the window: not the gateway's; leave it to `verify`.
                None => return Ok(len),
            }
        }
        _ => return Ok(len),
    };
    tracing::warn!(cut = len - keep, "audit log ended in a torn line: cut off");
    file.set_len(keep)?;
    Ok(keep)
}

/// The last [`TAIL_BYTES`] of a file of `len` bytes, and where they start.
fn tail(file: &mut File, len: u64) -> std::io::Result<(u64, Vec<u8>)> {
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    Ok((start, bytes))
}

/// The last whole line of a file of `len` bytes, without its newline.
fn last_line(file: &mut File, len: u64) -> Option<Vec<u8>> {
    let (_, bytes) = tail(file, len).ok()?;
    let body = bytes.strip_suffix(b"\n")?;
    let from = body
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    Some(body[from..].to_vec())
}

/// The chain after `line`; a line without a `seq` (not the gateway's) restarts the
/// count at 0 after it, and `verify` will name it.
fn chain_after(line: &[u8], path: &Path) -> Chain {
    let seq = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("seq")?.as_u64());
    match seq {
        Some(seq) => Chain::after(line, seq),
        None => {
            tracing::warn!(path = %path.display(),
                "the audit log's last line is not an audit record; its chain is broken there");
            Chain {
                next_seq: 0,
                prev_hash: super::line::hash_hex(line),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::EventKind;

    /// A write error (here: a descriptor opened read-only, as a full disk would refuse the
    /// write) loses the batch, counts it, logs once and leaves the chain where it was; the
    /// next batch reopens the file and the log verifies.
    #[test]
    fn a_failed_write_is_counted_and_the_chain_survives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let settings = AuditSettings {
            path: path.clone(),
            max_bytes: 0,
            keep: 1,
        };
        let counters = Arc::new(AuditCounters::default());
        let mut writer = Writer::open(settings, counters.clone()).expect("open");
        let event = || Record::new(EventKind::AuthFailure, "192.0.2.1".parse().ok());
        writer.push(&event());
        assert!(writer.write_pending());
        writer.file = Some(File::open(&path).expect("read-only"));
        writer.push(&event());
        writer.push(&event());
        assert!(!writer.write_pending());
        assert_eq!(counters.write_failures.load(Ordering::Relaxed), 2);
        assert!(writer.failing);
        assert_eq!(writer.tentative, writer.committed);
        writer.file = None;
        writer.push(&event());
        assert!(writer.write_pending());
        assert!(!writer.failing);
        let verified = crate::audit::verify::verify_files(&[path]).expect("intact");
        assert_eq!((verified.lines, verified.last_seq), (2, Some(1)));
    }

    #[test]
    fn a_second_writer_on_the_same_file_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = AuditSettings {
            path: dir.path().join("audit.jsonl"),
            max_bytes: 0,
            keep: 1,
        };
        let counters = Arc::new(AuditCounters::default());
        let first = Writer::open(settings.clone(), counters.clone()).expect("open");
        let second = Writer::open(settings.clone(), counters.clone());
        assert!(matches!(second, Err(OpenError::InUse(_))));
        drop(first);
        assert!(Writer::open(settings, counters).is_ok());
    }
}
