//! Distribution tests for the balancing strategies: 300 placements each, the snapshot
//! updated after every one as the pool would see it.

use super::*;

fn pool(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|index| Candidate {
            index,
            weight: 1,
            up: true,
            ..Candidate::default()
        })
        .collect()
}

fn id(index: usize) -> String {
    format!("tmux-{index}")
}

/// Places `n` sessions with `strategy`, counting one more session on each chosen backend.
fn place(strategy: &dyn Strategy, snapshot: &mut [Candidate], n: usize) -> Vec<usize> {
    let mut chosen = Vec::with_capacity(n);
    for _ in 0..n {
        let eligible = eligible(snapshot, Pin::default(), id);
        let index = strategy.pick(&eligible).expect("a candidate");
        snapshot[index].sessions += 1;
        chosen.push(index);
    }
    chosen
}

fn counts(chosen: &[usize], n: usize) -> Vec<usize> {
    let mut counts = vec![0; n];
    for &i in chosen {
        counts[i] += 1;
    }
    counts
}

#[test]
fn round_robin_is_exact_over_300() {
    let mut snapshot = pool(3);
    let chosen = place(
        BalanceStrategy::RoundRobin.build().as_ref(),
        &mut snapshot,
        300,
    );
    assert!(chosen.iter().enumerate().all(|(i, &b)| b == i % 3));
    assert_eq!(counts(&chosen, 3), [100, 100, 100]);
}

#[test]
fn round_robin_skips_a_draining_backend_and_resumes_it() {
    let strategy = BalanceStrategy::RoundRobin.build();
    let mut snapshot = pool(3);
    snapshot[1].draining = true;
    assert_eq!(place(strategy.as_ref(), &mut snapshot, 4), [0, 2, 0, 2]);
    snapshot[1].draining = false;
    assert_eq!(place(strategy.as_ref(), &mut snapshot, 3), [0, 1, 2]);
}

#[test]
fn weighted_follows_weights_over_300() {
    let mut snapshot = pool(3);
    for (c, w) in snapshot.iter_mut().zip([1, 2, 3]) {
        c.weight = w;
    }
    let chosen = place(
        BalanceStrategy::Weighted.build().as_ref(),
        &mut snapshot,
        300,
    );
    let counts = counts(&chosen, 3);
    for (got, want) in counts.iter().zip([50usize, 100, 150]) {
        assert!(got.abs_diff(want) <= 2, "{counts:?}");
    }
    // Smooth: the heaviest backend never gets more than two in a row.
    assert!(chosen.windows(3).all(|w| w != [2, 2, 2]), "{chosen:?}");
}

#[test]
fn least_sessions_rebalances_after_removals() {
    let strategy = BalanceStrategy::LeastSessions.build();
    let mut snapshot = pool(3);
    let chosen = place(strategy.as_ref(), &mut snapshot, 300);
    assert_eq!(counts(&chosen, 3), [100, 100, 100]);
    // Sixty sessions on backend 0 and thirty on backend 2 end.
    snapshot[0].sessions -= 60;
    snapshot[2].sessions -= 30;
    let refill = place(strategy.as_ref(), &mut snapshot, 90);
    assert_eq!(counts(&refill, 3), [60, 0, 30]);
    assert!(snapshot.iter().all(|c| c.sessions == 100));
}

#[test]
fn least_sessions_honours_weight() {
    let mut snapshot = pool(2);
    snapshot[1].weight = 2;
    let chosen = place(
        BalanceStrategy::LeastSessions.build().as_ref(),
        &mut snapshot,
        300,
    );
    let counts = counts(&chosen, 2);
    assert!(
        counts[0].abs_diff(100) <= 1 && counts[1].abs_diff(200) <= 1,
        "{counts:?}"
    );
}

#[test]
fn least_load_avoids_a_busy_backend() {
    let mut snapshot = pool(3);
    // Backend 0's panes are streaming output, backend 1 has many viewers.
    snapshot[0].recent_output_bytes = 40 * OUTPUT_BYTES_PER_SESSION as u64;
    snapshot[1].viewers = 80;
    let chosen = place(
        BalanceStrategy::LeastLoad.build().as_ref(),
        &mut snapshot,
        300,
    );
    let counts = counts(&chosen, 3);
    // Loads equalise: 40 + a = 20 + b = c, a + b + c = 300.
    assert!(counts[0].abs_diff(80) <= 1, "{counts:?}");
    assert!(counts[1].abs_diff(100) <= 1, "{counts:?}");
    assert!(counts[2].abs_diff(120) <= 1, "{counts:?}");
}

#[test]
fn performance_avoids_an_artificially_slow_backend() {
    let mut snapshot = pool(3);
    snapshot[0].latency_ewma_us = 1_000;
    snapshot[1].latency_ewma_us = 10_000;
    snapshot[2].latency_ewma_us = 1_000;
    let chosen = place(
        BalanceStrategy::Performance.build().as_ref(),
        &mut snapshot,
        300,
    );
    let counts = counts(&chosen, 3);
    // Ten times slower: about a tenth of the sessions of each fast one.
    assert!(counts[1] <= 20, "{counts:?}");
    assert!(counts[0].abs_diff(counts[2]) <= 1, "{counts:?}");
}

#[test]
fn performance_without_figures_spreads_evenly() {
    let mut snapshot = pool(3);
    snapshot[2].latency_ewma_us = 0;
    let chosen = place(
        BalanceStrategy::Performance.build().as_ref(),
        &mut snapshot,
        300,
    );
    assert_eq!(counts(&chosen, 3), [100, 100, 100]);
}

#[test]
fn only_up_undrained_matching_backends_are_candidates() {
    let mut snapshot = pool(4);
    snapshot[0].up = false;
    snapshot[1].draining = true;
    snapshot[2].labels = vec!["gpu".into(), "fast".into()];
    snapshot[3].labels = vec!["gpu".into()];
    let indices = |pin| -> Vec<usize> {
        let found = eligible(&snapshot, pin, id);
        found.iter().map(|c| c.index).collect()
    };
    assert_eq!(indices(Pin::default()), [2, 3]);
    let both = ["gpu".to_string(), "fast".to_string()];
    let labels = Pin {
        labels: &both,
        ..Pin::default()
    };
    assert_eq!(indices(labels), [2]);
    let by_id = |id| Pin {
        backend: Some(id),
        labels: &[],
    };
    assert_eq!(indices(by_id("tmux-3")), [3]);
    assert!(indices(by_id("tmux-1")).is_empty(), "draining");
    assert!(indices(by_id("tmux-0")).is_empty(), "down");
    for strategy in [
        BalanceStrategy::RoundRobin,
        BalanceStrategy::Weighted,
        BalanceStrategy::LeastSessions,
        BalanceStrategy::LeastLoad,
        BalanceStrategy::Performance,
    ] {
        assert_eq!(strategy.build().pick(&[]), None, "{strategy}");
    }
}
