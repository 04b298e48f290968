//! Invariants of the control-mode parser, for the fuzz target (`fuzz/`) and the test that
//! replays its corpus: arbitrary bytes as a tmux server's output. Not part of the stable
//! API.

use crate::client::demux::{Demux, Event};
use crate::parse::{LineFramer, Notification, decode_octal};

/// The framer's limit in the fuzz target: small, so that long lines are exercised.
const LINE_LIMIT: usize = 4096;

/// `data`'s first byte sets the read size (1 to 64 bytes); the rest is what a tmux server
/// printed. Fed as the client reads it, panics if:
/// - the framer buffers more than its limit and one read, or a line holds `\n`;
/// - the lines are not exactly the stream's `\n`-separated lines, whatever the read size;
/// - `%output` unescaping makes data longer than it was;
/// - a reply block holds more lines than were read.
///
/// A line over the limit and a protocol violation end the stream, as they end a client.
#[doc(hidden)]
pub fn control_stream(data: &[u8]) {
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let read = usize::from(size % 64) + 1;
    let mut framer = LineFramer::with_limit(LINE_LIMIT);
    let mut demux = Demux::default();
    let mut lines = Vec::new();
    let mut stopped = false;
    'reads: for piece in stream.chunks(read) {
        if framer.push(piece).is_err() {
            stopped = true;
            break;
        }
        assert!(
            framer.buffered() <= LINE_LIMIT + read,
            "the framer holds too much"
        );
        while let Some(line) = framer.next_line() {
            assert!(!line.contains(&b'\n'), "a line holds a newline");
            lines.push(line.clone());
            if let Some(Notification::Output { data, .. }) = Notification::parse(&line) {
                assert!(data.len() <= line.len(), "unescaping made data longer");
            }
            assert!(decode_octal(&line).len() <= line.len());
            match demux.feed(line) {
                Ok(Event::Closed { block, .. }) => {
                    assert!(
                        block.lines.len() <= lines.len(),
                        "a block of lines never read"
                    );
                }
                Ok(_) => {}
                Err(_) => {
                    stopped = true;
                    break 'reads;
                }
            }
        }
    }
    if !stopped {
        // Every complete line, in order, whatever the read size.
        let complete = match stream.iter().rposition(|&b| b == b'\n') {
            Some(last) => &stream[..last],
            None => &[][..],
        };
        let expected: Vec<&[u8]> = match stream.contains(&b'\n') {
            true => complete.split(|&b| b == b'\n').collect(),
            false => Vec::new(),
        };
        let got: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
        assert_eq!(got, expected, "framing depends on the read size");
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_control_corpus_keeps_its_invariants() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/control");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            let run = std::panic::catch_unwind(|| super::control_stream(&data));
            assert!(run.is_ok(), "{}", path.display());
            count += 1;
        }
        assert!(count >= 10, "{} holds {count} inputs", dir.display());
    }
}
