//! Fuzz target: arbitrary bytes as a tmux server's control-mode output, read in pieces;
//! `tmux_control::fuzz::control_stream` panics if framing depends on the read size, memory
//! grows past the limit, or the parser breaks an invariant.
//! Run: `cargo +nightly fuzz run control -- -max_total_time=300` (see docs/reliability.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tmux_control::fuzz::control_stream(data));
