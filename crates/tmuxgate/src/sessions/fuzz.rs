//! Invariants of what the gateway reads in a pane's output and builds for viewers, for the
//! fuzz target (`fuzz/`) and the test that replays its corpus. Not part of the stable API.

use super::marks::{Marks, Scanner};
use super::snapshot::{PaneState, compose};

/// The nonce the fuzz target's shell would have.
const NONCE: &str = "0123456789abcdef0123456789abcdef";

/// `data`'s first byte sets a read size (1 to 64 bytes); the rest is a pane's output (and,
/// split at 0xff bytes, a state line and captures). Panics if:
/// - the marks found depend on how the output was cut into reads;
/// - output that does not carry the nonce moves the shell's state (a fake mark);
/// - a snapshot composed from a state line and captures is longer than twice its parts
///   (CR before each LF) plus its few escape sequences.
#[doc(hidden)]
pub fn terminal_output(data: &[u8]) {
    let Some((&size, output)) = data.split_first() else {
        return;
    };
    let read = usize::from(size % 64) + 1;
    let at = 1_000_000;
    let mut whole = Scanner::default();
    whole.scan(NONCE, output, at);
    let mut cut = Scanner::default();
    let mut offset = at;
    for piece in output.chunks(read) {
        cut.scan(NONCE, piece, offset);
        offset += piece.len() as u64;
    }
    assert_eq!(whole.marks(), cut.marks(), "marks depend on the read size");
    let forged = output.windows(NONCE.len()).all(|w| w != NONCE.as_bytes());
    if forged {
        assert_eq!(
            whole.marks(),
            Marks::default(),
            "a mark without the nonce counted"
        );
    }

    let mut parts = output.split(|&b| b == 0xff);
    let state = parts.next().and_then(PaneState::parse);
    let (history, normal, visible) = (parts.next(), parts.next(), parts.next().unwrap_or(b""));
    if let Some(state) = state {
        let composed = compose(&state, history, normal, visible);
        let input = history.map_or(0, <[u8]>::len) + normal.map_or(0, <[u8]>::len) + visible.len();
        assert!(
            composed.len() <= 2 * input + 256,
            "a {}-byte snapshot from {input} bytes",
            composed.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_terminal_corpus_keeps_its_invariants() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/terminal");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            let run = std::panic::catch_unwind(|| super::terminal_output(&data));
            assert!(run.is_ok(), "{}", path.display());
            count += 1;
        }
        assert!(count >= 10, "{} holds {count} inputs", dir.display());
    }
}
