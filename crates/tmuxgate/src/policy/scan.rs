//! The command scanner: splits a command into plain words and simple redirections the
//! way bash would, quote-aware, and refuses every other construct with a reason naming
//! it and its position. Only what is left (literal words) reaches the rules; the word
//! values are then re-read with `shell-words` and must agree (defence in depth).
//!
//! Accepted: words separated by spaces or tabs made of plain characters, backslash
//! escapes, `'single'` and `"double"` quotes (without `$`, backquote or `!` inside), and
//! the redirections `<`, `>`, `>>`, `2>`, `2>>` followed by a word. The rules decide
//! later whether assignments and redirections are allowed.

use super::chars;
use super::verdict::{RedirectOp, Refusal};

/// One word: its value after quote removal and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    /// The value bash would pass.
    pub value: String,
    /// Byte offset of the word's first character.
    pub start: usize,
    /// Byte offset just past the word's last character.
    pub end: usize,
    /// True if the word is written `NAME=...` with `NAME` unquoted (an assignment
    /// before the program, an ordinary argument after it).
    pub assignment: bool,
}

/// One redirection as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawRedirect {
    /// The operator.
    pub op: RedirectOp,
    /// Byte offset of the operator.
    pub start: usize,
    /// The target word.
    pub target: Word,
}

/// A scanned command: words in order, redirections apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// Every word that is not a redirection target.
    pub words: Vec<Word>,
    /// Redirections in order.
    pub redirects: Vec<RawRedirect>,
}

/// Scans `input`; refuses the first construct that is not a plain word.
pub(crate) fn scan(input: &str) -> Result<Scanned, Refusal> {
    let mut scanner = Scanner {
        input,
        chars: input.char_indices().collect(),
        i: 0,
    };
    let mut scanned = Scanned::default();
    while scanner.skip_separators() {
        let start = scanner.pos();
        if matches!(scanner.peek(0), Some('<' | '>')) {
            let redirect = scanner.redirect(None, start)?;
            cross_check(input, &redirect.target)?;
            scanned.redirects.push(redirect);
            continue;
        }
        let word = scanner.word()?;
        let raw = &input[word.start..word.end];
        let fd = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
        if fd && matches!(scanner.peek(0), Some('<' | '>')) {
            let redirect = scanner.redirect(Some(raw), start)?;
            cross_check(input, &redirect.target)?;
            scanned.redirects.push(redirect);
        } else {
            cross_check(input, &word)?;
            scanned.words.push(word);
        }
    }
    Ok(scanned)
}

/// The word's value must be what `shell_words` makes of its raw text.
fn cross_check(input: &str, word: &Word) -> Result<(), Refusal> {
    match shell_words::split(&input[word.start..word.end]) {
        Ok(values) if values.len() == 1 && values[0] == word.value => Ok(()),
        _ => Err(Refusal::at(
            "ambiguous",
            "a word the reference parser reads differently",
            input,
            word.start,
        )),
    }
}

struct Scanner<'a> {
    input: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
}

