//! The infrastructure failure a caller of the actor system may see: the actor could not be
//! reached or answered too late, or the store failed underneath it. Business refusals are each
//! kind's own types (`BookingError`, `PatientError`, `QueueError`, `PaymentError`, `ExamFailure`),
//! which carry an `ActorError` as their `Unavailable` cause: a caller tells "no" from "not now"
//! by the variant, and the cause is kept for the log.

use hospital_store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// The actor could not be started or stopped before answering (its supervisor is restarting,
    /// its `pre_start` failed, it panicked while handling the call).
    #[error("{kind} actor {id} is unavailable: {reason}")]
    Unavailable { kind: &'static str, id: String, reason: String },
    /// The actor did not answer in time; it may still be working on the request.
    #[error("{kind} actor {id} did not answer within {timeout:?}")]
    Timeout { kind: &'static str, id: String, timeout: Duration },
    /// The id crashed too often recently; it is not restarted until the window passes.
    #[error("{kind} actor {id} keeps crashing and is not restarted for now")]
    CrashLoop { kind: &'static str, id: String },
    /// `ActorSystem::shutdown` was called.
    #[error("the actor system is shut down")]
    ShuttingDown,
    /// The store failed while the actor read or wrote through it.
    #[error(transparent)]
    Store(#[from] StoreError),
}
