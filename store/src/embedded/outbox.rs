//! The live-event outbox on the embedded engine: table `live_outbox`, keyed by the event's id
//! (UUIDv7, so key order is time order). Writers put their events with `put_events` inside the
//! transaction of the change they report; when the store is its own event log
//! (`EmbeddedStore::number_events_with_changes`) that numbers them in the log instead.

use async_trait::async_trait;
use uuid::Uuid;

use hospital_domain::live::PersonalEvent;
use serde::Serialize;
use std::time::Duration;

use super::engine::{now_ms, to_json, Reader, WriteCtx};
use super::keys::Key;
use super::kv::log_append_in;
use super::tables::LIVE_OUTBOX;
use super::EmbeddedStore;
use crate::error::Result;
use crate::outbox::{log_stream, Numbered, OutboxStore, PendingEvent, LOG_TTL};

/// Adds `events` to the transaction of the change they report: numbered in the log if the
/// store numbers events with their changes, else into the outbox.
pub(crate) fn put_events(ctx: &mut WriteCtx<'_>, events: &[PendingEvent]) -> Result<()> {
    let rows = encode_events(ctx.numbers_events(), events);
    put_event_rows(ctx, events, rows)
}

/// An event encoded for `put_event_rows`: as the log keeps it (`Logged` with number 0, which the
/// reader replaces) with the time it was logged, or as the outbox keeps it.
pub(crate) struct EncodedEvent {
    row: Vec<u8>,
    logged_at: Option<u64>,
}

/// `Logged` without copying the event (the same JSON).
#[derive(Serialize)]
struct LoggedRef<'a> {
    seq: u64,
    event: &'a PersonalEvent,
    at_ms: u64,
}

/// Encodes `events` for `put_event_rows`, off the writer thread where the caller can. `number`:
/// whether the store numbers events with their changes (`Engine::numbers_events`), read once
/// here so an event's encoding and where it goes agree.
pub(crate) fn encode_events(number: bool, events: &[PendingEvent]) -> Vec<EncodedEvent> {
    let at_ms = now_ms();
    events
        .iter()
        .map(|e| {
            if number && e.numbered_with_change() {
                EncodedEvent { row: to_json(&LoggedRef { seq: 0, event: &e.event, at_ms }), logged_at: Some(at_ms) }
            } else {
                EncodedEvent { row: to_json(e), logged_at: None }
            }
        })
        .collect()
}

/// `put_events` with the events encoded by `encode_events`. An event logged here is handed to
/// the gateway with its number once the transaction is durable (`WriteCtx::numbered`). Its id is
/// marked in the log as `log_append` marks it: a message written again is numbered once, and an
/// event the gateway gets late (after its sweeper fanned it out) is not numbered a second time.
pub(crate) fn put_event_rows(ctx: &mut WriteCtx<'_>, events: &[PendingEvent], rows: Vec<EncodedEvent>) -> Result<()> {
    for (e, enc) in events.iter().zip(rows) {
        match enc.logged_at {
            Some(at_ms) => {
                let id = e.id.to_string();
                let (seq, fresh) = log_append_in(ctx, &log_stream(e.account), Some(&id), enc.row, LOG_TTL)?;
                if fresh {
                    ctx.numbered(e.id, Numbered { account: e.account, seq, at_ms });
                }
            }
            None => ctx.put_raw(LIVE_OUTBOX, Key::new().uuid(&e.id).into_bytes(), enc.row, None),
        }
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for EmbeddedStore {
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>> {
        let mut all: Vec<PendingEvent> = self.engine.read(|r| r.scan(LIVE_OUTBOX, &Key::new()))?;
        all.truncate(limit);
        Ok(all)
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

    fn take_numbered(&self, id: &Uuid) -> Option<Numbered> {
        self.engine.take_numbered(id)
    }

    fn take_numbered_older(&self, age: Duration) -> Vec<(Uuid, Numbered)> {
        self.engine.take_numbered_older(age)
    }
}
