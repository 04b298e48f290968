//! [`Terminal`]: accumulates one channel's stream and proves it has no gap and no duplicate.
//!
//! Every OUTPUT frame must start exactly where the previous one ended; a SNAPSHOT resets the
//! terminal and the stream continues at its offset. Tests assert on the accumulated bytes,
//! on the absolute end offset (to resume later), and on the rendered screen (via `vt100`).

use tmuxgate_protocol::frame::{FrameKind, ServerFrame};

use crate::ClientError;

/// The bytes of one channel since its last SNAPSHOT (or since the attach offset on an exact
/// resume), with the absolute offsets that prove they are contiguous.
#[derive(Clone, Debug)]
pub struct Terminal {
    channel: u32,
    bytes: Vec<u8>,
    snapshot_len: usize,
    base: u64,
    end: u64,
    awaiting_snapshot: bool,
    snapshots: u32,
    search_from: usize,
    keep_bytes: bool,
}

impl Terminal {
    /// A terminal for `channel` whose stream starts at `offset`; `expect_snapshot` says the
    /// first frame must be a SNAPSHOT at that offset (a fresh attach), else OUTPUT frames
    /// continue from it (an exact resume).
    pub fn new(channel: u32, offset: u64, expect_snapshot: bool) -> Terminal {
        Terminal {
            channel,
            bytes: Vec::new(),
            snapshot_len: 0,
            base: offset,
            end: offset,
            awaiting_snapshot: expect_snapshot,
            snapshots: 0,
            search_from: 0,
            keep_bytes: true,
        }
    }

    /// Like [`new`](Self::new), but the terminal keeps no bytes: it checks contiguity and
    /// tracks offsets and snapshots in constant memory. [`bytes_since_start`](Self::bytes_since_start)
    /// stays empty, so searches never match and the screen stays blank.
    pub fn offsets_only(channel: u32, offset: u64, expect_snapshot: bool) -> Terminal {
        Terminal {
            keep_bytes: false,
            ..Terminal::new(channel, offset, expect_snapshot)
        }
    }

    /// Applies one server frame, or explains why it breaks the stream.
    pub fn apply(&mut self, frame: &ServerFrame) -> Result<(), ClientError> {
        if frame.channel != self.channel {
            return Err(ClientError::Protocol(format!(
                "frame for channel {} applied to channel {}",
                frame.channel, self.channel
            )));
        }
        match frame.kind {
            FrameKind::Snapshot => self.apply_snapshot(frame),
            FrameKind::Output => self.apply_output(frame),
            FrameKind::Input => Err(ClientError::Protocol("server sent an INPUT frame".into())),
        }
    }

    fn apply_snapshot(&mut self, frame: &ServerFrame) -> Result<(), ClientError> {
        // The first snapshot must sit exactly at the attach offset; a later one (the viewer
        // fell behind the ring) may only move forward.
        let misplaced = if self.awaiting_snapshot {
            frame.offset != self.end
        } else {
            frame.offset < self.end
        };
        if misplaced {
            return Err(self.gap(frame.offset));
        }
        self.bytes.clear();
        if self.keep_bytes {
            self.bytes.extend_from_slice(&frame.data);
            self.snapshot_len = frame.data.len();
        }
        self.base = frame.offset;
        self.end = frame.offset;
        self.awaiting_snapshot = false;
        self.snapshots += 1;
        self.search_from = 0;
        Ok(())
    }

    fn apply_output(&mut self, frame: &ServerFrame) -> Result<(), ClientError> {
        if self.awaiting_snapshot {
            return Err(ClientError::Protocol(format!(
                "channel {}: OUTPUT at {} before the initial SNAPSHOT",
                self.channel, frame.offset
            )));
        }
        if frame.offset != self.end {
            return Err(self.gap(frame.offset));
        }
        if self.keep_bytes {
            self.bytes.extend_from_slice(&frame.data);
        }
        self.end += frame.data.len() as u64;
        Ok(())
    }

    fn gap(&self, got: u64) -> ClientError {
        ClientError::Gap {
            channel: self.channel,
            expected: self.end,
            got,
        }
    }

    /// The channel this terminal follows.
    pub fn channel(&self) -> u32 {
        self.channel
    }

    /// Everything received since the last SNAPSHOT (its bytes first) or since the resume offset.
    pub fn bytes_since_start(&self) -> &[u8] {
        &self.bytes
    }

    /// The pane-log bytes from [`base_offset`](Self::base_offset) to [`end_offset`](Self::end_offset)
    /// (the stream without the snapshot's own bytes).
    pub fn log_bytes(&self) -> &[u8] {
        &self.bytes[self.snapshot_len..]
    }

    /// Absolute offset where the current stream started (last SNAPSHOT or resume point).
    pub fn base_offset(&self) -> u64 {
        self.base
    }

    /// Absolute offset just past the last byte received: what `resumeFrom` should carry.
    pub fn end_offset(&self) -> u64 {
        self.end
    }

    /// SNAPSHOT frames received so far.
    pub fn snapshots(&self) -> u32 {
        self.snapshots
    }

    /// Whether the first frame is still expected to be a SNAPSHOT.
    pub fn awaiting_snapshot(&self) -> bool {
        self.awaiting_snapshot
    }

