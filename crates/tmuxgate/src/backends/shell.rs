//! The shell gateway-owned sessions run: bash with the gateway's own rc file, which prints
//! shell-integration marks (OSC 133, see `sessions/marks.rs`) and nothing of the user's.
//!
//! The rc file (`shell/bashrc` in the backend directory) makes command execution exact:
//! - no `~/.bashrc`, profile or inputrc: no user aliases, functions, `PROMPT_COMMAND` or
//!   key bindings;
//! - history expansion off (`!` in a typed line is literal), emacs editing, and readline set
//!   to take 8-bit input as characters (`convert-meta off`), so every printable character
//!   the gateway types lands in the line as itself, whatever the locale;
//! - `PS1` brackets the prompt with `A` and `B` and titles the pane `tmuxgate:ready:…`,
//!   `PS0` prints `C` and titles it busy, `PROMPT_COMMAND` prints `D;$?` first thing;
//! - a readline binding the gateway types (`\C-x\C-_`) answers the length of the line being
//!   edited (`P;n=LEN`), so a half-typed line is never appended to.
//!
//! Every mark carries the session's nonce: random per session, given to the shell in
//! `TMUXGATE_MARK` (which the rc reads and unsets, so programs do not inherit it) and kept
//! in the session's `@tmuxgate_mark` so that a restarted gateway recognises the marks of
//! the sessions it adopts. Output of one session cannot forge the marks of another.

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
    let rc = shell_dir.join("bashrc");
    write_private(&rc, RC.as_bytes()).map_err(err(&rc))?;
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
        command,
    }))
}

/// For SSH backends: shell commands that install the rc file on the far side (in
/// `~/.tmuxgate`, private to the remote user) before tmux starts, and the
/// `default-command` that runs it. The far user's login shell must be POSIX.
pub fn remote() -> (String, String) {
    let prelude = format!(
        "command -v bash >/dev/null || {{ echo 'tmuxgate: no bash on the far side' >&2; exit 1; }}; \
         (umask 077 && mkdir -p \"$HOME/.tmuxgate\" && printf %s {} > \"$HOME/.tmuxgate/bashrc.tmp\" \
         && mv -f \"$HOME/.tmuxgate/bashrc.tmp\" \"$HOME/.tmuxgate/bashrc\") || exit 1; ",
        sh_quote(RC)
    );
    let command = "exec bash --noprofile --rcfile \"$HOME/.tmuxgate/bashrc\" -i".to_owned();
    (prelude, command)
}

/// The title of a pane whose shell waits at its prompt.
pub fn ready_title(nonce: &str) -> String {
    format!("tmuxgate:ready:{nonce}")
}

/// The rc file. Without a valid `TMUXGATE_MARK` (a pane whose environment lost it) the
/// shell prints no marks, and commands answer `conflict`.
const RC: &str = r#"# Written by tmuxgate: the shell of gateway sessions (see docs/exec.md).
__tmuxgate_n=${TMUXGATE_MARK-}
unset TMUXGATE_MARK
# Before readline starts: no ~/.inputrc or /etc/inputrc can rebind the keys typed.
INPUTRC=/dev/null
set +o histexpand
set -o emacs
unalias -a
bind 'set convert-meta off'
bind 'set input-meta on'
bind 'set output-meta on'
bind 'set enable-bracketed-paste off'
PS1='\u@\h:\w\$ '
if [[ $__tmuxgate_n =~ ^[0-9a-f]{32}$ ]]; then
  __tmuxgate_done() { printf '\e]133;D;%s;tg=%s\a' "$1" "$__tmuxgate_n"; }
  __tmuxgate_probe() { printf '\e]133;P;n=%s;tg=%s\a' "${#READLINE_LINE}" "$__tmuxgate_n"; }
  bind -x '"\C-x\C-_": __tmuxgate_probe'
  readonly -f __tmuxgate_done __tmuxgate_probe
  PROMPT_COMMAND='__tmuxgate_done "$?"'
  PS0='\e]2;tmuxgate:busy\a\e]133;C;tg='$__tmuxgate_n'\a'
  PS1='\[\e]133;A;tg='$__tmuxgate_n'\a\e]2;tmuxgate:ready:'$__tmuxgate_n'\a\]'$PS1'\[\e]133;B;tg='$__tmuxgate_n'\a\]'
fi
"#;

/// A fresh nonce for a session's marks: 128 random bits, hex.
pub fn new_nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is a nonce as [`new_nonce`] makes them.
pub fn is_nonce(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Writes `path` (mode 0600) through a temporary file of this process and a rename, so
/// another gateway sharing the directory, or a tmux server reading it, sees either the old
/// file or the new one whole.
pub(super) fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    // The pid alone would not do: gateways in containers sharing the directory may all be
    // pid 1.
    let tag = format!("tmp-{}-{:08x}", std::process::id(), rand::random::<u32>());
    let tmp = path.with_extension(tag);
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
    fn the_rc_file_is_private_and_nonces_are_fresh() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shell = prepare(dir.path()).unwrap().expect("bash is installed");
        assert!(shell.command.contains("--rcfile"));
        let meta = std::fs::metadata(dir.path().join("shell/bashrc")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let (a, b) = (new_nonce(), new_nonce());
        assert!(is_nonce(&a) && is_nonce(&b) && a != b);
        assert!(!is_nonce("abc") && !is_nonce(&a.to_uppercase()));
    }

    /// The rc in a real bash: marks carry the nonce from the environment, which the shell
    /// does not pass on to its programs.
    #[test]
    fn the_rc_prints_marks_with_the_session_nonce_and_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path()).unwrap().expect("bash is installed");
        let nonce = new_nonce();
        let script = "PS0=''; __tmuxgate_done 7; printf '[%s]' \"${TMUXGATE_MARK-unset}\"; \
                      bash -c 'printf \"[%s]\" \"${TMUXGATE_MARK-unset}\"'";
        let out = std::process::Command::new("bash")
            .args(["--noprofile", "--rcfile"])
            .arg(dir.path().join("shell/bashrc"))
            .args(["-i", "-c", script])
            .env("TMUXGATE_MARK", &nonce)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout, format!("\x1b]133;D;7;tg={nonce}\x07[unset][unset]"));
    }

    #[test]
    fn quoting_for_sh() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
