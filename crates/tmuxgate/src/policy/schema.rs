//! The policy file as written (TOML, every table `deny_unknown_fields`). See
//! `docs/policy.md` for the full schema with examples; [`super::compile`] turns this
//! into the immutable [`Policy`](super::Policy).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::verdict::RedirectOp;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    /// Global limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Global deny rules, checked before any role's rules.
    #[serde(default)]
    pub deny: DenyFile,
    /// Role name to its rules; a role not listed may run nothing.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleFile>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    /// Longest command in bytes (default 4096).
    pub max_command_bytes: Option<usize>,
    /// Most arguments after the program (default 64).
    pub max_args: Option<usize>,
    /// Refuse every non-ASCII character (default false; the built-in policy sets it).
    pub ascii_only: Option<bool>,
}

/// `[deny]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DenyFile {
    /// Program names (matched against the written and resolved names) or absolute paths.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Regexes searched in every argument, assignment value and redirection target.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `[roles.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleFile {
    /// Program name to its rule.
    #[serde(default)]
    pub programs: BTreeMap<String, ProgramFile>,
}

/// `[roles.NAME.programs.PROGRAM]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgramFile {
    /// Absolute path; else the program name is looked up in `PATH` at load time.
    pub path: Option<PathBuf>,
    /// If not empty, the first argument must be one of these.
    #[serde(default)]
    pub subcommands: Vec<String>,
    /// Flags without a value (`-l`, `--oneline`); single-letter ones may be combined.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Flags with a value (`-n 5`, `-n5`, `--lines 5`, `--lines=5`) and the value's regex.
    #[serde(default)]
    pub value_flags: BTreeMap<String, String>,
    /// Regexes (anchored) one of which every other argument must match ...
    #[serde(default)]
    pub args: Vec<String>,
    /// ... or else roots (absolute directories or `{cwd}`) the argument, as a path, must
    /// lie in.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Most arguments after the program (at most the global limit).
    pub max_args: Option<usize>,
    /// Longest command in bytes (at most the global limit).
    pub max_command_bytes: Option<usize>,
    /// Variables that may be assigned before the program (`LANG=C prog`).
    #[serde(default)]
    pub allow_env: Vec<String>,
    /// Redirections allowed, each to paths under its roots.
    #[serde(default)]
    pub redirects: Vec<RedirectFile>,
}

/// One `redirects` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedirectFile {
    /// `<`, `>`, `>>`, `2>` or `2>>`.
    pub op: RedirectOp,
    /// Roots (absolute directories or `{cwd}`) the target must lie in.
    pub roots: Vec<String>,
}
