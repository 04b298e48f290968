//! The tmux configuration file of gateway-owned servers.

use std::path::PathBuf;

use super::{BackendError, BackendSettings};

/// Writes `tmux.conf` into the backend directory and returns its path.
///
/// - `exit-empty off`: the server outlives its last session, so the admin connection stays.
/// - `remain-on-exit off`: a pane whose program exits closes, so sessions end with their shell.
/// - `allow-rename off`, `status off`: what the browser shows is the pane, nothing else.
/// - `default-command` only when `DEFAULT_COMMAND` is set; otherwise the login shell.
/// - `window-size latest`: the most recent client to set a size wins (see docs/protocol.md
///   for how the gateway maps that onto its viewers).
pub fn write(settings: &BackendSettings) -> Result<PathBuf, BackendError> {
    let path = settings.dir.join("tmux.conf");
    let mut text = format!(
        "set -g exit-empty off\n\
         set -g remain-on-exit off\n\
         set -g allow-rename off\n\
         set -g status off\n\
         set -g history-limit {}\n\
         set -g window-size latest\n\
         set -g default-terminal screen-256color\n\
         set -g destroy-unattached off\n\
         set -g focus-events off\n\
         set -s escape-time 0\n",
        settings.history_limit
    );
    if let Some(command) = &settings.default_command {
        // Single-quoted: nothing inside is special to tmux's parser.
        text.push_str(&format!(
            "set -g default-command {}\n",
            tmux_control::quote(command)
        ));
    }
    std::fs::write(&path, text).map_err(|source| BackendError::SocketDir {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}
