//! Unit and property tests for `command.rs`.

use super::*;
use crate::PaneId;
use crate::test_lex::lex;
use proptest::prelude::*;

#[test]
fn quote_uses_the_single_quote_form() {
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), "'it'\\''s'");
    assert_eq!(quote("#(touch x) $HOME ~ ;"), "'#(touch x) $HOME ~ ;'");
}

#[test]
fn builds_a_send_keys_line() {
    let cmd = Command::new("send-keys")
        .flag_value("-t", PaneId(3))
        .flag("-l")
        .end_of_flags()
        .arg_quoted("-R")
        .unwrap();
    assert_eq!(cmd.as_str(), "send-keys -t %3 -l -- '-R'");
    assert_eq!(cmd.check(), Ok(()));
}

#[test]
fn unsafe_values_are_quoted_and_controls_recorded() {
    let cmd = Command::new("refresh-client").flag_value("-A", "%3:continue");
    assert_eq!(cmd.as_str(), "refresh-client -A '%3:continue'");
    let cmd = Command::new("display").flag_value("-t", "a\nb");
    assert_eq!(
        cmd.check(),
        Err(CommandError::ForbiddenByte { byte: b'\n' })
    );
    assert!(!cmd.as_str().contains('\n'));
    let cmd = Command::new("display").arg_raw_static("#{pane_id}");
    assert_eq!(lex(cmd.as_str()), ["display", "#{pane_id}"]);
}

#[test]
fn bad_constants_are_recorded() {
    assert!(Command::new("").check().is_err());
    assert!(!Command::new("").as_str().is_empty());
    assert!(Command::new("send keys").check().is_err());
    assert!(Command::new("x").flag("p").check().is_err());
    assert!(Command::new("x").flag("-p;").check().is_err());
}

#[test]
fn arg_quoted_rejects_controls_but_tab() {
    assert!(Command::new("x").arg_quoted("a\tb\u{7f}").is_ok());
    for b in (0u8..0x20).filter(|&b| b != b'\t') {
        let s = String::from(char::from(b));
        assert_eq!(
            Command::new("x").arg_quoted(&s).err(),
            Some(CommandError::ForbiddenByte { byte: b })
        );
    }
}

#[test]
fn command_lines_join_with_separators() {
    let line = CommandLine::from(Command::new("list-sessions")).then(
        Command::new("display")
            .flag("-p")
            .arg_quoted("x ; y")
            .unwrap(),
    );
    assert_eq!(line.len(), 2);
    assert!(!line.is_empty());
    assert_eq!(line.to_line(), "list-sessions ; display -p 'x ; y'");
}

proptest! {
    #[test]
    fn quote_round_trips(s in "[^\\x00-\\x08\\x0a-\\x1f]*") {
        prop_assert_eq!(lex(&quote(&s)), vec![s]);
    }

    #[test]
    fn arguments_stay_single_arguments(s in any::<String>()) {
        let cmd = Command::new("display").flag_value("-t", &s);
        let line = cmd.as_str().to_owned();
        prop_assert!(!line.contains('\n') && !line.contains('\0'));
        if cmd.check().is_ok() {
            prop_assert_eq!(lex(&line), vec!["display".to_owned(), "-t".to_owned(), s.clone()]);
        }
        match Command::new("display").arg_quoted(&s) {
            Ok(cmd) => prop_assert_eq!(lex(cmd.as_str()), vec!["display".to_owned(), s.clone()]),
            Err(_) => prop_assert!(s.bytes().any(|b| b < 0x20 && b != b'\t')),
        }
    }

    #[test]
    fn key_arguments_never_break_the_line(s in any::<String>()) {
        let cmd = Command::new("send-keys").flag("-l").end_of_flags().arg_keys(&s);
        prop_assert!(!cmd.as_str().contains('\n') && !cmd.as_str().trim().is_empty());
        prop_assert_eq!(cmd.check().is_ok(), !s.contains(['\n', '\0']));
    }
}