    /// Whether `needle` occurs anywhere in [`bytes_since_start`](Self::bytes_since_start).
    pub fn contains(&self, needle: &[u8]) -> bool {
        find(&self.bytes, needle, 0).is_some()
    }

    /// Like `expect`: looks for `needle` after the previous match (or the last SNAPSHOT) and,
    /// when found, moves the search position past it.
    pub fn find_next(&mut self, needle: &[u8]) -> bool {
        match find(&self.bytes, needle, self.search_from) {
            Some(at) => {
                self.search_from = at + needle.len();
                true
            }
            None => false,
        }
    }

    /// The terminal emulated at `cols`×`rows`, fed with every byte since the last SNAPSHOT.
    pub fn parser(&self, cols: u16, rows: u16) -> vt100::Parser {
        let mut parser = vt100::Parser::new(rows, cols, 0);
        parser.process(&self.bytes);
        parser
    }

    /// The visible screen text at `cols`×`rows` (rows joined by `\n`, trailing blanks trimmed).
    pub fn screen(&self, cols: u16, rows: u16) -> String {
        self.parser(cols, rows).screen().contents()
    }

    /// Replaces the channel number (a resumed stream arrives on a new channel).
    pub(crate) fn set_channel(&mut self, channel: u32) {
        self.channel = channel;
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let rest = haystack.get(from..)?;
    if needle.is_empty() {
        return Some(from);
    }
    rest.windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(kind: FrameKind, offset: u64, data: &'static [u8]) -> ServerFrame {
        ServerFrame {
            kind,
            channel: 1,
            offset,
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn snapshot_then_contiguous_output() {
        let mut t = Terminal::new(1, 100, true);
        t.apply(&frame(FrameKind::Snapshot, 100, b"$ ")).unwrap();
        t.apply(&frame(FrameKind::Output, 100, b"ls\r\n")).unwrap();
        t.apply(&frame(FrameKind::Output, 104, b"")).unwrap();
        t.apply(&frame(FrameKind::Output, 104, b"a b")).unwrap();
        assert_eq!(t.bytes_since_start(), b"$ ls\r\na b");
        assert_eq!(t.log_bytes(), b"ls\r\na b");
        assert_eq!(
            (t.base_offset(), t.end_offset(), t.snapshots()),
            (100, 107, 1)
        );
        assert_eq!(t.screen(10, 3), "$ ls\na b");
    }

    #[test]
    fn gaps_duplicates_and_early_output_are_errors() {
        let mut t = Terminal::new(1, 0, true);
        assert!(matches!(
            t.apply(&frame(FrameKind::Output, 0, b"x")),
            Err(ClientError::Protocol(_))
        ));
        assert!(matches!(
            t.apply(&frame(FrameKind::Snapshot, 5, b"")),
            Err(ClientError::Gap { .. })
        ));
        t.apply(&frame(FrameKind::Snapshot, 0, b"")).unwrap();
        t.apply(&frame(FrameKind::Output, 0, b"abc")).unwrap();
        let gap = t.apply(&frame(FrameKind::Output, 4, b"e"));
        assert!(matches!(
            gap,
            Err(ClientError::Gap {
                channel: 1,
                expected: 3,
                got: 4
            })
        ));
        let dup = t.apply(&frame(FrameKind::Output, 2, b"c"));
        assert!(matches!(
            dup,
            Err(ClientError::Gap {
                expected: 3,
                got: 2,
                ..
            })
        ));
        let back = t.apply(&frame(FrameKind::Snapshot, 1, b""));
        assert!(matches!(back, Err(ClientError::Gap { .. })));
    }

    #[test]
    fn later_snapshot_resets() {
        let mut t = Terminal::new(1, 7, false);
        t.apply(&frame(FrameKind::Output, 7, b"old")).unwrap();
        t.apply(&frame(FrameKind::Snapshot, 5000, b"new")).unwrap();
        assert_eq!(t.bytes_since_start(), b"new");
        assert_eq!(
            (t.base_offset(), t.end_offset(), t.log_bytes().len()),
            (5000, 5000, 0)
        );
    }

    #[test]
    fn offsets_only_checks_contiguity_without_keeping_bytes() {
        let mut t = Terminal::offsets_only(1, 10, true);
        t.apply(&frame(FrameKind::Snapshot, 10, b"screen")).unwrap();
        t.apply(&frame(FrameKind::Output, 10, b"abc")).unwrap();
        assert!(t.bytes_since_start().is_empty() && t.log_bytes().is_empty());
        assert_eq!((t.end_offset(), t.snapshots()), (13, 1));
        let gap = t.apply(&frame(FrameKind::Output, 14, b"x"));
        assert!(matches!(gap, Err(ClientError::Gap { expected: 13, .. })));
    }

    #[test]
    fn find_next_moves_past_each_match() {
        let mut t = Terminal::new(1, 0, false);
        t.apply(&frame(FrameKind::Output, 0, b"$ echo hi\r\nhi\r\n$ "))
            .unwrap();
        assert!(t.find_next(b"hi"));
        assert!(t.find_next(b"hi"));
        assert!(!t.find_next(b"hi"));
        assert!(t.find_next(b"$ "));
        assert!(t.contains(b"echo"));
    }
}
