//! The live-event outbox: a personal event is written in the same transaction as the change it
//! reports, so a change that is durable always has its event, even if the process dies before
//! the event reaches the per-account log (kept in the ephemeral kv: Redis across nodes). The
//! real-time gateway logs each outbox event (idempotently, by its id), fans it out, and then
//! removes it; at start-up, and every few seconds, it logs whatever is still here.
//!
//! On one machine without Redis the log is in the embedded store itself, and a booking write
//! numbers its plain events there, in its own transaction (`PendingEvent::placed`): no outbox
//! row, no second write, nothing left to remove. This module holds what both paths write: the
//! log's entry (`Logged`), its stream per account and its lifetime.

use async_trait::async_trait;
use hospital_domain::live::{PersonalEvent, UnreadCount};
use hospital_domain::AccountId;
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

use crate::error::Result;

/// A personal event waiting to be logged.
#[derive(Debug, Clone, Deserialize)]
pub struct PendingEvent {
    /// UUIDv7: the outbox is read back in time order; the log refuses the same id twice.
    pub id: Uuid,
    pub account: AccountId,
    pub event: PersonalEvent,
    /// The event's JSON once `encode` has written it: the outbox row and the event log's entry
    /// then carry these bytes instead of serialising the event once each (a hold's appointment
    /// and order are a kilobyte of JSON, serialised again for every copy).
    #[serde(skip)]
    json: Option<Arc<RawValue>>,
    /// Whether the id was made with the event here (`new`), so no log can have seen it: only
    /// such an event may be logged in place, where no id marker is kept. An event read back
    /// from the outbox, or a message's (its id is the message's), is not.
    #[serde(skip)]
    minted: bool,
    /// Set by a store that logged the event in the write of its change (`Placed`); shared by
    /// the clones, so the copy an actor hands the bus after the write sees it.
    #[serde(skip)]
    placed: Arc<OnceLock<Placed>>,
}

/// Where a store that keeps the event log put an event in the write of its change: its number
/// and when (unix ms). The bus only fans such an event out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub seq: u64,
    pub at_ms: u64,
}

/// A personal event with its number: what the log keeps and sockets send. The log writes it
/// from a borrowed event (`Logged<&RawValue>`, the event's bytes from `encode` or its outbox
/// row, or `Logged<&PersonalEvent>`): the same text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged<E = PersonalEvent> {
    pub seq: u64,
    pub event: E,
    /// When it was logged (unix ms), for the fan-out latency metric.
    pub at_ms: u64,
}

/// How long an account's logged events are kept for resume.
pub const LOG_TTL: Duration = Duration::from_secs(24 * 3600);

/// The log stream of an account's personal events.
pub fn account_stream(a: AccountId) -> String {
    format!("acct:{a}")
}

impl PartialEq for PendingEvent {
    fn eq(&self, other: &Self) -> bool {
        (self.id, self.account, &self.event) == (other.id, other.account, &other.event)
    }
}

/// The outbox row: the id, the account and the event (its bytes from `encode` if it has them;
/// the same text either way).
impl Serialize for PendingEvent {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut row = s.serialize_struct("PendingEvent", 3)?;
        row.serialize_field("id", &self.id)?;
        row.serialize_field("account", &self.account)?;
        match &self.json {
            Some(raw) => row.serialize_field("event", &**raw)?,
            None => row.serialize_field("event", &self.event)?,
        }
        row.end()
    }
}

impl PendingEvent {
    pub fn new(account: AccountId, event: PersonalEvent) -> Self {
        Self { id: Uuid::now_v7(), account, event, json: None, minted: true, placed: Default::default() }
    }

    /// A new message: the event takes the message's id, so a message written again (a retry
    /// after a crash) is logged once.
    pub fn message(m: &hospital_domain::message::Message) -> Self {
        Self {
            id: m.id.0,
            account: m.account_id,
            event: PersonalEvent::Message(m.clone()),
            json: None,
            minted: false,
            placed: Default::default(),
        }
    }

    /// "The unread count changed": the gateway logs it with the count read when it logs it, so
    /// what the client sees last is the count after the last change.
    pub fn unread(account: AccountId) -> Self {
        Self::new(account, PersonalEvent::Unread(UnreadCount { count: 0 }))
    }

