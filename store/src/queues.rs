//! The waiting queues of clinic sessions (BOOK-10): one row per session, the whole
//! `ClinicQueue` as its body, written whole by the session's queue actor after every change (the
//! actor is its only writer, so a whole-row upsert never loses another writer's change).

use async_trait::async_trait;
use hospital_domain::queue::ClinicQueue;
use hospital_domain::{DoctorId, SessionId};

use crate::error::Result;

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Inserts or replaces the session's queue, with the live events of the change (one durable
    /// write). `fence` (several nodes: the queue actor's lease token, `queue:<session>`) refuses
    /// the write if a newer token was seen for the session (`Conflict::StaleFence`).
    async fn put_queue(
        &self,
        session: SessionId,
        doctor: DoctorId,
        state: &ClinicQueue,
        events: &[crate::PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()>;
    /// The session's queue; None if nobody has checked in yet.
    async fn queue(&self, session: SessionId) -> Result<Option<ClinicQueue>>;
}
