//! Automatic blocking: an address that fails `BLOCK_FAILED_LOGINS` logins, or commits
//! `BLOCK_VIOLATIONS` violations (rate limits, protocol, Origin), within `BLOCK_WINDOW` is
//! blocked for `BLOCK_DURATION`, doubled for each earlier block (at most 24 h). Blocked
//! addresses are dropped at accept, before TLS and HTTP, or — behind a trusted proxy, where
//! the TCP peer is the proxy — refused at the upgrade and login. Addresses in
//! `ABUSE_ALLOWLIST` are never blocked. At most [`CAPACITY`] addresses are tracked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{AbuseCounters, ClientKey};
use crate::audit::{Audit, EventKind, Record as AuditRecord};
use crate::cidr::Cidr;
use crate::config::Config;

/// Addresses tracked at most (offenders and blocks), about 80 bytes each.
pub const CAPACITY: usize = 65_536;

/// The longest block, however often an address returns.
const MAX_BLOCK: Duration = Duration::from_secs(24 * 60 * 60);
/// A full table is swept at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What an address did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offense {
    /// A login (`auth`, `POST /api/login`, a token at the upgrade) failed.
    FailedLogin,
    /// A request, upgrade, login or input was over a rate limit.
    RateLimited,
    /// A frame broke the protocol (a close in the 4000 range).
    Protocol,
    /// A request came from a page whose Origin is not allowed.
    Origin,
}

/// A block imposed or lifted on this gateway, for the rest of the fleet
/// (`store::fleet`). Blocks learnt from the fleet are not announced again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockChange {
    /// An address was blocked here.
    Blocked(BlockInfo),
    /// An administrator lifted a block here.
    Unblocked(IpAddr),
}

/// One blocked address, as the admin API lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockInfo {
    /// The address (an IPv6 /64 as its first address).
    pub address: IpAddr,
    /// When the block ends, milliseconds since the epoch.
    pub until: u64,
    /// Blocks this address has had, this one included.
    pub strikes: u32,
    /// Why: `failed logins`, `violations` or `admin`.
    pub reason: String,
}

#[derive(Debug)]
struct Record {
    window_start: Instant,
    failed_logins: u32,
    violations: u32,
    strikes: u32,
    blocked: Option<(Instant, &'static str)>,
    /// Connections refused while blocked (their audit lines are sampled by it).
    refused: u32,
}

impl Record {
    /// A clean record whose window starts `now`.
    fn new(now: Instant) -> Record {
        Record {
            window_start: now,
            failed_logins: 0,
            violations: 0,
            strikes: 0,
            blocked: None,
            refused: 0,
        }
    }
}

/// The blocked and watched addresses.
pub struct Blocks {
    failed_logins: u32,
    violations: u32,
    window: Duration,
    duration: Duration,
    allowlist: Arc<[Cidr]>,
    /// Records with a block (some perhaps expired): zero makes [`Blocks::is_blocked`] one
    /// atomic load.
    blocked: AtomicUsize,
    records: RwLock<HashMap<ClientKey, Record>>,
    counters: Arc<AbuseCounters>,
    audit: Audit,
    last_sweep: std::sync::Mutex<Option<Instant>>,
    /// Where local changes go for the fleet, once [`Blocks::share_changes`] was called.
    changes: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<BlockChange>>>,
}

impl Blocks {
    /// Thresholds as `config` sets them.
    pub fn new(
        config: &Config,
        allowlist: Arc<[Cidr]>,
        counters: Arc<AbuseCounters>,
        audit: Audit,
    ) -> Blocks {
        Blocks {
            failed_logins: config.block_failed_logins,
            violations: config.block_violations,
            window: config.block_window,
            duration: config.block_duration,
            allowlist,
            blocked: AtomicUsize::new(0),
            records: RwLock::new(HashMap::new()),
            counters,
            audit,
            last_sweep: std::sync::Mutex::new(None),
            changes: std::sync::Mutex::new(None),
        }
    }

    /// From now on, every block imposed or lifted here is also sent to the returned
    /// receiver (for the shared store).
    pub fn share_changes(&self) -> tokio::sync::mpsc::UnboundedReceiver<BlockChange> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.changes.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    fn announce(&self, change: BlockChange) {
        if let Some(tx) = &*self.changes.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(change);
        }
    }

