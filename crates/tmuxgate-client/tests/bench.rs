//! `tmuxgate-bench` end to end at tiny sizes: every scenario runs against a real gateway
//! (the `tmuxgate` binary of the same target directory, built on demand) and real tmux,
//! prints well-formed JSON lines with the expected cases, and leaves no tmux server behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a tiny scenario may take on a loaded CI machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The gateway binary beside the bench binary; `cargo test --workspace` has built it
/// already (the gateway's own tests need it), `cargo test -p tmuxgate-client` may not have.
fn gateway_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = Path::new(env!("CARGO_BIN_EXE_tmuxgate-bench")).with_file_name("tmuxgate");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "-p", "tmuxgate", "--bin", "tmuxgate"]);
            if bin.parent().is_some_and(|dir| dir.ends_with("release")) {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the gateway failed");
        }
        assert!(bin.exists(), "no gateway binary at {}", bin.display());
        bin
    })
}

/// Runs the bench with `args` (after `--json --backends 1`), with a deadline.
fn bench(args: &[&str]) -> Output {
    bench_in_shell("", args)
}

/// Like [`bench`], after running `prefix` in the shell (e.g. `ulimit -n 100;`).
fn bench_in_shell(prefix: &str, args: &[&str]) -> Output {
    let mut words = vec![env!("CARGO_BIN_EXE_tmuxgate-bench").to_string()];
    words.extend(["--json", "--backends", "1", "--gateway-bin"].map(String::from));
    words.push(gateway_bin().display().to_string());
    words.extend(args.iter().map(|a| a.to_string()));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("{prefix} exec {}", quoted.join(" ")))
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bench runs");
    wait_with_deadline(child)
}

