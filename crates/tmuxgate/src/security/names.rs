//! [`UserName`] and [`RoleName`]: identifiers checked once, where they enter (the users
//! file, the roles file, a token, the command line), so every later use can trust them.
//! Both are short, lower-case ASCII: safe in logs, file keys and tmux user options.

use std::fmt;
use std::str::FromStr;

/// Longest user or role name, in bytes.
pub const MAX_NAME_BYTES: usize = 32;

/// A name that breaks the rules of [`UserName`] or [`RoleName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {shown:?}: {rule}")]
pub struct InvalidName {
    kind: &'static str,
    /// The name, cut to a few characters: it may be anything a client sent.
    shown: String,
    rule: &'static str,
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $first:expr, $rest:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidName;

            fn from_str(text: &str) -> Result<$name, InvalidName> {
                let valid = text.len() <= MAX_NAME_BYTES
                    && text.chars().next().is_some_and($first)
                    && text.chars().skip(1).all($rest);
                match valid {
                    true => Ok($name(text.to_owned())),
                    false => Err(InvalidName {
                        kind: $kind,
                        shown: text.chars().take(MAX_NAME_BYTES + 1).collect(),
                        rule: $rule,
                    }),
                }
            }
        }

        /// Honours width and alignment (`{:<16}`), for tables.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn lower_or_underscore(c: char) -> bool {
    c.is_ascii_lowercase() || c == '_'
}

fn user_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

fn role_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')
}

name_type!(
    /// A user name: `[a-z_][a-z0-9_.-]{0,31}` (the POSIX-portable login name style).
    UserName,
    "user",
    lower_or_underscore,
    user_char,
    "1-32 characters of a-z 0-9 _ . -, starting with a-z or _"
);

name_type!(
    /// A role name: `[a-z][a-z0-9_-]{0,31}`.
    RoleName,
    "role",
    |c: char| c.is_ascii_lowercase(),
    role_char,
    "1-32 characters of a-z 0-9 _ -, starting with a-z"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_the_pattern() {
        for good in ["admin", "_svc", "a", "ci.bot-2", &"a".repeat(32)] {
            assert!(good.parse::<UserName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "Admin",
            "1st",
            ".x",
            "-x",
            "a b",
            "é",
            "a/b",
            &"a".repeat(33),
        ] {
            assert!(bad.parse::<UserName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn role_names_follow_the_pattern() {
        assert!("ops-team_2".parse::<RoleName>().is_ok());
        for bad in ["", "_x", "a.b", "Admin"] {
            assert!(bad.parse::<RoleName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_show_only_a_bounded_prefix() {
        let long = "X".repeat(10_000);
        let message = long.parse::<UserName>().err().map(|e| e.to_string());
        assert!(message.is_some_and(|m| m.len() < 200));
    }

    #[test]
    fn serde_checks_the_pattern() {
        let parsed: Result<UserName, _> = serde_json::from_str("\"ok_name\"");
        assert_eq!(parsed.ok().as_ref().map(UserName::as_str), Some("ok_name"));
        assert!(serde_json::from_str::<UserName>("\"Bad Name\"").is_err());
    }
}
