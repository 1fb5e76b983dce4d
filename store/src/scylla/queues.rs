//! Clinic session queues on ScyllaDB: table `queues ((session_id))`, the `ClinicQueue` as the
//! JSON `body` (the same value as the embedded store's row), written whole by the session's queue
//! actor, its only writer.

use async_trait::async_trait;
use hospital_domain::queue::ClinicQueue;
use hospital_domain::{DoctorId, SessionId};

use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::{encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::queues::QueueStore;
use crate::{Owned, PendingEvent};

const PUT_QUEUE: &str = "INSERT INTO {ks}.queues (session_id, doctor_id, body) VALUES (?, ?, ?)";
const GET_QUEUE: &str = "SELECT body FROM {ks}.queues WHERE session_id = ?";

#[async_trait]
impl QueueStore for ScyllaStore {
    async fn put_queue(
        &self,
        session: SessionId,
        doctor: DoctorId,
        state: &ClinicQueue,
        events: &[PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        // Several nodes: checked (with the deadline) before anything is read or written.
        let fenced = self.start_fenced_as(fence, "queue", Owned::Queue(session))?;
        let mut q = state.clone();
        q.session_id = session;
        q.doctor_id = doctor;
        // Consultations this change finishes (the workload counters, added after the write).
        let deltas = if self.rollups {
            let old = self.queue(session).await?;
            hospital_domain::analytics::queue_deltas(old.as_ref(), &q, chrono::Utc::now(), self.zone)
        } else {
            Vec::new()
        };
        if let Some(started) = fenced {
            // The queue's row (its truth) under the fence, its events at the write's timestamp.
            let mut own = Writes::default();
            own.push(self, PUT_QUEUE, vec![CqlValue::Uuid(session.0), CqlValue::Uuid(doctor.0), text(encode(&q))]);
            let mut rest = Writes::default();
            self.outbox_writes(&mut rest, events);
            self.apply_owned(started, own, vec![rest]).await?;
        } else if events.is_empty() {
            self.exec(PUT_QUEUE, (session.0, doctor.0, encode(&q))).await?;
        } else {
            // With its events: one logged batch, all or nothing.
            let mut w = Writes::default();
            w.push(self, PUT_QUEUE, vec![CqlValue::Uuid(session.0), CqlValue::Uuid(doctor.0), text(encode(&q))]);
            self.outbox_writes(&mut w, events);
            self.run_batch(w, BatchType::Logged).await?;
        }
        crate::backoffice::BackOfficeStore::add_rollups(self, &deltas).await
    }

    async fn queue(&self, session: SessionId) -> Result<Option<ClinicQueue>> {
        // A claim before anybody checked in leaves a row with no body: no queue.
        self.owned_body("queues", GET_QUEUE, (session.0,)).await
    }
}
