//! The soak's verdict: the last sample against the first one after the warm-up (gateway
//! RSS, descriptors, threads, its tmux servers' RSS), the RSS trend over every measured
//! sample, the run's totals and its failures. Reported, not judged: whether a growth is
//! a leak is for the reader, with the plot.

use super::sample::{Phase, Sample};
use super::tally::Tally;
use crate::bench::Outcome;
use crate::report::{Row, round};

/// Minutes per hour, for the trend.
const MINUTES_PER_HOUR: f64 = 60.0;

/// The summary row and notes of a run whose samples are `samples`.
pub fn outcome(samples: &[Sample], tally: &Tally) -> Outcome {
    let mut outcome = Outcome::default();
    let soak: Vec<&Sample> = samples.iter().filter(|s| s.phase == Phase::Soak).collect();
    let total = |key: &str| -> u64 {
        samples
            .iter()
            .filter_map(|s| s.row.get(key)?.as_u64())
            .sum()
    };
    let (Some(first), Some(last)) = (soak.first(), soak.last()) else {
        outcome
            .notes
            .push("growth after warm-up: no sample after the warm-up".into());
        return outcome;
    };
    let growth = |of: fn(&Sample) -> Option<u64>| growth(first, last, of);
    let rss_growth = growth(|s| s.rss_kib);
    let rss_pct = rss_growth
        .zip(first.rss_kib)
        .filter(|(_, base)| *base > 0)
        .map(|(g, base)| round(100.0 * g as f64 / base as f64, 2));
    let points: Vec<(f64, f64)> = soak
        .iter()
        .filter_map(|s| Some((s.minute, s.rss_kib? as f64)))
        .collect();
    let slope = trend(&points).map(|per_minute| round(per_minute * MINUTES_PER_HOUR, 0));
    let worst_p99 = soak
        .iter()
        .filter_map(|s| s.echo_p99_us)
        .fold(None, |worst: Option<f64>, v| {
            Some(worst.map_or(v, |w| w.max(v)))
        });
    let errors_after: u64 = soak
        .iter()
        .filter_map(|s| s.row.get("errors")?.as_u64())
        .sum();
    outcome.rows.push(
        Row::new("soak", "summary")
            .with("from_minute", first.minute)
            .with("to_minute", last.minute)
            .with("rss_first_kib", first.rss_kib)
            .with("rss_last_kib", last.rss_kib)
            .with("rss_growth_kib", rss_growth)
            .with("rss_growth_pct", rss_pct)
            .with("rss_trend_kib_per_h", slope)
            .with("pane_log_growth_kib", growth(|s| s.log_kib))
            .with("rss_less_logs_growth_kib", growth(rss_less_logs))
            .with("fds_first", first.fds)
            .with("fds_last", last.fds)
            .with("fds_growth", growth(|s| s.fds))
            .with("threads_growth", growth(|s| s.threads))
            .with("tmux_rss_growth_kib", growth(|s| s.tmux_rss_kib))
            .with("echo_p99_first_us", first.echo_p99_us.map(|v| round(v, 1)))
            .with("echo_p99_last_us", last.echo_p99_us.map(|v| round(v, 1)))
            .with("echo_p99_worst_us", worst_p99.map(|v| round(v, 1)))
            .with("echo_n", total("echo_n"))
            .with("exec_n", total("exec_n"))
            .with("churn_done", total("churn_done"))
            .with("errors", total("errors"))
            .with("errors_after_warmup", errors_after),
    );
    outcome.notes.push(verdict(
        first,
        last,
        rss_growth,
        rss_pct,
        slope,
        points.len(),
    ));
    let failures = tally.failure_notes();
    match failures.is_empty() {
        true => outcome.notes.push(
            "failures: none (every connect, attach, echo, command and churned connection \
             succeeded)"
                .into(),
        ),
        false => outcome
            .notes
            .push(format!("failures by worker: {}", failures.join("; "))),
    }
    outcome
}

