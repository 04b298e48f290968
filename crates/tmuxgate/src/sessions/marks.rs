//! Shell-integration marks (OSC 133) in a pane's output: where the shell is, as it says.
//!
//! The shell the gateway starts in its sessions (see `backends/shell.rs`) prints
//! `ESC ] 133 ; A` before its prompt, `B` after it, `C` when a command line starts running,
//! `D ; status` when it finished, and the gateway's own `P ; n=LEN` when asked how long the
//! line being edited is. Every mark ends with `; tg=NONCE`, the backend's secret, so output
//! that merely contains such sequences (a file being printed, a test fixture) is ignored.
//! Terminals ignore OSC 133 (or use it for prompt navigation), so the marks stay in the
//! stream that viewers receive: nothing is stripped.
//!
//! The scanner runs on the tmux reader for every `%output` of a pane, so it only looks at
//! bytes after an `ESC`, and keeps at most one partial mark between reads.

/// Where the pane's shell is, as far as its marks tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShellState {
    /// No mark seen since the view was created: anything could be running.
    Unknown,
    /// Printing its prompt (`A` seen, `B` not yet).
    PromptStart,
    /// At the prompt, reading a line (`B`).
    Prompt,
    /// Running a command line (`C`).
    Running,
    /// The command line finished (`D`); the next prompt is coming.
    Finished,
}

/// A command line the executor typed, and what the marks said about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    /// The number of the command line (`Marks::commands` after its `C`).
    pub command: u64,
    /// Output start: the offset just after its `C`.
    pub start: Option<u64>,
    /// Output end (the offset of its `D`) and the exit status.
    pub done: Option<(u64, i32)>,
}

/// Everything the marks of one pane said so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marks {
    /// The shell's state.
    pub state: ShellState,
    /// Command lines started (`C` marks).
    pub commands: u64,
    /// Probe answers received (`P` marks) and the length of the line in the last one.
    pub probes: u64,
    /// Length of the line being edited, in the last probe answer.
    pub probe_len: u64,
    /// The command line the executor is waiting for.
    pub claim: Option<Claim>,
}

impl Default for Marks {
    fn default() -> Self {
        Marks {
            state: ShellState::Unknown,
            commands: 0,
            probes: 0,
            probe_len: 0,
            claim: None,
        }
    }
}

/// A mark, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    PromptStart,
    Prompt,
    Running,
    Finished(i32),
    Probe(u64),
}

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const PREFIX: &[u8] = b"\x1b]133;";

/// Longest mark body accepted (the letter, a status, a length and the nonce fit easily):
/// anything longer is not ours, and a partial mark kept between reads stays this small.
const MAX_MARK_BYTES: usize = 96;

/// Longest mark sequence: prefix, body, `ESC \\`.
const MAX_SEQUENCE_BYTES: usize = PREFIX.len() + MAX_MARK_BYTES + 2;

/// Finds marks in a stream of output bytes, for one pane.
#[derive(Debug, Default)]
pub struct Scanner {
    /// The start of a mark cut by the end of the last read.
    carry: Vec<u8>,
    marks: Marks,
}

impl Scanner {
    /// The marks so far.
    pub fn marks(&self) -> Marks {
        self.marks
    }

    /// Mutable access, for the executor's claim.
    pub fn marks_mut(&mut self) -> &mut Marks {
        &mut self.marks
    }

