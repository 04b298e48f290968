//! What [`Policy::check`](super::Policy::check) answers: [`Verdict`], with the validated
//! command ([`Approved`]) or the reason it was refused ([`Refusal`]), and the
//! redirections a rule may allow ([`Redirect`]).

use std::fmt;
use std::path::PathBuf;

/// The answer to one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The command may run; type [`Approved::line`] into the pane.
    Allowed(Approved),
    /// The command must not run; tell the client [`Refusal::code`] and the message.
    Refused(Refusal),
}

impl Verdict {
    /// The approved command, if allowed.
    pub fn allowed(&self) -> Option<&Approved> {
        match self {
            Verdict::Allowed(approved) => Some(approved),
            Verdict::Refused(_) => None,
        }
    }

    /// The refusal, if refused.
    pub fn refused(&self) -> Option<&Refusal> {
        match self {
            Verdict::Allowed(_) => None,
            Verdict::Refused(refusal) => Some(refusal),
        }
    }
}

/// A command the policy allows, ready to type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approved {
    /// The validated words as parsed; `argv[0]` as the client wrote it.
    pub argv: Vec<String>,
    /// The absolute path the policy resolved `argv[0]` to (the first word of `line`).
    pub program: PathBuf,
    /// Allowed `NAME=value` assignments, in the order written.
    pub env: Vec<(String, String)>,
    /// Allowed redirections, in the order written.
    pub redirects: Vec<Redirect>,
    /// The canonical line: assignments, program path and arguments, redirections, every
    /// value single-quoted; only printable characters, no line break.
    pub line: String,
    /// The rule that allowed it, `role/program` (for the audit log).
    pub rule: String,
}

/// Why a command was refused. Safe to show to the client and to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// A stable machine-readable code, e.g. `command-substitution` (docs/policy.md).
    pub code: &'static str,
    /// A human sentence naming the construct and where it is.
    pub message: String,
    /// Byte offset in the command of the offending construct, when there is one.
    pub position: Option<usize>,
}

impl Refusal {
    /// A refusal that is about the command as a whole.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            position: None,
        }
    }

    /// A refusal naming `what` at byte `byte` of `input` (also given in characters).
    pub(crate) fn at(
        code: &'static str,
        what: impl fmt::Display,
        input: &str,
        byte: usize,
    ) -> Refusal {
        let chars = input.get(..byte).map_or(byte, |head| head.chars().count());
        Refusal {
            code,
            message: format!("{what} at byte {byte} (character {chars})"),
            position: Some(byte),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One allowed redirection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// Which stream and how.
    pub op: RedirectOp,
    /// The target as the client wrote it.
    pub target: String,
    /// The resolved absolute target (this is what the canonical line names).
    pub path: PathBuf,
}

/// The redirections a rule can allow; every other form is always refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
pub enum RedirectOp {
    /// `<` (or `0<`): standard input from a file.
    #[serde(rename = "<")]
    Stdin,
    /// `>` (or `1>`): standard output to a file, truncating it.
    #[serde(rename = ">")]
    Stdout,
    /// `>>` (or `1>>`): standard output appended to a file.
    #[serde(rename = ">>")]
    StdoutAppend,
    /// `2>`: standard error to a file, truncating it.
    #[serde(rename = "2>")]
    Stderr,
    /// `2>>`: standard error appended to a file.
    #[serde(rename = "2>>")]
    StderrAppend,
}

impl RedirectOp {
    /// The operator as written in the canonical line and in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectOp::Stdin => "<",
            RedirectOp::Stdout => ">",
            RedirectOp::StdoutAppend => ">>",
            RedirectOp::Stderr => "2>",
            RedirectOp::StderrAppend => "2>>",
        }
    }
}

impl fmt::Display for RedirectOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
