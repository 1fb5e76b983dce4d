//! Clinic session queues on the embedded engine: table `queues`, keyed by session id, the
//! `ClinicQueue` as the value (it carries its doctor id, the CQL table's `doctor_id` column).

use async_trait::async_trait;
use hospital_domain::queue::ClinicQueue;
use hospital_domain::{DoctorId, SessionId};

use super::engine::Reader;
use super::keys::Key;
use super::tables::QUEUES;
use super::EmbeddedStore;
use crate::error::Result;
use crate::queues::QueueStore;
use crate::PendingEvent;

#[async_trait]
impl QueueStore for EmbeddedStore {
    async fn put_queue(
        &self,
        session: SessionId,
        doctor: DoctorId,
        state: &ClinicQueue,
        events: &[PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        let events = events.to_vec();
        let fence = fence.cloned();
        let mut q = state.clone();
        q.session_id = session;
        q.doctor_id = doctor;
        let (zone, rollups) = (self.zone, self.rollups);
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                let key = Key::new().uuid(&session.0);
                // Consultations finished by this change: the workload counters, in this write.
                let deltas = if rollups {
                    let old: Option<ClinicQueue> = ctx.get(QUEUES, &key)?;
                    hospital_domain::analytics::queue_deltas(old.as_ref(), &q, chrono::Utc::now(), zone)
                } else {
                    Vec::new()
                };
                ctx.put(QUEUES, &key, &q);
                super::outbox::put_events(ctx, &events);
                super::backoffice::add_deltas(ctx, deltas)
            })
            .await
    }

    async fn queue(&self, session: SessionId) -> Result<Option<ClinicQueue>> {
        self.engine.read(|r| r.get(QUEUES, &Key::new().uuid(&session.0)))
    }
}
