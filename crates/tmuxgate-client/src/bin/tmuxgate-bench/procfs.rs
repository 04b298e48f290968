//! What Linux's `/proc` says about a process: resident memory, CPU time, open files and
//! limits. Everything returns `None` when the process or the field is missing (another OS,
//! a gateway on another machine), and the scenarios then report `null`.

use std::time::Duration;

/// Resident set size of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Threads of `pid` (`Threads`).
pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU time (user + system, all threads) `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks_per_second(),
    ))
}

/// [`cpu_time`] plus the CPU time of `pid`'s children it has waited for (`cutime`,
/// `cstime`): a shell's commands, once they ended.
pub fn cpu_time_with_children(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks: u64 = (11..=14)
        .map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

/// The processes whose parent is one of `parents` (e.g. the shells of tmux servers).
pub fn children(parents: &[u32]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.get(stat.rfind(')')? + 2..)?
            .split(' ')
            .nth(1)?
            .parse()
            .ok()
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid).is_some_and(|p| parents.contains(&p)))
        .collect()
}

/// `sysconf(_SC_CLK_TCK)` without unsafe code: `getconf CLK_TCK`, else Linux's usual 100.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// File descriptors `pid` has open.
pub fn open_files(pid: u32) -> Option<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(entries.count() as u64)
}

/// The soft `Max open files` limit of `pid` (`None` when unlimited or unknown).
pub fn max_open_files(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU used by groups of processes over a window, as % of one core: the gateway, its
/// tmux servers, and this tool, so a reader sees which one saturates.
pub struct CpuMeter {
    groups: Vec<(&'static str, Vec<u32>, Option<Duration>)>,
    /// Groups whose figures include their reaped children (see [`cpu_time_with_children`]).
    with_children: Vec<&'static str>,
    started: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring each `(field name, pids)` group.
    pub fn start(groups: Vec<(&'static str, Vec<u32>)>) -> CpuMeter {
        let groups = groups
            .into_iter()
            .map(|(name, pids)| {
                let used = total_cpu(&pids);
                (name, pids, used)
            })
            .collect();
        CpuMeter {
            groups,
            with_children: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    /// Adds a group whose figure includes the CPU of its processes' ended children.
    pub fn with_children(mut self, name: &'static str, pids: Vec<u32>) -> CpuMeter {
        let used = total(&pids, cpu_time_with_children);
        self.groups.push((name, pids, used));
        self.with_children.push(name);
        self
    }

    /// `(field name, % of one core)` per group since [`start`](Self::start); `None` when a
    /// group's processes could not be read (or it is empty).
    pub fn fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let window = self.started.elapsed().as_secs_f64().max(1e-9);
        self.groups
            .iter()
            .map(|(name, pids, before)| {
                let now = match self.with_children.contains(name) {
                    true => total(pids, cpu_time_with_children),
                    false => total_cpu(pids),
                };
                let pct = before.zip(now).map(|(b, a)| {
                    crate::report::round(100.0 * (a.saturating_sub(b)).as_secs_f64() / window, 1)
                });
                (*name, pct.into())
            })
            .collect()
    }
}

/// CPU time of all `pids` together; `None` if any is unreadable or there are none.
fn total_cpu(pids: &[u32]) -> Option<Duration> {
    total(pids, cpu_time)
}

fn total(pids: &[u32], of: fn(u32) -> Option<Duration>) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| of(pid)).sum()
}

/// Ends the processes `pids` whose command line mentions `marker` (so a reused pid is left
/// alone): SIGTERM, then SIGKILL for those still there after [`TERMINATE_GRACE`].
/// Blocking. For the tmux servers this tool's gateways and baselines started, where
/// `kill-server` cannot be trusted: on tmux 3.3a it hangs while a control client is not
/// read, and a server whose control clients lost their gateway ignores SIGTERM.
pub fn terminate(pids: &[u32], marker: &str) {
    let mentions = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| cmd.windows(marker.len()).any(|w| w == marker.as_bytes()))
    };
    let signal = |name: &str, pids: &[u32]| {
        if pids.is_empty() {
            return;
        }
        let _ = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .args(pids.iter().map(u32::to_string))
            .stderr(std::process::Stdio::null())
            .status();
    };
    let alive = |pids: &[u32]| -> Vec<u32> { pids.iter().copied().filter(mentions).collect() };
    if marker.is_empty() {
        return;
    }
    signal("TERM", &alive(pids));
    let deadline = std::time::Instant::now() + TERMINATE_GRACE;
    while !alive(pids).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal("KILL", &alive(pids));
}

/// How long [`terminate`] waits between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// Mebibytes from KiB, rounded to 0.1.
pub fn mib(kib: u64) -> f64 {
    crate::report::round(kib as f64 / 1024.0, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(threads(pid).is_some_and(|n| n >= 1));
        assert!(cpu_time(pid).is_some());
        assert!(open_files(pid).is_some_and(|n| n >= 3));
        assert!(max_open_files(pid).is_some());
        assert_eq!(rss_kib(u32::MAX), None);
    }

    #[test]
    fn finds_children_and_their_cpu() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let pid = std::process::id();
        let found = children(&[pid]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()), "{found:?}");
        let (own, with) = (cpu_time(pid), cpu_time_with_children(pid));
        assert!(own.zip(with).is_some_and(|(o, w)| w >= o));
    }
}
