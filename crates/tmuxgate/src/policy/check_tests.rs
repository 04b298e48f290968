//! Rule tests through [`Policy::check`]: subcommands, flags, patterns, path roots (with
//! `..` and symlinks in a temporary directory), variables, redirections, limits, deny
//! rules, roles, the canonical line, and policy file errors.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Context, Policy, PolicyError, Verdict};

/// A temporary root with `data/file`, and `secret` beside it (outside).
struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = fs::canonicalize(dir.path()).expect("canonical");
    let root = base.join("root");
    fs::create_dir_all(root.join("data")).expect("mkdir");
    fs::write(root.join("data/file"), "x").expect("write");
    fs::write(base.join("secret"), "s").expect("write");
    Fixture {
        _dir: dir,
        base,
        root,
    }
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text).unwrap_or_else(|err| panic!("policy: {err}"))
}

fn check(policy: &Policy, role: &str, cwd: Option<&Path>, command: &str) -> Verdict {
    policy.check(&Context { role, cwd }, command)
}

fn code(verdict: &Verdict) -> &'static str {
    verdict.refused().map_or("allowed", |refusal| refusal.code)
}

const RULES: &str = r#"
[limits]
max_command_bytes = 200
max_args = 8

[deny]
programs = ["printf"]
args = ["(?i)proxycommand"]

[roles.ops.programs.echo]
subcommands = ["status", "log"]
flags = ["-l", "-a", "--oneline"]
value_flags = { "-n" = "[0-9]+", "--lines" = "[0-9]+" }
args = ["[a-z]+"]
max_args = 6

[roles.ops.programs.printf]
args = [".*"]

[roles.empty]
"#;

#[test]
fn subcommands_flags_and_patterns() {
    let p = policy(RULES);
    let cases = [
        ("echo status", "allowed"),
        ("echo log -la --oneline abc", "allowed"),
        ("echo log -n 5 -n5 --lines=8", "allowed"),
        ("echo log --lines 7", "allowed"),
        ("echo log -ln5", "allowed"),
        ("echo log -- -x", "argument-not-allowed"),
        ("echo log -- abc", "allowed"),
        ("echo push", "subcommand-not-allowed"),
        ("echo", "subcommand-not-allowed"),
        ("echo -l status", "subcommand-not-allowed"),
        ("echo log -x", "flag-not-allowed"),
        ("echo log -lx", "flag-not-allowed"),
        ("echo log --exec=id", "flag-not-allowed"),
        ("echo log --oneline=1", "flag-not-allowed"),
        ("echo log -n x", "flag-value"),
        ("echo log -n", "flag-value"),
        ("echo log --lines=5x", "flag-value"),
        ("echo log ABC", "argument-not-allowed"),
        ("echo log abc1", "argument-not-allowed"),
    ];
    for (command, expected) in cases {
        assert_eq!(
            code(&check(&p, "ops", None, command)),
            expected,
            "{command}"
        );
    }
}

#[test]
fn limits_deny_rules_and_roles() {
    let p = policy(RULES);
    let long = format!("echo log {}", "a".repeat(300));
    assert_eq!(code(&check(&p, "ops", None, &long)), "too-long");
    let word = "a".repeat(36);
    let grows = format!("echo log {word} {word} {word} {word} {word}");
    assert!(grows.len() <= 200, "the input fits the limit");
    let refused = check(&p, "ops", None, &grows);
    assert_eq!(code(&refused), "too-long", "but its quoted line does not");
    assert_eq!(
        code(&check(&p, "ops", None, "echo log a a a a a a")),
        "too-many-args"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "echo log a a a a a")),
        "allowed"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "echo log a a a a a a a a a")),
        "too-many-args"
    );
    assert_eq!(code(&check(&p, "ops", None, "printf x")), "denied-program");
    assert_eq!(
        code(&check(&p, "ops", None, "echo log -- ProxyCommand")),
        "denied-argument"
    );
    assert_eq!(
        code(&check(&p, "ghost", None, "echo status")),
        "unknown-role"
    );
    assert_eq!(
        code(&check(&p, "empty", None, "echo status")),
        "program-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "cat status")),
        "program-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "ес hо")),
        "program-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "/tmp/echo status")),
        "program-not-allowed"
    );
    assert_eq!(code(&check(&p, "ops", None, "   ")), "empty");
    assert_eq!(
        code(&check(&p, "ops", None, "echo log -- abc ü")),
        "argument-not-allowed"
    );
    let ascii = policy(&format!(
        "[limits]\nascii_only = true\n{}",
        &RULES[RULES.find("[deny]").unwrap_or(0)..]
    ));
    assert_eq!(
        code(&check(&ascii, "ops", None, "echo log -- abc ü")),
        "non-ascii"
    );
}

