//! The `tmuxgate` binary end to end: configuration output and refusals, exit
//! codes, and `health` against tiny local HTTP servers. Every child gets a
//! cleared environment plus only the variables a test sets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread::JoinHandle;

/// Runs the binary with `args` and exactly the environment `env`.
fn tmuxgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the tmuxgate binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr, after checking the process exited with `code` and did not panic.
fn stderr_of(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A one-shot HTTP server on 127.0.0.1:0 answering `status` with a JSON body;
/// the handle returns the request it received.
fn http_server(status: &str) -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{{\"status\":\"test\"}}"
    );
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let request = read_request(&mut stream);
        stream.write_all(response.as_bytes()).expect("respond");
        request
    });
    (port, handle)
}

fn read_request(stream: &mut TcpStream) -> String {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).expect("read") == 1 {
        request.push(byte[0]);
    }
    String::from_utf8_lossy(&request).into_owned()
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener
        .local_addr()
        .expect("local addr")
        .port()
        .to_string()
}

#[test]
fn config_shows_each_source_and_masks_the_secret() {
    let env = [
        ("REDIS_PASSWORD", "hunter2"),
        ("PROXY_PORT", "9000"),
        ("PROXY_PRESET", "production"),
    ];
    let output = tmuxgate(&["config", "--max-connections", "5"], &env);
    stderr_of(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("REDIS_PASSWORD = ***  # env\n"), "{text}");
    assert!(!text.contains("hunter2"));
    assert!(text.contains("PROXY_PORT = 9000  # env\n"), "{text}");
    assert!(text.contains("MAX_CONNECTIONS = 5  # flag\n"), "{text}");
    assert!(text.contains("LOG_FORMAT = json  # preset\n"), "{text}");
    assert!(
        text.contains("BACKEND_POOL_SIZE = 5  # default\n"),
        "{text}"
    );
}

#[test]
fn config_json_is_masked_and_typed() {
    let output = tmuxgate(
        &["config", "--json", "--redis-password", "hunter2"],
        &[("HEALTH_PORT", "9191")],
    );
    stderr_of(&output, 0);
    let text = stdout(&output);
    assert!(!text.contains("hunter2"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(json["REDIS_PASSWORD"]["value"], "***");
    assert_eq!(json["REDIS_PASSWORD"]["source"], "flag");
    assert_eq!(json["HEALTH_PORT"]["value"], 9191);
    assert_eq!(json["HEALTH_PORT"]["source"], "env");
}

#[test]
fn out_of_range_value_exits_1_naming_the_variable() {
    for command in ["config", "start"] {
        let output = tmuxgate(&[command], &[("BACKEND_POOL_SIZE", "0")]);
        let stderr = stderr_of(&output, 1);
        assert!(
            stderr.contains("invalid BACKEND_POOL_SIZE=0: must be between 1 and 64"),
            "{stderr}"
        );
    }
}

#[test]
fn allowed_origins_are_shown_normalised_and_checked() {
    let env = [(
        "ALLOWED_ORIGINS",
        "HTTPS://Term.Example.com:443, http://localhost:3000",
    )];
    let output = tmuxgate(&["config"], &env);
    stderr_of(&output, 0);
    let text = stdout(&output);
    let line = "ALLOWED_ORIGINS = https://term.example.com,http://localhost:3000  # env\n";
    assert!(text.contains(line), "{text}");
    for command in ["config", "start"] {
        let output = tmuxgate(
            &[command, "--allowed-origins", "https://term.example.com/"],
            &[],
        );
        let stderr = stderr_of(&output, 1);
        assert!(
            stderr.contains(
                "invalid ALLOWED_ORIGINS=https://term.example.com/: an origin has no path"
            ),
            "{stderr}"
        );
    }
}

#[test]
fn non_numeric_value_is_a_usage_error_naming_the_variable() {
    let output = tmuxgate(&["config"], &[("PROXY_PORT", "eighty")]);
    assert!(stderr_of(&output, 2).contains("PROXY_PORT"));
    let output = tmuxgate(&["--no-such-flag"], &[]);
    stderr_of(&output, 2);
}

#[test]
fn a_bad_redis_url_is_refused_at_start_without_echoing_it() {
    let url = "http://user:hunter2@redis.internal";
    for command in ["start", "config"] {
        let output = tmuxgate(
            &[command, "--health-port", "0", "--port", "0"],
            &[("REDIS_URL", url)],
        );
        let stderr = stderr_of(&output, 1);
        assert!(
            stderr.contains("invalid REDIS_URL=***: each comma-separated item must be"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{command}: {stderr}");
    }
}

#[test]
fn tls_needs_its_files_and_production_needs_tls_beyond_loopback() {
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("ENABLE_SSL", "true")],
            "invalid TLS_CERT=: ENABLE_SSL=true needs the certificate chain",
        ),
        (
            &[("TLS_CERT", "/etc/cert.pem")],
            "is set but ENABLE_SSL is false",
        ),
        (
            &[
                ("PROXY_PRESET", "production"),
                ("PROXY_HOST", "0.0.0.0"),
                ("ALLOW_INSECURE_NO_AUTH", "true"),
            ],
            "PROXY_PRESET=production with PROXY_HOST=0.0.0.0 would send terminals",
        ),
    ];
    for (env, message) in cases {
        for command in ["start", "config"] {
            let output = tmuxgate(&[command, "--health-port", "0", "--port", "0"], env);
            let stderr = stderr_of(&output, 1);
            assert!(stderr.contains(message), "{command} {env:?}: {stderr}");
        }
    }
}

#[test]
fn non_loopback_host_without_auth_needs_the_explicit_flag() {
    // Authentication is on by default: any address is fine.
    let output = tmuxgate(&["config"], &[("PROXY_HOST", "0.0.0.0")]);
    stderr_of(&output, 0);
    let no_auth = [("PROXY_HOST", "0.0.0.0"), ("ENABLE_AUTH", "false")];
    let output = tmuxgate(&["config"], &no_auth);
    assert!(stderr_of(&output, 1).contains("--allow-insecure-no-auth"));
    let output = tmuxgate(&["config", "--allow-insecure-no-auth"], &no_auth);
    stderr_of(&output, 0);
    let text = stdout(&output);
    assert!(text.contains("PROXY_HOST = 0.0.0.0  # env\n"), "{text}");
    assert!(
        text.contains("ALLOW_INSECURE_NO_AUTH = true  # flag\n"),
        "{text}"
    );
}

#[test]
fn start_names_the_address_it_cannot_bind() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("local addr").port().to_string();
    // No subcommand means `start`.
    let output = tmuxgate(&["--port", &port, "--health-port", "0"], &[]);
    let stderr = stderr_of(&output, 1);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port} (PROXY_PORT)")),
        "{stderr}"
    );
}

