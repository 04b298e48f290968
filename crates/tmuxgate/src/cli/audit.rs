//! `tmuxgate audit verify FILE...`: checks an audit log's hash chain (docs/audit.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::audit::verify::{Verified, VerifyError, verify_files};

/// Exit code when the chain is broken or a file unreadable.
const EXIT_BROKEN: u8 = 1;

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log; several files are one chain, oldest first
    ///
    /// Exit status: 0 when every line links to the one before it, 1 with the first
    /// broken line (FILE:LINE) and why: edited, deleted, reordered, not JSON.
    Verify {
        /// Audit files, oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl)
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The files must hold the log from its first line (seq 0): lines cut off the start
        /// are found
        #[arg(long)]
        from_start: bool,
        /// The last line must have this seq (the gateway's tmuxgate_audit_last_seq, or a
        /// figure kept elsewhere): lines cut off the end are found
        #[arg(long, value_name = "SEQ")]
        last_seq: Option<u64>,
        /// The last line must have this hash (printed by an earlier verify, kept elsewhere):
        /// an edited or replaced last line is found
        #[arg(long, value_name = "HEX")]
        last_hash: Option<String>,
    },
}

/// What the chain alone cannot show: where it must start and end.
struct Expected {
    from_start: bool,
    last_seq: Option<u64>,
    last_hash: Option<String>,
}

impl Expected {
    /// Why `verified` is not the log expected, if it is not.
    fn mismatch(&self, verified: &Verified) -> Option<String> {
        if self.from_start && verified.first_seq.is_some_and(|first| first != 0) {
            let first = verified.first_seq.unwrap_or_default();
            return Some(format!(
                "the first line has seq {first}, not 0: lines were cut off the start (or older files were not given)"
            ));
        }
        if let Some(seq) = self.last_seq
            && verified.last_seq != Some(seq)
        {
            let last = verified.last_seq.map_or("none".into(), |s| s.to_string());
            return Some(format!(
                "the last line has seq {last}, not {seq}: lines were cut off the end"
            ));
        }
        if let Some(hash) = &self.last_hash
            && verified.last_hash.as_deref() != Some(hash.to_ascii_lowercase().as_str())
        {
            return Some(
                "the last line's hash is not the one expected: it was edited or replaced, or lines were cut off the end".into(),
            );
        }
        None
    }
}

impl AuditCommand {
    /// Runs it: the verdict on stdout when intact, on stderr when not.
    pub fn run(self) -> ExitCode {
        let AuditCommand::Verify {
            files,
            from_start,
            last_seq,
            last_hash,
        } = self;
        let expected = Expected {
            from_start,
            last_seq,
            last_hash,
        };
        match verify_files(&files) {
            Ok(verified) => match expected.mismatch(&verified) {
                None => {
                    println!("ok: {verified}");
                    ExitCode::SUCCESS
                }
                Some(why) => {
                    eprintln!("broken: {why} ({verified})");
                    ExitCode::from(EXIT_BROKEN)
                }
            },
            Err(error @ VerifyError::Broken { .. }) => {
                eprintln!("broken: {error}");
                ExitCode::from(EXIT_BROKEN)
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(EXIT_BROKEN)
            }
        }
    }
}
