//! The shell gateway-owned sessions run: bash with the gateway's own rc file, which prints
//! shell-integration marks (OSC 133, see `sessions/marks.rs`) and nothing of the user's.
//!
//! The rc file (`shell/bashrc` in the backend directory) makes command execution exact:
//! - no `~/.bashrc` or profile: no user aliases, functions or `PROMPT_COMMAND`;
//! - history expansion off (`!` in a typed line is literal), emacs editing, and readline set
//!   to take 8-bit input as characters (`convert-meta off`), so every printable character
//!   the gateway types lands in the line as itself, whatever the locale;
//! - `PS1` brackets the prompt with `A` and `B` and titles the pane `tmuxgate:ready:…`,
//!   `PS0` prints `C` and titles it busy, `PROMPT_COMMAND` prints `D;$?` first thing;
//! - a readline binding the gateway types (`\C-x\C-_`) answers the length of the line being
//!   edited (`P;n=LEN`), so a half-typed line is never appended to.
//!
//! Every mark carries the nonce, kept in `shell/nonce` so that sessions outlive gateway
//! restarts with marks the next gateway still recognises.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::BackendError;

/// The key sequence bound to the line-length probe (`C-x C-_`).
pub const PROBE_KEYS: &[u8] = b"\x18\x1f";

/// What the gateway needs to know about the shell its sessions run.
#[derive(Clone, Debug)]
pub struct ShellIntegration {
    /// The secret every mark ends with.
    pub nonce: Arc<str>,
    /// The pane title while the shell waits at its prompt.
    pub ready_title: Arc<str>,
    /// tmux's `default-command` that starts the shell.
    pub command: String,
    /// The shell's process name (`#{pane_current_command}` while it is in the foreground).
    pub name: Arc<str>,
}

/// Writes the rc file into `dir/shell` and returns how to start the shell, or `None` when
/// there is no bash on `PATH` (sessions then run the login shell, without integration).
pub fn prepare(dir: &Path) -> Result<Option<ShellIntegration>, BackendError> {
    let Some(bash) = find_on_path("bash") else {
        tracing::warn!("no bash on PATH: sessions run the login shell; command execution is off");
        return Ok(None);
    };
    let shell_dir = dir.join("shell");
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackendError::SocketDir { path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(&shell_dir)
        .map_err(err(&shell_dir))?;
    let nonce_path = shell_dir.join("nonce");
    let nonce = match std::fs::read_to_string(&nonce_path) {
        Ok(n) if is_nonce(n.trim()) => n.trim().to_owned(),
        _ => {
            let n = new_nonce();
            write_private(&nonce_path, n.as_bytes()).map_err(err(&nonce_path))?;
            n
        }
    };
    let ready_title = format!("tmuxgate:ready:{nonce}");
    let rc = shell_dir.join("bashrc");
    write_private(&rc, rc_text(&nonce, &ready_title).as_bytes()).map_err(err(&rc))?;
    let command = format!(
        "exec {} --noprofile --rcfile {} -i",
        sh_quote(&bash.to_string_lossy()),
        sh_quote(&rc.to_string_lossy())
    );
    let name = bash
        .file_name()
        .map_or("bash".into(), |n| n.to_string_lossy());
    Ok(Some(ShellIntegration {
        name: name.into(),
        nonce: nonce.into(),
        ready_title: ready_title.into(),
        command,
    }))
}

/// The rc file. Everything in it is fixed text but the nonce (hex) and the title.
fn rc_text(nonce: &str, ready_title: &str) -> String {
    format!(
        r#"# Written by tmuxgate: the shell of gateway sessions (see docs/exec.md).
set +o histexpand
set -o emacs
unalias -a
bind 'set convert-meta off'
bind 'set input-meta on'
bind 'set output-meta on'
bind 'set enable-bracketed-paste off'
__tmuxgate_done() {{ printf '\e]133;D;%s;tg={nonce}\a' "$1"; }}
__tmuxgate_probe() {{ printf '\e]133;P;n=%s;tg={nonce}\a' "${{#READLINE_LINE}}"; }}
bind -x '"\C-x\C-_": __tmuxgate_probe'
readonly -f __tmuxgate_done __tmuxgate_probe
PROMPT_COMMAND='__tmuxgate_done "$?"'
PS0='\e]2;tmuxgate:busy\a\e]133;C;tg={nonce}\a'
PS1='\[\e]133;A;tg={nonce}\a\e]2;{ready_title}\a\]\u@\h:\w\$ \[\e]133;B;tg={nonce}\a\]'
"#
    )
}

fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_nonce(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Single-quotes `text` for `sh` (tmux runs `default-command` with `sh -c`).
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nonce_survives_a_restart_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = prepare(dir.path()).unwrap().expect("bash is installed");
        let again = prepare(dir.path()).unwrap().unwrap();
        assert_eq!(first.nonce, again.nonce);
        assert!(is_nonce(&first.nonce));
        for file in ["nonce", "bashrc"] {
            let meta = std::fs::metadata(dir.path().join("shell").join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
        let rc = std::fs::read_to_string(dir.path().join("shell/bashrc")).unwrap();
        assert!(rc.contains(&*first.nonce) && !rc.contains("--rcfile"));
        assert!(first.command.contains("--rcfile"));
    }

    #[test]
    fn quoting_for_sh() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
