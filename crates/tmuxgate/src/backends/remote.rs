//! SSH backends: a tmux server on another host, driven through the system's `ssh` client.
//!
//! Every control connection is `ssh … HOST 'exec tmux -L NAME -u -C …'`. All of them share
//! one SSH connection: the first becomes the master (`ControlMaster=auto`, a socket in the
//! gateway's private directory) and the rest open channels on it, so attaching a session
//! costs a channel, not a handshake. `ControlPersist` keeps the master briefly after the
//! last channel closes; the gateway ends it on shutdown (`ssh -O exit`).
//!
//! Trust is explicit. The host key must be in the configured known_hosts file and nowhere
//! else (`StrictHostKeyChecking=yes`, no global file, no user `~/.ssh/config`): an unknown
//! or changed key refuses the connection. Only the configured identity is offered (no agent,
//! no passwords, no prompts), and nothing is forwarded.
//!
//! Snapshots capture into files in the far side's tmux socket directory (private to the
//! remote user, checked by tmux); this module reads them back over a channel of the same
//! connection (see `sessions/snapshot.rs` for why captures never travel on the control
//! stream).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tmux_control::{Launch, sh_quote};
use tokio::io::AsyncReadExt;

use super::spec::SshSpec;

/// How long the master connection outlives its last channel.
const CONTROL_PERSIST_SECS: u32 = 10;
/// ssh's own connect deadline: shorter than the control client's start-up deadline (5 s),
/// so that ssh's reason (an unreachable host, a refused key) is what gets reported.
const CONNECT_TIMEOUT_SECS: u32 = 3;
/// Longest control socket path: ssh appends 17 characters while creating it, and a Unix
/// socket path has at most 107 bytes.
const MAX_CONTROL_PATH: usize = 88;
/// Capture files older than this (minutes) on the far side are a failed fetch's leftovers.
const STALE_CAPTURE_MINUTES: u32 = 2;
/// Longest wait for reading capture files back.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest capture read back (a snapshot's history is capped far below this).
const FETCH_MAX_BYTES: usize = 64 << 20;

/// How to reach one SSH backend.
#[derive(Debug)]
pub struct Ssh {
    spec: SshSpec,
    /// The master connection's socket, in the gateway's 0700 directory.
    control_path: PathBuf,
    /// What to run before tmux on the far side when starting the server.
    prelude: String,
}

