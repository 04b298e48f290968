//! [`PolicyError`]: why a policy file could not be loaded. Messages name the place in the
//! file (`roles.operator.programs.git.args[2]`) so an operator can fix it.

use std::io;
use std::path::PathBuf;

/// A policy that cannot be used. Loading never half-succeeds: the previous policy (or
/// the built-in one) stays in force.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type (with line and column).
    #[error("invalid policy: {0}")]
    Toml(#[from] toml::de::Error),
    /// A regular expression that does not compile.
    #[error("{place}: invalid pattern `{pattern}`: {source}")]
    Pattern {
        /// Where in the file.
        place: String,
        /// The pattern as written.
        pattern: String,
        /// The regex error.
        source: Box<regex::Error>,
    },
    /// A program that is not an executable file, or cannot be found through `PATH`.
    #[error("{place}: {reason}")]
    Program {
        /// Where in the file.
        place: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other value the policy cannot use (a relative root, a dangerous variable name).
    #[error("{place}: {reason}")]
    Invalid {
        /// Where in the file.
        place: String,
        /// What is wrong.
        reason: String,
    },
}

impl PolicyError {
    pub(crate) fn invalid(place: impl Into<String>, reason: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            place: place.into(),
            reason: reason.into(),
        }
    }
}
