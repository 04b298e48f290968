//! `tmuxgate audit verify FILE...`: checks an audit log's hash chain (docs/audit.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::audit::verify::{VerifyError, verify_files};

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
    },
}

impl AuditCommand {
    /// Runs it: the verdict on stdout when intact, on stderr when not.
    pub fn run(self) -> ExitCode {
        let AuditCommand::Verify { files } = self;
        match verify_files(&files) {
            Ok(verified) => {
                println!("ok: {verified}");
                ExitCode::SUCCESS
            }
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
