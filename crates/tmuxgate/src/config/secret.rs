//! [`Secret`]: a string that never shows itself in logs, `Debug`, `Display`,
//! `tmuxgate config` output or JSON.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

/// What every rendering of a secret prints.
pub const MASK: &str = "***";

/// A password or token. Only [`Secret::expose`] gives the value back.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The actual value, for the one place that must send it (e.g. Redis `AUTH`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Lets clap parse `--redis-password` straight into a `Secret`, so even the
/// parsed command line's `Debug` stays masked.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(value: &str) -> Result<Secret, Infallible> {
        Ok(Secret::new(value))
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_json_are_masked() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        let json = serde_json::to_string(&secret).expect("serialize");
        assert_eq!(json, "\"***\"");
    }

    #[test]
    fn expose_returns_the_value() {
        let secret: Secret = "hunter2".parse().unwrap_or_else(|never| match never {});
        assert_eq!(secret.expose(), "hunter2");
    }
}
