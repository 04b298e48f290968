//! A real OpenSSH server on a loopback port for SSH backend tests: throwaway host and user
//! keys, logins for the test's own user with that key only. `scripts/test` installs
//! Debian's `openssh-server` when it is missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running `sshd`, stopped on drop.
pub struct Sshd {
    pub port: u16,
    /// The user it lets in (the test's own).
    pub user: String,
    /// The private key that user logs in with.
    pub identity: PathBuf,
    /// A known_hosts file holding this server's host key.
    pub known_hosts: PathBuf,
    /// A second host key, never served: a known_hosts file with it instead is wrong.
    pub other_host_key: String,
    child: Child,
}

fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tmuxgate-test", "-f"])
        .arg(path)
        .status()
        .expect("run ssh-keygen (Debian package openssh-client)");
    assert!(status.success(), "ssh-keygen");
    std::fs::read_to_string(path.with_extension("pub")).expect("public key")
}

impl Sshd {
    /// Starts sshd in `dir` and waits until it listens.
    pub fn start(dir: &Path) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (scripts/test does)"
        );
        if rustix::process::geteuid().is_root() {
            // sshd insists on its privilege-separation directory.
            std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        }
        let host = dir.join("host_ed25519");
        let host_pub = keygen(&host);
        let other_host_key = keygen(&dir.join("other_host_ed25519"));
        let identity = dir.join("user_ed25519");
        let user_pub = keygen(&identity);
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, user_pub).expect("authorized_keys");
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
            .expect("user name")
            .trim()
            .to_owned();
        // A free port: bound and released; sshd is retried if another process took it.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1:{port}\n\
                     HostKey {host}\n\
                     AuthorizedKeysFile {authorized}\n\
                     AllowUsers {user}\n\
                     StrictModes no\n\
                     UsePAM no\n\
                     PasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\n\
                     PermitRootLogin prohibit-password\n\
                     PidFile none\n\
                     X11Forwarding no\n\
                     AllowTcpForwarding no\n",
                    host = host.display(),
                    authorized = authorized.display(),
                ),
            )
            .expect("sshd_config");
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start sshd");
            let stderr = child.stderr.take().expect("sshd stderr");
            let mut lines = BufReader::new(stderr).lines();
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut said = Vec::new();
            let listening = loop {
                match lines.next() {
                    Some(Ok(line)) if line.starts_with("Server listening on") => break true,
                    Some(Ok(line)) => said.push(line),
                    _ => break false,
                }
                if Instant::now() > deadline {
                    break false;
                }
            };
            if listening {
                // Keep draining sshd's log so it never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                let known_hosts = dir.join("known_hosts");
                std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}"))
                    .expect("known_hosts");
                return Sshd {
                    port,
                    user,
                    identity,
                    known_hosts,
                    other_host_key,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("sshd did not start on port {port}: {said:?}");
        }
        panic!("sshd did not start");
    }

    /// A `[[backend]]` entry for this server, remote socket `socket`.
    pub fn backend_entry(&self, socket: &str, known_hosts: &Path) -> String {
        format!(
            "[[backend]]\nkind = \"ssh\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
             identity = \"{}\"\nknown_hosts = \"{}\"\nsocket = \"{socket}\"\n",
            self.port,
            self.user,
            self.identity.display(),
            known_hosts.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The socket `tmux -L name` uses on the far side: the sshd session's environment has no
/// `TMUX_TMPDIR`, so tmux's default directory.
pub fn remote_socket(name: &str) -> PathBuf {
    let uid = rustix::process::geteuid().as_raw();
    PathBuf::from(format!("/tmp/tmux-{uid}/{name}"))
}

/// Kills the far side's tmux server `name` on drop.
pub struct KillRemoteOnDrop(pub String);

impl Drop for KillRemoteOnDrop {
    fn drop(&mut self) {
        let socket = remote_socket(&self.0);
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(socket);
    }
}

/// Command lines of running processes that contain `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            found.push(text);
        }
    }
    found
}
