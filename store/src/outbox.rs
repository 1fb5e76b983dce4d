//! The live-event outbox: a personal event is written in the same transaction as the change it
//! reports, so a change that is durable always has its event, even if the process dies before
//! the event reaches the per-account log (kept in the ephemeral kv: Redis across nodes). The
//! real-time gateway logs each outbox event (idempotently, by its id), fans it out, and then
//! removes it; at start-up, and every few seconds, it logs whatever is still here.

use async_trait::async_trait;
use hospital_domain::live::{PersonalEvent, UnreadCount};
use hospital_domain::AccountId;
use serde::{Deserialize, Serialize};
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