/// `growth after warm-up (minute A → B): …`, with signs and units.
fn verdict(
    first: &Sample,
    last: &Sample,
    rss_growth: Option<i64>,
    rss_pct: Option<f64>,
    slope: Option<f64>,
    points: usize,
) -> String {
    let head = format!(
        "growth after warm-up (minute {} → {})",
        first.minute, last.minute
    );
    let Some(rss) = rss_growth else {
        return format!(
            "{head}: unknown, the gateway's /proc is not readable (give --pid with --url)"
        );
    };
    let signed = |v: Option<i64>| v.map_or("unknown".into(), |v| format!("{v:+}"));
    let pct = rss_pct.map_or(String::new(), |p| format!(" ({p:+.2}%)"));
    let trend = slope.map_or(String::new(), |s| {
        format!(", trend {s:+} KiB/h over {points} samples")
    });
    let logs = growth(first, last, |s| s.log_kib).map_or(String::new(), |g| {
        let rest = signed(growth(first, last, rss_less_logs));
        format!(" (pane logs {g:+} KiB, the rest {rest} KiB)")
    });
    let tmux = growth(first, last, |s| s.tmux_rss_kib)
        .map_or(String::new(), |g| format!("; tmux servers' RSS {g:+} KiB"));
    format!(
        "{head}: gateway RSS {rss:+} KiB{pct}{trend}{logs}; open fds {}; threads {}{tmux}",
        signed(growth(first, last, |s| s.fds)),
        signed(growth(first, last, |s| s.threads)),
    )
}

/// The gateway's RSS less what its pane logs hold (which grows by design).
fn rss_less_logs(s: &Sample) -> Option<u64> {
    Some(s.rss_kib?.saturating_sub(s.log_kib?))
}

/// `last`'s figure minus `first`'s, when both are known.
fn growth(first: &Sample, last: &Sample, of: fn(&Sample) -> Option<u64>) -> Option<i64> {
    Some(of(last)? as i64 - of(first)? as i64)
}

/// The least-squares slope of `points` (y per unit of x), from three points on (two give
/// only the growth already reported).
fn trend(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: f64, phase: Phase, rss: u64, fds: u64) -> Sample {
        let row = Row::new("soak", "x").with("errors", 1).with("echo_n", 10);
        Sample {
            minute,
            phase,
            rss_kib: Some(rss),
            fds: Some(fds),
            threads: Some(4),
            log_kib: Some(rss / 10),
            tmux_rss_kib: None,
            echo_p99_us: Some(500.0),
            row,
        }
    }

    #[test]
    fn trend_is_the_least_squares_slope() {
        assert_eq!(trend(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        assert_eq!(trend(&[(1.0, 1.0), (2.0, 2.0)]), None);
        assert_eq!(trend(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn compares_the_last_sample_with_the_first_after_warm_up() {
        let samples = [
            sample(1.0, Phase::Warmup, 500, 10),
            sample(2.0, Phase::Soak, 1000, 20),
            sample(3.0, Phase::Soak, 1100, 20),
            sample(4.0, Phase::Soak, 1050, 19),
        ];
        let outcome = outcome(&samples, &Tally::default());
        let row = &outcome.rows[0];
        assert_eq!(row.get("rss_growth_kib"), Some(&50.into()));
        assert_eq!(row.get("rss_growth_pct"), Some(&5.0.into()));
        assert_eq!(row.get("fds_growth"), Some(&(-1).into()));
        assert_eq!(row.get("rss_less_logs_growth_kib"), Some(&45.into()));
        assert_eq!(row.get("errors"), Some(&4.into()));
        assert_eq!(row.get("errors_after_warmup"), Some(&3.into()));
        assert_eq!(
            outcome.notes[0],
            "growth after warm-up (minute 2 → 4): gateway RSS +50 KiB (+5.00%), trend +1500 \
             KiB/h over 3 samples (pane logs +5 KiB, the rest +45 KiB); open fds -1; threads +0"
        );
        assert!(outcome.notes[1].starts_with("failures: none"));
    }
}
