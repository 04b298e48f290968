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
//! An end-to-end test can run the allowed lines in tmux and check no canary appears.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tmuxgate::policy::{Approved, Context, Policy, Verdict, fuzz_invariants};

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

fn single_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Outside single quotes only separators, `NAME=`, `\'` and `<`/`>`/`2>`/`>>`.
fn inert_outside_quotes(line: &str) -> bool {
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            _ if quoted => {}
            '\\' if chars.peek() == Some(&'\'') => {
                chars.next();
            }
            ' ' | '=' | '<' | '>' | '_' => {}
            _ if c.is_ascii_alphanumeric() => {}
            _ => return false,
        }
    }
    !quoted
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

/// Words bash reads from each line (`printf '%s\0' <line>`), one bash for all.
fn bash_words(lines: &[&str], cwd: &Path) -> Vec<Vec<String>> {
    // History expansion on, as at an interactive prompt: `!` must stay literal too.
    let mut script = String::from("set -o history -o histexpand\n");
    for line in lines {
        script.push_str(&format!("printf '%s\\0' {line}; printf '\\n\\0'\n"));
    }
    let mut child = Command::new("bash")
        .args(["--norc", "--noprofile", "-s"])
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script written");
    let output = child.wait_with_output().expect("bash ends");
    assert!(
        output.status.success(),
        "bash failed on the canonical lines"
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut runs = vec![Vec::new()];
    for token in text.split_terminator('\0') {
        if token == "\n" {
            runs.push(Vec::new());
        } else if let Some(run) = runs.last_mut() {
            run.push(token.to_owned());
        }
    }
    runs.pop();
    runs
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
            inert_outside_quotes(line),
            "{:?}: active text in {line:?}",
            payload.why
        );
    }
    let lines: Vec<&str> = allowed
        .iter()
        .map(|(_, approved)| without_redirects(approved))
        .collect();
    let parsed = bash_words(&lines, &cwd);
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
