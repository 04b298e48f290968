//! The tmux configuration of gateway-owned servers: written to a file for local servers
//! (`tmux -f`), sent as commands to SSH backends (started with `-f /dev/null`).

use std::path::PathBuf;

use tmux_control::Command;

use super::{BackendError, BackendSettings};

/// One option: whether it is a server option (`-s`, else global session/window `-g`), its
/// name and value.
type Setting = (bool, &'static str, String);

/// - `exit-empty off`: the server outlives its last session, so the admin connection stays.
/// - `remain-on-exit off`: a pane whose program exits closes, so sessions end with their shell.
/// - `allow-rename off`, `status off`: what the browser shows is the pane, nothing else.
/// - `default-command` only when given (`DEFAULT_COMMAND` or the integrated shell);
///   otherwise the login shell.
/// - `window-size latest`: the most recent client to set a size wins (see docs/protocol.md
///   for how the gateway maps that onto its viewers).
fn settings(history_limit: u32, default_command: Option<&str>) -> Vec<Setting> {
    let mut all: Vec<Setting> = [
        (false, "exit-empty", "off"),
        (false, "remain-on-exit", "off"),
        (false, "allow-rename", "off"),
        (false, "status", "off"),
        (false, "window-size", "latest"),
        (false, "default-terminal", "screen-256color"),
        (false, "destroy-unattached", "off"),
        (false, "focus-events", "off"),
        (true, "escape-time", "0"),
    ]
    .into_iter()
    .map(|(server, name, value)| (server, name, value.to_owned()))
    .collect();
    all.push((false, "history-limit", history_limit.to_string()));
    if let Some(command) = default_command {
        all.push((false, "default-command", command.to_owned()));
    }
    all
}

/// Writes `tmux.conf` into the backend directory and returns its path.
pub fn write(settings: &BackendSettings) -> Result<PathBuf, BackendError> {
    let path = settings.dir.join("tmux.conf");
    let mut text = String::new();
    for (server, name, value) in
        self::settings(settings.history_limit, settings.default_command.as_deref())
    {
        let scope = if server { "-s" } else { "-g" };
        // Single-quoted: nothing inside is special to tmux's parser.
        text.push_str(&format!(
            "set {scope} {name} {}\n",
            tmux_control::quote(&value)
        ));
    }
    super::shell::write_private(&path, text.as_bytes()).map_err(|source| {
        BackendError::SocketDir {
            path: path.clone(),
            source,
        }
    })?;
    Ok(path)
}

/// The same options as `set-option` commands, with `default_command` for the far side.
pub fn commands(
    history_limit: u32,
    default_command: Option<&str>,
) -> Result<Vec<Command>, BackendError> {
    settings(history_limit, default_command)
        .into_iter()
        .map(|(server, name, value)| {
            Ok(Command::new("set-option")
                .flag(if server { "-s" } else { "-g" })
                .arg_raw_static(name)
                .arg_quoted(&value)?)
        })
        .collect()
}
