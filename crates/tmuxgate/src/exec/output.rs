//! A command's output as the program gets it: the pane bytes between its `C` and `D` marks,
//! with the terminal's line endings undone, optionally without escape sequences, capped.

/// The text of a command's output.
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    /// UTF-8 text (invalid sequences become U+FFFD).
    pub text: String,
    /// Whether bytes were left out: over the cap, or no longer in the pane log.
    pub truncated: bool,
}

/// Turns raw pane bytes into the answer's text.
///
/// - `\r\n` becomes `\n` (the terminal's `onlcr` added the `\r`);
/// - with `strip_ansi`, escape sequences (CSI, OSC, DCS and the like, two-byte `ESC x`) and
///   other control characters but `\n` and `\t` go;
/// - at most `max_bytes` of text are kept, cut at a character boundary.
pub fn render(raw: &[u8], strip_ansi: bool, max_bytes: usize, lost: bool) -> Output {
    let mut bytes = Vec::with_capacity(raw.len().min(max_bytes + 4));
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        if strip_ansi {
            if b == 0x1b {
                i += escape_len(&raw[i..]);
                continue;
            }
            if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
                i += 1;
                continue;
            }
        }
        bytes.push(b);
        i += 1;
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let mut truncated = lost;
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        truncated = true;
    }
    Output { text, truncated }
}

/// Length of the escape sequence at the start of `s` (which starts with ESC); an
/// unterminated one runs to the end.
fn escape_len(s: &[u8]) -> usize {
    match s.get(1) {
        None => 1,
        // CSI: parameters and intermediates, then one final byte in 0x40..=0x7e.
        Some(b'[') => s[2..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
            .map_or(s.len(), |p| p + 3),
        // OSC, DCS, SOS, PM, APC: up to BEL or ST (ESC \).
        Some(b']' | b'P' | b'X' | b'^' | b'_') => {
            let mut j = 2;
            while j < s.len() {
                match s[j] {
                    0x07 => return j + 1,
                    0x1b if s.get(j + 1) == Some(&b'\\') => return j + 2,
                    _ => j += 1,
                }
            }
            s.len()
        }
        // Character set designations take one more byte.
        Some(b'(' | b')' | b'*' | b'+' | b'#' | b'%') => 3.min(s.len()),
        Some(_) => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_undone_and_text_kept() {
        let out = render("hi\r\nné 漢字\r\n".as_bytes(), false, 1024, false);
        assert_eq!(out.text, "hi\nné 漢字\n");
        assert!(!out.truncated);
        // A lone CR (a progress bar) stays without stripping.
        assert_eq!(render(b"a\rb", false, 10, false).text, "a\rb");
    }

    #[test]
    fn escape_sequences_are_stripped_on_request() {
        let raw = b"\x1b[1;31mred\x1b[0m \x1b]0;title\x07x\x1b]8;;u\x1b\\y\x1b(Bz\x1bM\x08\r\n";
        assert_eq!(render(raw, true, 1024, false).text, "red xyz\n");
        assert_eq!(render(b"\x1b[", true, 10, false).text, "");
        let kept = render(raw, false, 1024, false).text;
        assert!(kept.contains("\x1b[1;31m"));
    }

    #[test]
    fn the_cap_cuts_at_a_character_and_says_so() {
        let out = render("ééé".as_bytes(), false, 3, false);
        assert_eq!((out.text.as_str(), out.truncated), ("é", true));
        assert!(render(b"ok", false, 10, true).truncated, "lost bytes count");
        assert_eq!(render(&[0xff, b'a'], false, 10, false).text, "\u{fffd}a");
    }
}
