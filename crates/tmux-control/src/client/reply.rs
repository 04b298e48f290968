//! Replies to commands and the client's error type.

use std::io;

use crate::command::CommandError;

/// The output of one command: the lines between `%begin` and `%end`/`%error`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Output lines, raw bytes without `\n` (tmux does not escape them).
    pub lines: Vec<Vec<u8>>,
    /// True when the block ended with `%error`.
    pub error: bool,
}

impl Block {
    /// The lines joined with `\n`, invalid UTF-8 replaced; for logs and
    /// small answers such as `display -p` results.
    pub fn text_lossy(&self) -> String {
        let joined = self.lines.join(&b'\n');
        String::from_utf8_lossy(&joined).into_owned()
    }
}

/// The blocks answering one [`crate::CommandLine`], one per command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The blocks, in command order.
    pub blocks: Vec<Block>,
}

impl Reply {
    /// The only block, for a single command: `Error::Command` if it failed,
    /// `Error::Protocol` if there is not exactly one block.
    pub fn single(self) -> Result<Block, Error> {
        self.check()?;
        let count = self.blocks.len();
        let mut blocks = self.blocks.into_iter();
        match (blocks.next(), blocks.next()) {
            (Some(block), None) => Ok(block),
            _ => Err(Error::Protocol(format!(
                "expected one reply block, got {count}"
            ))),
        }
    }

    /// `Error::Command` with tmux's message if any block is an error.
    ///
    /// Replies returned by [`crate::ControlClient::command`] already passed
    /// this check: a failed command is returned as `Err(Error::Command)`.
    pub fn check(&self) -> Result<(), Error> {
        match self.blocks.iter().find(|b| b.error) {
            Some(block) => Err(Error::Command {
                message: block.text_lossy(),
            }),
            None => Ok(()),
        }
    }
}

/// Everything that can go wrong talking to tmux.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tmux client process could not be started.
    #[error("cannot start tmux: {0}")]
    Spawn(#[source] io::Error),
    /// An I/O error talking to the tmux client. Failures after start-up end
    /// the connection and reach every waiting command as `Exited`, with the
    /// I/O error as the reason.
    #[error("tmux control connection i/o failed: {0}")]
    Io(#[source] io::Error),
    /// The control connection ended (`%exit`, EOF, or a failed attach).
    #[error("tmux control connection ended{}", reason_suffix(.reason))]
    Exited {
        /// tmux's `%exit` reason or its stderr, when there was one.
        reason: Option<String>,
    },
    /// tmux answered with `%error`; the text is for logs only.
    #[error("tmux command failed: {message}")]
    Command {
        /// tmux's error message.
        message: String,
    },
    /// tmux's output broke the protocol; the connection was closed.
    #[error("tmux control protocol violation: {0}")]
    Protocol(String),
    /// tmux did not answer in time (or too many commands are outstanding).
    #[error("tmux did not answer in time")]
    Timeout,
    /// The command was built with invalid parts and was not sent.
    #[error(transparent)]
    Build(#[from] CommandError),
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_ref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(lines: &[&str], error: bool) -> Block {
        Block {
            lines: lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
            error,
        }
    }

    #[test]
    fn single_and_check() {
        let ok = Reply {
            blocks: vec![block(&["a", "b"], false)],
        };
        assert_eq!(ok.check().ok(), Some(()));
        assert_eq!(ok.single().unwrap().text_lossy(), "a\nb");

        let failed = Reply {
            blocks: vec![block(&[], false), block(&["bad"], true)],
        };
        assert!(matches!(failed.check(), Err(Error::Command { message }) if message == "bad"));
        let two = Reply {
            blocks: vec![block(&[], false), block(&[], false)],
        };
        assert!(matches!(two.single(), Err(Error::Protocol(_))));
    }

    #[test]
    fn exited_displays_its_reason() {
        let e = Error::Exited {
            reason: Some("server exited unexpectedly".into()),
        };
        assert_eq!(
            e.to_string(),
            "tmux control connection ended: server exited unexpectedly"
        );
        assert_eq!(
            Error::Exited { reason: None }.to_string(),
            "tmux control connection ended"
        );
    }
}