impl Ssh {
    /// The backend `index` of the private directory `dir`; `prelude` runs (as `sh`) before
    /// tmux on the admin connection only.
    ///
    /// The master connection's socket is named after everything that decides whom it
    /// reaches and trusts (host, port, user, identity, known_hosts, socket): a master left
    /// by an earlier run with other settings is never reused for this backend.
    pub fn new(
        spec: SshSpec,
        dir: &std::path::Path,
        index: usize,
        prelude: String,
    ) -> Result<Ssh, String> {
        let identity = [
            spec.host.as_bytes(),
            spec.port.to_string().as_bytes(),
            spec.user.as_bytes(),
            spec.identity.as_os_str().as_encoded_bytes(),
            spec.known_hosts.as_os_str().as_encoded_bytes(),
            spec.socket.as_bytes(),
        ]
        .join(&0u8);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &identity);
        let tag: String = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let control_path = dir.join(format!("ssh-{index}-{tag}"));
        let text = control_path.to_string_lossy();
        if text.contains(|c: char| c.is_whitespace() || c == '%') {
            return Err(format!(
                "the gateway's directory {} must not contain spaces or % for SSH backends",
                dir.display()
            ));
        }
        if text.len() > MAX_CONTROL_PATH {
            return Err(format!(
                "the gateway's directory {} is too long for SSH backends' control sockets \
                 (at most {} bytes in all)",
                dir.display(),
                MAX_CONTROL_PATH
            ));
        }
        Ok(Ssh {
            spec,
            control_path,
            prelude,
        })
    }

    /// The master connection's socket.
    pub fn control_path(&self) -> &std::path::Path {
        &self.control_path
    }

    /// Who and where, for logs and `/health`: `user@host:port`.
    pub fn destination(&self) -> String {
        let host = &self.spec.host;
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        format!("{}@{host}:{}", self.spec.user, self.spec.port)
    }

    /// The far side's tmux binary.
    pub fn tmux(&self) -> &str {
        &self.spec.tmux
    }

    /// The far side's `tmux -L` socket name.
    pub fn socket_name(&self) -> &str {
        &self.spec.socket
    }

    /// How to start a control connection; `admin` adds the prelude.
    pub fn launch(&self, admin: bool) -> Launch {
        Launch::Shell {
            program: "ssh".into(),
            args: self.args(),
            prelude: if admin {
                self.prelude.clone()
            } else {
                String::new()
            },
        }
    }

    /// Options, then `--` and the host: every `ssh` run for this backend starts so.
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::with_capacity(48);
        let mut opt = |o: String| {
            args.push("-o".into());
            args.push(o.into());
        };
        for fixed in [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "GlobalKnownHostsFile=/dev/null",
            "CheckHostIP=no",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "PasswordAuthentication=no",
            "KbdInteractiveAuthentication=no",
            "ForwardAgent=no",
            "ForwardX11=no",
            "ClearAllForwardings=yes",
            "PermitLocalCommand=no",
            "ServerAliveInterval=5",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
            "ControlMaster=auto",
        ] {
            opt(fixed.to_owned());
        }
        opt(format!("ControlPersist={CONTROL_PERSIST_SECS}"));
        opt(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"));
        opt(format!("ControlPath={}", self.control_path.display()));
        // Paths with spaces or `%` are refused when BACKENDS_FILE is loaded.
        opt(format!(
            "UserKnownHostsFile={}",
            self.spec.known_hosts.display()
        ));
        args.extend(["-F".into(), "/dev/null".into(), "-T".into()]);
        args.extend(["-i".into(), self.spec.identity.clone().into_os_string()]);
        args.extend(["-p".into(), self.spec.port.to_string().into()]);
        args.extend(["-l".into(), self.spec.user.clone().into()]);
        args.extend(["--".into(), self.spec.host.clone().into()]);
        args
    }

    /// Reads and removes `names` in the far side's directory `dir` over a channel of the
    /// master connection: each file's bytes, or `None` if it does not exist.
    pub async fn fetch(
        &self,
        dir: &str,
        names: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, std::io::Error> {
        let fetched = self.fetch_once(dir, names).await;
        if fetched.is_err() {
            // The files hold pane text: never leave them behind on a failed read.
            let mut rm = format!("cd {} && rm -f", sh_quote(dir.as_ref()));
            for name in names {
                rm.push(' ');
                rm.push_str(&sh_quote(name.as_ref()));
            }
            let _ = self.run(&rm).await;
        }
        fetched
    }

    /// Removes capture files a failed fetch of an earlier run (or a killed gateway) left in
    /// `dir` on the far side.
    pub async fn sweep(&self, dir: &str) {
        let script = format!(
            "find {} -maxdepth 1 -type f -name 'tmuxgate-snap-*' -mmin +{STALE_CAPTURE_MINUTES} \
             -exec rm -f {{}} +",
            sh_quote(dir.as_ref())
        );
        let _ = self.run(&script).await;
    }

    /// Runs `script` on the far side, output discarded.
    async fn run(&self, script: &str) -> Result<std::process::ExitStatus, std::io::Error> {
        let status = tokio::process::Command::new("ssh")
            .args(self.args())
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        tokio::time::timeout(FETCH_TIMEOUT, status)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "ssh"))?
    }

    async fn fetch_once(
        &self,
        dir: &str,
        names: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, std::io::Error> {
        // Per file: its length on a line and its bytes, or `-` when missing.
        let mut script = format!("cd {} || exit 1; for f in", sh_quote(dir.as_ref()));
        for name in names {
            script.push(' ');
            script.push_str(&sh_quote(name.as_ref()));
        }
        script.push_str(
            "; do if [ -f \"$f\" ]; then wc -c < \"$f\"; cat \"$f\"; rm -f \"$f\"; \
             else echo -; fi; done",
        );
        let mut child = tokio::process::Command::new("ssh")
            .args(self.args())
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("ssh has no stdout"))?;
        let mut out = Vec::new();
        let read = async {
            let mut limited = (&mut stdout).take(FETCH_MAX_BYTES as u64 + 1);
            limited.read_to_end(&mut out).await?;
            if out.len() > FETCH_MAX_BYTES {
                let _ = child.kill().await;
            }
            child.wait().await
        };
        let status = tokio::time::timeout(FETCH_TIMEOUT, read)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "ssh fetch"))??;
        if !status.success() || out.len() > FETCH_MAX_BYTES {
            return Err(std::io::Error::other(format!(
                "reading captures over ssh failed ({status})"
            )));
        }
        parse_fetched(&out, names.len())
            .ok_or_else(|| std::io::Error::other("reading captures over ssh: garbled reply"))
    }

    /// Ends the master connection (gateway shutdown), so nothing outlives the gateway.
    pub async fn close_master(&self) {
        let exit = tokio::process::Command::new("ssh")
            .args(["-O", "exit"])
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(2), exit).await;
    }
}

