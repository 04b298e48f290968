//! Building tmux command lines that cannot be subverted by the data in them.
//!
//! A [`Command`] is always exactly one line, never blank (a blank line
//! detaches a control client) and never contains LF or NUL. User data only
//! enters through [`Command::arg_quoted`], which uses tmux's single-quote form:
//! inside single quotes the tmux parser treats nothing as special, and a
//! literal `'` is written `'\''`. Mistakes in constant parts are not panics:
//! they are recorded in the command, and [`crate::ControlClient`] refuses to
//! send such a command (`Error::Build`).

use std::fmt;

/// Why a command could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A control byte that cannot be carried on a tmux command line.
    #[error("byte {byte:#04x} cannot be carried in a tmux command argument")]
    ForbiddenByte {
        /// The offending byte.
        byte: u8,
    },
    /// A constant command name or flag is not of the expected shape.
    #[error("invalid constant {0:?} in a tmux command")]
    InvalidConstant(&'static str),
}

/// Quotes `s` in tmux's single-quote form: `'` + `s` with every `'` replaced
/// by `'\''` + `'`.
///
/// Callers must not pass LF, NUL or other C0 controls (the builder rejects
/// them before quoting); nothing else needs escaping inside single quotes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('\'');
    for (i, piece) in s.split('\'').enumerate() {
        if i > 0 {
            out.push_str("'\\''");
        }
        out.push_str(piece);
    }
    out.push('\'');
}

/// Bytes allowed in arguments built with [`Command::arg_quoted`]: everything
/// but the C0 controls other than TAB.
fn forbidden_in_data(b: u8) -> bool {
    b < 0x20 && b != b'\t'
}

/// Bytes allowed in `send-keys -l` data: measured on tmux 3.3a (every Unicode
/// scalar value but LF and NUL arrives in the pane exactly, see `input.rs`).
fn forbidden_in_keys(b: u8) -> bool {
    b == b'\n' || b == 0
}

/// Whether `s` can stand unquoted: plain words and tmux ids only. Anything
/// else (`~`, `$VAR`, `#`, `{`, `;`, a `%…:…` pair, spaces) is quoted.
fn is_safe_unquoted(s: &str) -> bool {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_.,=+/-".contains(&b);
    let is_id = |s: &str| {
        s.len() > 1
            && b"%@$".contains(&s.as_bytes()[0])
            && s[1..].bytes().all(|b| b.is_ascii_digit())
    };
    !s.is_empty() && (s.bytes().all(plain) || is_id(s))
}

fn is_command_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