fn wait_with_deadline(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tmuxgate-bench ran longer than {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The JSON lines of a successful run, checked for shape.
fn rows(output: &Output) -> Vec<Value> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}, stderr:\n{stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let rows: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for row in &rows {
        assert!(
            row["scenario"].is_string() && row["case"].is_string(),
            "{row}"
        );
    }
    rows
}

fn case<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["case"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {rows:?}"))
}

#[test]
fn echo_measures_the_gateway_and_the_bare_baseline() {
    let rows = rows(&bench(&[
        "echo",
        "--samples",
        "30",
        "--warmup",
        "5",
        "--rounds",
        "2",
    ]));
    for name in ["gateway", "bare-control-mode"] {
        let row = case(&rows, name);
        assert_eq!(row["n"], 30, "{row}");
        assert!(row["p50_us"].as_f64().is_some_and(|p| p > 0.0), "{row}");
    }
    assert!(case(&rows, "overhead (gateway - bare)")["p99_us"].is_number());
    assert!(
        case(&rows, "ratio (gateway / bare)")["p50_us"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
}

#[test]
fn requests_count_round_trips() {
    let args = [
        "requests",
        "--count",
        "40",
        "--window",
        "8",
        "--sessions",
        "2",
    ];
    let rows = rows(&bench(&args));
    for name in [
        "heartbeat sequential",
        "heartbeat pipelined-8",
        "session-list sequential",
        "session-list pipelined-8",
    ] {
        let row = case(&rows, name);
        assert_eq!(row["n"], 40, "{row}");
        assert!(row["per_s"].as_f64().is_some_and(|r| r > 0.0), "{row}");
    }
}

#[test]
fn flood_measures_the_typist_and_what_the_flood_met() {
    let rows = rows(&bench(&["flood", "--samples", "400", "--warmup", "10"]));
    for name in ["echo quiet (127.0.0.3)", "echo under flood (127.0.0.3)"] {
        assert_eq!(case(&rows, name)["n"], 400, "{name}");
    }
    let flooder = case(&rows, "flooder (127.0.0.2)");
    // The default limits stop the flood: refused requests, then its address refused.
    assert!(
        flooder["rate_limited"].as_u64().is_some_and(|n| n > 0),
        "{flooder}"
    );
    assert!(
        flooder["closed_4429"].as_u64().is_some_and(|n| n > 0),
        "{flooder}"
    );
    assert!(
        flooder["refused_connects"].as_u64().is_some_and(|n| n > 0),
        "{flooder}"
    );
}

#[test]
fn exec_runs_commands_in_every_session_without_errors() {
    // Two connections per session: the second one's commands wait in the gateway's queue.
    let args = [
        "exec",
        "--sessions",
        "2",
        "--connections",
        "2",
        "--duration",
        "2",
        "--warmup",
        "1",
    ];
    let output = bench(&args);
    let rows = rows(&output);
    let row = rows
        .iter()
        .find(|r| r["scenario"] == "exec")
        .unwrap_or_else(|| panic!("no exec row in {rows:?}"));
    assert_eq!(row["errors"], 0, "{row}");
    assert!(row["n"].as_u64().is_some_and(|n| n >= 4), "{row}");
    assert!(row["per_s"].as_f64().is_some_and(|r| r > 0.0), "{row}");
    let p99 = row["p99_us"].as_f64().unwrap_or_default();
    let max = row["max_us"].as_f64().unwrap_or_default();
    assert!(p99 > 0.0 && p99 <= max, "{row}");
    for cpu in ["gateway_cpu_pct", "tmux_cpu_pct", "shells_cpu_pct"] {
        assert!(row[cpu].is_number(), "{cpu}: {row}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("failed"), "{stderr}");
}

#[test]
fn tls_runs_the_scenario_over_wss() {
    let args = [
        "--keep-dir",
        "idle",
        "--tls",
        "--connections",
        "20",
        "--sessions",
        "2",
    ];
    let output = bench(&[&args[..], &["--idle-secs", "1"]].concat());
    let rows = rows(&output);
    let row = rows
        .iter()
        .find(|r| r["case"] == "connections" && r["connections"] == 20)
        .unwrap_or_else(|| panic!("no 20-connection row in {rows:?}"));
    assert!(row["per_conn_kib"].is_number(), "{row}");
    assert_eq!(case(&rows, "broadcast")["missing"], 0);
    let dir = work_dir(&String::from_utf8_lossy(&output.stderr));
    let log = std::fs::read_to_string(dir.join("gw-0").join("gateway.log"));
    let _ = std::fs::remove_dir_all(&dir);
    let log = log.expect("the gateway's log");
    assert!(
        log.contains("\"tls\":true"),
        "the gateway served TLS: {log}"
    );
}

#[test]
fn connect_measures_joins_and_session_churn() {
    let args = [
        "connect",
        "--connections",
        "12",
        "--concurrency",
        "4",
        "--sessions",
        "2",
        "--creates",
        "3",
    ];
    let rows = rows(&bench(&args));
    assert_eq!(case(&rows, "connect+attach")["connections"], 12);
    assert_eq!(case(&rows, "session-create")["n"], 3);
    assert_eq!(case(&rows, "session-destroy")["n"], 3);
}

#[test]
fn idle_connections_are_live_and_share_one_control_client_per_session() {
    let args = [
        "idle",
        "--connections",
        "6,12",
        "--sessions",
        "3",
        "--idle-secs",
        "1",
        "--settle-ms",
        "100",
    ];
    let rows = rows(&bench(&args));
    let steps: Vec<&Value> = rows.iter().filter(|r| r["case"] == "connections").collect();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["connections"], 12);
    assert!(
        steps[1]["gateway_rss_mib"]
            .as_f64()
            .is_some_and(|m| m > 0.0)
    );
    assert!(case(&rows, "idle-cpu")["gateway_cpu_pct"].is_number());
    let clients = case(&rows, "tmux-clients");
    assert_eq!(
        (
            clients["sessions"].clone(),
            clients["max_per_session"].clone()
        ),
        (3.into(), 1.into())
    );
    let broadcast = case(&rows, "broadcast");
    assert_eq!(
        (broadcast["received"].clone(), broadcast["missing"].clone()),
        (12.into(), 0.into())
    );
}

#[test]
fn fanout_compares_viewers_with_one_viewer_and_bare_control_mode() {
    let args = [
        "fanout",
        "--viewers",
        "3",
        "--bytes",
        "50000",
        "--rounds",
        "2",
    ];
    let rows = rows(&bench(&args));
    let bare: Vec<&Value> = rows
        .iter()
        .filter(|r| r["case"] == "bare-control-mode")
        .collect();
    assert_eq!(bare.len(), 2, "one baseline per round: {rows:?}");
    assert!(
        bare.iter()
            .all(|r| r["total_mb_s"].as_f64().is_some_and(|r| r > 0.0))
    );
    let gateway: Vec<&Value> = rows.iter().filter(|r| r["case"] == "gateway").collect();
    let shape: Vec<(Value, Value)> = gateway
        .iter()
        .map(|r| (r["round"].clone(), r["viewers"].clone()))
        .collect();
    let expected = [(1, 1), (1, 3), (2, 1), (2, 3)].map(|(a, b)| (a.into(), b.into()));
    assert_eq!(shape, expected, "{rows:?}");
    assert!(gateway[1]["min_vs_single"].is_number());
    assert!(gateway[2]["vs_bare"].is_number());
}

#[test]
fn echo_load_measures_with_and_without_load() {
    let args = [
        "echo-load",
        "--viewers",
        "6",
        "--typing",
        "2",
        "--rate",
        "50",
        "--samples",
        "30",
        "--warmup",
        "5",
    ];
    let rows = rows(&bench(&args));
    assert_eq!(case(&rows, "no load")["n"], 30);
    let loaded = case(&rows, "load");
    assert_eq!(
        (loaded["n"].clone(), loaded["viewers"].clone()),
        (30.into(), 6.into())
    );
}

#[test]
fn a_too_low_open_file_limit_is_named() {
    let output = bench_in_shell(
        "ulimit -n 100 &&",
        &["idle", "--connections", "500", "--sessions", "1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RLIMIT_NOFILE is 100"), "{stderr}");
}

/// The work directory a `--keep-dir` run printed.
fn work_dir(stderr: &str) -> PathBuf {
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("work directory: "))
        .expect("--keep-dir prints the work directory");
    PathBuf::from(dir)
}

/// Processes whose command line mentions `dir` (the gateway, its tmux servers and
/// clients), after giving them a few seconds to go.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let marker = dir.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<String> = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|cmd| String::from_utf8_lossy(&cmd).replace('\0', " "))
            .filter(|cmd| cmd.contains(&marker))
            .collect();
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_gateway_and_its_tmux_servers_are_gone_afterwards() {
    let output = bench(&["--keep-dir", "echo", "--samples", "5", "--warmup", "1"]);
    rows(&output);
    let dir = work_dir(&String::from_utf8_lossy(&output.stderr));
    assert!(
        dir.join("gw-0/gateway.log").exists(),
        "no gateway log in {}",
        dir.display()
    );
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_run_leaves_nothing_running() {
    let mut words = vec![env!("CARGO_BIN_EXE_tmuxgate-bench").to_string()];
    words.extend(["--keep-dir", "--backends", "2", "--gateway-bin"].map(String::from));
    words.push(gateway_bin().display().to_string());
    words.extend(
        [
            "idle",
            "--connections",
            "20",
            "--sessions",
            "4",
            "--idle-secs",
            "60",
        ]
        .map(String::from),
    );
    let child = Command::new(&words[0])
        .args(&words[1..])
        .env_remove("TMUX")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bench runs");
    // Well inside the 60 s idle window (sessions, hubs and viewers are all up by then).
    std::thread::sleep(Duration::from_secs(4));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    let output = wait_with_deadline(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let dir = work_dir(&stderr);
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}