/// Splits `wc -c` lengths and bytes, or `-` for a missing file, `count` times.
fn parse_fetched(mut out: &[u8], count: usize) -> Option<Vec<Option<Vec<u8>>>> {
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let end = out.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&out[..end]).ok()?.trim();
        out = &out[end + 1..];
        if head == "-" {
            files.push(None);
            continue;
        }
        let len: usize = head.parse().ok()?;
        if len > out.len() {
            return None;
        }
        files.push(Some(out[..len].to_vec()));
        out = &out[len..];
    }
    out.is_empty().then_some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SshSpec {
        SshSpec {
            host: "::1".into(),
            port: 2222,
            user: "tmux".into(),
            identity: "/keys/id".into(),
            known_hosts: "/keys/known_hosts".into(),
            socket: "tmuxgate".into(),
            tmux: "tmux".into(),
        }
    }

    #[test]
    fn checks_host_keys_and_offers_only_the_identity() {
        let ssh = Ssh::new(spec(), "/priv".as_ref(), 0, String::new()).unwrap();
        let args: Vec<String> = ssh
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        for wanted in [
            "-o StrictHostKeyChecking=yes",
            "-o UserKnownHostsFile=/keys/known_hosts",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o BatchMode=yes",
            "-o IdentitiesOnly=yes",
            "-o IdentityAgent=none",
            "-o ControlPath=/priv/ssh-0-",
            "-F /dev/null",
            "-i /keys/id",
            "-p 2222",
            "-l tmux",
        ] {
            assert!(joined.contains(wanted), "{wanted} missing from {joined}");
        }
        assert!(!joined.contains("StrictHostKeyChecking=no"));
        assert!(!joined.contains("accept-new"));
        assert_eq!(args[args.len() - 2..], ["--", "::1"], "the host comes last");
        assert_eq!(ssh.destination(), "tmux@[::1]:2222");
    }

    #[test]
    fn the_remote_command_is_quoted_for_the_far_shell() {
        let ssh = Ssh::new(spec(), "/priv".as_ref(), 0, "umask 077 && ".into()).unwrap();
        let mut opts = tmux_control::SpawnOptions::new(
            "tmux",
            tmux_control::Socket::Name("tmuxgate".into()),
            tmux_control::Target::StartServer,
        );
        opts.launch = ssh.launch(true);
        let tmux_control::Launch::Shell { prelude, .. } = &opts.launch else {
            panic!("not a shell launch")
        };
        assert_eq!(prelude, "umask 077 && ");
        assert_eq!(
            opts.tmux_args()[..2],
            [OsString::from("-L"), OsString::from("tmuxgate")]
        );
        let Launch::Shell { prelude, .. } = ssh.launch(false) else {
            panic!()
        };
        assert!(prelude.is_empty(), "attach connections run no prelude");
    }

    #[test]
    fn the_control_socket_names_whom_it_reaches() {
        let dir: &std::path::Path = "/priv".as_ref();
        let a = Ssh::new(spec(), dir, 0, String::new()).unwrap();
        let again = Ssh::new(spec(), dir, 0, String::new()).unwrap();
        assert_eq!(a.control_path(), again.control_path());
        let mut other = spec();
        other.port = 2223;
        let b = Ssh::new(other, dir, 0, String::new()).unwrap();
        assert_ne!(
            a.control_path(),
            b.control_path(),
            "another port, another master"
        );
        let mut other = spec();
        other.known_hosts = "/keys/other".into();
        let c = Ssh::new(other, dir, 0, String::new()).unwrap();
        assert_ne!(
            a.control_path(),
            c.control_path(),
            "other trust, another master"
        );
        assert!(Ssh::new(spec(), "/a b".as_ref(), 0, String::new()).is_err());
        assert!(Ssh::new(spec(), "/%h".as_ref(), 0, String::new()).is_err());
        let long = format!("/{}", "d".repeat(90));
        assert!(Ssh::new(spec(), long.as_ref(), 0, String::new()).is_err());
    }

    #[test]
    fn parses_fetched_files() {
        let out = b"3\nabc-\n     0\n";
        assert_eq!(
            parse_fetched(out, 3),
            Some(vec![Some(b"abc".to_vec()), None, Some(Vec::new())])
        );
        assert_eq!(parse_fetched(b"4\nabc", 1), None, "short");
        assert_eq!(parse_fetched(b"1\nab", 1), None, "trailing bytes");
        assert_eq!(parse_fetched(b"x\n", 1), None);
    }
}
