//! Unit and property tests for `input.rs`.

use super::*;
use crate::test_lex::lex;
use proptest::prelude::*;

/// What tmux would deliver to the pane for these commands (reference model).
fn delivered(commands: &[Command]) -> Vec<u8> {
    let mut out = Vec::new();
    for cmd in commands {
        assert_eq!(cmd.check(), Ok(()));
        let words = lex(cmd.as_str());
        assert_eq!(&words[..3], ["send-keys", "-t", "%1"]);
        match words[3].as_str() {
            "-l" => {
                assert_eq!(words[4], "--");
                assert_eq!(words.len(), 6);
                out.extend_from_slice(words[5].as_bytes());
            }
            "-H" => {
                assert!(words.len() - 4 <= HEX_CHUNK_MAX_BYTES);
                out.extend(
                    words[4..]
                        .iter()
                        .map(|h| u8::from_str_radix(h, 16).unwrap()),
                );
            }
            other => panic!("unexpected flag {other}"),
        }
    }
    out
}

fn encode(bytes: &[u8]) -> Vec<Command> {
    let mut out = Vec::new();
    encode_input(PaneId(1), bytes, &mut out);
    out
}

#[test]
fn a_keystroke_is_one_command() {
    for key in [
        &b"a"[..],
        b"\r",
        b"\x1b[A",
        b"\x7f",
        b"\x03",
        "é".as_bytes(),
        b"\n",
        b"\0",
    ] {
        assert_eq!(encode(key).len(), 1, "{key:?}");
    }
    assert_eq!(encode(b"\r")[0].as_str(), "send-keys -t %1 -l -- '\r'");
    assert_eq!(encode(b"\n")[0].as_str(), "send-keys -t %1 -H 0a");
    assert_eq!(encode(b"ls\n")[0].as_str(), "send-keys -t %1 -H 6c 73 0a");
}

#[test]
fn nothing_gives_no_command() {
    assert!(encode(b"").is_empty());
}

#[test]
fn text_pastes_are_few_commands() {
    let paste = "let x = 'quoted';\r".repeat(1000);
    let commands = encode(paste.as_bytes());
    assert!(commands.len() <= 7, "{}", commands.len());
    assert_eq!(delivered(&commands), paste.as_bytes());
}

#[test]
fn invalid_utf8_and_lf_go_as_hex() {
    let input = b"hello world, long enough\n\xff\xc3(more text after it here)";
    let commands = encode(input);
    assert_eq!(commands.len(), 3);
    assert!(commands[1].as_str().ends_with("-H 0a ff c3"));
    assert_eq!(delivered(&commands), input);
}

proptest! {
    #[test]
    fn any_bytes_are_delivered_exactly(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        prop_assert_eq!(delivered(&encode(&bytes)), bytes);
    }

    #[test]
    fn any_text_is_delivered_exactly(s in "(\\PC|[\\x00-\\x1f'])*") {
        prop_assert_eq!(delivered(&encode(s.as_bytes())), s.as_bytes());
    }
}
