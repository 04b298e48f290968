//! Fuzz target: arbitrary bytes as a command, through the test policy and the built-in
//! one; `tmuxgate::policy::fuzz_invariants` panics if a verdict breaks an invariant.
//! Run: `cargo +nightly fuzz run policy_check -- -max_total_time=120` (see docs/policy.md).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tmuxgate::policy::{Policy, fuzz_invariants};

static TEST_POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let text = include_str!("../../crates/tmuxgate/tests/data/test-policy.toml");
    Policy::from_toml(text).expect("the test policy compiles")
});

static BUILTIN: LazyLock<Policy> = LazyLock::new(Policy::builtin);

fuzz_target!(|data: &[u8]| {
    fuzz_invariants(&TEST_POLICY, data);
    fuzz_invariants(&BUILTIN, data);
});
