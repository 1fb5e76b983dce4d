//! Clinic session queues on ScyllaDB: table `queues ((session_id))`, the `ClinicQueue` as the
//! JSON `body` (the same value as the embedded store's row), written whole by the session's queue
//! actor, its only writer.

use async_trait::async_trait;
use hospital_domain::queue::ClinicQueue;
use hospital_domain::{DoctorId, SessionId};

use super::{decode, encode, ScyllaStore};
use crate::queues::QueueStore;
use crate::traits::Result;

const PUT_QUEUE: &str = "INSERT INTO {ks}.queues (session_id, doctor_id, body) VALUES (?, ?, ?)";
const GET_QUEUE: &str = "SELECT body FROM {ks}.queues WHERE session_id = ?";

#[async_trait]
impl QueueStore for ScyllaStore {
    async fn put_queue(&self, session: SessionId, doctor: DoctorId, state: &ClinicQueue) -> Result<()> {
        let mut q = state.clone();
        q.session_id = session;
        q.doctor_id = doctor;
        self.exec(PUT_QUEUE, (session.0, doctor.0, encode(&q))).await?;
        Ok(())
    }

    async fn queue(&self, session: SessionId) -> Result<Option<ClinicQueue>> {
        match self.row::<(String,)>(GET_QUEUE, (session.0,)).await? {
            Some((body,)) => Ok(Some(decode("queues", &body)?)),
            None => Ok(None),
        }
    }
}
