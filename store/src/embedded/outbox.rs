//! The live-event outbox on the embedded engine: table `live_outbox`, keyed by the event's id
//! (UUIDv7, so key order is time order). Writers put their events with `put_events` inside the
//! transaction of the change they report.

use async_trait::async_trait;
use uuid::Uuid;

use super::engine::{from_json, WriteCtx};
use super::keys::Key;
use super::tables::LIVE_OUTBOX;
use super::EmbeddedStore;
use crate::error::Result;
use crate::outbox::{OutboxStore, PendingEvent};

/// Adds `events` to the transaction of the change they report.
pub(crate) fn put_events(ctx: &mut WriteCtx<'_>, events: &[PendingEvent]) {
    for e in events {
        ctx.put(LIVE_OUTBOX, &Key::new().uuid(&e.id), e);
    }
}

/// `put_events` with each event already encoded (`to_json`), off the writer thread.
pub(crate) fn put_event_rows<'a>(ctx: &mut WriteCtx<'_>, rows: impl Iterator<Item = (&'a PendingEvent, Vec<u8>)>) {
    for (e, row) in rows {
        ctx.put_raw(LIVE_OUTBOX, Key::new().uuid(&e.id).into_bytes(), row, None);
    }
}

#[async_trait]
impl OutboxStore for EmbeddedStore {
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>> {
        // The first `limit` rows only: removed rows stay behind as tombstones until compaction,
        // and reading past the page would walk them too.
        let rows = self.engine.read(|r| r.scan_from(LIVE_OUTBOX, &[], &[], limit))?;
        rows.iter().map(|(_, v)| from_json(LIVE_OUTBOX, v)).collect()
    }

    async fn outbox_remove(&self, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.engine
            .write(move |ctx| {
                for id in &ids {
                    ctx.delete(LIVE_OUTBOX, &Key::new().uuid(id));
                }
                Ok(())
            })
            .await
    }
}
