//! The machine's limits that stop scenarios: the open-file limit (raised to the hard limit
//! at start), the gateway's connection cap, and ephemeral ports. When one stops a
//! scenario the tool says which, with the numbers, instead of a bare I/O error.

use rlimit::Resource;
use tmuxgate_client::ClientError;

/// File descriptors the tool keeps for itself beyond one per connection (stdio, the
/// runtime, tmux pipes, baselines).
pub const RESERVED_FDS: u64 = 64;

/// `RLIMIT_NOFILE` of this process after [`raise_nofile`].
#[derive(Clone, Copy, Debug)]
pub struct FileLimit {
    /// The soft limit before raising.
    pub before: u64,
    /// The soft limit now (children, including an own gateway, inherit it).
    pub soft: u64,
    /// The hard limit: the most an unprivileged process can raise to.
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit.
pub fn raise_nofile() -> FileLimit {
    let (before, hard) = Resource::NOFILE.get().unwrap_or((1024, 1024));
    let soft = match Resource::NOFILE.set(hard, hard) {
        Ok(()) => hard,
        Err(e) => {
            eprintln!("warning: cannot raise RLIMIT_NOFILE from {before} to {hard}: {e}");
            before
        }
    };
    FileLimit { before, soft, hard }
}

impl FileLimit {
    /// Refuses up front a scenario that needs `connections` sockets in this process.
    pub fn check(&self, scenario: &str, connections: u64) -> anyhow::Result<()> {
        let needed = connections + RESERVED_FDS;
        if needed <= self.soft {
            return Ok(());
        }
        anyhow::bail!(
            "{scenario}: {connections} connections need about {needed} open files, but \
             RLIMIT_NOFILE is {} (hard limit {}; raised from {}). Raise the hard limit \
             (`ulimit -Hn`, /etc/security/limits.conf, systemd LimitNOFILE=, or \
             `prlimit --nofile`) or ask for fewer connections.",
            self.soft,
            self.hard,
            self.before
        )
    }
}

/// Names the machine limit behind a failed connect, when the error shows one.
pub fn explain(error: &ClientError, file_limit: &FileLimit) -> Option<String> {
    let text = error.to_string();
    if let ClientError::Connect {
        status: Some(503), ..
    } = error
    {
        return Some(
            "the gateway refused the upgrade with HTTP 503: MAX_CONNECTIONS reached \
             (or it is shutting down)"
                .into(),
        );
    }
    if text.contains("Too many open files") || text.contains("os error 24") {
        return Some(format!(
            "this process ran out of file descriptors (RLIMIT_NOFILE soft {}, hard {})",
            file_limit.soft, file_limit.hard
        ));
    }
    if text.contains("Cannot assign requested address") || text.contains("os error 99") {
        return Some(
            "no free ephemeral port on 127.0.0.1 (net.ipv4.ip_local_port_range; \
             sockets in TIME_WAIT count too)"
                .into(),
        );
    }
    if text.contains("Connection reset") || text.contains("Connection refused") {
        return Some(
            "the gateway dropped or refused the connection: check its log for \
             `Too many open files` (its own RLIMIT_NOFILE) or an accept error"
                .into(),
        );
    }
    None
}
