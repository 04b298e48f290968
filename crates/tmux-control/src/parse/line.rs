//! Classifying control-mode lines: reply guards, notifications, the rest.

use super::Notification;
use super::notification::split_word;

/// The fields of a `%begin`, `%end` or `%error` line: `T N F`.
///
/// T is the time the command started, N a server-wide command number and F
/// is 1 for commands this client wrote (0 for the attach's own block, hooks
/// and other commands run on its behalf). A block's end carries the same
/// three values as its begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Seconds since the epoch when the command started.
    pub time: i64,
    /// The server-wide command number.
    pub number: u32,
    /// 1 when this client wrote the command, else 0.
    pub flags: u32,
}

impl Guard {
    /// Whether the command was written by this client (F = 1).
    pub fn is_ours(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// Which guard line a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardKind {
    /// `%begin`: a reply block opens.
    Begin,
    /// `%end`: the block closes, the command succeeded.
    End,
    /// `%error`: the block closes, the command failed.
    Error,
}

/// One control-mode line, classified without any block context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// `%begin T N F`.
    Begin(Guard),
    /// `%end T N F`.
    End(Guard),
    /// `%error T N F`.
    Error(Guard),
    /// A well-formed known notification.
    Notification(Notification),
    /// Anything else: reply content, unknown or malformed `%` lines.
    Other(&'a [u8]),
}

impl<'a> Line<'a> {
    /// Classifies one line (without its `\n`).
    pub fn classify(line: &'a [u8]) -> Line<'a> {
        if let Some((kind, guard)) = parse_guard(line) {
            return match kind {
                GuardKind::Begin => Line::Begin(guard),
                GuardKind::End => Line::End(guard),
                GuardKind::Error => Line::Error(guard),
            };
        }
        match Notification::parse(line) {
            Some(n) => Line::Notification(n),
            None => Line::Other(line),
        }
    }
}

/// Parses `%begin|%end|%error T N F` with exactly three decimal fields.
pub fn parse_guard(line: &[u8]) -> Option<(GuardKind, Guard)> {
    let (word, rest) = split_word(line);
    let kind = match word {
        b"%begin" => GuardKind::Begin,
        b"%end" => GuardKind::End,
        b"%error" => GuardKind::Error,
        _ => return None,
    };
    let (time, rest) = split_word(rest);
    let (number, flags) = split_word(rest);
    let guard = Guard {
        time: i64::try_from(decimal(time)?).ok()?,
        number: u32::try_from(decimal(number)?).ok()?,
        flags: u32::try_from(decimal(flags)?).ok()?,
    };
    Some((kind, guard))
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PaneId;
    use proptest::prelude::*;

    #[test]
    fn classifies_guards() {
        let g = Guard {
            time: 1795871954,
            number: 269,
            flags: 1,
        };
        assert_eq!(Line::classify(b"%begin 1795871954 269 1"), Line::Begin(g));
        assert_eq!(Line::classify(b"%end 1795871954 269 1"), Line::End(g));
        assert_eq!(Line::classify(b"%error 1795871954 269 1"), Line::Error(g));
        assert!(g.is_ours());
    }

    #[test]
    fn malformed_guards_are_other() {
        for line in [
            &b"%end 1 2"[..],
            b"%end 1 2 1 4",
            b"%end  1 2 1",
            b"%end 1 2 -1",
            b"%end 1 99999999999 1",
            b"%end a b c",
            b"%endx 1 2 1",
        ] {
            assert_eq!(Line::classify(line), Line::Other(line));
        }
    }

    #[test]
    fn classifies_notifications_and_text() {
        assert_eq!(
            Line::classify(b"%pause %1"),
            Line::Notification(Notification::Pause { pane: PaneId(1) })
        );
        assert_eq!(Line::classify(b"hello"), Line::Other(b"hello"));
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Line::classify(&line);
        }

        #[test]
        fn guards_round_trip(time in 0i64..i64::MAX, number: u32, flags in 0u32..2) {
            let line = format!("%end {time} {number} {flags}");
            prop_assert_eq!(Line::classify(line.as_bytes()), Line::End(Guard { time, number, flags }));
        }
    }
}
