//! `tmuxgate audit verify`: checks the hash chain of one audit file, or of a rotated set
//! given oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`), and names the first
//! line that breaks it and how.
//!
//! Each line must be a JSON object with a `seq` and a `prevHash`. A line's `prevHash`
//! must be the SHA-256 of the previous line's bytes and its `seq` one more than the
//! previous `seq`; the first line checked, when its `seq` is 0, must carry the genesis
//! hash. Which of the two links fails tells what happened:
//!
//! | `prevHash` | `seq` | verdict |
//! |---|---|---|
//! | matches | +1 | intact |
//! | matches | other | this line was edited |
//! | differs | +1 | the previous line was edited |
//! | differs | jumps ahead | lines were deleted (or moved) before this one |
//! | differs | same or lower | lines were reordered or duplicated |
//!
//! What a chain cannot show on its own: lines cut off the end of the newest file, or off
//! the start of the oldest one given (rotation drops old files on purpose). Compare the
//! last `seq` with `tmuxgate_audit_last_seq` or the gateway's "audit log closed" line.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::line::Chain;

/// A chain that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Lines checked.
    pub lines: u64,
    /// `seq` of the first line (0: the log's start; more: older files not given).
    pub first_seq: Option<u64>,
    /// `seq` of the last line.
    pub last_seq: Option<u64>,
    /// SHA-256 of the last line: where the chain stands.
    pub last_hash: Option<String>,
}

/// Why a set of files is not an intact chain.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The first line that breaks the chain.
    #[error("{}:{line}: {reason}", path.display())]
    Broken {
        /// The file.
        path: PathBuf,
        /// Its line number, from 1.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => {
                write!(f, "{} lines, seq {first}..={last}, intact", self.lines)?;
                if first > 0 {
                    write!(
                        f,
                        " (starts after seq {}: older files not given)",
                        first - 1
                    )?;
                }
                if let Some(hash) = &self.last_hash {
                    write!(f, "; last line's hash {hash}")?;
                }
                Ok(())
            }
            _ => write!(f, "no lines"),
        }
    }
}

/// The link from the previous line.
struct Previous {
    path: PathBuf,
    line: u64,
    chain: Chain,
}

/// Checks `paths`, oldest first, as one chain.
pub fn verify_files(paths: &[PathBuf]) -> Result<Verified, VerifyError> {
    let mut previous: Option<Previous> = None;
    let mut verified = Verified {
        lines: 0,
        first_seq: None,
        last_seq: None,
        last_hash: None,
    };
    for path in paths {
        let io = |source| VerifyError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        for (index, bytes) in BufReader::new(file).split(b'\n').enumerate() {
            let bytes = bytes.map_err(io)?;
            let line = index as u64 + 1;
            let seq = check_line(&bytes, previous.as_ref())
                .map_err(|(at, reason)| broken(path, line, at, previous.as_ref(), reason))?;
            verified.lines += 1;
            verified.first_seq.get_or_insert(seq);
            verified.last_seq = Some(seq);
            let chain = Chain::after(&bytes, seq);
            verified.last_hash = Some(chain.prev_hash.clone());
            previous = Some(Previous {
                path: path.clone(),
                line,
                chain,
            });
        }
    }
    Ok(verified)
}

/// Which line a verdict is about.
enum At {
    This,
    Previous,
}

fn broken(
    path: &Path,
    line: u64,
    at: At,
    previous: Option<&Previous>,
    reason: String,
) -> VerifyError {
    let (path, line) = match (at, previous) {
        (At::Previous, Some(p)) => (p.path.clone(), p.line),
        _ => (path.to_path_buf(), line),
    };
    VerifyError::Broken { path, line, reason }
}

/// Checks one line against the previous one; its `seq` when it holds.
fn check_line(bytes: &[u8], previous: Option<&Previous>) -> Result<u64, (At, String)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        (
            At::This,
            format!("not valid JSON ({e}): edited or corrupted"),
        )
    })?;
    let seq = value.get("seq").and_then(serde_json::Value::as_u64);
    let prev_hash = value.get("prevHash").and_then(serde_json::Value::as_str);
    let (Some(seq), Some(prev_hash)) = (seq, prev_hash) else {
        return Err((At::This, "no seq or prevHash: not an audit record".into()));
    };
    let Some(previous) = previous else {
        if seq == 0 && prev_hash != Chain::genesis().prev_hash {
            let reason = "seq 0 without the genesis hash: edited".to_owned();
            return Err((At::This, reason));
        }
        return Ok(seq);
    };
    let expected = &previous.chain;
    let linked = prev_hash == expected.prev_hash;
    let next = expected.next_seq;
    match (linked, seq == next) {
        (true, true) => Ok(seq),
        (true, false) => Err((
            At::This,
            format!("seq is {seq}, expected {next}: this line was edited"),
        )),
        (false, true) => Err((
            At::Previous,
            format!(
                "edited: its hash no longer matches the prevHash of the line after it (seq {seq})"
            ),
        )),
        (false, false) if seq > next => Err((
            At::This,
            format!(
                "seq jumps from {} to {seq}: {} line(s) deleted (or moved) before this one",
                next.saturating_sub(1),
                seq - next
            ),
        )),
        (false, false) => Err((
            At::This,
            format!(
                "seq {seq} after seq {}: lines reordered or duplicated",
                next.saturating_sub(1)
            ),
        )),
    }
}
