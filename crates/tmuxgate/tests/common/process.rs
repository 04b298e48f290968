//! A gateway as its own process (`tmuxgate start`), for what an in-process server cannot
//! show: a gateway killed with SIGKILL.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `tmuxgate start`; killed on drop.
pub struct GatewayProcess {
    child: Child,
    /// The WebSocket listener.
    pub addr: SocketAddr,
    /// The `/health` listener.
    pub health_addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl GatewayProcess {
    /// Starts the gateway binary on free loopback ports with its tmux servers under
    /// `sockets`, its data under `data`, and `env` besides; waits until it listens.
    pub fn start(sockets: &Path, data: &Path, env: &[(&str, &str)]) -> GatewayProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
            .args(["start", "--port", "0", "--health-port", "0"])
            .arg("--tmux-socket-path")
            .arg(sockets)
            .args(["--log-format", "json"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("DATA_DIR", data)
            .env("DEFAULT_COMMAND", "exec bash --norc --noprofile")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tmuxgate");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let kept = log.clone();
        // Drains the log for as long as the process lives (a full pipe would stall it), and
        // hands over the listening line's addresses.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) {
                    let fields = &entry["fields"];
                    if fields["message"] == "tmuxgate listening" {
                        let _ = tx.send((
                            fields["proxy"].as_str().unwrap_or_default().to_owned(),
                            fields["health"].as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                }
                let mut log = kept.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let Ok((proxy, health)) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!(
                "tmuxgate did not start: {}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            );
        };
        GatewayProcess {
            child,
            addr: proxy.parse().expect("proxy address"),
            health_addr: health.parse().expect("health address"),
            log,
        }
    }

    /// WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (at most `deadline`) for it to exit; its exit code.
    pub fn terminate(&mut self, deadline: Duration) -> Option<i32> {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let until = std::time::Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < until,
                "still running {deadline:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Open file descriptors, from `/proc`.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Resident memory in KiB, from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// `kill -9`, and waits for it to be gone.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tmuxgate user add NAME --role ROLE --password-stdin` into `data`.
pub fn add_user(data: &Path, name: &str, role: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(["user", "add", name, "--role", role, "--password-stdin"])
        .env("DATA_DIR", data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("tmuxgate user add");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{}", password(name)).expect("password");
    drop(stdin);
    assert!(child.wait().expect("user add").success(), "user add {name}");
}

pub fn password(user: &str) -> String {
    format!("pw-{user}-correct-horse")
}

/// A token for `user`, from a password login on `url`.
pub async fn token(url: &str, user: &str) -> String {
    let client = tmuxgate_client::Client::connect(url)
        .await
        .expect("connect");
    let reply = client.login(user, &password(user)).await.expect("login");
    reply.token.expect("a token")
}