impl Scanner<'_> {
    fn pos(&self) -> usize {
        self.chars
            .get(self.i)
            .map_or(self.input.len(), |&(at, _)| at)
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).map(|&(_, c)| c)
    }

    fn refuse(&self, code: &'static str, what: &str) -> Refusal {
        Refusal::at(code, what, self.input, self.pos())
    }

    /// Skips spaces and tabs; false at the end of the input.
    fn skip_separators(&mut self) -> bool {
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.i += 1;
        }
        self.peek(0).is_some()
    }

    /// Refuses a character that may appear nowhere.
    fn check_char(&self, c: char) -> Result<(), Refusal> {
        match chars::classify(c) {
            None => Ok(()),
            Some(bad) => Err(self.refuse(bad.code(), bad.describe())),
        }
    }

    /// One word, up to an unquoted separator, `<` or `>`, or the end.
    fn word(&mut self) -> Result<Word, Refusal> {
        let start = self.pos();
        if self.peek(0) == Some('#') {
            return Err(self.refuse("comment", "a comment (`#` at the start of a word)"));
        }
        let mut value = String::new();
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '<' | '>' => break,
                '\'' => self.single_quoted(&mut value)?,
                '"' => self.double_quoted(&mut value)?,
                '\\' => self.escaped(&mut value)?,
                _ => {
                    self.unquoted_char(c, value.is_empty() && self.pos() == start)?;
                    value.push(c);
                    self.i += 1;
                }
            }
        }
        let end = self.pos();
        let assignment = is_assignment(&self.input[start..end]);
        Ok(Word {
            value,
            start,
            end,
            assignment,
        })
    }

    /// Refuses an unquoted character that bash would act on.
    fn unquoted_char(&self, c: char, at_word_start: bool) -> Result<(), Refusal> {
        self.check_char(c)?;
        let next = self.peek(1);
        let refusal = match c {
            '$' => dollar(next, self.peek(2)),
            '`' => ("command-substitution", "a backquote command substitution"),
            '|' if next == Some('|') => ("or-list", "an `||` list"),
            '|' => ("pipe", "a pipe `|`"),
            '&' if next == Some('&') => ("and-list", "an `&&` list"),
            '&' if next == Some('>') => ("redirection", "an `&>` redirection"),
            '&' => ("background", "a background `&`"),
            ';' => ("command-separator", "a command separator `;`"),
            '*' | '?' | '+' | '@' | '!' if next == Some('(') => {
                ("extglob", "an extended glob pattern")
            }
            '(' | ')' => ("subshell", "a parenthesis (subshell or grouping)"),
            '*' | '?' | '[' | ']' => ("glob", "a glob character"),
            '{' | '}' if at_word_start && matches!(next, None | Some(' ' | '\t')) => {
                ("group", "a `{ }` command group")
            }
            '{' | '}' => ("brace-expansion", "a brace expansion character"),
            '~' => ("tilde", "a tilde expansion `~`"),
            '!' => ("history-expansion", "a history expansion `!`"),
            _ => return Ok(()),
        };
        Err(self.refuse(refusal.0, refusal.1))
    }

    /// `'...'`: everything literal up to the next `'`.
    fn single_quoted(&mut self, value: &mut String) -> Result<(), Refusal> {
        let open = self.pos();
        self.i += 1;
        loop {
            match self.peek(0) {
                None => return Err(unterminated(self.input, open, "single")),
                Some('\'') => break,
                Some(c) => {
                    self.check_char(c)?;
                    value.push(c);
                    self.i += 1;
                }
            }
        }
        self.i += 1;
        Ok(())
    }

    /// `"..."`: literal except `\` before `$`, backquote, `"`, `\`; refuses `$`,
    /// backquote and `!`.
    fn double_quoted(&mut self, value: &mut String) -> Result<(), Refusal> {
        let open = self.pos();
        self.i += 1;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(unterminated(self.input, open, "double"));
            };
            let next = self.peek(1);
            match c {
                '"' => break,
                '\\' if next == Some('\n') => return Err(self.backslash_newline()),
                '\\' if matches!(next, Some('$' | '`' | '"' | '\\')) => self.i += 1,
                '$' if next == Some('"') => return Err(self.refuse("dollar", "a `$` sign")),
                '$' => {
                    let (code, what) = dollar(next, self.peek(2));
                    return Err(self.refuse(code, &format!("{what} inside double quotes")));
                }
                '`' => {
                    return Err(
                        self.refuse("command-substitution", "a backquote inside double quotes")
                    );
                }
                '!' => return Err(self.refuse("history-expansion", "a `!` inside double quotes")),
                _ => self.check_char(c)?,
            }
            if let Some(c) = self.peek(0) {
                value.push(c);
            }
            self.i += 1;
        }
        self.i += 1;
        Ok(())
    }

    /// An unquoted `\x`: the character `x`, literally.
    fn escaped(&mut self, value: &mut String) -> Result<(), Refusal> {
        match self.peek(1) {
            None => Err(self.refuse(
                "trailing-backslash",
                "a backslash at the end of the command",
            )),
            Some('\n') => Err(self.backslash_newline()),
            Some(c) => {
                self.i += 1;
                self.check_char(c)?;
                value.push(c);
                self.i += 1;
                Ok(())
            }
        }
    }

    fn backslash_newline(&self) -> Refusal {
        self.refuse("backslash-newline", "a backslash-newline line continuation")
    }

    /// A redirection operator at the cursor, `fd` the digits written before it.
    fn redirect(&mut self, fd: Option<&str>, start: usize) -> Result<RawRedirect, Refusal> {
        let op = self.redirect_op(fd)?;
        if !self.skip_separators() || matches!(self.peek(0), Some('<' | '>')) {
            return Err(self.refuse("redirection", "a redirection without a target"));
        }
        let target = self.word()?;
        Ok(RawRedirect { op, start, target })
    }

    /// Reads the operator itself; every form but the five simple ones is refused.
    fn redirect_op(&mut self, fd: Option<&str>) -> Result<RedirectOp, Refusal> {
        let first = self.peek(0);
        let second = self.peek(1);
        let refused = match (first, second) {
            (_, Some('(')) => Some(("process-substitution", "a process substitution")),
            (Some('<'), Some('<')) if self.peek(2) == Some('<') => {
                Some(("here-string", "a here-string `<<<`"))
            }
            (Some('<'), Some('<')) => Some(("here-document", "a here-document `<<`")),
            (_, Some('&' | '|')) | (Some('<'), Some('>')) => Some((
                "redirection",
                "a descriptor-duplicating or clobbering redirection",
            )),
            _ => None,
        };
        if let Some((code, what)) = refused {
            return Err(self.refuse(code, what));
        }
        let append = first == Some('>') && second == Some('>');
        let op = match (first, fd, append) {
            (Some('<'), None | Some("0"), _) => RedirectOp::Stdin,
            (Some('>'), None | Some("1"), false) => RedirectOp::Stdout,
            (Some('>'), None | Some("1"), true) => RedirectOp::StdoutAppend,
            (Some('>'), Some("2"), false) => RedirectOp::Stderr,
            (Some('>'), Some("2"), true) => RedirectOp::StderrAppend,
            _ => return Err(self.refuse("redirection", "a redirection of another file descriptor")),
        };
        self.i += if append { 2 } else { 1 };
        Ok(op)
    }
}

