//! The writer of one audit chain. Appends are serialised through one task: it takes every
//! event waiting (up to `MAX_BATCH`), seals them in order (seq, time, previous hash), appends
//! them in one durable write (one group commit on the embedded store), and only then answers
//! each caller. So an audited action never answers before its entry is on disk, and a burst of
//! staff reads costs one sync, not one each.
//!
//! One chain per writer, one writer per node: with several gateway nodes each runs its own
//! `AuditLog` on its own chain, named by the node's id (`audit_chain` in the config), so
//! appends never need a cluster-wide lock; the store refuses a second writer on the same chain
//! (`Conflict`), so two nodes configured alike cannot fork one. Searches read the index tables,
//! which list every chain's entries together by time; `verify` walks each chain in
//! `audit_heads`.

use chrono::Utc;
use hospital_domain::audit::{AuditEntry, AuditEvent, Bucket, GENESIS_HASH};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use super::{AuditStore, ChainHead};
use crate::StoreError;

/// Most entries one append takes.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The entry was not written; the audited action must not proceed as if it had been.
    #[error("the audit log could not be written: {0}")]
    Write(String),
    #[error("the audit log writer has stopped")]
    Closed,
}

type Reply = oneshot::Sender<Result<AuditEntry, AuditError>>;

/// A handle to the chain's writer. Cheap to clone; the writer stops when every handle is gone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::UnboundedSender<(AuditEvent, Reply)>,
    chain: Arc<str>,
}

impl AuditLog {
    /// Loads the chain's head (repairing a torn append, see `recover`) and starts its writer.
    /// Call from inside a tokio runtime.
    pub async fn start(store: Arc<dyn AuditStore>, chain: &str) -> Result<Self, StoreError> {
        let head = recover(store.as_ref(), chain).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, chain.to_string(), head, rx));
        Ok(AuditLog { tx, chain: chain.into() })
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Seals `event` into the chain and returns the entry once it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<AuditEntry, AuditError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send((event, reply)).map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }
}

/// The chain's head as stored, after adopting entries that reached the chain table but not the
/// head (on ScyllaDB an append writes the chain rows, then the index rows and head; a crash in
/// between leaves such a tail, which is appended again here, idempotently). On the embedded
/// store everything is one transaction and there is never such a tail.
async fn recover(store: &dyn AuditStore, chain: &str) -> Result<Option<ChainHead>, StoreError> {
    let Some(head) = store.audit_head(chain).await? else {
        // A chain with no head may still have a torn first append in the current hour.
        let hour = Bucket::Hour.of(Utc::now());
        let tail = tail_after(store, chain, 0, GENESIS_HASH, hour, hour).await?;
        if !tail.is_empty() {
            store.append_audit(&tail).await?;
        }
        return store.audit_head(chain).await;
    };
    let tail =
        tail_after(store, chain, head.seq, &head.hash, Bucket::Hour.of(head.at), Bucket::Hour.of(Utc::now())).await?;
    if tail.is_empty() {
        return Ok(Some(head));
    }
    tracing::warn!(chain, from = head.seq + 1, count = tail.len(), "audit: adopting entries written past the head");
    store.append_audit(&tail).await?;
    store.audit_head(chain).await
}

/// Entries after (seq, hash) that link up, from the hour buckets `from..=to`.
async fn tail_after(
    store: &dyn AuditStore,
    chain: &str,
    seq: u64,
    hash: &str,
    from: i64,
    to: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut tail: Vec<AuditEntry> = Vec::new();
    let (mut seq, mut hash) = (seq, hash.to_string());
    for hour in from..=to {
        for row in store.audit_chain_hour(chain, hour).await? {
            let Ok(e) = row.entry else { continue };
            if e.seq == seq + 1 && e.prev_hash == hash && e.hash == e.compute_hash() {
                seq = e.seq;
                hash = e.hash.clone();
                tail.push(e);
            }
        }
    }
    Ok(tail)
}

async fn run(
    store: Arc<dyn AuditStore>,
    chain: String,
    mut head: Option<ChainHead>,
    mut rx: mpsc::UnboundedReceiver<(AuditEvent, Reply)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Time never goes backwards along the chain, even if the clock does.
        let now = Utc::now();
        let at = head.as_ref().map_or(now, |h| now.max(h.at));
        let (mut seq, mut prev) = head.as_ref().map_or((0, GENESIS_HASH.to_string()), |h| (h.seq, h.hash.clone()));
        let mut entries = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (event, reply) in batch {
            seq += 1;
            let e = AuditEntry::seal(&chain, seq, &prev, at, event);
            prev = e.hash.clone();
            entries.push(e);
            replies.push(reply);
        }
        metrics::histogram!("audit_append_batch_size").record(entries.len() as f64);
        match store.append_audit(&entries).await {
            Ok(()) => {
                let last = entries.last().expect("a non-empty batch");
                let first_at = head.as_ref().map_or(entries[0].at, |h| h.first_at);
                head = Some(ChainHead {
                    chain: chain.clone(),
                    seq: last.seq,
                    hash: last.hash.clone(),
                    at: last.at,
                    first_at,
                });
                metrics::counter!("audit_entries_total").increment(entries.len() as u64);
                for (e, reply) in entries.into_iter().zip(replies) {
                    let _ = reply.send(Ok(e));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, chain = %chain, "audit append failed");
                metrics::counter!("audit_append_errors_total").increment(1);
                for reply in replies {
                    let _ = reply.send(Err(AuditError::Write(err.to_string())));
                }
                // Start again from what is stored (another writer may own the chain now, or a
                // partial write may need adopting).
                match recover(store.as_ref(), &chain).await {
                    Ok(h) => head = h,
                    Err(e) => tracing::error!(error = %e, chain = %chain, "audit: reloading the head failed"),
                }
            }
        }
    }
}