    /// Scans `data`, which starts at log offset `at`. Returns whether a mark was seen.
    pub fn scan(&mut self, nonce: &str, data: &[u8], at: u64) -> bool {
        let mut seen = false;
        let mut from = 0;
        if !self.carry.is_empty() {
            // The carried bytes precede `at`. Marks that start in them (at their first byte,
            // or at an `ESC` the previous read ended with) are completed from this read.
            let carried = self.carry.len();
            let need = MAX_SEQUENCE_BYTES.min(data.len());
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&data[..need]);
            let base = at - carried as u64;
            let mut pos = 0;
            while pos < carried {
                let Some(i) = memchr::memchr(ESC, &joined[pos..carried]) else {
                    break;
                };
                let start = pos + i;
                match parse(&joined[start..]) {
                    Parsed::Mark(mark, len, body) => {
                        if has_nonce(body, nonce) {
                            let begin = base + start as u64;
                            self.apply(mark, begin, begin + len as u64);
                            seen = true;
                        }
                        pos = start + len;
                    }
                    // Still cut short: all of this read is in the carry now.
                    Parsed::Partial if need == data.len() => {
                        self.carry = joined[start..].to_vec();
                        return seen;
                    }
                    Parsed::Partial | Parsed::NotMark => pos = start + 1,
                }
            }
            from = pos.saturating_sub(carried);
        }
        while let Some(i) = memchr::memchr(ESC, &data[from..]) {
            let start = from + i;
            match parse(&data[start..]) {
                Parsed::Mark(mark, len, body) => {
                    if has_nonce(body, nonce) {
                        let begin = at + start as u64;
                        self.apply(mark, begin, begin + len as u64);
                        seen = true;
                    }
                    from = start + len;
                }
                Parsed::Partial => {
                    self.carry = data[start..].to_vec();
                    break;
                }
                Parsed::NotMark => from = start + 1,
            }
        }
        seen
    }

    fn apply(&mut self, mark: Mark, begin: u64, end: u64) {
        let m = &mut self.marks;
        match mark {
            Mark::PromptStart => m.state = ShellState::PromptStart,
            Mark::Prompt => m.state = ShellState::Prompt,
            Mark::Running => {
                m.state = ShellState::Running;
                m.commands += 1;
                if let Some(claim) = m.claim.as_mut().filter(|c| c.command == m.commands) {
                    claim.start = Some(end);
                }
            }
            Mark::Finished(status) => {
                let was_running = m.state == ShellState::Running;
                m.state = ShellState::Finished;
                if let Some(claim) = m.claim.as_mut()
                    && was_running
                    && claim.command == m.commands
                    && claim.start.is_some()
                {
                    claim.done = Some((begin, status));
                }
            }
            Mark::Probe(len) => {
                m.probes += 1;
                m.probe_len = len;
            }
        }
    }
}

enum Parsed<'a> {
    /// A complete mark: what it says, its length in bytes, its body.
    Mark(Mark, usize, &'a [u8]),
    /// The bytes end inside what could still become a mark.
    Partial,
    NotMark,
}

/// Parses a mark at the start of `bytes` (which start with `ESC`).
fn parse(bytes: &[u8]) -> Parsed<'_> {
    let n = bytes.len().min(PREFIX.len());
    if bytes[..n] != PREFIX[..n] {
        return Parsed::NotMark;
    }
    if n < PREFIX.len() {
        return Parsed::Partial;
    }
    let rest = &bytes[PREFIX.len()..];
    let limit = rest.len().min(MAX_MARK_BYTES);
    let Some(end) = rest[..limit].iter().position(|&b| b == BEL || b == ESC) else {
        return match rest.len() < MAX_MARK_BYTES {
            true => Parsed::Partial,
            false => Parsed::NotMark,
        };
    };
    let body = &rest[..end];
    let terminator = match rest[end] {
        BEL => 1,
        _ => match rest.get(end + 1) {
            Some(b'\\') => 2,
            Some(_) => return Parsed::NotMark,
            None => return Parsed::Partial,
        },
    };
    match mark_of(body) {
        Some(mark) => Parsed::Mark(mark, PREFIX.len() + end + terminator, body),
        None => Parsed::NotMark,
    }
}

fn mark_of(body: &[u8]) -> Option<Mark> {
    let text = std::str::from_utf8(body).ok()?;
    let mut params = text.split(';');
    let mark = match params.next()? {
        "A" => Mark::PromptStart,
        "B" => Mark::Prompt,
        "C" => Mark::Running,
        "D" => Mark::Finished(params.next()?.parse().ok()?),
        "P" => Mark::Probe(params.next()?.strip_prefix("n=")?.parse().ok()?),
        _ => return None,
    };
    Some(mark)
}

/// Whether the mark's last parameter is `tg=NONCE`.
fn has_nonce(body: &[u8], nonce: &str) -> bool {
    let Some(i) = body.iter().rposition(|&b| b == b';') else {
        return false;
    };
    let last = &body[i + 1..];
    last.strip_prefix(b"tg=") == Some(nonce.as_bytes())
}

#[cfg(test)]
#[path = "marks_tests.rs"]
mod tests;