#[test]
fn health_exits_2_when_unreachable() {
    let url = format!("http://127.0.0.1:{}/health", closed_port());
    let output = tmuxgate(&["health", "--url", &url], &[]);
    assert!(stderr_of(&output, 2).contains("cannot connect"));
}

#[test]
fn health_exits_2_when_the_answer_is_late() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/health", silent.local_addr().expect("local addr"));
    let output = tmuxgate(&["health", "--url", &url, "--timeout", "200"], &[]);
    assert!(stderr_of(&output, 2).contains("no response within 200 ms"));
}

#[test]
fn health_exits_0_on_200_and_prints_the_body() {
    let (port, server) = http_server("200 OK");
    let url = format!("http://127.0.0.1:{port}/health");
    let output = tmuxgate(&["health", "--url", &url], &[]);
    stderr_of(&output, 0);
    assert_eq!(stdout(&output), "{\"status\":\"test\"}\n");
    let request = server.join().expect("server thread");
    assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
}

#[test]
fn health_exits_1_on_any_other_status() {
    let (port, server) = http_server("503 Service Unavailable");
    let url = format!("http://127.0.0.1:{port}/health");
    let output = tmuxgate(&["health", "--url", &url], &[]);
    assert!(stderr_of(&output, 1).contains("HTTP 503"));
    assert_eq!(stdout(&output), "{\"status\":\"test\"}\n");
    server.join().expect("server thread");
}

#[test]
fn health_default_url_comes_from_the_config() {
    let (port, server) = http_server("200 OK");
    let output = tmuxgate(&["health"], &[("HEALTH_PORT", &port.to_string())]);
    stderr_of(&output, 0);
    let request = server.join().expect("server thread");
    assert!(
        request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
}

/// Kills the tmux servers a gateway left in `dir` (they outlive it by design).
struct KillTmuxOnDrop(std::path::PathBuf);

impl Drop for KillTmuxOnDrop {
    fn drop(&mut self) {
        let sockets = std::fs::read_dir(&self.0).into_iter().flatten().flatten();
        for socket in sockets.map(|entry| entry.path()) {
            if socket.extension().is_some_and(|ext| ext == "sock") {
                let _ = Command::new("tmux")
                    .arg("-S")
                    .arg(&socket)
                    .arg("kill-server")
                    .output();
            }
        }
    }
}

/// Reads JSON log lines from `stderr` until the start-up line; returns its health address.
fn health_address(stderr: impl Read) -> String {
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("read the log");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "tmuxgate listening" {
            return entry["fields"]["health"]
                .as_str()
                .expect("health field")
                .to_owned();
        }
    }
    panic!("tmuxgate exited before listening");
}

/// A running `tmuxgate start`, killed on drop if a test fails before it exits.
struct Gateway(std::process::Child);

impl Gateway {
    /// Polls for the exit status; panics (and the drop kills) after `deadline`.
    fn wait_at_most(&mut self, deadline: std::time::Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        while start.elapsed() < deadline {
            if let Some(status) = self.0.try_wait().expect("poll tmuxgate") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("tmuxgate still running {deadline:?} after SIGTERM");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn start_serves_health_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sockets = dir.path().join("sockets");
    let _cleanup = KillTmuxOnDrop(sockets.clone());
    let sockets = sockets.to_str().expect("UTF-8 temp path");
    let child = Command::new(env!("CARGO_BIN_EXE_tmuxgate"))
        .args([
            "start",
            "--port",
            "0",
            "--health-port",
            "0",
            "--backend-pool-size",
            "1",
        ])
        .args(["--tmux-socket-path", sockets, "--log-format", "json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tmuxgate");
    let mut gateway = Gateway(child);
    let stderr = gateway.0.stderr.take().expect("piped stderr");
    // Reading stops here and the pipe closes: later log lines must not stop the gateway.
    let health = health_address(stderr);
    let output = tmuxgate(
        &["health", "--url", &format!("http://{health}/health")],
        &[],
    );
    stderr_of(&output, 0);
    assert!(
        stdout(&output).contains("\"status\""),
        "{}",
        stdout(&output)
    );
    let pid = gateway.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = gateway.wait_at_most(std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    // Authentication is on by default: the first start made an admin and said so on stdout.
    let mut printed = String::new();
    let mut out = gateway.0.stdout.take().expect("piped stdout");
    std::io::Read::read_to_string(&mut out, &mut printed).expect("read stdout");
    assert!(
        printed.contains("First start: created user admin"),
        "{printed}"
    );
}