    /// Serialises the event now, once for this event and its clones (call it when the event is
    /// final, before cloning it for the bus: a change to `event` afterwards would not be seen
    /// by the outbox row or the log).
    pub fn encode(&mut self) {
        // (`RawValue::from_string` on a presized buffer would parse the text again to check it.)
        let raw = serde_json::value::to_raw_value(&self.event).expect("events serialise");
        self.json = Some(Arc::from(raw));
    }

    /// The event's JSON from `encode`, if it was called.
    pub fn json(&self) -> Option<&RawValue> {
        self.json.as_deref()
    }

    /// The log's entry for this event, its number left 0 (the log key carries the number and a
    /// reader puts it back): only known inside the append.
    pub fn log_body(&self, at_ms: u64) -> Vec<u8> {
        // The event's bytes from `encode` when it has them; the buffer sized for them (grown
        // from serde_json's 128 bytes it was copied three times).
        let json = self.json();
        let mut body = Vec::with_capacity(json.map_or(512, |j| j.get().len() + 64));
        let written = match json {
            Some(event) => serde_json::to_writer(&mut body, &Logged { seq: 0, event, at_ms }),
            None => serde_json::to_writer(&mut body, &Logged { seq: 0, event: &self.event, at_ms }),
        };
        written.expect("events serialise");
        body
    }

    /// Whether a store keeping the log may number this event in the write of its change: a
    /// fresh id, and nothing to read between it and its number (an unread count is read when
    /// it is logged, after the event that changed it: those go the outbox's way).
    pub fn loggable_in_place(&self) -> bool {
        self.minted && !matches!(self.event, PersonalEvent::Unread(_)) && !self.event.changes_unread()
    }

    /// Where the store logged the event in its change's write, once that write is durable
    /// (None: it is in the outbox, for the bus to log).
    pub fn placed(&self) -> Option<Placed> {
        self.placed.get().copied()
    }

    /// Records that the store logged the event in its change's write (called by the store,
    /// inside the write).
    pub(crate) fn place(&self, placed: Placed) {
        let _ = self.placed.set(placed);
    }
}

/// Outbox partitions on ScyllaDB (by event id), so that no partition grows without bound and
/// draining reads a fixed, small set of partitions.
pub const OUTBOX_BUCKETS: u8 = 16;

pub fn outbox_bucket(id: &Uuid) -> i8 {
    (id.as_bytes()[15] % OUTBOX_BUCKETS) as i8
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Events still waiting to be logged, oldest first, at most `limit`.
    async fn outbox_pending(&self, limit: usize) -> Result<Vec<PendingEvent>>;
    /// Forgets events that are logged (ids not in the outbox are ignored).
    async fn outbox_remove(&self, ids: &[Uuid]) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::live::BalanceUpdate;

    fn event() -> PendingEvent {
        PendingEvent::new(
            AccountId::new(),
            PersonalEvent::Balance(BalanceUpdate {
                balance: 12_345,
                key: "退款 \"r-1\"\n".into(),
                kind: hospital_domain::ledger::MovementKind::Refund,
                amount: 500,
                order_id: None,
            }),
        )
    }

    #[test]
    fn an_encoded_event_writes_the_same_row_and_reads_back_equal() {
        let plain = event();
        let mut encoded = plain.clone();
        encoded.encode();
        assert!(plain.json().is_none());
        assert_eq!(
            encoded.json().map(RawValue::get),
            Some(serde_json::to_string(&plain.event).unwrap().as_str()),
            "the bytes are the event's JSON"
        );
        let (a, b) = (serde_json::to_string(&plain).unwrap(), serde_json::to_string(&encoded).unwrap());
        assert_eq!(a, b, "one row text either way");
        let back: PendingEvent = serde_json::from_str(&b).unwrap();
        assert_eq!(back, plain);
        assert!(back.json().is_none(), "read back, an event is encoded again when needed");
        // A clone shares the bytes.
        assert_eq!(encoded.clone().json().map(RawValue::get), encoded.json().map(RawValue::get));
    }
}
