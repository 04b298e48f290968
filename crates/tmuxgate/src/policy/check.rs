//! [`Policy::check`]: one command through the scanner, the global rules and the role's
//! program rule, to a [`Verdict`] with the canonical line.

use std::path::PathBuf;

use super::rules::{ArgRefusal, ProgramRule};
use super::scan::{self, Word};
use super::verdict::{Approved, Redirect, Refusal, Verdict};
use super::{Context, Policy, chars, quote};

impl Policy {
    /// Validates `command` for `ctx.role`; never panics, whatever the input.
    pub fn check(&self, ctx: &Context<'_>, command: &str) -> Verdict {
        match self.judge(ctx, command) {
            Ok(approved) => Verdict::Allowed(approved),
            Err(refusal) => Verdict::Refused(refusal),
        }
    }

    fn judge(&self, ctx: &Context<'_>, command: &str) -> Result<Approved, Refusal> {
        let max = self.limits.max_command_bytes;
        if command.len() > max {
            return Err(too_long(command.len(), max));
        }
        if self.limits.ascii_only {
            check_ascii(command)?;
        }
        let scanned = scan::scan(command)?;
        let assignments = scanned
            .words
            .iter()
            .take_while(|word| word.assignment)
            .count();
        let (env_words, argv_words) = scanned.words.split_at(assignments);
        let argv: Vec<String> = argv_words.iter().map(|word| word.value.clone()).collect();
        let rule = self.rule_for(ctx, &argv)?;
        self.check_deny(rule, &argv, env_words, &scanned.redirects)?;
        if command.len() > rule.max_command_bytes {
            return Err(too_long(command.len(), rule.max_command_bytes));
        }
        self.check_count(argv.len() - 1, rule.max_args)?;
        let env = check_env(rule, env_words, command)?;
        let redirects = check_redirects(rule, &scanned.redirects, ctx, command)?;
        rule.check_args(&argv[1..], ctx.cwd).map_err(refusal)?;
        let line = quote::canonical_line(&env, &rule.path, &argv[1..], &redirects);
        self.check_line(rule, &line)?;
        let program = PathBuf::from(&rule.path);
        let rule_name = format!("{}/{}", ctx.role, rule.name);
        Ok(Approved {
            argv,
            program,
            env,
            redirects,
            line,
            rule: rule_name,
        })
    }

    /// The role's rule for `argv[0]`, after the global argument limit.
    fn rule_for(&self, ctx: &Context<'_>, argv: &[String]) -> Result<&ProgramRule, Refusal> {
        let Some(program) = argv.first() else {
            return Err(Refusal::new("empty", "the command has no program"));
        };
        self.check_count(argv.len() - 1, self.limits.max_args)?;
        let role = self.roles.get(ctx.role).ok_or_else(|| {
            let message = format!("the policy has no rules for role `{}`", ctx.role);
            Refusal::new("unknown-role", message)
        })?;
        role.find(program).ok_or_else(|| {
            let message = format!("program `{program}` is not allowed for role `{}`", ctx.role);
            Refusal::new("program-not-allowed", message)
        })
    }

    /// The canonical line fits the limit and holds only what may be typed.
    fn check_line(&self, rule: &ProgramRule, line: &str) -> Result<(), Refusal> {
        let max = rule.max_command_bytes;
        if line.len() > max {
            let message = format!(
                "the canonical line would be {} bytes, more than the limit of {max}",
                line.len()
            );
            return Err(Refusal::new("too-long", message));
        }
        if self.limits.ascii_only && !line.is_ascii() {
            return Err(Refusal::new(
                "non-ascii",
                "a resolved path has a non-ASCII character",
            ));
        }
        if !chars::all_printable(line) {
            return Err(Refusal::new(
                "control-char",
                "a resolved path has an unprintable character",
            ));
        }
        Ok(())
    }

    fn check_count(&self, args: usize, max: usize) -> Result<(), Refusal> {
        if args > max {
            let message = format!("{args} arguments, more than the limit of {max}");
            return Err(Refusal::new("too-many-args", message));
        }
        Ok(())
    }

    /// Global deny rules: the program by any of its names, patterns in every value.
    fn check_deny(
        &self,
        rule: &ProgramRule,
        argv: &[String],
        env: &[Word],
        redirects: &[scan::RawRedirect],
    ) -> Result<(), Refusal> {
        let written = argv[0].rsplit('/').next().unwrap_or_default();
        let denied = self
            .deny_programs
            .iter()
            .any(|deny| deny == &rule.path || deny == written || rule.names.contains(deny));
        if denied {
            let message = format!("program `{}` is denied by the global deny list", argv[0]);
            return Err(Refusal::new("denied-program", message));
        }
        let values = argv[1..]
            .iter()
            .map(String::as_str)
            .chain(env.iter().map(|word| word.value.as_str()))
            .chain(
                redirects
                    .iter()
                    .map(|redirect| redirect.target.value.as_str()),
            );
        for value in values {
            if let Some(pattern) = self
                .deny_args
                .iter()
                .find(|pattern| pattern.is_match(value))
            {
                let message = format!(
                    "`{value}` matches the global deny pattern `{}`",
                    pattern.as_str()
                );
                return Err(Refusal::new("denied-argument", message));
            }
        }
        Ok(())
    }
}

impl super::Role {
    /// The rule for `argv0`: a policy name, or the exact absolute path a rule resolved to.
    fn find(&self, argv0: &str) -> Option<&ProgramRule> {
        if argv0.contains('/') {
            self.programs.values().find(|rule| rule.path == argv0)
        } else {
            self.programs.get(argv0)
        }
    }
}

/// With `limits.ascii_only`: the first non-ASCII character is refused.
fn check_ascii(command: &str) -> Result<(), Refusal> {
    match command.char_indices().find(|(_, c)| !c.is_ascii()) {
        None => Ok(()),
        Some((at, c)) => {
            let what = format!("a non-ASCII character U+{:04X}", u32::from(c));
            Err(Refusal::at("non-ascii", what, command, at))
        }
    }
}

fn too_long(len: usize, max: usize) -> Refusal {
    Refusal::new(
        "too-long",
        format!("the command is {len} bytes, more than the limit of {max}"),
    )
}

fn refusal((code, message): ArgRefusal) -> Refusal {
    Refusal::new(code, message)
}

/// `NAME=value` words before the program, each name allowed by the rule.
fn check_env(
    rule: &ProgramRule,
    words: &[Word],
    command: &str,
) -> Result<Vec<(String, String)>, Refusal> {
    let mut env = Vec::with_capacity(words.len());
    for word in words {
        let (name, value) = word
            .value
            .split_once('=')
            .unwrap_or((word.value.as_str(), ""));
        if !rule.allow_env.contains(name) {
            let what = format!(
                "an environment assignment `{name}=` the rule for `{}` does not allow",
                rule.name
            );
            return Err(Refusal::at("env-assignment", what, command, word.start));
        }
        env.push((name.to_owned(), value.to_owned()));
    }
    Ok(env)
}

fn check_redirects(
    rule: &ProgramRule,
    raw: &[scan::RawRedirect],
    ctx: &Context<'_>,
    command: &str,
) -> Result<Vec<Redirect>, Refusal> {
    let mut redirects = Vec::with_capacity(raw.len());
    for redirect in raw {
        let target = &redirect.target.value;
        let path = rule
            .check_redirect(redirect.op, target, ctx.cwd)
            .map_err(|(code, what)| Refusal::at(code, what, command, redirect.start))?;
        redirects.push(Redirect {
            op: redirect.op,
            target: target.clone(),
            path,
        });
    }
    Ok(redirects)
}
