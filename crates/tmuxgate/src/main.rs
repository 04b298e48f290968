//! The `tmuxgate` binary: parse the command line, run it, map the outcome to
//! an exit code. 0: success; 1: invalid configuration or runtime failure
//! (message on stderr); 2: usage error (clap) or, for `health`, no answer.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use tmuxgate::cli::Invocation;

#[tokio::main]
async fn main() -> ExitCode {
    let invocation = Invocation::from_env();
    match invocation.run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
