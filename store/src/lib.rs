//! Persistence for the platform. The traits in `traits` (and beside them, one module per area:
//! `persons`, `exams`, `queues`, `notify`, `outbox`, `audit`, `records`, `jobs`, `vault`) are shaped by the queries the
//! platform makes (one method per query, no ad-hoc filtering); `embedded` implements them over
//! redb on one machine, `scylla` (feature `scylla`) over a ScyllaDB cluster, `redis_kv` the
//! ephemeral part (sessions, codes, counters, the live-event log) over Redis, and `conformance`
//! (feature `conformance`, test support only) holds the one test suite every backend must pass.
//! Errors are `StoreError`; a write a rule refused is `StoreError::Conflict` with a typed
//! `Conflict`.

pub mod audit;
pub mod backoffice;
pub mod chat;
pub mod cipher;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod exams;
pub mod jobs;
pub mod lease;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod payments;
pub mod persons;
pub mod queues;
pub mod records;
mod redis_cmd;
pub mod redis_kv;
#[cfg(feature = "scylla")]
pub mod scylla;
pub mod sessions;
pub mod traits;
pub mod vault;

pub use audit::{AuditLog, AuditStore};
pub use backoffice::{BackOfficeStore, Doc, Docs, Versioned};
pub use chat::{ChatStore, ChatWrite, ConversationRow};
pub use cipher::FieldCipher;
pub use embedded::EmbeddedStore;
pub use error::{Conflict, Result, StoreError};
pub use exams::{open_exam, open_exams, ExamRow, ExamStore};
pub use jobs::JobStore;
pub use lease::{
    account_resource, conversation_resource, exam_resource, payment_resource, queue_resource, schedule_resource,
    ticket_resource, visit_resource, Fence, Lease, NodeLeases, Owned, RedisLeases,
};
pub use model::*;
pub use notify::{Claim, MessageFilter, NotifyStore, Queued};
pub use outbox::{Logged, OutboxStore, PendingEvent, Placed};
pub use payments::{BalancePage, FeeItemChange, OpenOrder, PaymentStore, PaymentWrite};
pub use persons::{PersonHolder, PersonStore, RealNameCheck};
pub use queues::QueueStore;
pub use records::{AppointmentNotesRow, RecordStore, ReportRow, VisitRow};
pub use redis_kv::RedisKv;
pub use sessions::SessionStore;
pub use traits::*;
pub use vault::{KeyVault, PersonCipher, PersonKey, WrappedKey};

use std::sync::Arc;

/// The backends the platform runs on, wired once at start-up.
#[derive(Clone)]
pub struct Stores {
    /// Durable data: accounts, patients, staff, catalogue, schedules.
    pub data: Arc<dyn DataStore>,
    /// Sessions, SMS codes and counters: Redis when configured, else the embedded store.
    pub kv: Arc<dyn EphemeralKv>,
}
