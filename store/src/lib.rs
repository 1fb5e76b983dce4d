//! Persistence for the platform. The traits in `traits` are shaped by the queries the platform
//! makes (one method per query, no ad-hoc filtering); `embedded` implements them over redb on
//! one machine, `redis_kv` implements the ephemeral part (sessions, codes, counters) over Redis,
//! and `conformance` holds the one test suite every backend must pass.

pub mod audit;
pub mod cipher;
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod exams;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod persons;
pub mod queues;
pub mod redis_kv;
#[cfg(feature = "scylla")]
pub mod scylla;
pub mod sessions;
pub mod traits;

pub use audit::{AuditLog, AuditStore};
pub use cipher::FieldCipher;
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use exams::ExamStore;
pub use model::*;
pub use notify::{Claim, MessageFilter, NotifyStore};
pub use outbox::{OutboxStore, PendingEvent};
pub use persons::{PersonHolder, PersonStore, RealNameCheck};
pub use queues::QueueStore;
pub use redis_kv::RedisKv;
pub use sessions::SessionStore;
pub use traits::*;

use std::sync::Arc;

/// The backends the platform runs on, wired once at start-up.
#[derive(Clone)]
pub struct Stores {
    /// Durable data: accounts, patients, staff, catalogue, schedules.
    pub data: Arc<dyn DataStore>,
    /// Sessions, SMS codes and counters: Redis when configured, else the embedded store.
    pub kv: Arc<dyn EphemeralKv>,
}