/// The code and description for a `$` followed by `next` and `after`.
fn dollar(next: Option<char>, after: Option<char>) -> (&'static str, &'static str) {
    match next {
        Some('(') if after == Some('(') => ("arithmetic-expansion", "a `$((` arithmetic expansion"),
        Some('(') => ("command-substitution", "a `$(` command substitution"),
        Some('[') => ("arithmetic-expansion", "a `$[` arithmetic expansion"),
        Some('{') => ("parameter-expansion", "a `${` parameter expansion"),
        Some('\'') => ("ansi-c-quoting", "an ANSI-C quote `$'`"),
        Some('"') => ("locale-quoting", "a locale quote `$\"`"),
        Some(c) if c.is_ascii_alphanumeric() || "_@*#?-$!".contains(c) => {
            ("variable-expansion", "a `$` variable expansion")
        }
        _ => ("dollar", "a `$` sign"),
    }
}

fn unterminated(input: &str, open: usize, kind: &str) -> Refusal {
    Refusal::at(
        "unterminated-quote",
        format!("an unterminated {kind} quote"),
        input,
        open,
    )
}

/// `NAME=` at the start of the raw text, `NAME` a shell identifier.
fn is_assignment(raw: &str) -> bool {
    let Some((name, _)) = raw.split_once('=') else {
        return false;
    };
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}
