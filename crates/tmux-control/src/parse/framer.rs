//! Byte-level framing of the control client's stdout into lines.

use bytes::{Buf, BytesMut};

/// Default longest line accepted, in bytes (tmux lines are normally short;
/// a `%output` line is bounded by tmux's read size times four).
pub const LINE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A line grew beyond the framer's limit without a newline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("control-mode line longer than {limit} bytes")]
pub struct LineTooLong {
    /// The limit that was exceeded, in bytes.
    pub limit: usize,
}

/// Splits a byte stream on `\n` (nothing else: tmux never emits CR as a line
/// terminator, and a CR in data is kept). Memory is bounded by the limit.
#[derive(Debug)]
pub struct LineFramer {
    buf: BytesMut,
    /// Bytes at the start of `buf` already searched for `\n` without success.
    scanned: usize,
    /// Length of the trailing line not yet terminated by `\n`.
    partial: usize,
    limit: usize,
}

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new()
    }
}

impl LineFramer {
    /// A framer with the default limit ([`LINE_MAX_BYTES`]).
    pub fn new() -> LineFramer {
        LineFramer::with_limit(LINE_MAX_BYTES)
    }

    /// A framer rejecting lines longer than `limit` bytes.
    pub fn with_limit(limit: usize) -> LineFramer {
        LineFramer {
            buf: BytesMut::new(),
            scanned: 0,
            partial: 0,
            limit,
        }
    }

    /// Appends bytes read from the stream. Fails (and discards everything
    /// buffered) once an unterminated line exceeds the limit.
    pub fn push(&mut self, data: &[u8]) -> Result<(), LineTooLong> {
        self.partial = match data.iter().rposition(|&b| b == b'\n') {
            Some(last) => data.len() - last - 1,
            None => self.partial + data.len(),
        };
        if self.partial > self.limit {
            self.buf.clear();
            self.scanned = 0;
            self.partial = 0;
            return Err(LineTooLong { limit: self.limit });
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete line, without its `\n`.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                let line = self.buf[..end].to_vec();
                self.buf.advance(end + 1);
                self.scanned = 0;
                Some(line)
            }
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Bytes buffered but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(f: &mut LineFramer) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| f.next_line()).collect()
    }

    #[test]
    fn splits_on_lf_only() {
        let mut f = LineFramer::new();
        f.push(b"a\r\n\nb").unwrap();
        assert_eq!(drain(&mut f), [b"a\r".to_vec(), vec![]]);
        f.push(b"c\n").unwrap();
        assert_eq!(drain(&mut f), [b"bc".to_vec()]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn long_lines_are_an_error() {
        let mut f = LineFramer::with_limit(4);
        f.push(b"0123\n0123").unwrap();
        assert_eq!(f.push(b"4"), Err(LineTooLong { limit: 4 }));
        assert_eq!(f.buffered(), 0);
        f.push(b"ok\n").unwrap();
        assert_eq!(drain(&mut f), [b"ok".to_vec()]);
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_lines(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..20),
        ) {
            let mut whole = LineFramer::new();
            whole.push(&data).unwrap();
            let expected = drain(&mut whole);

            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.extend([0, data.len()]);
            cuts.sort_unstable();
            let mut chunked = LineFramer::new();
            let mut got = Vec::new();
            for w in cuts.windows(2) {
                chunked.push(&data[w[0]..w[1]]).unwrap();
                got.extend(drain(&mut chunked));
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(chunked.buffered(), whole.buffered());
        }
    }
}
