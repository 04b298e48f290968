//! Turning arbitrary input bytes into `send-keys` commands that make exactly
//! those bytes arrive in a pane.
//!
//! Measured on tmux 3.3a (pane running `cat` on a raw tty, server started
//! under both `C.UTF-8` and `C` locales, with and without `extended-keys
//! always`): `send-keys -l -- '<single-quoted>'` delivered every Unicode
//! scalar value U+0001..U+10FFFF except LF byte-exactly, including CR, TAB,
//! ESC, the other C0 controls, DEL and C1 controls. LF and NUL cannot be
//! written inside a command line at all, and `-l` drops some invalid UTF-8
//! (a lone 0xff vanished), so those go through `send-keys -H`, which carries
//! all 256 byte values. The integration test `input_fidelity` re-proves this.

use crate::{Command, PaneId};

/// Largest quoted payload of one `send-keys -l` command, in bytes.
pub const LITERAL_CHUNK_MAX_BYTES: usize = 4096;

/// Most bytes sent by one `send-keys -H` command (cost grows faster than
/// linearly with the number of tokens).
pub const HEX_CHUNK_MAX_BYTES: usize = 256;

/// Literal runs shorter than this that touch a hex run are sent as hex too,
/// so `ls\n` is one command rather than two.
const LITERAL_MIN_RUN_BYTES: usize = 16;

/// A contiguous piece of the input and how it is sent.
#[derive(Debug, Clone, Copy)]
enum Run<'a> {
    Literal(&'a str),
    Hex(&'a [u8]),
}

/// Appends to `out` the `send-keys` commands that deliver `bytes` to `pane`
/// unchanged, in order. Typing produces one command per keystroke chunk; a
/// paste produces one command per 4 KiB of text (or 256 bytes of binary).
pub fn encode_input(pane: PaneId, bytes: &[u8], out: &mut Vec<Command>) {
    let mut runs = split_runs(bytes);
    absorb_short_literals(&mut runs);
    emit(pane, &runs, out);
}

/// Splits the input into valid UTF-8 without LF/NUL (literal) and the rest.
fn split_runs(bytes: &[u8]) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut start = 0;
        for (i, b) in valid.bytes().enumerate() {
            if b == b'\n' || b == 0 {
                if start < i {
                    runs.push(Run::Literal(&valid[start..i]));
                }
                runs.push(Run::Hex(&valid.as_bytes()[i..=i]));
                start = i + 1;
            }
        }
        if start < valid.len() {
            runs.push(Run::Literal(&valid[start..]));
        }
        if !chunk.invalid().is_empty() {
            runs.push(Run::Hex(chunk.invalid()));
        }
    }
    runs
}

fn absorb_short_literals(runs: &mut [Run<'_>]) {
    let is_hex = |r: Option<&Run<'_>>| matches!(r, Some(Run::Hex(_)));
    for i in 0..runs.len() {
        if let Run::Literal(s) = runs[i] {
            let touches_hex =
                is_hex(i.checked_sub(1).and_then(|p| runs.get(p))) || is_hex(runs.get(i + 1));
            if s.len() < LITERAL_MIN_RUN_BYTES && touches_hex {
                runs[i] = Run::Hex(s.as_bytes());
            }
        }
    }
}

fn emit(pane: PaneId, runs: &[Run<'_>], out: &mut Vec<Command>) {
    let mut hex = Vec::new();
    for run in runs {
        match run {
            Run::Hex(bytes) => hex.extend_from_slice(bytes),
            Run::Literal(s) => {
                flush_hex(pane, &mut hex, out);
                emit_literal(pane, s, out);
            }
        }
    }
    flush_hex(pane, &mut hex, out);
}

fn flush_hex(pane: PaneId, hex: &mut Vec<u8>, out: &mut Vec<Command>) {
    for piece in hex.chunks(HEX_CHUNK_MAX_BYTES) {
        out.push(send_keys(pane).flag("-H").args_hex(piece));
    }
    hex.clear();
}

fn emit_literal(pane: PaneId, s: &str, out: &mut Vec<Command>) {
    let mut start = 0;
    let mut quoted_len = 0;
    for (i, c) in s.char_indices() {
        let len = if c == '\'' { 4 } else { c.len_utf8() };
        if quoted_len + len > LITERAL_CHUNK_MAX_BYTES {
            out.push(send_literal(pane, &s[start..i]));
            start = i;
            quoted_len = 0;
        }
        quoted_len += len;
    }
    out.push(send_literal(pane, &s[start..]));
}

fn send_keys(pane: PaneId) -> Command {
    Command::new("send-keys").flag_value("-t", pane)
}

fn send_literal(pane: PaneId, s: &str) -> Command {
    send_keys(pane).flag("-l").end_of_flags().arg_keys(s)
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
