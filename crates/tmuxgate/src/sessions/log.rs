//! The pane output log: a bounded byte ring addressed by absolute offsets.
//!
//! The tmux reader appends each decoded `%output` once; every viewer reads from its own
//! offset, copying straight into its outgoing WebSocket frame, so a slow viewer never holds
//! anything back and nothing is queued per viewer. A viewer whose offset fell out of the ring
//! gets a snapshot instead. (DESIGN.md suggests refcounted chunks; since each viewer must copy
//! into its own frame anyway — the frame header carries its channel — a flat ring avoids an
//! allocation per `%output` and an O(chunks) seek. See docs/architecture.md.)

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};

/// Bytes offsets advance per millisecond of wall clock between log incarnations.
///
/// A new log starts at `unix_millis * OFFSET_BASE_BYTES_PER_MS`, so a client resuming with an
/// offset from an earlier incarnation of the same pane (before the gateway or hub restarted)
/// lands below the new log's start and gets a snapshot, never bytes it did not see. tmux 3.3a
/// emits at most ~1.7 MB/s per pane, below this 4 MB/s bound; the result stays under 2^53
/// (JavaScript's exact integers) until the year 2039.
pub const OFFSET_BASE_BYTES_PER_MS: u64 = 4096;

/// What a viewer at some offset can read.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes were copied; the viewer's offset is now `next`.
    Data {
        /// The offset after the copied bytes.
        next: u64,
    },
    /// Nothing new.
    UpToDate,
    /// The offset is no longer (or never was) in the ring: send a snapshot.
    Lost,
}

/// A bounded ring of output bytes with absolute offsets.
pub struct PaneLog {
    ring: Mutex<Ring>,
    /// Random: offsets of two logs (two gateways of a fleet following one pane) can overlap,
    /// their ids do not.
    id: u64,
}

struct Ring {
    /// The last `bytes.len()` bytes of output; the first is at offset `end - len`.
    bytes: VecDeque<u8>,
    end: u64,
    capacity_bytes: usize,
}

impl PaneLog {
    /// An empty log starting at `base`, holding at most `capacity_bytes`. Memory grows with
    /// the output actually written, so idle panes stay small.
    pub fn new(base: u64, capacity_bytes: usize) -> PaneLog {
        let ring = Ring {
            bytes: VecDeque::new(),
            end: base,
            capacity_bytes,
        };
        PaneLog {
            ring: Mutex::new(ring),
            id: rand::random(),
        }
    }

