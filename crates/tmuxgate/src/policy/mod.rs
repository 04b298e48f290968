//! The command policy: which commands a role may have typed into a bash prompt, and the
//! canonical line to type for them (the "SecureCommandExecutor" validator).
//!
//! A command goes through [`scan`] (quote-aware; every shell construct but plain words
//! and five simple redirections refused, with a reason naming it and its position), then
//! the global limits and deny rules, then the role's rule for the program (subcommands,
//! flags, argument patterns, path roots, variables, redirections). An allowed command
//! comes back as [`Approved`] with a canonical line in which every value is
//! single-quoted and the program is its absolute path. `docs/policy.md` has the schema.
//!
//! [`Policy`] is immutable and shared through an `Arc`; [`PolicyStore`] holds the current
//! one, reloads `POLICY_FILE` and keeps the old policy when the new file is bad.

mod builtin;
mod chars;
mod check;
mod compile;
mod error;
mod fuzz;
mod paths;
mod quote;
mod rules;
mod scan;
mod schema;
mod store;
mod verdict;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod scan_tests;
#[cfg(test)]
mod store_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

pub use compile::{DEFAULT_MAX_ARGS, DEFAULT_MAX_COMMAND_BYTES};
pub use error::PolicyError;
#[doc(hidden)]
pub use fuzz::fuzz_invariants;
pub use store::{PolicyStore, WATCH_INTERVAL};
pub use verdict::{Approved, Redirect, RedirectOp, Refusal, Verdict};

/// Who asks and where: the caller's role and the pane's working directory (relative
/// path arguments are resolved against it and refused without it).
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The caller's role name (`admin`, `operator`, `viewer` or a custom role).
    pub role: &'a str,
    /// The pane's working directory, if known.
    pub cwd: Option<&'a Path>,
}

/// A compiled command policy: immutable, cheap to share behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Policy {
    limits: Limits,
    deny_programs: BTreeSet<String>,
    deny_args: Vec<Regex>,
    roles: BTreeMap<String, Role>,
}

/// Global limits (`[limits]`).
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_command_bytes: usize,
    max_args: usize,
    ascii_only: bool,
}

/// One role's programs, by name.
#[derive(Clone, Debug, Default)]
struct Role {
    programs: BTreeMap<String, rules::ProgramRule>,
}

impl Policy {
    /// The built-in policy, used without `POLICY_FILE`: `viewer` runs nothing; `operator`
    /// and `admin` run a small read-only set (`echo`, `printf`, `true`, `false`, `pwd`,
    /// `date`, `whoami`, `id`, `uname`, `hostname`, and `ls`, `cat`, `head`, `tail`, `wc`
    /// on paths under the pane's working directory). Nothing that runs other programs.
    pub fn builtin() -> Policy {
        builtin::policy()
    }

    /// Parses and compiles a policy (TOML); unknown keys, bad patterns, missing programs
    /// and roots are errors.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let file: schema::PolicyFile = toml::from_str(text)?;
        compile::compile(file, compile::Missing::Error)
    }

    /// Reads and compiles the policy file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_toml(&text)
    }

    /// A policy that allows nothing (what a role without rules gets).
    pub fn deny_all() -> Policy {
        Policy {
            limits: Limits {
                max_command_bytes: DEFAULT_MAX_COMMAND_BYTES,
                max_args: DEFAULT_MAX_ARGS,
                ascii_only: true,
            },
            deny_programs: BTreeSet::new(),
            deny_args: Vec::new(),
            roles: BTreeMap::new(),
        }
    }

    /// The role names the policy has rules for.
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// The programs `role` may run, by policy name.
    pub fn programs(&self, role: &str) -> Vec<&str> {
        self.roles
            .get(role)
            .map(|role| role.programs.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}
