//! Decoding tmux's `%output` escaping.
//!
//! tmux writes bytes below 0x20 and the backslash as `\ooo` (three octal
//! digits); DEL and bytes from 0x80 arrive raw.

/// Decodes `\ooo` (exactly three octal digits, value at most 0o377) to the
/// byte; every other byte, including a backslash not followed by a valid
/// escape, is kept as is. Never panics.
pub fn decode_octal(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\\'
            && let Some(byte) = data.get(i + 1..i + 4).and_then(octal_byte)
        {
            out.push(byte);
            i += 4;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

fn octal_byte(digits: &[u8]) -> Option<u8> {
    let value = digits.iter().try_fold(0u32, |acc, &d| match d {
        b'0'..=b'7' => Some(acc * 8 + u32::from(d - b'0')),
        _ => None,
    })?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Escapes like tmux's control_append_data.
    fn tmux_escape(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in data {
            if b < 0x20 || b == b'\\' {
                out.extend_from_slice(format!("\\{b:03o}").as_bytes());
            } else {
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn decodes_escapes_and_keeps_the_rest() {
        assert_eq!(decode_octal(b"a\\015\\012\\134b"), b"a\r\n\\b");
        assert_eq!(decode_octal(b"\\\\01\\8xx\\"), b"\\\\01\\8xx\\");
        assert_eq!(decode_octal(b"\\400\\377"), b"\\400\xff");
        assert_eq!(decode_octal("\x7fé".as_bytes()), "\x7fé".as_bytes());
    }

    proptest! {
        #[test]
        fn round_trips_tmux_escaping(data in proptest::collection::vec(any::<u8>(), 0..500)) {
            prop_assert_eq!(decode_octal(&tmux_escape(&data)), data);
        }

        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_octal(&data);
        }
    }
}
