//! One line of the audit log: the seed's schema (`timestamp`, `eventType`, `severity`,
//! `source`, `description`, `metadata`, `outcome`, `riskScore`) plus the hash chain
//! (`seq`, `prevHash`), and the risk rules that score it.
//!
//! **The chain.** `prevHash` is the lowercase hex SHA-256 of the previous line's exact
//! bytes as written, without its trailing newline; the first line ever written (`seq` 0)
//! carries the hash of [`GENESIS`] instead. `seq` counts lines from 0 and continues across
//! rotated files and restarts. Verifying never re-serialises JSON: it hashes the bytes it
//! reads, so no canonical form is needed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::event::{EventKind, Metadata, Outcome, Record};

/// The bytes whose hash the first line's `prevHash` carries.
pub const GENESIS: &[u8] = b"tmuxgate audit log v1";

/// Failures from one source within this window raise each other's risk.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(300);
/// Risk added per earlier failure of the same source within [`REPEAT_WINDOW`].
pub const REPEAT_STEP: u8 = 10;
/// At most this much is added for repeats.
pub const REPEAT_MAX: u8 = 40;
/// Risk added to a successful login with the `admin` role.
pub const ADMIN_LOGIN_BONUS: u8 = 20;
/// Sources whose failures are remembered; beyond, expired ones are forgotten first and a
/// new source is not tracked until there is room (its repeats then score as first ones).
pub const TRACKED_SOURCES: usize = 4096;

/// Lowercase hex SHA-256 of `bytes`.
pub fn hash_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for byte in digest.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    out
}

/// Where the next line links to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// `seq` of the next line.
    pub next_seq: u64,
    /// `prevHash` of the next line.
    pub prev_hash: String,
}

impl Chain {
    /// The start of a new log.
    pub fn genesis() -> Chain {
        Chain {
            next_seq: 0,
            prev_hash: hash_hex(GENESIS),
        }
    }

    /// The chain after `line` (its bytes without the newline), whose `seq` was `seq`.
    pub fn after(line: &[u8], seq: u64) -> Chain {
        Chain {
            next_seq: seq.saturating_add(1),
            prev_hash: hash_hex(line),
        }
    }
}

/// The written form of a line, fields in schema order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'a> {
    timestamp: String,
    event_type: &'static str,
    severity: &'static str,
    source: String,
    description: &'static str,
    metadata: &'a Metadata,
    outcome: Outcome,
    risk_score: u8,
    seq: u64,
    prev_hash: &'a str,
}

/// `info`, `warning` or `critical`, from the risk score.
pub fn severity(score: u8) -> &'static str {
    match score {
        70.. => "critical",
        40.. => "warning",
        _ => "info",
    }
}

/// `record` as one line (no newline), linked to `chain`, with risk `score`.
pub fn render(record: &Record, score: u8, chain: &Chain) -> Vec<u8> {
    let line = Line {
        timestamp: timestamp(record.at),
        event_type: record.kind.name(),
        severity: severity(score),
        source: record
            .source
            .map_or_else(|| "gateway".to_owned(), |ip| ip.to_canonical().to_string()),
        description: record.kind.description(),
        metadata: &record.meta,
        outcome: record.kind.outcome(),
        risk_score: score,
        seq: chain.next_seq,
        prev_hash: &chain.prev_hash,
    };
    // Plain strings, numbers and a typed map: serialising cannot fail.
    serde_json::to_vec(&line).unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = crate::security::rfc3339(since.as_secs());
    format!(
        "{}.{:03}Z",
        whole.trim_end_matches('Z'),
        since.subsec_millis()
    )
}

/// The risk rules' memory: recent failures per source.
#[derive(Default)]
pub struct Risk {
    failures: HashMap<IpAddr, (SystemTime, u32)>,
}

impl Risk {
    /// The risk score of `record` (0-100), remembering it when it is a failure.
    pub fn score(&mut self, record: &Record) -> u8 {
        let kind = record.kind;
        let mut score = kind.base_score();
        if kind == EventKind::AuthSuccess && record.meta.role.as_deref() == Some("admin") {
            score = score.saturating_add(ADMIN_LOGIN_BONUS);
        }
        if let (true, Some(source)) = (kind.is_failure(), record.source) {
            let earlier = self.failure(source, record.at);
            let steps = u8::try_from(earlier).unwrap_or(u8::MAX);
            score = score.saturating_add(steps.saturating_mul(REPEAT_STEP).min(REPEAT_MAX));
        }
        score.min(100)
    }

    /// Counts a failure of `source` at `at`; returns the failures before it in the window.
    fn failure(&mut self, source: IpAddr, at: SystemTime) -> u32 {
        let expired = |since: SystemTime| {
            at.duration_since(since)
                .is_ok_and(|age| age > REPEAT_WINDOW)
        };
        if !self.failures.contains_key(&source) && self.failures.len() >= TRACKED_SOURCES {
            self.failures.retain(|_, (since, _)| !expired(*since));
            if self.failures.len() >= TRACKED_SOURCES {
                return 0;
            }
        }
        let entry = self.failures.entry(source).or_insert((at, 0));
        if expired(entry.0) {
            *entry = (at, 0);
        }
        let earlier = entry.1;
        entry.1 = entry.1.saturating_add(1);
        earlier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_the_hash_of_its_label() {
        assert_eq!(
            hash_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Chain::genesis().prev_hash, hash_hex(GENESIS));
        assert_eq!(Chain::after(b"", 4).next_seq, 5);
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_042);
        assert_eq!(timestamp(at), "2023-11-14T22:13:20.042Z");
    }

    #[test]
    fn repeated_failures_from_one_source_raise_the_score() {
        let mut risk = Risk::default();
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let fail = |at: SystemTime| Record {
            at,
            ..Record::new(EventKind::AuthFailure, Some(ip))
        };
        let t0 = SystemTime::now();
        let scores: Vec<u8> = (0..7)
            .map(|i| risk.score(&fail(t0 + Duration::from_secs(i))))
            .collect();
        assert_eq!(scores, [40, 50, 60, 70, 80, 80, 80]);
        assert_eq!(severity(scores[0]), "warning");
        assert_eq!(severity(scores[3]), "critical");
        // After the window the count starts again.
        let later = t0 + REPEAT_WINDOW + Duration::from_secs(10);
        assert_eq!(risk.score(&fail(later)), 40);
        // Another source is not affected; a success does not count.
        let other = Record::new(EventKind::AuthFailure, "192.0.2.8".parse().ok());
        assert_eq!(risk.score(&other), 40);
        let admin = Record::new(EventKind::AuthSuccess, Some(ip)).role("admin");
        assert_eq!(risk.score(&admin), 30);
    }

    #[test]
    fn remembered_sources_stay_bounded() {
        let mut risk = Risk::default();
        let t0 = SystemTime::now();
        for i in 0..(TRACKED_SOURCES as u32 + 100) {
            let ip = IpAddr::from(i.to_be_bytes());
            let r = Record {
                at: t0,
                ..Record::new(EventKind::OriginRejected, Some(ip))
            };
            risk.score(&r);
        }
        assert_eq!(risk.failures.len(), TRACKED_SOURCES);
    }
}
