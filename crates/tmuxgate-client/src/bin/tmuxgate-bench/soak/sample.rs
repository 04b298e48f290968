//! The soak's samples: when they are taken ([`schedule`]), what one holds (the gateway's
//! memory, descriptors, threads and CPU from `/proc`, and the interval's latencies,
//! churn and failures from the [`Tally`]), and printing each as it is taken: a table row
//! (unless `--json`) and its JSON line.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::tally::{Interval, Tally};
use crate::gateway::Gateway;
use crate::procfs::{self, CpuMeter};
use crate::report::{self, Row, round};

/// Whether a sample falls in the warm-up or in the measured window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before `--warmup` ended: shown, not compared.
    Warmup,
    /// The measured window.
    Soak,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Soak => "soak",
        }
    }
}

/// When samples are taken, from the start of the mix: every `every` through the warm-up
/// and again through the measured window, each phase's last sample at its very end (so
/// its last interval may be shorter).
pub fn schedule(warmup: Duration, duration: Duration, every: Duration) -> Vec<(Duration, Phase)> {
    let mut at = Vec::new();
    let every = every.max(Duration::from_millis(1));
    let mut phase_samples = |from: Duration, length: Duration, phase: Phase| {
        let mut t = Duration::ZERO;
        while t < length {
            t = (t + every).min(length);
            at.push((from + t, phase));
        }
    };
    phase_samples(Duration::ZERO, warmup, Phase::Warmup);
    phase_samples(warmup, duration, Phase::Soak);
    at
}

/// One sample: the figures the summary and the plot use, and the full row.
pub struct Sample {
    /// Minutes since the mix started.
    pub minute: f64,
    /// Warm-up or measured.
    pub phase: Phase,
    /// Gateway resident memory.
    pub rss_kib: Option<u64>,
    /// Gateway open file descriptors.
    pub fds: Option<u64>,
    /// Gateway threads.
    pub threads: Option<u64>,
    /// Output the gateway's pane logs hold (`tmuxgate_pane_log_bytes`; own gateway only):
    /// memory that grows with output by design, up to `RING_BUFFER_BYTES` per pane.
    pub log_kib: Option<u64>,
    /// The own gateway's tmux servers' resident memory, together.
    pub tmux_rss_kib: Option<u64>,
    /// Echo p99 over the interval (`None` without echoes).
    pub echo_p99_us: Option<f64>,
    /// The interval's figures as printed.
    pub row: Row,
}

/// Takes samples of one gateway: each one's CPU and latencies cover the time since the
/// previous one.
pub struct Sampler<'a> {
    gateway: &'a Gateway,
    tally: Tally,
    cpu: CpuMeter,
}

