//! The command policy against the injection corpus and the fuzz seed corpus (no tmux).
//!
//! `tests/data/injection.jsonl`: one JSON object per line, `{"payload": "...", "why":
//! "..."}`; JSON so that line breaks, NUL and escape sequences can be written. Every
//! payload tries to create `/tmp/tg-canary` (or read something it must not).
//! `tests/data/test-policy.toml` is the permissive policy it runs against: role `tester`,
//! path roots `{cwd}`, so use a fresh temporary directory as the pane's cwd (this test
//! adds a symlink `escape -> /` there, which payloads try to walk through).
//!
//! Each payload must be refused, or, if allowed, its canonical line must be printable,
//! keep everything but separators, `NAME=`, the `'\''` idiom and redirection operators
//! inside single quotes, and real bash must read it as exactly the approved words.
//! `tests/exec_injection.rs` runs the allowed lines in tmux and checks no canary appears.
//! (A unit test, not an integration test, so that it shares the bash runner of
//! `prop_tests.rs` and the library's own quoting and inertness check.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::chars::unquoted_is_inert;
use super::prop_tests::bash_words;
use super::quote::single_quote;
use super::{Approved, Context, Policy, Verdict, fuzz_invariants};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    payload: String,
    why: String,
}

fn corpus() -> Vec<Payload> {
    let text = std::fs::read_to_string(data("injection.jsonl")).expect("corpus readable");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("line {}: {err}", i + 1))
        })
        .collect()
}

/// The line without its redirections, checked to end in exactly them.
fn without_redirects(approved: &Approved) -> &str {
    let suffix: String = approved
        .redirects
        .iter()
        .map(|r| format!(" {} {}", r.op, single_quote(&r.path.to_string_lossy())))
        .collect();
    approved
        .line
        .strip_suffix(&suffix)
        .expect("redirections at the end of the line")
}

#[test]
fn every_injection_payload_is_refused_or_harmless() {
    let payloads = corpus();
    assert!(payloads.len() >= 150, "only {} payloads", payloads.len());
    let policy = Policy::load(&data("test-policy.toml")).expect("test policy loads");
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = std::fs::canonicalize(dir.path()).expect("canonical cwd");
    std::os::unix::fs::symlink("/", cwd.join("escape")).expect("symlink");
    std::fs::write(cwd.join("file"), "x").expect("write");
    let ctx = Context {
        role: "tester",
        cwd: Some(&cwd),
    };
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut allowed = Vec::new();
    for payload in &payloads {
        assert!(!payload.why.is_empty());
        match policy.check(&ctx, &payload.payload) {
            Verdict::Refused(refusal) => *codes.entry(refusal.code).or_default() += 1,
            Verdict::Allowed(approved) => allowed.push((payload, approved)),
        }
    }
    for (payload, approved) in &allowed {
        let line = &approved.line;
        assert!(
            !line.chars().any(char::is_control),
            "{:?}: control in {line:?}",
            payload.why
        );
        assert!(
            unquoted_is_inert(line),
            "{:?}: active text in {line:?}",
            payload.why
        );
    }
    let lines: Vec<&str> = allowed
        .iter()
        .map(|(_, approved)| without_redirects(approved))
        .collect();
    let parsed = bash_words(&lines, Some(&cwd));
    assert_eq!(parsed.len(), allowed.len());
    for ((payload, approved), words) in allowed.iter().zip(&parsed) {
        let mut expected: Vec<String> = approved
            .env
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        expected.push(approved.program.to_string_lossy().into_owned());
        expected.extend(approved.argv[1..].iter().cloned());
        assert_eq!(words, &expected, "{:?} ({})", payload.payload, payload.why);
    }
    eprintln!(
        "{} refused by code: {codes:?}; {} allowed as literal words",
        payloads.len() - allowed.len(),
        allowed.len()
    );
    assert!(
        codes.len() >= 25,
        "the corpus should exercise most refusal codes: {codes:?}"
    );
}

#[test]
fn fuzz_seed_corpus_keeps_the_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_check");
    let test_policy = Policy::load(&data("test-policy.toml")).expect("test policy loads");
    let builtin = Policy::builtin();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("seed readable");
        fuzz_invariants(&test_policy, &bytes);
        fuzz_invariants(&builtin, &bytes);
        files += 1;
    }
    assert!(files >= 150, "only {files} seeds");
}