#[test]
fn canonical_line_quotes_everything_and_names_the_path() {
    let p = policy(RULES);
    let Verdict::Allowed(ok) = check(&p, "ops", None, r#"echo log "-n" '5' abc"#) else {
        panic!("refused");
    };
    let path = ok.program.to_str().expect("utf-8").to_owned();
    assert!(ok.program.is_absolute());
    assert_eq!(ok.argv, ["echo", "log", "-n", "5", "abc"]);
    assert_eq!(ok.line, format!("'{path}' 'log' '-n' '5' 'abc'"));
    assert_eq!(ok.rule, "ops/echo");
    let again = check(&p, "ops", None, &ok.line);
    assert_eq!(again.allowed().map(|a| &a.line), Some(&ok.line));
}

#[test]
fn path_roots_refuse_dotdot_and_symlink_escapes() {
    let fx = fixture();
    let p = policy(&format!(
        "[roles.ops.programs.cat]\nflags = [\"-n\"]\npaths = [\"{}\"]\n",
        fx.root.display()
    ));
    let root = Some(fx.root.as_path());
    assert_eq!(code(&check(&p, "ops", root, "cat data/file")), "allowed");
    assert_eq!(
        code(&check(&p, "ops", root, "cat -n data/../data/file")),
        "allowed"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "cat ../secret")),
        "path-outside-root"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "cat data/../../secret")),
        "path-outside-root"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "cat nope/../../secret")),
        "path-escape"
    );
    assert_eq!(
        code(&check(&p, "ops", None, "cat data/file")),
        "path-needs-cwd"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "cat /etc/passwd")),
        "path-outside-root"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "cat -- -n")),
        "argument-not-allowed"
    );
    std::os::unix::fs::symlink(fx.base.join("secret"), fx.root.join("data/link")).expect("symlink");
    assert_eq!(
        code(&check(&p, "ops", root, "cat data/link")),
        "path-outside-root"
    );
    std::os::unix::fs::symlink(&fx.base, fx.root.join("up")).expect("symlink");
    assert_eq!(
        code(&check(&p, "ops", root, "cat up/secret")),
        "path-outside-root"
    );
}

#[test]
fn env_and_redirects_only_where_allowed() {
    let fx = fixture();
    let p = policy(&format!(
        "[roles.ops.programs.echo]\nargs = [\".*\"]\nallow_env = [\"LANG\"]\n\
         redirects = [{{ op = \">\", roots = [\"{root}\"] }}, {{ op = \"2>>\", roots = [\"{{cwd}}\"] }}]\n",
        root = fx.root.display()
    ));
    let root = Some(fx.root.as_path());
    let Verdict::Allowed(ok) = check(&p, "ops", root, "LANG=C echo hi >data/out 2>>err") else {
        panic!("refused");
    };
    assert_eq!(ok.env, [("LANG".to_owned(), "C".to_owned())]);
    assert_eq!(ok.redirects.len(), 2);
    assert_eq!(ok.redirects[0].path, fx.root.join("data/out"));
    assert!(ok.line.starts_with("LANG='C' '/"), "{}", ok.line);
    assert!(ok.line.ends_with(&format!(
        "'hi' > '{}/data/out' 2>> '{}/err'",
        fx.root.display(),
        fx.root.display()
    )));
    assert_eq!(
        code(&check(&p, "ops", root, "LC_ALL=C echo hi")),
        "env-assignment"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "echo hi >> data/out")),
        "redirection"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "echo hi < data/file")),
        "redirection"
    );
    assert_eq!(
        code(&check(&p, "ops", root, "echo hi > ../secret")),
        "path-outside-root"
    );
    assert_eq!(code(&check(&p, "ops", root, "echo LANG=C")), "allowed");
}

