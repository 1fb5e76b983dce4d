//! The audit log on the embedded engine: a batch of entries, their index rows and the chain's
//! head in one transaction, the head checked inside it (so a second writer on the same chain is
//! refused, never interleaved). Keys mirror the CQL primary keys of `schema.cql`.

use async_trait::async_trait;
use hospital_domain::audit::{AuditEntry, Bucket, GENESIS_HASH};

use super::engine::{from_json, Reader};
use super::keys::Key;
use super::tables::{Def, AUDIT_BY_ACCOUNT, AUDIT_BY_ACTION, AUDIT_BY_ACTOR, AUDIT_BY_TIME, AUDIT_HEADS, AUDIT_LOG};
use super::EmbeddedStore;
use crate::audit::{AuditCursor, AuditIndex, AuditStore, ChainHead, ChainRow};
use crate::error::Conflict;
use crate::error::Result;
use crate::StoreError;

fn chain_prefix(chain: &str, hour: i64) -> Key {
    Key::new().str(chain).i64(hour)
}

fn head_key(chain: &str) -> Key {
    Key::new().str(chain)
}

/// The table and partition prefix of an index partition.
fn partition(index: &AuditIndex, bucket: i64) -> (Def, Key) {
    match index {
        AuditIndex::Time => (AUDIT_BY_TIME, Key::new().i64(bucket)),
        AuditIndex::Actor(a) => (AUDIT_BY_ACTOR, Key::new().str(a).i64(bucket)),
        AuditIndex::Action(a) => (AUDIT_BY_ACTION, Key::new().str(a).i64(bucket)),
        AuditIndex::Account(a) => (AUDIT_BY_ACCOUNT, Key::new().uuid(&a.0).i64(bucket)),
    }
}

/// The clustering part of an index row's key: (at, chain, seq).
fn clustering(k: Key, at_ms: i64, chain: &str, seq: u64) -> Key {
    k.i64(at_ms).str(chain).u64(seq)
}

#[async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let Some(first) = entries.first() else { return Ok(()) };
        let chain = first.chain.clone();
        if entries.iter().any(|e| e.chain != chain) {
            return Err(StoreError::Conflict(Conflict::AuditChain));
        }
        let entries = entries.to_vec();
        self.engine
            .write(move |ctx| {
                let mut head: Option<ChainHead> = ctx.get(AUDIT_HEADS, &head_key(&chain))?;
                for e in &entries {
                    let key = chain_prefix(&chain, Bucket::Hour.of(e.at)).u64(e.seq);
                    match ctx.get::<AuditEntry>(AUDIT_LOG, &key)? {
                        Some(stored) if stored == *e => {} // a retried append: nothing new
                        Some(_) => return Err(StoreError::Conflict(Conflict::AuditChain)),
                        None => {
                            let (seq, hash, at) =
                                head.as_ref().map_or((0, GENESIS_HASH, None), |h| (h.seq, h.hash.as_str(), Some(h.at)));
                            let follows = e.seq == seq + 1
                                && e.prev_hash == hash
                                && at.is_none_or(|at| e.at >= at)
                                && e.hash == e.compute_hash();
                            if !follows {
                                return Err(StoreError::Conflict(Conflict::AuditChain));
                            }
                            ctx.put(AUDIT_LOG, &key, e);
                        }
                    }
                    if head.as_ref().is_none_or(|h| e.seq > h.seq) {
                        let first_at = head.as_ref().map_or(e.at, |h| h.first_at);
                        head = Some(ChainHead {
                            chain: chain.clone(),
                            seq: e.seq,
                            hash: e.hash.clone(),
                            at: e.at,
                            first_at,
                        });
                    }
                    for (index, bucket) in AuditIndex::of(e) {
                        let (table, k) = partition(&index, bucket);
                        ctx.put(table, &clustering(k, e.at.timestamp_millis(), &e.chain, e.seq), e);
                    }
                }
                if let Some(h) = &head {
                    ctx.put(AUDIT_HEADS, &head_key(&chain), h);
                }
                Ok(())
            })
            .await
    }

    async fn audit_head(&self, chain: &str) -> Result<Option<ChainHead>> {
        self.engine.read(|r| r.get(AUDIT_HEADS, &head_key(chain)))
    }

    async fn audit_heads(&self) -> Result<Vec<ChainHead>> {
        self.engine.read(|r| r.scan(AUDIT_HEADS, &Key::new()))
    }

    async fn audit_chain_hour(&self, chain: &str, hour: i64) -> Result<Vec<ChainRow>> {
        let prefix = chain_prefix(chain, hour);
        let rows = self.engine.read(|r| r.scan_stored(AUDIT_LOG, prefix.bytes()))?;
        Ok(rows
            .into_iter()
            .map(|(key, expires, payload)| {
                // The seq is the key's last component (8 bytes, big-endian).
                let seq = key
                    .get(key.len().saturating_sub(8)..)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                let entry = if expires != 0 {
                    Err(format!("the row carries an expiry ({expires}): audit rows never expire"))
                } else {
                    from_json::<AuditEntry>(AUDIT_LOG, &payload).map_err(|e| e.to_string())
                };
                ChainRow { seq, entry }
            })
            .collect())
    }

    async fn audit_index_page(
        &self,
        index: &AuditIndex,
        bucket: i64,
        before: &AuditCursor,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        let (table, prefix) = partition(index, bucket);
        let upper = clustering(prefix.clone(), before.at_ms, &before.chain, before.seq);
        let rows = self.engine.read(|r| r.scan_back(table, prefix.bytes(), upper.bytes(), limit))?;
        rows.iter().map(|(_, v)| from_json(table, v)).collect()
    }
}
