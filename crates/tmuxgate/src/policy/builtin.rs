//! The built-in policy, in force without `POLICY_FILE`. Written as a policy file so it
//! reads like the examples in `docs/policy.md`; programs the host lacks are left out
//! rather than failing (only here: a policy file naming a missing program is an error).
//!
//! `viewer` (and any custom role) runs nothing. `operator` and `admin` get a read-only
//! set with no way to run other programs: no shells, `env`, `xargs`, `find`, editors,
//! pagers or interpreters; `echo` without `-e` and `printf` without backslashes, so
//! neither can write terminal control sequences; file readers only under the pane's
//! working directory; `tail` without `-f`, which would never end.

use super::Policy;
use super::compile::{self, Missing};
use super::schema::PolicyFile;

/// The rules for one trusted role; `ROLE` is replaced by the role name.
const TRUSTED_ROLE: &str = r#"
[roles.ROLE.programs.echo]
flags = ["-n"]
args = [".*"]

[roles.ROLE.programs.printf]
args = ['[^\\]*']

[roles.ROLE.programs.true]
[roles.ROLE.programs.false]

[roles.ROLE.programs.pwd]
flags = ["-L", "-P"]

[roles.ROLE.programs.date]
flags = ["-u", "-R", "--utc", "--rfc-email"]
args = ['\+[^\\]*']

[roles.ROLE.programs.whoami]

[roles.ROLE.programs.id]
flags = ["-u", "-g", "-G", "-n", "-r"]
args = ['[a-z_][a-z0-9_-]{0,31}']

[roles.ROLE.programs.uname]
flags = ["-a", "-s", "-n", "-r", "-v", "-m", "-o"]

[roles.ROLE.programs.hostname]

[roles.ROLE.programs.ls]
flags = ["-l", "-a", "-A", "-h", "-1", "-t", "-r", "-S", "-d", "-F", "-R", "-i", "-n"]
paths = ["{cwd}"]

[roles.ROLE.programs.cat]
flags = ["-n", "-A", "-v"]
paths = ["{cwd}"]

[roles.ROLE.programs.head]
value_flags = { "-n" = "-?[0-9]{1,9}", "-c" = "-?[0-9]{1,12}" }
paths = ["{cwd}"]

[roles.ROLE.programs.tail]
value_flags = { "-n" = "\\+?[0-9]{1,9}", "-c" = "\\+?[0-9]{1,12}" }
paths = ["{cwd}"]

[roles.ROLE.programs.wc]
flags = ["-l", "-w", "-c", "-m", "-L"]
paths = ["{cwd}"]
"#;

/// Global part: limits and a deny list that holds even if a role rule is widened.
const GLOBAL: &str = r#"
[limits]
max_command_bytes = 4096
max_args = 64
# Not ascii_only: the gateway's integrated shell sets readline's convert-meta off, so
# UTF-8 is typed as text whatever the pane's locale (docs/policy.md).

[deny]
programs = ["sh", "bash", "dash", "zsh", "ksh", "fish", "env", "xargs", "find", "sudo", "su",
            "doas", "nohup", "setsid", "timeout", "nice", "ionice", "chroot", "watch", "script"]

[roles.viewer]
"#;

/// The built-in policy's text.
pub(crate) fn text() -> String {
    let mut text = GLOBAL.to_owned();
    for role in ["operator", "admin"] {
        text.push_str(&TRUSTED_ROLE.replace("ROLE", role));
    }
    text
}

/// Compiles the built-in policy; if that ever failed (a bug), nothing is allowed.
pub(crate) fn policy() -> Policy {
    let compiled = toml::from_str::<PolicyFile>(&text())
        .map_err(Into::into)
        .and_then(|file| compile::compile(file, Missing::Skip));
    match compiled {
        Ok(policy) => policy,
        Err(err) => {
            tracing::error!(error = %err, "the built-in command policy does not compile; allowing nothing");
            Policy::deny_all()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_text_compiles_strictly() {
        let file: PolicyFile = toml::from_str(&text()).expect("builtin parses");
        let policy = compile::compile(file, Missing::Skip).expect("builtin compiles");
        assert!(policy.programs("viewer").is_empty());
        assert!(policy.programs("operator").contains(&"echo"));
        assert_eq!(policy.programs("operator"), policy.programs("admin"));
    }
}