impl<'a> Sampler<'a> {
    /// Starts the first interval now (what the workers recorded before is dropped).
    pub async fn start(gateway: &'a Gateway, tally: Tally) -> Sampler<'a> {
        tally.take();
        let tmux = gateway.current_tmux_pids().await;
        Sampler {
            gateway,
            tally,
            cpu: cpu_meter(gateway, tmux),
        }
    }

    /// The figures since the previous sample; starts the next interval.
    pub async fn take(&mut self, elapsed: Duration, phase: Phase) -> Sample {
        let interval = self.tally.take();
        // tmux servers are looked up again each time: the gateway restarts one that died.
        let tmux = self.gateway.current_tmux_pids().await;
        let next = cpu_meter(self.gateway, tmux.clone());
        let cpu = std::mem::replace(&mut self.cpu, next).fields();
        let pid = self.gateway.pid();
        let tmux_rss_kib = match tmux.is_empty() {
            true => None,
            false => tmux
                .iter()
                .map(|&p| procfs::rss_kib(p))
                .sum::<Option<u64>>(),
        };
        let mut sample = Sample {
            minute: round(elapsed.as_secs_f64() / 60.0, 2),
            phase,
            rss_kib: pid.and_then(procfs::rss_kib),
            fds: pid.and_then(procfs::open_files),
            threads: pid.and_then(procfs::threads),
            log_kib: self
                .gateway
                .metric("tmuxgate_pane_log_bytes")
                .await
                .map(|bytes| (bytes / 1024.0).round() as u64),
            tmux_rss_kib,
            echo_p99_us: (interval.echo.count() > 0).then(|| interval.echo.quantile_us(0.99)),
            row: Row::new("soak", phase.as_str()),
        };
        sample.row = row(&sample, &interval, cpu, self.tally.viewers());
        sample
    }
}

/// CPU of the gateway, its tmux servers `tmux` and this tool (null for a group whose
/// process ended during the interval).
fn cpu_meter(gateway: &Gateway, tmux: Vec<u32>) -> CpuMeter {
    CpuMeter::start(vec![
        ("gateway_cpu_pct", gateway.pid().into_iter().collect()),
        ("tmux_cpu_pct", tmux),
        ("bench_cpu_pct", vec![std::process::id()]),
    ])
}

/// The JSON line's fields, in order.
fn row(sample: &Sample, interval: &Interval, cpu: Vec<(&'static str, Value)>, viewers: u64) -> Row {
    let (echo, exec) = (&interval.echo, &interval.exec);
    let us = |n: u64, v: f64| (n > 0).then(|| round(v, 1));
    let ms = |v: f64| (exec.count() > 0).then(|| round(v / 1000.0, 2));
    let errors_by: serde_json::Map<String, Value> = interval
        .errors
        .iter()
        .map(|(worker, n)| (worker.as_str().to_owned(), Value::from(*n)))
        .collect();
    Row::new("soak", sample.phase.as_str())
        .with("minute", sample.minute)
        .with("gateway_rss_kib", sample.rss_kib)
        .with("gateway_fds", sample.fds)
        .with("gateway_threads", sample.threads)
        .with("pane_log_kib", sample.log_kib)
        .extend(cpu)
        .with("tmux_rss_kib", sample.tmux_rss_kib)
        .with("echo_n", echo.count())
        .with("echo_p50_us", us(echo.count(), echo.quantile_us(0.5)))
        .with("echo_p99_us", us(echo.count(), echo.quantile_us(0.99)))
        .with("echo_max_us", us(echo.count(), echo.max_us()))
        .with("exec_n", exec.count())
        .with("exec_p50_ms", ms(exec.quantile_us(0.5)))
        .with("exec_p99_ms", ms(exec.quantile_us(0.99)))
        .with("churn_done", interval.churned)
        .with("viewers", viewers)
        .with("errors", interval.error_count())
        .with("errors_by", errors_by)
        .with(
            "bench_rss_kib",
            procfs::rss_kib(std::process::id()).map(Value::from),
        )
}

/// The table columns printed as samples come: (JSON field, header).
const COLUMNS: [(&str, &str); 17] = [
    ("minute", "minute"),
    ("gateway_rss_kib", "rss_kib"),
    ("pane_log_kib", "log_kib"),
    ("gateway_fds", "fds"),
    ("gateway_threads", "threads"),
    ("gateway_cpu_pct", "cpu_pct"),
    ("tmux_rss_kib", "tmux_kib"),
    ("echo_n", "echo_n"),
    ("echo_p50_us", "echo_p50_us"),
    ("echo_p99_us", "echo_p99_us"),
    ("echo_max_us", "echo_max_us"),
    ("exec_n", "exec_n"),
    ("exec_p50_ms", "exec_p50_ms"),
    ("exec_p99_ms", "exec_p99_ms"),
    ("churn_done", "churn"),
    ("viewers", "viewers"),
    ("errors", "errors"),
];

/// Width of the phase column.
const PHASE_WIDTH: usize = 6;

/// Prints samples as they are taken: a table (header first) and JSON lines, or only the
/// JSON lines.
pub struct Live {
    json_only: bool,
    header_done: bool,
}

impl Live {
    /// `json_only`: `--json`.
    pub fn new(json_only: bool) -> Live {
        Live {
            json_only,
            header_done: false,
        }
    }

    /// Prints one sample (its failures by worker on a line of their own).
    pub fn print(&mut self, sample: &Sample) {
        let mut out = std::io::stdout().lock();
        if !self.json_only {
            if !self.header_done {
                let _ = writeln!(out, "\n== soak (one row per sample)");
                let _ = writeln!(out, "{}", line("phase", COLUMNS.map(|(_, h)| h.into())));
                self.header_done = true;
            }
            let cells = COLUMNS.map(|(key, _)| match sample.row.get(key) {
                None | Some(Value::Null) => "-".to_owned(),
                Some(value) => report::display(value),
            });
            let _ = writeln!(out, "{}", line(sample.phase.as_str(), cells));
        }
        let _ = writeln!(out, "{}", sample.row.json_line());
        let _ = out.flush();
    }
}

fn line(phase: &str, cells: [String; COLUMNS.len()]) -> String {
    let mut text = format!("{phase:<PHASE_WIDTH$}");
    for ((_, header), cell) in COLUMNS.iter().zip(cells) {
        let width = header.len().max(6);
        text.push_str(&format!("  {cell:>width$}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_end_each_phase_exactly() {
        let s = |secs: u64| Duration::from_secs(secs);
        let at = schedule(s(30), s(50), s(20));
        let secs: Vec<(u64, Phase)> = at.iter().map(|(t, p)| (t.as_secs(), *p)).collect();
        use Phase::{Soak, Warmup};
        assert_eq!(
            secs,
            [
                (20, Warmup),
                (30, Warmup),
                (50, Soak),
                (70, Soak),
                (80, Soak)
            ]
        );
        let hour = schedule(s(120), s(3600), s(60));
        assert_eq!(hour.len(), 62);
        assert_eq!(hour.last(), Some(&(s(3720), Soak)));
        assert!(schedule(s(0), s(60), s(60)) == [(s(60), Soak)]);
    }
}
