//! One program's compiled rule ([`ProgramRule`]) and how it judges the arguments:
//! subcommand first, then flags until `--`, every other argument matching a pattern or
//! lying under a path root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

use super::paths::{self, Root};
use super::verdict::RedirectOp;

/// A refused argument: (code, reason).
pub(crate) type ArgRefusal = (&'static str, String);

/// What one role may do with one program.
#[derive(Clone, Debug)]
pub(crate) struct ProgramRule {
    /// The program's name in the policy (the key).
    pub name: String,
    /// Absolute path, valid UTF-8: the first word of the canonical line.
    pub path: String,
    /// File names the deny list is compared with (key, path's and target's names).
    pub names: BTreeSet<String>,
    /// If not empty, the first argument must be one of these.
    pub subcommands: BTreeSet<String>,
    /// Flags without a value.
    pub flags: BTreeSet<String>,
    /// Flags with a value, and the value's pattern.
    pub value_flags: BTreeMap<String, Regex>,
    /// Anchored patterns for other arguments.
    pub args: Vec<Regex>,
    /// Roots for other arguments taken as paths.
    pub roots: Vec<Root>,
    /// Most arguments after the program.
    pub max_args: usize,
    /// Longest command in bytes.
    pub max_command_bytes: usize,
    /// Variables that may be assigned.
    pub allow_env: BTreeSet<String>,
    /// Allowed redirections and their roots.
    pub redirects: BTreeMap<RedirectOp, Vec<Root>>,
}

impl ProgramRule {
    /// Checks the arguments (`argv[1..]`).
    pub(crate) fn check_args(&self, args: &[String], cwd: Option<&Path>) -> Result<(), ArgRefusal> {
        let mut i = 0;
        if !self.subcommands.is_empty() {
            match args.first() {
                Some(sub) if self.subcommands.contains(sub) => i = 1,
                Some(sub) => {
                    return Err(refuse(
                        "subcommand-not-allowed",
                        format!("subcommand `{sub}`"),
                    ));
                }
                None => {
                    return Err((
                        "subcommand-not-allowed",
                        format!("`{}` needs a subcommand", self.name),
                    ));
                }
            }
        }
        let mut options_done = false;
        while i < args.len() {
            let arg = &args[i];
            if !options_done && arg == "--" {
                options_done = true;
                i += 1;
            } else if !options_done && arg.starts_with('-') && arg != "-" {
                i += self.check_flag(arg, args.get(i + 1))?;
            } else {
                self.check_positional(arg, cwd)?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Checks one flag (and its value); how many words it used.
    fn check_flag(&self, arg: &str, next: Option<&String>) -> Result<usize, ArgRefusal> {
        if self.flags.contains(arg) {
            return Ok(1);
        }
        if let Some(pattern) = self.value_flags.get(arg) {
            let value =
                next.ok_or_else(|| ("flag-value", format!("flag `{arg}` needs a value")))?;
            self.check_value(arg, pattern, value)?;
            return Ok(2);
        }
        if let Some((name, value)) = arg.split_once('=').filter(|_| arg.starts_with("--")) {
            let pattern = self.value_flags.get(name);
            let pattern = pattern
                .ok_or_else(|| refuse("flag-not-allowed", format!("flag `{name}` with a value")))?;
            self.check_value(name, pattern, value)?;
            return Ok(1);
        }
        if arg.starts_with("--") {
            return Err(refuse("flag-not-allowed", format!("flag `{arg}`")));
        }
        self.check_short_cluster(arg, next)
    }

    /// `-abc` as `-a -b -c`; a value flag takes the rest of the word or the next word.
    fn check_short_cluster(&self, arg: &str, next: Option<&String>) -> Result<usize, ArgRefusal> {
        for (at, letter) in arg.char_indices().skip(1) {
            let flag = format!("-{letter}");
            if self.flags.contains(&flag) {
                continue;
            }
            let Some(pattern) = self.value_flags.get(&flag) else {
                return Err(refuse(
                    "flag-not-allowed",
                    format!("flag `{flag}` (in `{arg}`)"),
                ));
            };
            let rest = &arg[at + letter.len_utf8()..];
            if !rest.is_empty() {
                self.check_value(&flag, pattern, rest)?;
                return Ok(1);
            }
            let value =
                next.ok_or_else(|| ("flag-value", format!("flag `{flag}` needs a value")))?;
            self.check_value(&flag, pattern, value)?;
            return Ok(2);
        }
        Ok(1)
    }

    fn check_value(&self, flag: &str, pattern: &Regex, value: &str) -> Result<(), ArgRefusal> {
        if pattern.is_match(value) {
            Ok(())
        } else {
            Err(refuse(
                "flag-value",
                format!("value `{value}` for flag `{flag}`"),
            ))
        }
    }

    /// An argument that is not a flag: a pattern match, or a path under a root.
    fn check_positional(&self, arg: &str, cwd: Option<&Path>) -> Result<(), ArgRefusal> {
        if self.args.iter().any(|pattern| pattern.is_match(arg)) {
            return Ok(());
        }
        if self.roots.is_empty() {
            return Err(refuse("argument-not-allowed", format!("argument `{arg}`")));
        }
        if arg.starts_with('-') {
            let reason = format!("path argument `{arg}` looks like a flag (write ./{arg})");
            return Err(("argument-not-allowed", reason));
        }
        paths::resolve_under(arg, &self.roots, cwd).map(|_| ())
    }

    /// Checks a redirection; the resolved target.
    pub(crate) fn check_redirect(
        &self,
        op: RedirectOp,
        target: &str,
        cwd: Option<&Path>,
    ) -> Result<PathBuf, ArgRefusal> {
        let Some(roots) = self.redirects.get(&op) else {
            return Err(refuse(
                "redirection",
                format!("redirection `{op}` for `{}`", self.name),
            ));
        };
        paths::resolve_under(target, roots, cwd)
    }
}

/// `(code, "<what> is not allowed")`.
fn refuse(code: &'static str, what: String) -> ArgRefusal {
    (code, format!("{what} is not allowed"))
}
