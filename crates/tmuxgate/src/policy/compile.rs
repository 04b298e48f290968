//! Turns the parsed file ([`PolicyFile`]) into the immutable [`Policy`]: regexes
//! compiled (argument patterns anchored), programs resolved to absolute paths through
//! `PATH` once, roots canonicalized, dangerous variable names refused.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::chars;
use super::error::PolicyError;
use super::paths::Root;
use super::rules::ProgramRule;
use super::schema::{PolicyFile, ProgramFile};
use super::{Limits, Policy, Role};

/// Default `limits.max_command_bytes`.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 4096;
/// Default `limits.max_args`.
pub const DEFAULT_MAX_ARGS: usize = 64;

/// Variables no rule may allow: they change what the program loads or runs.
const DANGEROUS_ENV_PREFIXES: [&str; 4] = ["LD_", "DYLD_", "BASH_FUNC_", "GCONV"];
const DANGEROUS_ENV: [&str; 12] = [
    "BASH_ENV",
    "ENV",
    "PATH",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "PERL5OPT",
];

/// What to do with a program that cannot be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// A load error (policy files).
    Error,
    /// Leave the program out (the built-in policy, on hosts without it).
    Skip,
}

/// Compiles a parsed policy file.
pub(crate) fn compile(file: PolicyFile, missing: Missing) -> Result<Policy, PolicyError> {
    let limits = Limits {
        max_command_bytes: file
            .limits
            .max_command_bytes
            .unwrap_or(DEFAULT_MAX_COMMAND_BYTES),
        max_args: file.limits.max_args.unwrap_or(DEFAULT_MAX_ARGS),
        ascii_only: file.limits.ascii_only.unwrap_or(false),
    };
    let deny_args = file
        .deny
        .args
        .iter()
        .enumerate()
        .map(|(i, pattern)| regex(&format!("deny.args[{i}]"), pattern, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut roles = BTreeMap::new();
    for (role_name, role) in file.roles {
        let mut programs = BTreeMap::new();
        for (name, program) in role.programs {
            let place = format!("roles.{role_name}.programs.{name}");
            match program_rule(&place, &name, program, &limits) {
                Ok(rule) => {
                    programs.insert(name, rule);
                }
                Err(PolicyError::Program { .. }) if missing == Missing::Skip => {}
                Err(err) => return Err(err),
            }
        }
        roles.insert(role_name, Role { programs });
    }
    let deny_programs = file.deny.programs.into_iter().collect();
    Ok(Policy {
        limits,
        deny_programs,
        deny_args,
        roles,
    })
}

fn program_rule(
    place: &str,
    name: &str,
    file: ProgramFile,
    limits: &Limits,
) -> Result<ProgramRule, PolicyError> {
    let path = resolve_program(place, name, file.path.as_deref())?;
    let mut names = BTreeSet::from([name.to_owned()]);
    names.extend(file_name(&path));
    names.extend(
        std::fs::canonicalize(&path)
            .ok()
            .as_deref()
            .and_then(file_name),
    );
    let path = path
        .to_str()
        .filter(|text| chars::all_printable(text))
        .ok_or_else(|| program_error(place, "the path is not printable UTF-8"))?
        .to_owned();
    let (value_flags, args) = patterns(place, &file)?;
    let mut redirects = BTreeMap::new();
    for (i, redirect) in file.redirects.iter().enumerate() {
        let roots = roots(&format!("{place}.redirects[{i}].roots"), &redirect.roots)?;
        redirects.insert(redirect.op, roots);
    }
    let cap = |own: Option<usize>, global: usize| own.map_or(global, |max| max.min(global));
    Ok(ProgramRule {
        name: name.to_owned(),
        path,
        names,
        subcommands: file.subcommands.into_iter().collect(),
        flags: file.flags.into_iter().collect(),
        value_flags,
        args,
        roots: roots(&format!("{place}.paths"), &file.paths)?,
        max_args: cap(file.max_args, limits.max_args),
        max_command_bytes: cap(file.max_command_bytes, limits.max_command_bytes),
        allow_env: allow_env(place, file.allow_env)?,
        redirects,
    })
}

/// The compiled `value_flags` and `args` patterns, all anchored.
fn patterns(
    place: &str,
    file: &ProgramFile,
) -> Result<(BTreeMap<String, Regex>, Vec<Regex>), PolicyError> {
    let value_flags = file
        .value_flags
        .iter()
        .map(|(flag, pattern)| {
            let regex = regex(&format!("{place}.value_flags.{flag}"), pattern, true)?;
            Ok((flag.clone(), regex))
        })
        .collect::<Result<_, PolicyError>>()?;
    let args = file
        .args
        .iter()
        .enumerate()
        .map(|(i, pattern)| regex(&format!("{place}.args[{i}]"), pattern, true))
        .collect::<Result<_, _>>()?;
    Ok((value_flags, args))
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
}

fn program_error(place: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Program {
        place: place.to_owned(),
        reason: reason.into(),
    }
}

/// The program's absolute path: `path` if given (must be an executable file), else the
/// first executable `name` in the gateway's `PATH`.
fn resolve_program(place: &str, name: &str, path: Option<&Path>) -> Result<PathBuf, PolicyError> {
    if name.is_empty() || name.contains('/') || !chars::all_printable(name) || name.contains(' ') {
        return Err(PolicyError::invalid(
            place,
            "a program name must be a plain file name",
        ));
    }
    if let Some(path) = path {
        if !path.is_absolute() {
            return Err(program_error(
                place,
                format!("path {} is not absolute", path.display()),
            ));
        }
        if !is_executable(path) {
            return Err(program_error(
                place,
                format!("{} is not an executable file", path.display()),
            ));
        }
        return Ok(path.to_path_buf());
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| program_error(place, format!("`{name}` is not found in PATH")))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Compiles `pattern`; `anchored` wraps it so it must match the whole value.
fn regex(place: &str, pattern: &str, anchored: bool) -> Result<Regex, PolicyError> {
    let source = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_owned()
    };
    Regex::new(&source).map_err(|err| PolicyError::Pattern {
        place: place.to_owned(),
        pattern: pattern.to_owned(),
        source: Box::new(err),
    })
}

/// `{cwd}` or an existing absolute directory, canonicalized.
fn roots(place: &str, written: &[String]) -> Result<Vec<Root>, PolicyError> {
    written
        .iter()
        .map(|root| {
            if root == "{cwd}" {
                return Ok(Root::Cwd);
            }
            let path = Path::new(root);
            if !path.is_absolute() {
                return Err(PolicyError::invalid(
                    place,
                    format!("root `{root}` is not absolute (or `{{cwd}}`)"),
                ));
            }
            match std::fs::canonicalize(path) {
                Ok(dir) if dir.is_dir() => Ok(Root::Dir(dir)),
                _ => Err(PolicyError::invalid(
                    place,
                    format!("root `{root}` is not an existing directory"),
                )),
            }
        })
        .collect()
}

/// Valid, not dangerous, variable names.
fn allow_env(place: &str, names: Vec<String>) -> Result<BTreeSet<String>, PolicyError> {
    for name in &names {
        let mut bytes = name.bytes();
        let valid = matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
            && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric());
        if !valid {
            return Err(PolicyError::invalid(
                place,
                format!("`{name}` is not a variable name"),
            ));
        }
        let dangerous = DANGEROUS_ENV.contains(&name.as_str())
            || DANGEROUS_ENV_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix));
        if dangerous {
            return Err(PolicyError::invalid(
                place,
                format!("`{name}` may not be allowed in allow_env"),
            ));
        }
    }
    Ok(names.into_iter().collect())
}
