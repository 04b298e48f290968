//! Fuzz target: arbitrary bytes as a binary WebSocket frame, from either side;
//! `tmuxgate_protocol::fuzz::frames` panics if decoding and encoding disagree.
//! Run: `cargo +nightly fuzz run frames -- -max_total_time=300` (see docs/reliability.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tmuxgate_protocol::fuzz::frames(data));
