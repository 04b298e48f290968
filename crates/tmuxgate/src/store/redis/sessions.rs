//! The session registry in Redis: one hash of records (`{PREFIX}:sessions`, id → JSON) and,
//! per session, a hash of its shares (`{PREFIX}:shares:ID`, user → mode), so that one user's
//! share changes atomically whatever other gateways change at the same time.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{RedisStore, err};
use crate::store::{SessionRecord, StoreResult};

impl RedisStore {
    fn shares_key(&self, id: &str) -> String {
        format!("{}{id}", self.keys.shares)
    }

    pub(super) async fn put_session_record(&self, record: &SessionRecord) -> StoreResult<()> {
        let json = serde_json::to_string(record).map_err(err)?;
        let shares_key = self.shares_key(&record.id);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(&self.keys.sessions, &record.id, json)
            .ignore()
            .del(&shares_key)
            .ignore();
        let shares = crate::sessions::access::decode_shares(&record.shares);
        if !shares.is_empty() {
            let pairs: Vec<(String, &str)> = shares
                .iter()
                .map(|s| (s.user.clone(), crate::sessions::access::mode_name(s.mode)))
                .collect();
            pipe.hset_multiple(&shares_key, &pairs).ignore();
        }
        let mut conn = self.conn();
        self.bounded(pipe.query_async::<()>(&mut conn)).await
    }

    pub(super) async fn remove_session_record(&self, id: &str) -> StoreResult<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hdel(&self.keys.sessions, id)
            .del(self.shares_key(id))
            .ignore();
        let mut conn = self.conn();
        let (removed,): (u64,) = self.bounded(pipe.query_async(&mut conn)).await?;
        Ok(removed > 0)
    }

    pub(super) async fn session_record(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let mut pipe = redis::pipe();
        pipe.hget(&self.keys.sessions, id)
            .hgetall(self.shares_key(id));
        let mut conn = self.conn();
        let (json, shares): (Option<String>, HashMap<String, String>) =
            self.bounded(pipe.query_async(&mut conn)).await?;
        Ok(json.and_then(|j| with_shares(&j, &shares)))
    }

    pub(super) async fn session_records(&self) -> StoreResult<Vec<SessionRecord>> {
        let mut conn = self.conn();
        let all: HashMap<String, String> = self.bounded(conn.hgetall(&self.keys.sessions)).await?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&String> = all.keys().collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.shares_key(id));
        }
        let shares: Vec<HashMap<String, String>> =
            self.bounded(pipe.query_async(&mut conn)).await?;
        let mut records: Vec<SessionRecord> = ids
            .iter()
            .zip(&shares)
            .filter_map(|(id, shares)| with_shares(&all[*id], shares))
            .collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    pub(super) async fn edit_session_share(
        &self,
        id: &str,
        user: &str,
        mode: Option<&str>,
    ) -> StoreResult<bool> {
        let mut invocation = self.edit_share.prepare_invoke();
        invocation
            .key(&self.keys.sessions)
            .key(self.shares_key(id))
            .arg(id)
            .arg(user)
            .arg(mode.unwrap_or(""));
        let done: i64 = self.script(invocation).await?;
        Ok(done == 1)
    }
}

/// A record read back, its shares taken from the shares hash (the JSON's are not used).
fn with_shares(json: &str, shares: &HashMap<String, String>) -> Option<SessionRecord> {
    let mut record: SessionRecord = serde_json::from_str(json).ok()?;
    let mut entries: Vec<String> = shares.iter().map(|(u, m)| format!("{u}:{m}")).collect();
    entries.sort();
    record.shares = entries.join(",");
    Some(record)
}
