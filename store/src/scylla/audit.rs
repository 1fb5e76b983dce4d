//! The audit log on ScyllaDB (tables `audit_*` of `schema.cql`). An append claims each chain
//! row with `INSERT ... IF NOT EXISTS` (Paxos on the `(chain, hour)` partition), so one seq is
//! written once and a second writer on a chain is refused; then it writes the entries' index
//! rows and the chain's head in one logged batch. A crash between the two leaves chain rows past
//! the head: the writer's start-up finds and appends them again (`AuditLog::start`), which the
//! `IF NOT EXISTS` answers with the identical stored row, and the batch is written then.

use async_trait::async_trait;
use hospital_domain::audit::{AuditEntry, Bucket, GENESIS_HASH};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::{decode, encode, text, ScyllaStore, Writes};
use crate::audit::{AuditCursor, AuditIndex, AuditStore, ChainHead, ChainRow};
use crate::error::Conflict;
use crate::error::Result;
use crate::StoreError;

const CLAIM_ENTRY: &str = "INSERT INTO {ks}.audit_log (chain, hour, seq, body) VALUES (?, ?, ?, ?) IF NOT EXISTS";
const CHAIN_HOUR: &str = "SELECT seq, body FROM {ks}.audit_log WHERE chain = ? AND hour = ?";
const PUT_HEAD: &str = "INSERT INTO {ks}.audit_heads (chain, body) VALUES (?, ?)";
const GET_HEAD: &str = "SELECT body FROM {ks}.audit_heads WHERE chain = ?";
/// A handful of rows: one per node that ever wrote.
const ALL_HEADS: &str = "SELECT body FROM {ks}.audit_heads";
const PUT_BY_TIME: &str = "INSERT INTO {ks}.audit_by_time (hour, at, chain, seq, body) VALUES (?, ?, ?, ?, ?)";
const PUT_BY_ACTOR: &str =
    "INSERT INTO {ks}.audit_by_actor (actor, day, at, chain, seq, body) VALUES (?, ?, ?, ?, ?, ?)";
const PUT_BY_ACTION: &str =
    "INSERT INTO {ks}.audit_by_action (action, hour, at, chain, seq, body) VALUES (?, ?, ?, ?, ?, ?)";
const PUT_BY_ACCOUNT: &str =
    "INSERT INTO {ks}.audit_by_account (account_id, month, at, chain, seq, body) VALUES (?, ?, ?, ?, ?, ?)";
const PAGE_BY_TIME: &str =
    "SELECT body FROM {ks}.audit_by_time WHERE hour = ? AND (at, chain, seq) < (?, ?, ?) LIMIT ?";
const PAGE_BY_ACTOR: &str =
    "SELECT body FROM {ks}.audit_by_actor WHERE actor = ? AND day = ? AND (at, chain, seq) < (?, ?, ?) LIMIT ?";
const PAGE_BY_ACTION: &str =
    "SELECT body FROM {ks}.audit_by_action WHERE action = ? AND hour = ? AND (at, chain, seq) < (?, ?, ?) LIMIT ?";
const PAGE_BY_ACCOUNT: &str = "SELECT body FROM {ks}.audit_by_account WHERE account_id = ? AND month = ? \
     AND (at, chain, seq) < (?, ?, ?) LIMIT ?";

