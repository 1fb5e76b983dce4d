//! The live-event outbox: a personal event is written in the same transaction as the change it
//! reports, so a change that is durable always has its event, even if the process dies before
//! the event reaches the per-account log (kept in the ephemeral kv: Redis across nodes). The
//! real-time gateway logs each outbox event (idempotently, by its id), fans it out, and then
//! removes it; at start-up, and every few seconds, it logs whatever is still here.
//!
//! When the log lives in the same store as the change (one machine, the embedded store, no
//! Redis), the change numbers its events in the log itself, in its own transaction: no outbox
//! row, no second write to log it, none to remove it. The gateway then only fans the event out,
//! with the number the store hands it (`OutboxStore::take_numbered`).

use async_trait::async_trait;
use hospital_domain::live::{PersonalEvent, UnreadCount};
use hospital_domain::AccountId;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

use crate::error::Result;

/// A personal event waiting to be logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingEvent {
    /// UUIDv7: the outbox is read back in time order; the log refuses the same id twice.
    pub id: Uuid,
    pub account: AccountId,
    pub event: PersonalEvent,
}

impl PendingEvent {
    pub fn new(account: AccountId, event: PersonalEvent) -> Self {
        Self { id: Uuid::now_v7(), account, event }
    }

    /// A new message: the event takes the message's id, so a message written again (a retry
    /// after a crash) is logged once.
    pub fn message(m: &hospital_domain::message::Message) -> Self {
        Self { id: m.id.0, account: m.account_id, event: PersonalEvent::Message(m.clone()) }
    }

    /// "The unread count changed": the gateway logs it with the count read when it logs it, so
    /// what the client sees last is the count after the last change.
    pub fn unread(account: AccountId) -> Self {
        Self::new(account, PersonalEvent::Unread(UnreadCount { count: 0 }))
    }

    /// Whether the change that makes it may number it in the log itself: not an `unread`
    /// marker, whose count is read when it is logged.
    pub fn numbered_with_change(&self) -> bool {
        !matches!(self.event, PersonalEvent::Unread(_))
    }
}

/// A personal event with its number: what the log keeps and sockets send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    pub seq: u64,
    pub event: PersonalEvent,
    /// When it was logged (unix ms), for the fan-out latency metric.
    pub at_ms: u64,
}

/// The log's stream of an account's events (`EphemeralKv::log_append`).
pub fn log_stream(account: AccountId) -> String {
    format!("acct:{account}")
}

/// How long the log keeps an event.
pub const LOG_TTL: Duration = Duration::from_secs(24 * 3600);

/// An event its change numbered in the log, waiting for the gateway to fan it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    pub account: AccountId,
    pub seq: u64,
    /// When it was numbered (unix ms).
    pub at_ms: u64,
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
    /// The number of an event its change logged itself (durably), once: `None` for an event that
    /// went to the outbox (every backend but the embedded store with its own log).
    fn take_numbered(&self, _id: &Uuid) -> Option<Numbered> {
        None
    }
    /// Events numbered at least `age` ago that nobody took (a change whose caller never handed
    /// its events to the gateway), for the gateway's sweeper to fan out from the log.
    fn take_numbered_older(&self, _age: Duration) -> Vec<(Uuid, Numbered)> {
        Vec::new()
    }
}
