//! Invariants every verdict must satisfy, for the fuzz target (`fuzz/`) and the test that
//! replays its corpus. Not part of the stable API.

use std::path::Path;

use super::{Approved, Context, Policy, Refusal, Verdict, chars};

/// Roles tried for each input: built-in, custom and unknown ones.
const ROLES: [&str; 5] = ["admin", "operator", "viewer", "tester", "nobody"];

/// Checks `data` (as UTF-8 when it is, and lossily decoded) for several roles and
/// working directories; panics if a verdict breaks an invariant:
/// an allowed command's line is printable, `shell_words` splits it into exactly the
/// assignments, program path, arguments and redirections approved, and checking the
/// line again allows the same command with the same line; a refusal has a known-shape
/// code and a message.
#[doc(hidden)]
pub fn fuzz_invariants(policy: &Policy, data: &[u8]) {
    let lossy = String::from_utf8_lossy(data);
    let mut inputs = vec![lossy.as_ref()];
    if let Ok(text) = std::str::from_utf8(data) {
        inputs[0] = text;
    }
    let cwd = std::env::temp_dir();
    for input in inputs {
        for role in ROLES {
            for cwd in [None, Some(cwd.as_path()), Some(Path::new("/"))] {
                let ctx = Context { role, cwd };
                check_one(policy, &ctx, input);
            }
        }
    }
}

fn check_one(policy: &Policy, ctx: &Context<'_>, input: &str) {
    match policy.check(ctx, input) {
        Verdict::Refused(refusal) => check_refusal(&refusal, input),
        Verdict::Allowed(approved) => check_allowed(policy, ctx, &approved, input),
    }
}

fn check_refusal(refusal: &Refusal, input: &str) {
    assert!(!refusal.message.is_empty(), "empty message for {input:?}");
    let code_ok = refusal
        .code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'-');
    assert!(code_ok, "bad code {:?}", refusal.code);
    if let Some(at) = refusal.position {
        assert!(input.is_char_boundary(at), "position {at} in {input:?}");
    }
}

fn check_allowed(policy: &Policy, ctx: &Context<'_>, approved: &Approved, input: &str) {
    let line = &approved.line;
    assert!(chars::all_printable(line), "unprintable line {line:?}");
    assert!(
        chars::unquoted_is_inert(line),
        "active text outside quotes in {line:?}"
    );
    let mut expected: Vec<String> = approved
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    expected.push(approved.program.to_string_lossy().into_owned());
    expected.extend(approved.argv[1..].iter().cloned());
    for redirect in &approved.redirects {
        expected.push(redirect.op.as_str().to_owned());
        expected.push(redirect.path.to_string_lossy().into_owned());
    }
    let split = shell_words::split(line).expect("canonical line splits");
    assert_eq!(split, expected, "input {input:?} line {line:?}");
    let again = policy.check(ctx, line);
    let again = again
        .allowed()
        .unwrap_or_else(|| panic!("line {line:?} refused: {again:?}"));
    assert_eq!(&again.line, line, "canonical line is not a fixed point");
    assert_eq!(again.argv[1..], approved.argv[1..]);
}