/// The partition key values of an index partition.
fn partition_values(index: &AuditIndex, bucket: i64) -> Vec<CqlValue> {
    match index {
        AuditIndex::Time => vec![CqlValue::BigInt(bucket)],
        AuditIndex::Actor(a) | AuditIndex::Action(a) => vec![text(a.clone()), CqlValue::BigInt(bucket)],
        AuditIndex::Account(a) => vec![CqlValue::Uuid(a.0), CqlValue::BigInt(bucket)],
    }
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

#[async_trait]
impl AuditStore for ScyllaStore {
    async fn append_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let Some(first) = entries.first() else { return Ok(()) };
        let chain = first.chain.clone();
        if entries.iter().any(|e| e.chain != chain) {
            return Err(StoreError::Conflict(Conflict::AuditChain));
        }
        let mut head = self.audit_head(&chain).await?;
        for e in entries {
            let body = encode(e);
            let (seq, hash, at) =
                head.as_ref().map_or((0, GENESIS_HASH, None), |h| (h.seq, h.hash.as_str(), Some(h.at)));
            // A new entry must link to the head; a replay (seq at or below the head, or a tail
            // being adopted) must be the stored row itself, which the IF NOT EXISTS returns.
            let links =
                e.seq == seq + 1 && e.prev_hash == hash && at.is_none_or(|at| e.at >= at) && e.hash == e.compute_hash();
            let lwt =
                self.lwt(CLAIM_ENTRY, (chain.as_str(), Bucket::Hour.of(e.at), seq_i64(e.seq), body.as_str())).await?;
            let accepted = if lwt.applied {
                links
            } else {
                matches!(lwt.value("body"), Some(CqlValue::Text(stored)) if decode::<AuditEntry>("audit_log", stored).ok().as_ref() == Some(e))
            };
            if !accepted {
                return Err(StoreError::Conflict(Conflict::AuditChain));
            }
            if head.as_ref().is_none_or(|h| e.seq > h.seq) {
                let first_at = head.as_ref().map_or(e.at, |h| h.first_at);
                head = Some(ChainHead { chain: chain.clone(), seq: e.seq, hash: e.hash.clone(), at: e.at, first_at });
            }
        }
        let mut w = Writes::default();
        for e in entries {
            let body = encode(e);
            for (index, bucket) in AuditIndex::of(e) {
                let template = match index {
                    AuditIndex::Time => PUT_BY_TIME,
                    AuditIndex::Actor(_) => PUT_BY_ACTOR,
                    AuditIndex::Action(_) => PUT_BY_ACTION,
                    AuditIndex::Account(_) => PUT_BY_ACCOUNT,
                };
                let mut values = partition_values(&index, bucket);
                values.extend([
                    CqlValue::BigInt(e.at.timestamp_millis()),
                    text(e.chain.clone()),
                    CqlValue::BigInt(seq_i64(e.seq)),
                    text(body.clone()),
                ]);
                w.push(self, template, values);
            }
        }
        if let Some(h) = &head {
            w.push(self, PUT_HEAD, vec![text(chain.clone()), text(encode(h))]);
        }
        self.run_batch(w, BatchType::Logged).await
    }

    async fn audit_head(&self, chain: &str) -> Result<Option<ChainHead>> {
        match self.row::<(String,)>(GET_HEAD, (chain,)).await? {
            Some((body,)) => Ok(Some(decode("audit_heads", &body)?)),
            None => Ok(None),
        }
    }

    async fn audit_heads(&self) -> Result<Vec<ChainHead>> {
        self.bodies("audit_heads", ALL_HEADS, ()).await
    }

    async fn audit_chain_hour(&self, chain: &str, hour: i64) -> Result<Vec<ChainRow>> {
        let rows: Vec<(i64, String)> = self.rows(CHAIN_HOUR, (chain, hour)).await?;
        Ok(rows
            .into_iter()
            .map(|(seq, body)| ChainRow {
                seq: u64::try_from(seq).unwrap_or(0),
                entry: decode::<AuditEntry>("audit_log", &body).map_err(|e| e.to_string()),
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
        let template = match index {
            AuditIndex::Time => PAGE_BY_TIME,
            AuditIndex::Actor(_) => PAGE_BY_ACTOR,
            AuditIndex::Action(_) => PAGE_BY_ACTION,
            AuditIndex::Account(_) => PAGE_BY_ACCOUNT,
        };
        let mut values = partition_values(index, bucket);
        values.extend([
            CqlValue::BigInt(before.at_ms),
            text(before.chain.clone()),
            CqlValue::BigInt(seq_i64(before.seq)),
            CqlValue::Int(i32::try_from(limit).unwrap_or(i32::MAX)),
        ]);
        let rows: Vec<(String,)> = self.rows(template, values).await?;
        rows.iter().map(|(b,)| decode("audit_by_index", b)).collect()
    }
}
