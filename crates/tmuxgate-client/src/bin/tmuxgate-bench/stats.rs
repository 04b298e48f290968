//! Latency histograms (hdrhistogram, nanoseconds) and their summary fields.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::report::round;

/// Highest latency recorded: an hour, far beyond any deadline the scenarios use.
const MAX_TRACKABLE_NANOS: u64 = 3_600_000_000_000;

/// A latency distribution.
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Latency {
    /// An empty distribution with three significant digits.
    pub fn new() -> Latency {
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKABLE_NANOS, 3)
            .unwrap_or_else(|_| unreachable!("constant bounds are valid"));
        Latency { histogram }
    }

    /// Records one sample (clamped into the trackable range).
    pub fn record(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.histogram
            .saturating_record(nanos.clamp(1, MAX_TRACKABLE_NANOS));
    }

    /// Adds every sample of `other`.
    pub fn add(&mut self, other: &Latency) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The `q` quantile (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest sample in microseconds.
    pub fn max_us(&self) -> f64 {
        self.histogram.max() as f64 / 1000.0
    }

    /// `n`, `p50_us`, `p95_us`, `p99_us`, `max_us`, `mean_us`.
    pub fn summary(&self) -> Vec<(&'static str, Value)> {
        let us = |v: f64| Value::from(round(v, 1));
        vec![
            ("n", self.count().into()),
            ("p50_us", us(self.quantile_us(0.50))),
            ("p95_us", us(self.quantile_us(0.95))),
            ("p99_us", us(self.quantile_us(0.99))),
            ("max_us", us(self.max_us())),
            ("mean_us", us(self.histogram.mean() / 1000.0)),
        ]
    }
}

/// Events per second over `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    round(count as f64 / secs, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_in_microseconds() {
        let mut latency = Latency::new();
        for micros in 1..=100 {
            latency.record(Duration::from_micros(micros));
        }
        assert_eq!(latency.count(), 100);
        assert!((latency.quantile_us(0.5) - 50.0).abs() < 0.1);
        assert!((latency.max_us() - 100.0).abs() < 0.1);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
