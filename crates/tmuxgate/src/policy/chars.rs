//! Character classes for the command scanner: which characters may never appear in a
//! command (controls, invisible and bidi formatting, Unicode spaces, private use), and
//! the shell's active characters outside quotes. One place, so the scanner, the canonical
//! line and the fuzz invariants agree on what "printable" means.

/// Why one character is refused wherever it appears (even inside single quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadChar {
    /// NUL: cannot be passed in an argument at all.
    Nul,
    /// LF or CR: would end the typed line and start another command.
    Newline,
    /// Any other C0 or C1 control character or DEL (escape sequences, readline keys).
    Control,
    /// Bidirectional overrides and marks: the displayed text differs from the bytes.
    Bidi,
    /// Zero-width and other invisible formatting characters (`Cf`), soft hyphen, BOM.
    Invisible,
    /// Line and paragraph separators (`Zl`, `Zp`).
    LineSeparator,
    /// A space other than U+0020: looks like a word separator but is not one to bash.
    UnicodeSpace,
    /// Private-use characters and noncharacters: no agreed meaning or glyph.
    PrivateUse,
}

impl BadChar {
    /// The refusal code for this class.
    pub(crate) fn code(self) -> &'static str {
        match self {
            BadChar::Nul => "nul",
            BadChar::Newline => "newline",
            BadChar::Control => "control-char",
            BadChar::Bidi => "bidi-control",
            BadChar::Invisible => "invisible-char",
            BadChar::LineSeparator => "line-separator",
            BadChar::UnicodeSpace => "unicode-space",
            BadChar::PrivateUse => "private-use",
        }
    }

    /// A short human description for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            BadChar::Nul => "a NUL byte",
            BadChar::Newline => "a line break",
            BadChar::Control => "a control character",
            BadChar::Bidi => "a bidirectional text control",
            BadChar::Invisible => "an invisible formatting character",
            BadChar::LineSeparator => "a Unicode line or paragraph separator",
            BadChar::UnicodeSpace => "a non-ASCII space",
            BadChar::PrivateUse => "a private-use or noncharacter code point",
        }
    }
}

/// Classifies `c`; `None` for characters allowed inside a word. Tab is reported as
/// [`BadChar::Control`]: the scanner accepts it only as a separator between words.
pub(crate) fn classify(c: char) -> Option<BadChar> {
    let u = c as u32;
    match u {
        0 => Some(BadChar::Nul),
        0x0A | 0x0D => Some(BadChar::Newline),
        0x01..=0x1F | 0x7F..=0x9F => Some(BadChar::Control),
        0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069 => Some(BadChar::Bidi),
        0x2028 | 0x2029 => Some(BadChar::LineSeparator),
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Some(BadChar::UnicodeSpace),
        _ if is_invisible(u) => Some(BadChar::Invisible),
        _ if is_private_or_nonchar(u) => Some(BadChar::PrivateUse),
        _ => None,
    }
}

/// Format characters (`Cf`) and other invisible code points. Not the full Unicode table:
/// the ones in use in text, plus whole blocks that only hold such characters.
fn is_invisible(u: u32) -> bool {
    matches!(
        u,
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200D
            | 0x2060..=0x2065
            | 0x206A..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Private-use areas and the Unicode noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF).
fn is_private_or_nonchar(u: u32) -> bool {
    matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFDD0..=0xFDEF) || (u & 0xFFFE) == 0xFFFE
}

/// True if every character of `text` may appear in a canonical line.
pub(crate) fn all_printable(text: &str) -> bool {
    text.chars().all(|c| classify(c).is_none())
}

/// True if, outside single quotes, `line` has nothing bash acts on besides word
/// separators, `NAME=` assignments, the `'\''` idiom and the five simple redirection
/// operators: every value is inside single quotes.
pub(crate) fn unquoted_is_inert(line: &str) -> bool {
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            _ if quoted => {}
            '\\' if chars.peek() == Some(&'\'') => {
                chars.next();
            }
            ' ' | '=' | '<' | '>' | '_' => {}
            _ if c.is_ascii_alphanumeric() => {}
            _ => return false,
        }
    }
    !quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_the_issue_list() {
        assert_eq!(classify('\0'), Some(BadChar::Nul));
        assert_eq!(classify('\n'), Some(BadChar::Newline));
        assert_eq!(classify('\r'), Some(BadChar::Newline));
        assert_eq!(classify('\x1b'), Some(BadChar::Control));
        assert_eq!(classify('\u{7f}'), Some(BadChar::Control));
        assert_eq!(classify('\u{9b}'), Some(BadChar::Control));
        for c in ['\u{202e}', '\u{2066}', '\u{200f}'] {
            assert_eq!(classify(c), Some(BadChar::Bidi), "{c:?}");
        }
        for c in ['\u{200b}', '\u{2060}', '\u{feff}', '\u{ad}', '\u{e0041}'] {
            assert_eq!(classify(c), Some(BadChar::Invisible), "{c:?}");
        }
        assert_eq!(classify('\u{2028}'), Some(BadChar::LineSeparator));
        assert_eq!(classify('\u{3000}'), Some(BadChar::UnicodeSpace));
        assert_eq!(classify('\u{e000}'), Some(BadChar::PrivateUse));
        assert_eq!(classify('\u{fffe}'), Some(BadChar::PrivateUse));
    }

    #[test]
    fn ordinary_text_is_printable() {
        assert!(all_printable("héllo wörld ；｜＄ ес hо 漢字 🙂"));
        assert!(!all_printable("a\tb"));
    }

    #[test]
    fn inert_lines_keep_everything_in_quotes() {
        assert!(unquoted_is_inert(
            "A='1' '/bin/echo' 'it'\\''s' > '/tmp/x' 2>> '/tmp/y'"
        ));
        assert!(!unquoted_is_inert("'/bin/echo' $x"));
        assert!(!unquoted_is_inert("'/bin/echo' 'a"));
        assert!(!unquoted_is_inert("'/bin/echo';x"));
    }
}
