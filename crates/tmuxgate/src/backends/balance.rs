//! Placement of new sessions: the balancing [`Strategy`] (`BALANCE_STRATEGY`, chosen once
//! at start-up) over a [`Candidate`] snapshot of the backends, and the filter deciding who
//! is a candidate at all (up, not draining, matching a pin).
//!
//! Everything here is pure: the pool takes the snapshot, this module picks an index. It
//! runs once per `session-create`; keystrokes and output never come near it.

use std::sync::Mutex;

/// `BALANCE_STRATEGY`: how a new session's backend is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BalanceStrategy {
    /// Each backend in turn.
    RoundRobin,
    /// In proportion to each backend's weight (smooth weighted round-robin).
    Weighted,
    /// The fewest sessions per unit of weight.
    LeastSessions,
    /// The least load per unit of weight: sessions, viewers and recent output bytes.
    LeastLoad,
    /// The least latency × load: slow backends get fewer sessions.
    #[default]
    Performance,
}

impl std::fmt::Display for BalanceStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BalanceStrategy::RoundRobin => "round-robin",
            BalanceStrategy::Weighted => "weighted",
            BalanceStrategy::LeastSessions => "least-sessions",
            BalanceStrategy::LeastLoad => "least-load",
            BalanceStrategy::Performance => "performance",
        })
    }
}

impl BalanceStrategy {
    /// The strategy's implementation, with fresh state.
    pub fn build(self) -> Box<dyn Strategy> {
        match self {
            BalanceStrategy::RoundRobin => Box::new(RoundRobin::default()),
            BalanceStrategy::Weighted => Box::new(Weighted::default()),
            BalanceStrategy::LeastSessions => Box::new(LeastSessions),
            BalanceStrategy::LeastLoad => Box::new(LeastLoad),
            BalanceStrategy::Performance => Box::new(Performance),
        }
    }
}

/// What placement knows about one backend at the moment of a `session-create`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Candidate {
    /// Position in the pool.
    pub index: usize,
    /// Relative share of new sessions (at least 1).
    pub weight: u32,
    /// Operator-given labels, for pinning.
    pub labels: Vec<String>,
    /// Live sessions on it.
    pub sessions: usize,
    /// Viewers attached to its sessions.
    pub viewers: usize,
    /// Output its panes produced recently (bytes held in their logs).
    pub recent_output_bytes: u64,
    /// Smoothed command round trip in µs; 0 when not measured yet.
    pub latency_ewma_us: u64,
    /// Its admin connection is up.
    pub up: bool,
    /// An operator drains it: no new sessions.
    pub draining: bool,
}

/// Where a `session-create` asked its session to go.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pin<'a> {
    /// Exactly this backend id (`tmux-1`).
    pub backend: Option<&'a str>,
    /// Every one of these labels.
    pub labels: &'a [String],
}

/// A balancing strategy: picks one of the eligible candidates.
pub trait Strategy: Send + Sync {
    /// The `index` of the chosen candidate; `None` only when `eligible` is empty.
    /// `eligible` is in index order and holds only backends that are up and not draining.
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize>;
}

/// The candidates that may take a new session: up, not draining, matching `pin`.
/// `id_of` names a backend by index (`tmux-0`…).
pub fn eligible<'c>(
    snapshot: &'c [Candidate],
    pin: Pin<'_>,
    id_of: impl Fn(usize) -> String,
) -> Vec<&'c Candidate> {
    snapshot
        .iter()
        .filter(|c| c.up && !c.draining)
        .filter(|c| pin.backend.is_none_or(|id| id_of(c.index) == id))
        .filter(|c| pin.labels.iter().all(|l| c.labels.contains(l)))
        .collect()
}

/// Each eligible backend in turn, by index, skipping those that are not eligible now.
#[derive(Default)]
pub struct RoundRobin {
    next: Mutex<usize>,
}

impl Strategy for RoundRobin {
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let chosen = eligible
            .iter()
            .find(|c| c.index >= *next)
            .or_else(|| eligible.first())?;
        *next = chosen.index + 1;
        Some(chosen.index)
    }
}

/// Smooth weighted round-robin: every pick adds each candidate's weight to its credit,
/// takes the candidate with the most credit and charges it the total. Over any run of
/// `Σweight` picks each backend gets exactly its weight, interleaved rather than in bursts.
#[derive(Default)]
pub struct Weighted {
    credit: Mutex<Vec<i64>>,
}

impl Strategy for Weighted {
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize> {
        let mut credit = self.credit.lock().unwrap_or_else(|e| e.into_inner());
        let needed = eligible.iter().map(|c| c.index + 1).max()?;
        if credit.len() < needed {
            credit.resize(needed, 0);
        }
        let mut total = 0;
        let mut best: Option<usize> = None;
        for c in eligible {
            let weight = i64::from(c.weight.max(1));
            credit[c.index] += weight;
            total += weight;
            if best.is_none_or(|b| credit[c.index] > credit[b]) {
                best = Some(c.index);
            }
        }
        let chosen = best?;
        credit[chosen] -= total;
        Some(chosen)
    }
}

/// The lowest `score`; ties go to the lowest index, so an empty pool fills in order.
fn lowest(eligible: &[&Candidate], score: impl Fn(&Candidate) -> f64) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for c in eligible {
        let s = score(c) / f64::from(c.weight.max(1));
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, c.index));
        }
    }
    best.map(|(_, index)| index)
}

/// Fewest sessions per unit of weight.
pub struct LeastSessions;

impl Strategy for LeastSessions {
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize> {
        lowest(eligible, |c| c.sessions as f64)
    }
}

/// Output bytes that count as much as one session.
pub const OUTPUT_BYTES_PER_SESSION: f64 = 256.0 * 1024.0;
/// Viewers that count as much as one session.
pub const VIEWERS_PER_SESSION: f64 = 4.0;

/// A backend's load in session equivalents: sessions, viewers, recent output.
pub fn load(c: &Candidate) -> f64 {
    c.sessions as f64
        + c.viewers as f64 / VIEWERS_PER_SESSION
        + c.recent_output_bytes as f64 / OUTPUT_BYTES_PER_SESSION
}

/// Least load per unit of weight.
pub struct LeastLoad;

impl Strategy for LeastLoad {
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize> {
        lowest(eligible, load)
    }
}

/// Least latency × (load + 1) per unit of weight. A backend not measured yet is taken to
/// be as fast as the mean of those that are (or all equal when none is), so a new backend
/// neither attracts nor repels sessions until it has a figure.
pub struct Performance;

impl Strategy for Performance {
    fn pick(&self, eligible: &[&Candidate]) -> Option<usize> {
        let known: Vec<u64> = eligible
            .iter()
            .map(|c| c.latency_ewma_us)
            .filter(|&l| l > 0)
            .collect();
        let mean = match known.len() {
            0 => 1.0,
            n => known.iter().sum::<u64>() as f64 / n as f64,
        };
        lowest(eligible, |c| {
            let latency = match c.latency_ewma_us {
                0 => mean,
                l => l as f64,
            };
            latency * (load(c) + 1.0)
        })
    }
}

#[cfg(test)]
#[path = "balance_tests.rs"]
mod tests;
