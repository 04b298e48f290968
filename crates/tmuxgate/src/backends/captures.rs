//! Where snapshot captures are written and read back.
//!
//! tmux writes a capture buffer to a file (`save-buffer`); the gateway reads the file and
//! removes it. Captures never travel on the control stream, where pane text could forge
//! protocol lines (docs/architecture.md). For local servers the files are in the gateway's
//! private capture directory; for SSH backends they are in the far side's tmux socket
//! directory and come back over the SSH connection.

use std::path::PathBuf;
use std::sync::Arc;

use super::remote::Ssh;

/// A backend's capture location.
#[derive(Clone, Debug)]
pub enum Captures {
    /// The gateway's private directory.
    Local(PathBuf),
    /// A private directory on the SSH backend's host.
    Remote {
        /// The connection.
        ssh: Arc<Ssh>,
        /// The far side's directory (absolute).
        dir: String,
    },
}

impl Captures {
    /// The path tmux should write capture `name` to.
    pub fn path(&self, name: &str) -> String {
        match self {
            Captures::Local(dir) => dir.join(name).to_string_lossy().into_owned(),
            Captures::Remote { dir, .. } => format!("{dir}/{name}"),
        }
    }

    /// Reads and removes every capture in `names` (all of them, even after an error): each
    /// one's bytes, or `None` where tmux wrote nothing.
    pub async fn take(&self, names: &[String]) -> Result<Vec<Option<Vec<u8>>>, std::io::Error> {
        match self {
            Captures::Local(dir) => {
                let mut read = Vec::with_capacity(names.len());
                for name in names {
                    read.push(read_and_remove(&dir.join(name)).await);
                }
                read.into_iter().collect()
            }
            Captures::Remote { ssh, dir } => ssh.fetch(dir, names).await,
        }
    }
}

async fn read_and_remove(file: &std::path::Path) -> Result<Option<Vec<u8>>, std::io::Error> {
    match tokio::fs::read(file).await {
        Ok(bytes) => {
            tokio::fs::remove_file(file).await?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