    /// Applies a block another gateway imposed: until `until_ms` (ms since the epoch), not
    /// announced again, no strike added here. Allowlisted addresses stay unblocked; an
    /// earlier end never shortens a longer block.
    pub fn apply_shared(&self, ip: IpAddr, until_ms: u64, reason: &str) {
        let ip = ip.to_canonical();
        if self.allowlist.iter().any(|net| net.contains(ip)) {
            return;
        }
        let now_wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let Some(left) = until_ms.checked_sub(now_wall).filter(|ms| *ms > 0) else {
            return;
        };
        let now = Instant::now();
        let until = now + Duration::from_millis(left).min(MAX_BLOCK);
        let reason: &'static str = match reason {
            "failed-logins" => "failed-logins",
            "violations" => "violations",
            "admin" => "admin",
            _ => "shared",
        };
        let key = ClientKey::of(ip);
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(key).or_insert_with(|| Record::new(now));
        match record.blocked {
            Some((current, _)) if current >= until => return,
            Some(_) => {}
            None => {
                self.blocked.fetch_add(1, Ordering::Relaxed);
            }
        }
        record.blocked = Some((until, reason));
        tracing::info!(client = %key.ip(), reason, duration_ms = left, "address blocked by another gateway");
    }

    /// Lifts a block another gateway's administrator lifted (not announced again).
    pub fn apply_shared_unblock(&self, ip: IpAddr) {
        let key = ClientKey::of(ip.to_canonical());
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        if let Some(record) = records.get_mut(&key)
            && record.blocked.take().is_some()
        {
            self.blocked.fetch_sub(1, Ordering::Relaxed);
            (record.failed_logins, record.violations) = (0, 0);
            tracing::info!(client = %key.ip(), "address unblocked by another gateway");
        }
    }

    /// Whether `ip` is blocked now. Called for every accepted TCP connection: one atomic
    /// load while nothing is blocked, a shared lock and a lookup otherwise.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        let hit = records
            .get(&ClientKey::of(ip))
            .and_then(|r| r.blocked)
            .is_some_and(|(until, _)| until > Instant::now());
        if hit {
            self.counters
                .blocked_connections
                .fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Notes `offense` by `ip`; blocks it when a threshold is reached. Returns how many
    /// offenses of that kind `ip` has in the current window (0 when allowlisted). A full
    /// table makes room ([`Blocks::make_room`]), so every address is counted.
    pub fn record(&self, ip: IpAddr, offense: Offense) -> u32 {
        let ip = ip.to_canonical();
        if self.allowlist.iter().any(|net| net.contains(ip)) {
            return 0;
        }
        let now = Instant::now();
        let key = ClientKey::of(ip);
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        if records.len() >= CAPACITY && !records.contains_key(&key) {
            self.make_room(&mut records, now);
        }
        let record = records.entry(key).or_insert_with(|| Record::new(now));
        if now.duration_since(record.window_start) >= self.window {
            (record.window_start, record.failed_logins, record.violations) = (now, 0, 0);
        }
        let (count, threshold, reason) = match offense {
            Offense::FailedLogin => {
                record.failed_logins += 1;
                (record.failed_logins, self.failed_logins, "failed-logins")
            }
            _ => {
                record.violations += 1;
                (record.violations, self.violations, "violations")
            }
        };
        let active = record.blocked.is_some_and(|(until, _)| until > now);
        if threshold > 0 && count >= threshold && !active {
            self.impose(key, record, now, reason, None);
        }
        count
    }

    /// Blocks `ip` for `duration` (or the next length for its record) on an
    /// administrator's word; `None` for an allowlisted address.
    pub fn block(&self, ip: IpAddr, duration: Option<Duration>) -> Option<BlockInfo> {
        let ip = ip.to_canonical();
        if self.allowlist.iter().any(|net| net.contains(ip)) {
            return None;
        }
        let now = Instant::now();
        let key = ClientKey::of(ip);
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(key).or_insert_with(|| Record::new(now));
        Some(self.impose(key, record, now, "admin", duration))
    }

    fn impose(
        &self,
        key: ClientKey,
        record: &mut Record,
        now: Instant,
        reason: &'static str,
        duration: Option<Duration>,
    ) -> BlockInfo {
        let doubling = 2u32.saturating_pow(record.strikes.min(16));
        let length = duration.unwrap_or_else(|| self.duration.saturating_mul(doubling));
        let length = length.min(MAX_BLOCK);
        record.strikes += 1;
        if record.blocked.is_none() {
            self.blocked.fetch_add(1, Ordering::Relaxed);
        }
        record.blocked = Some((now + length, reason));
        record.refused = 0;
        self.counters.blocks_total.fetch_add(1, Ordering::Relaxed);
        let info = info(key, record, now).expect("just blocked");
        tracing::info!(client = %key.ip(), reason, duration_ms = length.as_millis() as u64,
            strikes = record.strikes, "address blocked");
        let event = AuditRecord::new(EventKind::IpBlocked, Some(key.ip())).reason(reason);
        self.audit.record(event);
        self.announce(BlockChange::Blocked(info.clone()));
        info
    }

    /// Lifts the block on `ip`; whether there was one. Its strikes are kept, so a next
    /// block is longer.
    pub fn unblock(&self, ip: IpAddr) -> bool {
        let key = ClientKey::of(ip);
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let Some(record) = records.get_mut(&key) else {
            return false;
        };
        let was = record.blocked.take();
        if was.is_some() {
            self.blocked.fetch_sub(1, Ordering::Relaxed);
        }
        (record.failed_logins, record.violations) = (0, 0);
        let active = was.is_some_and(|(until, _)| until > Instant::now());
        if active {
            tracing::info!(client = %key.ip(), "address unblocked by an administrator");
            let event = AuditRecord::new(EventKind::IpUnblocked, Some(key.ip())).reason("admin");
            self.audit.record(event);
            self.announce(BlockChange::Unblocked(key.ip()));
        }
        active
    }

    /// The blocks in force, by address.
    pub fn list(&self) -> Vec<BlockInfo> {
        let now = Instant::now();
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<BlockInfo> = records
            .iter()
            .filter_map(|(key, record)| info(*key, record, now))
            .collect();
        list.sort_by_key(|b| b.address);
        list
    }

    /// Forgets expired blocks' flags and records with nothing left to remember.
    pub fn prune(&self) {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        self.sweep(&mut records, Instant::now());
    }

    /// Forgets ended blocks' flags. An address that was never blocked is forgotten when its
    /// window ends; one that was keeps its strikes (so its next block is longer) for as
    /// long as the longest block lasts.
    fn sweep(&self, records: &mut HashMap<ClientKey, Record>, now: Instant) {
        records.retain(|_, r| {
            if r.blocked.is_some_and(|(until, _)| until <= now) {
                r.blocked = None;
                self.blocked.fetch_sub(1, Ordering::Relaxed);
            }
            let age = now.duration_since(r.window_start);
            let memory = if r.strikes > 0 {
                self.window.max(MAX_BLOCK)
            } else {
                self.window
            };
            r.blocked.is_some() || age < memory
        });
    }

    /// A full table takes a new address all the same: a sweep (at most one per second),
    /// then, if still full, the oldest unblocked records go. Blocking
    /// never stops working because many addresses misbehaved (an IPv6 /48 holds 65,536
    /// /64s); at worst an old watcher's count restarts.
    fn make_room(&self, records: &mut HashMap<ClientKey, Record>, now: Instant) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY) {
            *last = Some(now);
            self.sweep(records, now);
        }
        if records.len() < CAPACITY {
            return;
        }
        // One scan frees a sixteenth of the table (its oldest unblocked watchers), so the
        // next few thousand new addresses need none: O(1) per address, amortised.
        let mut starts: Vec<Instant> = records
            .values()
            .filter(|r| r.blocked.is_none())
            .map(|r| r.window_start)
            .collect();
        if starts.is_empty() {
            return; // every record is a live block: none may go
        }
        let cut = (CAPACITY / 16).min(starts.len() - 1);
        let (_, cutoff, _) = starts.select_nth_unstable(cut);
        let cutoff = *cutoff;
        records.retain(|_, r| r.blocked.is_some() || r.window_start > cutoff);
    }

    /// Counts a connection refused from blocked `ip`; whether to audit it (the 1st, 2nd,
    /// 4th, 8th... of a block, so a blocked client behind a proxy cannot flood the log).
    pub fn refusal_worth_auditing(&self, ip: IpAddr) -> bool {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        match records.get_mut(&ClientKey::of(ip.to_canonical())) {
            Some(record) => {
                record.refused = record.refused.saturating_add(1);
                record.refused.is_power_of_two()
            }
            None => true,
        }
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.records.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn info(key: ClientKey, record: &Record, now: Instant) -> Option<BlockInfo> {
    let (until, reason) = record.blocked?;
    let left = until.checked_duration_since(now)?;
    let wall = SystemTime::now() + left;
    let until = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Some(BlockInfo {
        address: key.ip(),
        until,
        strikes: record.strikes,
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(allow: &[&str]) -> Blocks {
        let config = Config {
            block_failed_logins: 3,
            block_violations: 5,
            ..Config::default()
        };
        let allow: Vec<Cidr> = allow.iter().map(|c| c.parse().unwrap()).collect();
        Blocks::new(
            &config,
            allow.into(),
            Arc::default(),
            Audit::off(Arc::default()),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn failed_logins_block_at_the_threshold_and_an_unblock_lifts_it() {
        let blocks = blocks(&[]);
        let bad = ip("127.0.0.2");
        assert!(!blocks.is_blocked(bad));
        for _ in 0..2 {
            blocks.record(bad, Offense::FailedLogin);
        }
        assert!(!blocks.is_blocked(bad));
        blocks.record(bad, Offense::FailedLogin);
        assert!(blocks.is_blocked(bad));
        assert!(!blocks.is_blocked(ip("127.0.0.3")));
        assert_eq!(blocks.list().len(), 1);
        assert!(blocks.unblock(bad));
        assert!(!blocks.is_blocked(bad));
        assert!(blocks.list().is_empty());
    }

    #[test]
    fn a_full_table_still_blocks_a_new_offender_and_audits_refusals_sparsely() {
        let blocks = blocks(&[]);
        // One violation from each of CAPACITY addresses: the table is full of watchers.
        for n in 0..CAPACITY as u32 {
            let watcher = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            blocks.record(watcher, Offense::Protocol);
        }
        assert_eq!(blocks.tracked(), CAPACITY);
        let bad = ip("192.0.2.7");
        for _ in 0..5 {
            blocks.record(bad, Offense::Protocol);
        }
        assert!(blocks.is_blocked(bad), "blocking works with a full table");
        assert!(blocks.tracked() <= CAPACITY);
        let audited: Vec<bool> = (0..8).map(|_| blocks.refusal_worth_auditing(bad)).collect();
        assert_eq!(
            audited,
            [true, true, false, true, false, false, false, true]
        );
    }

    #[test]
    fn repeat_offenders_are_blocked_longer() {
        let blocks = blocks(&[]);
        let bad = ip("10.0.0.1");
        let first = blocks.block(bad, None).unwrap();
        blocks.unblock(bad);
        let second = blocks.block(bad, None).unwrap();
        assert_eq!(second.strikes, 2);
        let base = Config::default().block_duration.as_millis() as u64;
        assert!(
            second.until >= first.until + base / 2,
            "{first:?} {second:?}"
        );
    }

    #[test]
    fn the_allowlist_is_never_blocked() {
        let blocks = blocks(&["127.0.0.0/8"]);
        for _ in 0..10 {
            blocks.record(ip("127.0.0.2"), Offense::RateLimited);
        }
        assert!(!blocks.is_blocked(ip("127.0.0.2")));
        assert!(blocks.block(ip("127.0.0.2"), None).is_none());
        assert_eq!(blocks.tracked(), 0);
    }

    #[test]
    fn tracked_addresses_stay_bounded() {
        let blocks = blocks(&[]);
        for n in 0..(CAPACITY as u32 + 10_000) {
            blocks.record(IpAddr::V4(n.into()), Offense::Protocol);
        }
        assert!(blocks.tracked() <= CAPACITY);
    }
}