#[test]
fn policy_file_errors_are_clear() {
    let unknown = Policy::from_toml("[roles.a.programs.echo]\nflagz = []\n").unwrap_err();
    assert!(matches!(unknown, PolicyError::Toml(_)), "{unknown}");
    assert!(unknown.to_string().contains("flagz"), "{unknown}");
    let top = Policy::from_toml("[limitz]\n").unwrap_err();
    assert!(top.to_string().contains("limitz"), "{top}");
    let regex = Policy::from_toml("[roles.a.programs.echo]\nargs = [\"(\"]\n").unwrap_err();
    assert!(matches!(regex, PolicyError::Pattern { .. }), "{regex}");
    assert!(
        regex.to_string().contains("roles.a.programs.echo.args[0]"),
        "{regex}"
    );
    let missing = Policy::from_toml("[roles.a.programs.no-such-program-tg]\n").unwrap_err();
    assert!(matches!(missing, PolicyError::Program { .. }), "{missing}");
    let relative = Policy::from_toml("[roles.a.programs.echo]\npath = \"bin/echo\"\n").unwrap_err();
    assert!(
        matches!(relative, PolicyError::Program { .. }),
        "{relative}"
    );
    let root = Policy::from_toml("[roles.a.programs.cat]\npaths = [\"srv\"]\n").unwrap_err();
    assert!(root.to_string().contains("not absolute"), "{root}");
    let env =
        Policy::from_toml("[roles.a.programs.echo]\nallow_env = [\"LD_PRELOAD\"]\n").unwrap_err();
    assert!(env.to_string().contains("LD_PRELOAD"), "{env}");
    let op =
        Policy::from_toml("[roles.a.programs.echo]\nredirects = [{ op = \"&>\", roots = [] }]\n");
    assert!(matches!(op, Err(PolicyError::Toml(_))));
    let read = Policy::load(Path::new("/nonexistent/policy.toml")).unwrap_err();
    assert!(matches!(read, PolicyError::Read { .. }), "{read}");
}

#[test]
fn builtin_policy_is_read_only() {
    let p = Policy::builtin();
    let fx = fixture();
    let cwd = Some(fx.root.as_path());
    assert_eq!(
        code(&check(&p, "operator", cwd, "echo hello 'wor ld'")),
        "allowed"
    );
    assert_eq!(code(&check(&p, "admin", cwd, "cat data/file")), "allowed");
    assert_eq!(
        code(&check(&p, "operator", cwd, "cat ../secret")),
        "path-outside-root"
    );
    assert_eq!(
        code(&check(&p, "operator", cwd, "echo -e '\\x1b'")),
        "flag-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "operator", cwd, "printf '\\033[2J'")),
        "argument-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "operator", cwd, "tail -f data/file")),
        "flag-not-allowed"
    );
    assert_eq!(
        code(&check(&p, "viewer", cwd, "echo hi")),
        "program-not-allowed"
    );
    assert_eq!(code(&check(&p, "custom", cwd, "echo hi")), "unknown-role");
    // The integrated shell types UTF-8 as text: the built-in policy allows it.
    let accented = check(&p, "operator", cwd, "echo 'café'");
    assert_eq!(code(&accented), "allowed");
    for shell in [
        "sh -c id",
        "bash -c id",
        "env id",
        "xargs id",
        "find . -exec id ;",
    ] {
        let verdict = check(&p, "admin", cwd, shell);
        assert!(verdict.refused().is_some(), "{shell}");
    }
}

#[test]
fn the_toml_examples_in_the_docs_parse() {
    let docs = include_str!("../../../../docs/policy.md");
    let blocks: Vec<&str> = docs
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert!(blocks.len() >= 2, "docs/policy.md has its examples");
    for block in blocks {
        let parsed = toml::from_str::<super::schema::PolicyFile>(block);
        assert!(parsed.is_ok(), "{parsed:?}\n{block}");
    }
}
