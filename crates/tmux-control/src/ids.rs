//! tmux's own object ids (`%7`, `@5`, `$3`) and validated object names.
//!
//! Ids are how the gateway refers to tmux objects: they are stable for the
//! lifetime of the object, never reused by a running server and, being a sigil
//! plus digits, are safe to put on a command line unquoted. Names are only
//! accepted in a strict alphabet because tmux expands formats such as `#(...)`
//! in some name arguments (see ../shared/notes/tmux-control-mode.md).

use std::fmt;
use std::str::FromStr;

/// Longest accepted [`Name`], in bytes.
pub const NAME_MAX_BYTES: usize = 64;

/// Longest input echoed back inside an [`IdError`], so errors stay log-sized.
const ERROR_ECHO_MAX_CHARS: usize = 32;

/// Why a string was not accepted as an id or a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not of the form sigil plus decimal digits fitting in `u32`.
    #[error("invalid tmux {kind} id {input:?}")]
    InvalidId {
        /// Which id was expected: `pane`, `window` or `session`.
        kind: &'static str,
        /// The rejected input (truncated).
        input: String,
    },
    /// Not 1 to 64 characters of `[A-Za-z0-9_-]`.
    #[error("invalid tmux name {input:?}: expected 1 to 64 of [A-Za-z0-9_-]")]
    InvalidName {
        /// The rejected input (truncated).
        input: String,
    },
}

fn echo(input: &str) -> String {
    input.chars().take(ERROR_ECHO_MAX_CHARS).collect()
}

/// Parses `digits` as a `u32` made only of ASCII digits (no sign, no spaces).
fn parse_digits(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

macro_rules! tmux_id {
    ($(#[$doc:meta])* $name:ident, $sigil:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub struct $name(pub u32);

        impl $name {
            /// The sigil tmux prints before the number.
            pub const SIGIL: char = $sigil;

            /// Parses raw bytes as printed by tmux (sigil plus digits).
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                match bytes.split_first() {
                    Some((&first, digits)) if u32::from(first) == u32::from($sigil) => {
                        parse_digits(digits).map($name)
                    }
                    _ => None,
                }
                .ok_or_else(|| IdError::InvalidId {
                    kind: $kind,
                    input: echo(&String::from_utf8_lossy(bytes)),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $sigil, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::from_bytes(s.as_bytes())
            }
        }
    };
}

tmux_id!(
    /// A pane id, printed by tmux as `%7`.
    PaneId, '%', "pane"
);
tmux_id!(
    /// A window id, printed by tmux as `@5`.
    WindowId, '@', "window"
);
tmux_id!(
    /// A session id, printed by tmux as `$3`.
    SessionId, '$', "session"
);

/// A validated tmux object name: 1 to 64 characters of `[A-Za-z0-9_-]`.
///
/// Nothing in this alphabet is special to the tmux parser or format expander,
/// so a `Name` can be used wherever tmux would expand `#(...)`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Name(String);

impl Name {
    /// Validates `s` as a name.
    pub fn new(s: &str) -> Result<Name, IdError> {
        let valid = (1..=NAME_MAX_BYTES).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Name(s.to_owned()))
        } else {
            Err(IdError::InvalidName { input: echo(s) })
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        Name::new(s)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_display_with_their_sigil() {
        assert_eq!(PaneId(7).to_string(), "%7");
        assert_eq!(WindowId(5).to_string(), "@5");
        assert_eq!(SessionId(3).to_string(), "$3");
    }

    #[test]
    fn ids_parse_exactly() {
        assert_eq!("%0".parse(), Ok(PaneId(0)));
        assert_eq!("@4294967295".parse(), Ok(WindowId(u32::MAX)));
        assert_eq!("$007".parse(), Ok(SessionId(7)));
        for bad in [
            "",
            "%",
            "7",
            "@7",
            "%-1",
            "%+1",
            " %1",
            "%1 ",
            "%4294967296",
            "%1a",
            "%١",
        ] {
            assert!(bad.parse::<PaneId>().is_err(), "{bad:?} accepted");
        }
        assert!("%1".parse::<SessionId>().is_err());
    }

    #[test]
    fn names_are_validated() {
        assert_eq!(
            Name::new("main_1-x").map(|n| n.to_string()),
            Ok("main_1-x".into())
        );
        assert!(Name::new(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a.b", "a:b", "#(x)", "é", "a\n", &"a".repeat(65)] {
            assert!(Name::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn pane_id_round_trips(n: u32) {
            prop_assert_eq!(PaneId(n).to_string().parse::<PaneId>(), Ok(PaneId(n)));
        }

        #[test]
        fn id_parsing_matches_the_pattern(s in "\\PC{0,12}") {
            let expected = s.strip_prefix('@').is_some_and(|d| {
                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && d.parse::<u32>().is_ok()
            });
            prop_assert_eq!(s.parse::<WindowId>().is_ok(), expected);
        }

        #[test]
        fn name_validation_matches_the_pattern(s in "[A-Za-z0-9_.:# -]{0,70}") {
            let expected = (1..=64).contains(&s.len())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            prop_assert_eq!(Name::new(&s).is_ok(), expected);
        }
    }
}
