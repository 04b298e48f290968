//! Fuzz target: arbitrary bytes as a JSON text frame; `tmuxgate_protocol::fuzz::request`
//! panics if a decoded request does not survive encoding, or an error message is long or
//! quotes `auth` data.
//! Run: `cargo +nightly fuzz run request -- -max_total_time=300` (see docs/reliability.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tmuxgate_protocol::fuzz::request(data));
