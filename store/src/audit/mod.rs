//! The append-only audit log: every staff action, hash-chained (`hospital_domain::audit`).
//!
//! Tables (see `schema.cql`), each serving one query, each partition bounded by a time bucket
//! sized to its rate (`Bucket`):
//! - `audit_log ((chain, hour), seq)`: the chain itself, walked in seq order by `verify`.
//! - `audit_heads ((chain))`: each chain's last seq and hash, and where it starts.
//! - `audit_by_time ((hour), at, chain, seq)`: search by time alone.
//! - `audit_by_actor ((actor, day), at, chain, seq)`: what one staff member did.
//! - `audit_by_action ((action, hour), at, chain, seq)`: who did `record.export`, say.
//! - `audit_by_account ((account_id, month), at, chain, seq)`: who touched a patient's records
//!   (their access history).
//!
//! The index rows carry the whole entry (as every other listing table here does), so a search
//! page is a few partition reads and no lookups. `AuditLog` (`writer`) is the one writer of a
//! chain; `search` pages through an index; `verify` walks a chain; `export` writes CSV or JSON
//! Lines.

mod export;
mod search;
mod verify;
mod writer;

pub use export::{export, ExportFormat};
pub use search::{search, AuditFilter, AuditPage, AuditQuery};
pub use verify::{verify_chain, ChainReport};
pub use writer::{AuditError, AuditLog};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::audit::{AuditEntry, Bucket};
use hospital_domain::AccountId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

use crate::error::Result;

/// A chain's head: its last entry, and the time of its first (where a walk starts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub chain: String,
    pub seq: u64,
    pub hash: String,
    pub at: DateTime<Utc>,
    pub first_at: DateTime<Utc>,
}

/// One stored row of the chain table, as stored: the seq from its key, and its entry or why it
/// does not decode (verification must be able to name a row it cannot read).
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    pub seq: u64,
    pub entry: std::result::Result<AuditEntry, String>,
}

/// Which index a search reads, with its partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditIndex {
    Time,
    /// `Actor::key()`: a staff id, or `system:<name>`.
    Actor(String),
    Action(String),
    Account(AccountId),
}

impl AuditIndex {
    /// The bucket width of the index's partitions.
    pub fn bucket(&self) -> Bucket {
        match self {
            AuditIndex::Time | AuditIndex::Action(_) => Bucket::Hour,
            AuditIndex::Actor(_) => Bucket::Day,
            AuditIndex::Account(_) => Bucket::Month,
        }
    }

    /// Every index partition (index and bucket) an entry is listed under.
    pub fn of(entry: &AuditEntry) -> Vec<(AuditIndex, i64)> {
        let mut v = vec![
            AuditIndex::Time,
            AuditIndex::Actor(entry.event.actor.key()),
            AuditIndex::Action(entry.event.action.as_str().to_string()),
        ];
        if let Some(c) = &entry.event.concerning {
            v.push(AuditIndex::Account(c.account));
        }
        v.into_iter()
            .map(|i| {
                let b = i.bucket().of(entry.at);
                (i, b)
            })
            .collect()
    }
}

/// A position in a newest-first listing: entries strictly older than (at, chain, seq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCursor {
    pub at_ms: i64,
    pub chain: String,
    pub seq: u64,
}

impl AuditCursor {
    pub fn of(e: &AuditEntry) -> Self {
        AuditCursor { at_ms: e.at.timestamp_millis(), chain: e.chain.clone(), seq: e.seq }
    }

    /// Just after every entry at or before `at` (the start of a listing ending at `at`).
    pub fn after_time(at: DateTime<Utc>) -> Self {
        AuditCursor { at_ms: at.timestamp_millis().saturating_add(1), chain: String::new(), seq: 0 }
    }

    /// Listing order (ascending); a listing returns entries below the cursor, highest first.
    pub fn cmp_entry(e: &AuditEntry, c: &AuditCursor) -> Ordering {
        (e.at.timestamp_millis(), e.chain.as_str(), e.seq).cmp(&(c.at_ms, c.chain.as_str(), c.seq))
    }

    /// As text for a query string: `at_ms.seq.chain`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.at_ms, self.seq, self.chain)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, '.');
        let at_ms = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        let chain = it.next()?.to_string();
        Some(AuditCursor { at_ms, chain, seq })
    }
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends consecutive entries of one chain in one durable write, with their index rows and
    /// the chain's new head. The first new entry must follow the head (seq + 1, its hash as
    /// `prev_hash`; seq 1 after `GENESIS_HASH` for a new chain). An entry already stored under
    /// its seq with the same content is accepted again (a retried or recovered append: its
    /// index rows and the head are written again). Anything else is `Conflict::AuditChain`:
    /// a second writer on the chain, a gap, or a forged link.
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()>;
    async fn audit_head(&self, chain: &str) -> Result<Option<ChainHead>>;
    /// Every chain's head (one per node that ever wrote).
    async fn audit_heads(&self) -> Result<Vec<ChainHead>>;
    /// The chain's rows in one hour bucket, by seq, as stored.
    async fn audit_chain_hour(&self, chain: &str, hour: i64) -> Result<Vec<ChainRow>>;
    /// One partition of an index, newest first: the entries strictly before `before`, at most
    /// `limit`.
    async fn audit_index_page(
        &self,
        index: &AuditIndex,
        bucket: i64,
        before: &AuditCursor,
        limit: usize,
    ) -> Result<Vec<AuditEntry>>;
}
