//! The canonical line typed into the pane: `NAME='value'` assignments, the program's
//! absolute path and every argument single-quoted, then redirections to resolved paths.
//!
//! Single quotes make every character literal to bash (a `'` is written `'\''`), so
//! nothing in a value is expanded. The program word is quoted, so bash does not look it
//! up as an alias, and contains a slash, so bash does not look it up as a function or
//! builtin: it executes exactly that file.

use super::verdict::Redirect;

/// `value` in single quotes, each `'` written as `'\''`.
pub(crate) fn single_quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// Builds the canonical line; `program` must be valid UTF-8 (checked at load).
pub(crate) fn canonical_line(
    env: &[(String, String)],
    program: &str,
    args: &[String],
    redirects: &[Redirect],
) -> String {
    let mut parts = Vec::with_capacity(env.len() + args.len() + 2 * redirects.len() + 1);
    for (name, value) in env {
        parts.push(format!("{name}={}", single_quote(value)));
    }
    parts.push(single_quote(program));
    parts.extend(args.iter().map(|arg| single_quote(arg)));
    for redirect in redirects {
        let target = redirect.path.to_string_lossy();
        parts.push(format!("{} {}", redirect.op, single_quote(&target)));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped_and_everything_else_is_literal() {
        assert_eq!(single_quote(""), "''");
        assert_eq!(single_quote("it's"), "'it'\\''s'");
        assert_eq!(single_quote("$(x) `y` ;|&"), "'$(x) `y` ;|&'");
    }

    #[test]
    fn line_has_env_program_args_redirects() {
        let redirect = Redirect {
            op: super::super::verdict::RedirectOp::Stdout,
            target: "out".into(),
            path: "/srv/out".into(),
        };
        let line = canonical_line(
            &[("LANG".into(), "C".into())],
            "/bin/echo",
            &["a b".into()],
            &[redirect],
        );
        assert_eq!(line, "LANG='C' '/bin/echo' 'a b' > '/srv/out'");
    }
}
