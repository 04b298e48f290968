//! Property tests against real bash. Words drawn from a broad alphabet (quotes, spaces,
//! every shell metacharacter, non-ASCII) are rendered with random quoting; the policy
//! must accept them with exactly those values, and bash must parse the canonical line
//! back into exactly the program path and words. Conversely, a refused construct added
//! to an accepted command makes it refused.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::{Context, Policy, Verdict};

/// Commands per bash run.
const BATCH: usize = 256;

const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', '9', ' ', '-', '_', '.', '/', ',', ':', '=', '+', '@', '%', '^', '\'', '"',
    '\\', '$', '`', ';', '|', '&', '<', '>', '(', ')', '*', '?', '[', ']', '{', '}', '~', '!', '#',
    'é', '漢', '🙂', '；', '｜', '＄', 'е', '\u{301}', 'Ω',
];

fn policy() -> Policy {
    Policy::from_toml("[roles.t.programs.echo]\nargs = [\".*\"]\n").expect("test policy")
}

/// How one run of characters is written.
#[derive(Clone, Copy, Debug)]
enum Style {
    Bare,
    Backslash,
    Single,
    Double,
}

/// Characters bash would act on if written bare.
fn needs_quoting(c: char) -> bool {
    " '\"\\$`;|&<>()*?[]{}~!#".contains(c)
}

/// Writes `word` choosing, per character, the style `choice` picks among those that
/// keep it literal (and that the policy accepts).
fn render(word: &str, choices: &[u8]) -> String {
    if word.is_empty() {
        return if choices.first().is_some_and(|c| c % 2 == 0) {
            "''".into()
        } else {
            "\"\"".into()
        };
    }
    let mut out = String::new();
    let mut open: Option<char> = None;
    for (i, c) in word.chars().enumerate() {
        let mut styles = vec![Style::Backslash];
        if !needs_quoting(c) {
            styles.push(Style::Bare);
        }
        if c != '\'' {
            styles.push(Style::Single);
        }
        if !"$`!".contains(c) {
            styles.push(Style::Double);
        }
        let pick = choices.get(i).copied().unwrap_or(0) as usize;
        let style = styles[pick % styles.len()];
        let want = match style {
            Style::Single => Some('\''),
            Style::Double => Some('"'),
            _ => None,
        };
        if open != want {
            out.extend(open);
            out.extend(want);
            open = want;
        }
        match style {
            Style::Bare | Style::Single => out.push(c),
            Style::Backslash => {
                out.push('\\');
                out.push(c);
            }
            Style::Double if c == '"' || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            Style::Double => out.push(c),
        }
    }
    out.extend(open);
    out
}

/// Argument words and, per word, quoting choices and the separator after it.
fn command() -> impl Strategy<Value = (Vec<String>, String)> {
    let word = prop::collection::vec(prop::sample::select(ALPHABET), 0..10)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    let part = (
        word,
        prop::collection::vec(any::<u8>(), 10),
        prop::sample::select(&[" ", "  ", "\t", " \t "][..]),
    );
    prop::collection::vec(part, 0..6).prop_map(|parts| {
        let mut words = vec!["--".to_owned()];
        let mut text = String::from("echo --");
        for (word, choices, separator) in parts {
            text.push_str(separator);
            text.push_str(&render(&word, &choices));
            words.push(word);
        }
        (words, text)
    })
}

/// Runs each line as `printf '%s\0' <line>` in one bash; the words of each.
pub(super) fn bash_words<S: AsRef<str>>(lines: &[S], cwd: Option<&Path>) -> Vec<Vec<String>> {
    // History expansion on, as at an interactive prompt: `!` must stay literal too.
    let mut script = String::from("set -o history -o histexpand\n");
    for line in lines {
        let line = line.as_ref();
        script.push_str(&format!("printf '%s\\0' {line}; printf '\\n\\0'\n"));
    }
    let mut bash = Command::new("bash");
    if let Some(cwd) = cwd {
        bash.current_dir(cwd);
    }
    let mut child = bash
        .args(["--norc", "--noprofile", "-s"])
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
    assert!(output.status.success(), "bash failed");
    let text = String::from_utf8(output.stdout).expect("utf-8 output");
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn bash_reads_the_canonical_line_as_validated(batch in prop::collection::vec(command(), BATCH)) {
        let policy = policy();
        let ctx = Context { role: "t", cwd: None };
        let mut lines = Vec::new();
        let mut expected = Vec::new();
        for (words, text) in &batch {
            let verdict = policy.check(&ctx, text);
            let Verdict::Allowed(approved) = verdict else {
                return Err(TestCaseError::fail(format!("{text:?} refused: {verdict:?}")));
            };
            prop_assert_eq!(&approved.argv[1..], &words[..], "{:?}", text);
            let mut want = vec![approved.program.to_string_lossy().into_owned()];
            want.extend(words.iter().cloned());
            expected.push(want);
            lines.push(approved.line);
        }
        let got = bash_words(&lines, None);
        prop_assert_eq!(got.len(), expected.len());
        for ((got, want), line) in got.iter().zip(&expected).zip(&lines) {
            prop_assert_eq!(got, want, "line {:?}", line);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn a_refused_construct_makes_the_command_refused(
        (_, text) in command(),
        construct in prop::sample::select(CONSTRUCTS),
        how in 0u8..3,
    ) {
        let (snippet, glued_ok, double_ok) = construct;
        let command = match how {
            0 => format!("{text} {snippet}"),
            1 if glued_ok => format!("{text}{snippet}"),
            2 if double_ok => format!("{text} \"a{snippet}b\""),
            _ => format!("{text} {snippet}"),
        };
        let verdict = policy().check(&Context { role: "t", cwd: None }, &command);
        prop_assert!(verdict.refused().is_some(), "{:?} allowed: {:?}", command, verdict);
    }
}

/// (construct, refused when glued to the end of a word, refused inside double quotes).
const CONSTRUCTS: &[(&str, bool, bool)] = &[
    ("$(touch /tmp/tg-canary)", true, true),
    ("`touch /tmp/tg-canary`", true, true),
    ("$((1+1))", true, true),
    ("$[1]", true, true),
    ("<(id)", true, false),
    (">(id)", true, false),
    ("$HOME", true, true),
    ("${HOME}", true, true),
    ("$1", true, true),
    ("$@", true, true),
    ("$'x'", true, false),
    ("$\"x\"", true, false),
    ("|id", true, false),
    (";id", true, false),
    ("&&id", true, false),
    ("||id", true, false),
    ("&", true, false),
    (">/tmp/tg-canary", true, false),
    ("<in", true, false),
    ("2>&1", false, false),
    ("<<EOF", true, false),
    ("<<<x", true, false),
    ("(id)", true, false),
    ("{a,b}", true, false),
    ("{1..3}", true, false),
    ("*", true, false),
    ("?", true, false),
    ("[ab]", true, false),
    ("@(a)", true, false),
    ("~", true, false),
    ("!!", true, true),
    ("#x", false, false),
    ("{", false, false),
    ("\\\nid", true, true),
    ("\nid", true, true),
    ("\r", true, true),
    ("\0", true, true),
    ("\x1b[2J", true, true),
    ("\u{202e}", true, true),
    ("\u{200b}", true, true),
    ("\u{feff}", true, true),
    ("\u{2028}", true, true),
    ("'unterminated", true, false),
    ("\"unterminated", true, false),
];
