//! Scanner tests: every refused construct, in each quoting context, gives its code and
//! position; plain words in every quoting style give bash's values.

use super::scan::{Word, scan};
use super::verdict::RedirectOp;

fn values(input: &str) -> Vec<String> {
    let scanned = scan(input).unwrap_or_else(|refusal| panic!("{input:?} refused: {refusal}"));
    scanned.words.into_iter().map(|word| word.value).collect()
}

fn code(input: &str) -> &'static str {
    match scan(input) {
        Ok(scanned) => panic!("{input:?} accepted as {scanned:?}"),
        Err(refusal) => refusal.code,
    }
}

#[test]
fn plain_words_in_every_quoting_style() {
    assert_eq!(values("echo hello world"), ["echo", "hello", "world"]);
    assert_eq!(
        values("  echo\t'a b'  \"c d\" e\\ f "),
        ["echo", "a b", "c d", "e f"]
    );
    assert_eq!(
        values("echo '$(x)' '`y`' ';|&' '*?[]{}~!#'"),
        ["echo", "$(x)", "`y`", ";|&", "*?[]{}~!#"]
    );
    assert_eq!(
        values(r#"echo "a\"b" "c\\d" "e\f" 'it'\''s'"#),
        ["echo", "a\"b", "c\\d", "e\\f", "it's"]
    );
    assert_eq!(
        values(r"echo \$HOME \; \| \* \~"),
        ["echo", "$HOME", ";", "|", "*", "~"]
    );
    assert_eq!(
        values("echo '' \"\" a#b x=y"),
        ["echo", "", "", "a#b", "x=y"]
    );
    assert_eq!(
        values("echo ； ｜ ＄ 漢字 -- -n"),
        ["echo", "；", "｜", "＄", "漢字", "--", "-n"]
    );
}

#[test]
fn assignments_are_marked_only_when_unquoted() {
    let scanned = scan("A=1 'B'=2 C_1='x y' echo D=4").expect("scans");
    let marks: Vec<bool> = scanned
        .words
        .iter()
        .map(|word: &Word| word.assignment)
        .collect();
    assert_eq!(marks, [true, false, true, false, true]);
    assert_eq!(scanned.words[2].value, "C_1=x y");
}

#[test]
fn simple_redirections_are_parsed() {
    let scanned = scan("echo a >out 2>> 'e r' <in b 1>o1 0<i0 >>app").expect("scans");
    let ops: Vec<(RedirectOp, &str)> = scanned
        .redirects
        .iter()
        .map(|r| (r.op, r.target.value.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            (RedirectOp::Stdout, "out"),
            (RedirectOp::StderrAppend, "e r"),
            (RedirectOp::Stdin, "in"),
            (RedirectOp::Stdout, "o1"),
            (RedirectOp::Stdin, "i0"),
            (RedirectOp::StdoutAppend, "app"),
        ]
    );
    let words: Vec<&str> = scanned.words.iter().map(|w| w.value.as_str()).collect();
    assert_eq!(words, ["echo", "a", "b"]);
}

#[test]
fn every_construct_has_its_code() {
    let cases: &[(&str, &str)] = &[
        ("echo $(id)", "command-substitution"),
        ("echo \"$(id)\"", "command-substitution"),
        ("echo `id`", "command-substitution"),
        ("echo \"`id`\"", "command-substitution"),
        ("echo $((1+2))", "arithmetic-expansion"),
        ("echo $[1+2]", "arithmetic-expansion"),
        ("cat <(id)", "process-substitution"),
        ("echo >(id)", "process-substitution"),
        ("echo $HOME", "variable-expansion"),
        ("echo \"$HOME\"", "variable-expansion"),
        ("echo $1 ", "variable-expansion"),
        ("echo $@", "variable-expansion"),
        ("echo ${HOME}", "parameter-expansion"),
        ("echo \"${x:-y}\"", "parameter-expansion"),
        ("echo $", "dollar"),
        ("echo \"a$\"", "dollar"),
        ("echo $'\\x41'", "ansi-c-quoting"),
        ("echo $\"hi\"", "locale-quoting"),
        ("echo a | id", "pipe"),
        ("echo a || id", "or-list"),
        ("echo a; id", "command-separator"),
        ("echo a && id", "and-list"),
        ("echo a & id", "background"),
        ("echo a &> f", "redirection"),
        ("echo a 2>&1", "redirection"),
        ("echo a >| f", "redirection"),
        ("echo a <> f", "redirection"),
        ("echo a 3> f", "redirection"),
        ("echo a >", "redirection"),
        ("cat << EOF", "here-document"),
        ("cat <<< x", "here-string"),
        ("(id)", "subshell"),
        ("echo a)", "subshell"),
        ("{ id; }", "group"),
        ("echo {a,b}", "brace-expansion"),
        ("echo {1..3}", "brace-expansion"),
        ("echo *", "glob"),
        ("echo a?", "glob"),
        ("echo [ab]", "glob"),
        ("echo @(a|b)", "extglob"),
        ("echo +(a)", "extglob"),
        ("echo !(a)", "extglob"),
        ("echo ~", "tilde"),
        ("echo a=~/x", "tilde"),
        ("echo !!", "history-expansion"),
        ("echo \"a!b\"", "history-expansion"),
        ("echo #comment", "comment"),
        ("# id", "comment"),
        ("echo a\\\nb", "backslash-newline"),
        ("echo \"a\\\nb\"", "backslash-newline"),
        ("echo a\nid", "newline"),
        ("echo a\rid", "newline"),
        ("echo 'a\nb'", "newline"),
        ("echo a\0", "nul"),
        ("echo \x1b[31m", "control-char"),
        ("echo '\u{7f}'", "control-char"),
        ("echo \"\u{9b}\"", "control-char"),
        ("echo 'a\tb'", "control-char"),
        ("echo \\\t", "control-char"),
        ("echo \u{202e}di", "bidi-control"),
        ("echo '\u{2066}'", "bidi-control"),
        ("echo a\u{200b}", "invisible-char"),
        ("echo '\u{feff}'", "invisible-char"),
        ("echo \"\u{ad}\"", "invisible-char"),
        ("echo a\u{2060}", "invisible-char"),
        ("echo \u{2028}", "line-separator"),
        ("echo a\u{a0}b", "unicode-space"),
        ("echo \u{e000}", "private-use"),
        ("echo 'abc", "unterminated-quote"),
        ("echo \"abc", "unterminated-quote"),
        ("echo abc\\", "trailing-backslash"),
    ];
    for (input, expected) in cases {
        assert_eq!(code(input), *expected, "{input:?}");
    }
}

#[test]
fn refusals_name_the_position_in_bytes_and_characters() {
    let refusal = scan("echo é $(id)").unwrap_err();
    assert_eq!(refusal.position, Some(8));
    assert!(
        refusal.message.contains("byte 8 (character 7)"),
        "{}",
        refusal.message
    );
    assert!(
        refusal.message.contains("command substitution"),
        "{}",
        refusal.message
    );
}

#[test]
fn single_quotes_make_everything_literal_except_bad_characters() {
    let all = "'$(touch /tmp/x) `id` ${a} $((1)) <(x) | ; && & > < ( ) { } * ? [ ] ~ ! # \\ \"'";
    assert_eq!(values(&format!("echo {all}"))[1], &all[1..all.len() - 1]);
}
