//! The live-event outbox on ScyllaDB: `live_outbox ((bucket), event_id)`, the bucket derived from
//! the event id (`outbox_bucket`), so the rows spread over a fixed set of small partitions that
//! draining reads in turn. Writers add `outbox_writes` to the batch of the change they report.

use async_trait::async_trait;
use scylla::value::CqlValue;
use uuid::Uuid;

use super::{encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::outbox::{outbox_bucket, OutboxStore, PendingEvent, OUTBOX_BUCKETS};

const PUT_OUTBOX: &str = "INSERT INTO {ks}.live_outbox (bucket, event_id, body) VALUES (?, ?, ?)";
const OUTBOX_OF_BUCKET: &str = "SELECT body FROM {ks}.live_outbox WHERE bucket = ? LIMIT ?";
const DELETE_OUTBOX: &str = "DELETE FROM {ks}.live_outbox WHERE bucket = ? AND event_id = ?";

impl ScyllaStore {
    /// The statements that put `events` into the outbox, for the batch of their change.
    pub(super) fn outbox_writes(&self, w: &mut Writes, events: &[PendingEvent]) {
        for e in events {
            w.push(
                self,
                PUT_OUTBOX,
                vec![CqlValue::TinyInt(outbox_bucket(&e.id)), CqlValue::Uuid(e.id), text(encode(e))],
            );
        }
    }
}

#[async_trait]
impl OutboxStore for ScyllaStore {
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>> {
        let cql_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut all = Vec::new();
        for bucket in 0..OUTBOX_BUCKETS as i8 {
            let rows: Vec<PendingEvent> = self.bodies("live_outbox", OUTBOX_OF_BUCKET, (bucket, cql_limit)).await?;
            all.extend(rows);
        }
        // Each bucket is in id order; together, time order (ids are UUIDv7).
        all.sort_by_key(|e| e.id);
        all.truncate(limit);
        Ok(all)
    }

    async fn outbox_remove(&self, ids: &[Uuid]) -> Result<()> {
        for id in ids {
            self.exec(DELETE_OUTBOX, (outbox_bucket(id), *id)).await?;
        }
        Ok(())
    }
}
