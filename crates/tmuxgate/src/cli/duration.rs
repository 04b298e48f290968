//! Human durations for the command line: `90s`, `15m`, `12h`, `30d`, `1h30m`.

use std::time::Duration;

/// Parses `text` as one or more `<number><unit>` parts, unit `s`, `m`, `h` or `d`.
/// A bare number is refused: `--ttl 3600` could mean seconds or milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: use e.g. 90s, 15m, 12h, 30d or 1h30m");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        let unit_secs = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(invalid()),
        };
        let part = number.checked_mul(unit_secs).ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
        rest = &rest[digits + 1..];
    }
    match total {
        0 => Err(format!("invalid duration {text:?}: must be longer than 0")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations() {
        let secs = |text| parse_duration(text).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("12h"), Ok(43_200));
        assert_eq!(secs("30d"), Ok(2_592_000));
        assert_eq!(secs("1h30m"), Ok(5400));
    }

    #[test]
    fn ambiguous_or_broken_durations_are_refused() {
        for bad in [
            "",
            "3600",
            "1x",
            "h",
            "-1h",
            "1.5h",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
