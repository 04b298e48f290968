//! Fuzz target: arbitrary bytes as a pane's output (shell-integration marks, escape
//! sequences) and as the state and captures a snapshot is composed from;
//! `tmuxgate::sessions::fuzz::terminal_output` panics if marks depend on how output was cut
//! into reads, a mark without the nonce counts, or a snapshot grows out of bounds.
//! Run: `cargo +nightly fuzz run terminal -- -max_total_time=300` (see docs/reliability.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tmuxgate::sessions::fuzz::terminal_output(data));