fn is_flag(s: &str) -> bool {
    s.len() > 1 && s.starts_with('-') && s[1..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// One tmux command, always a single non-blank line without LF or NUL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Command {
    name: &'static str,
    line: String,
    error: Option<CommandError>,
}

impl Command {
    /// Starts a command; `name` is a constant such as `"send-keys"`.
    pub fn new(name: &'static str) -> Command {
        let mut cmd = Command {
            name,
            line: String::new(),
            error: None,
        };
        if is_command_name(name) {
            cmd.line.push_str(name);
        } else {
            cmd.fail(CommandError::InvalidConstant(name));
            cmd.line.push_str("''");
        }
        cmd
    }

    /// Appends a constant flag such as `"-p"` or `"-l"`.
    pub fn flag(mut self, flag: &'static str) -> Command {
        self.push_flag(flag);
        self
    }

    /// Appends a constant flag and its value, for ids, numbers and other
    /// validated values. The value is written bare when it is a plain word or
    /// an id, quoted otherwise; a value with control bytes is recorded as an
    /// error (the client then refuses the command).
    pub fn flag_value(mut self, flag: &'static str, value: impl fmt::Display) -> Command {
        if self.push_flag(flag) {
            self.push_value(&value.to_string(), forbidden_in_data);
        }
        self
    }

    /// Appends user data as one single-quoted argument. Rejects C0 control
    /// bytes other than TAB (LF and NUL cannot be carried at all).
    pub fn arg_quoted(mut self, data: &str) -> Result<Command, CommandError> {
        check_bytes(data, forbidden_in_data)?;
        self.line.push(' ');
        push_quoted(&mut self.line, data);
        Ok(self)
    }

    /// Appends `--`: everything after it is an argument, never a flag.
    pub fn end_of_flags(mut self) -> Command {
        self.line.push_str(" --");
        self
    }

    /// Appends a constant argument such as `"Enter"`. It is passed as exactly
    /// one argument: written bare when it is a plain word, quoted otherwise.
    pub fn arg_raw_static(mut self, arg: &'static str) -> Command {
        self.push_value(arg, forbidden_in_data);
        self
    }

    /// Appends `send-keys -l` data: single-quoted, allowing every control
    /// byte except LF and NUL (measured exact on tmux 3.3a, see `input.rs`).
    pub(crate) fn arg_keys(mut self, keys: &str) -> Command {
        self.push_value_quoted(keys, forbidden_in_keys);
        self
    }

    /// Appends one `send-keys -H` hex token per byte (`0a 00 ff`).
    pub(crate) fn args_hex(mut self, bytes: &[u8]) -> Command {
        for b in bytes {
            self.line.push_str(&format!(" {b:02x}"));
        }
        self
    }

    /// The command line, without a trailing newline.
    pub fn as_str(&self) -> &str {
        &self.line
    }

    /// The command name given to [`Command::new`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The first building mistake recorded in this command, if any.
    pub fn check(&self) -> Result<(), CommandError> {
        self.error.clone().map_or(Ok(()), Err)
    }

    fn fail(&mut self, error: CommandError) {
        self.error.get_or_insert(error);
    }

    fn push_flag(&mut self, flag: &'static str) -> bool {
        if !is_flag(flag) {
            self.fail(CommandError::InvalidConstant(flag));
            return false;
        }
        self.line.push(' ');
        self.line.push_str(flag);
        true
    }

    fn push_value(&mut self, value: &str, forbidden: fn(u8) -> bool) {
        if is_safe_unquoted(value) {
            self.line.push(' ');
            self.line.push_str(value);
        } else {
            self.push_value_quoted(value, forbidden);
        }
    }

    fn push_value_quoted(&mut self, value: &str, forbidden: fn(u8) -> bool) {
        self.line.push(' ');
        match check_bytes(value, forbidden) {
            Ok(()) => push_quoted(&mut self.line, value),
            Err(e) => {
                self.fail(e);
                self.line.push_str("''");
            }
        }
    }
}

fn check_bytes(s: &str, forbidden: fn(u8) -> bool) -> Result<(), CommandError> {
    match s.bytes().find(|&b| forbidden(b)) {
        Some(byte) => Err(CommandError::ForbiddenByte { byte }),
        None => Ok(()),
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// One or more commands written as one line, joined with ` ; `: tmux answers
/// with one reply block per command, unless an error stops the rest.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommandLine {
    commands: Vec<Command>,
}

impl CommandLine {
    /// Appends another command to the line.
    pub fn then(mut self, command: Command) -> CommandLine {
        self.commands.push(command);
        self
    }

    /// Number of commands, which is the number of reply blocks expected
    /// unless an error stops the rest.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// Always false: a command line holds at least one command.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The commands on this line.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The first building mistake in any of the commands, if any.
    pub fn check(&self) -> Result<(), CommandError> {
        self.commands.iter().try_for_each(Command::check)
    }

    /// The line as written to tmux, without the trailing newline.
    pub fn to_line(&self) -> String {
        let parts: Vec<&str> = self.commands.iter().map(Command::as_str).collect();
        parts.join(" ; ")
    }
}

impl From<Command> for CommandLine {
    fn from(command: Command) -> CommandLine {
        CommandLine {
            commands: vec![command],
        }
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