    /// The base offset for a log created now: `unix_ms × OFFSET_BASE_BYTES_PER_MS`, and
    /// always above every base handed out before in this process, so two logs never start
    /// at the same offset.
    pub fn next_base() -> u64 {
        static LAST: AtomicU64 = AtomicU64::new(0);
        let now = tmuxgate_protocol::now_millis().saturating_mul(OFFSET_BASE_BYTES_PER_MS);
        let previous = LAST.fetch_max(now, Ordering::AcqRel);
        if previous < now {
            return now;
        }
        LAST.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The log's id, as sent in `logId`.
    pub fn id(&self) -> String {
        format!("{:016x}", self.id)
    }

    /// Appends output; returns the new end offset.
    pub fn append(&self, data: &[u8]) -> u64 {
        let mut ring = self.lock();
        ring.end += data.len() as u64;
        // Only the last `capacity_bytes` of a large write can stay.
        let cap = ring.capacity_bytes;
        let kept = &data[data.len().saturating_sub(cap)..];
        let excess = (ring.bytes.len() + kept.len()).saturating_sub(cap);
        ring.bytes.drain(..excess);
        let needed = ring.bytes.len() + kept.len();
        if needed > ring.bytes.capacity() {
            // Doubling, but never past the ring's size: the ring turns through its whole
            // buffer, so a buffer larger than the ring would, as output goes on, become
            // resident to its end (up to twice `capacity_bytes`) for room no byte uses.
            let grown = needed.max(ring.bytes.capacity() * 2).min(cap);
            let additional = grown - ring.bytes.len();
            ring.bytes.reserve_exact(additional);
        }
        ring.bytes.extend(kept);
        ring.end
    }

    /// The offset one past the last byte written.
    pub fn end(&self) -> u64 {
        self.lock().end
    }

    /// The oldest offset still held.
    pub fn start(&self) -> u64 {
        self.lock().start()
    }

    /// Copies up to `max_bytes` starting at `from` into `out`.
    pub fn read(&self, from: u64, max_bytes: usize, out: &mut BytesMut) -> Read {
        self.read_with(from, max_bytes, |_| out)
    }

    /// Like [`PaneLog::read`], under one lock, but the output buffer is made only when there
    /// is something to copy: `make(n)` returns the buffer for `n` bytes (a frame with its
    /// header already written, say). Idle wakeups cost no allocation.
    pub fn read_with<'b>(
        &self,
        from: u64,
        max_bytes: usize,
        make: impl FnOnce(usize) -> &'b mut BytesMut,
    ) -> Read {
        let ring = self.lock();
        if from < ring.start() || from > ring.end {
            return Read::Lost;
        }
        if from == ring.end {
            return Read::UpToDate;
        }
        let skip = (from - ring.start()) as usize;
        let take = (ring.bytes.len() - skip).min(max_bytes);
        let out = make(take);
        let (front, back) = ring.bytes.as_slices();
        let mut range = skip..skip + take;
        if range.start < front.len() {
            let end = range.end.min(front.len());
            out.put_slice(&front[range.start..end]);
            range.start = end;
        }
        if range.start < range.end {
            out.put_slice(&back[range.start - front.len()..range.end - front.len()]);
        }
        Read::Data {
            next: from + take as u64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Every mutation leaves the ring consistent before it can panic, so a poisoned lock
        // is still usable.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ring {
    fn start(&self) -> u64 {
        self.end - self.bytes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_all(log: &PaneLog, mut from: u64, max: usize) -> (Vec<u8>, Read) {
        let mut out = BytesMut::new();
        loop {
            match log.read(from, max, &mut out) {
                Read::Data { next } => from = next,
                other => return (out.to_vec(), other),
            }
        }
    }

    #[test]
    fn bases_are_distinct_and_increasing() {
        let (a, b) = (PaneLog::next_base(), PaneLog::next_base());
        assert!(b > a);
        assert!(a >= (tmuxgate_protocol::now_millis() - 1000) * OFFSET_BASE_BYTES_PER_MS);
    }

    #[test]
    fn the_buffer_never_grows_past_the_ring() {
        let cap = 100_000;
        let log = PaneLog::new(0, cap);
        // Writes of odd sizes make the amortized growth overshoot without the bound.
        for n in 0..5_000usize {
            log.append(&vec![b'x'; 1 + n % 97]);
            let ring = log.lock();
            assert!(
                ring.bytes.capacity() <= cap,
                "capacity {}",
                ring.bytes.capacity()
            );
        }
        let ring = log.lock();
        assert_eq!((ring.bytes.len(), ring.bytes.capacity()), (cap, cap));
    }

    #[test]
    fn reads_across_chunks_and_reports_loss() {
        let log = PaneLog::new(100, 8);
        log.append(b"hello ");
        log.append(b"world");
        assert_eq!(log.end(), 111);
        assert_eq!(log.start(), 103);
        assert_eq!(read_all(&log, 100, 3).1, Read::Lost);
        assert_eq!(read_all(&log, 107, 3), (b"orld".to_vec(), Read::UpToDate));
        log.append(&[b'x'; 20]);
        assert_eq!((log.start(), log.end()), (123, 131));
        assert_eq!(log.read(112, 3, &mut BytesMut::new()), Read::Lost);
    }

    proptest! {
        #[test]
        fn any_offset_in_the_ring_reads_the_same_bytes(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..30),
            capacity in 1usize..200,
            frame in 1usize..64,
            pick in any::<proptest::sample::Index>(),
        ) {
            let log = PaneLog::new(1000, capacity);
            let mut all = Vec::new();
            for c in &chunks {
                log.append(c);
                all.extend_from_slice(c);
            }
            let start = log.start();
            prop_assert!(log.end() - start <= capacity as u64);
            let span = (log.end() - start) as usize;
            let from = start + pick.index(span + 1) as u64;
            let (got, last) = read_all(&log, from, frame);
            prop_assert_eq!(last, Read::UpToDate);
            prop_assert_eq!(&got[..], &all[(from - 1000) as usize..]);
        }
    }
}
