//! What an exam actor is sent (`ExamMsg`), and why an exam was not created or changed
//! (`ExamFailure`).

use hospital_domain::exam::{Exam, ExamChange, ExamError};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

/// Why an exam was not created or changed.
#[derive(Debug, thiserror::Error)]
pub enum ExamFailure {
    #[error("no such exam")]
    NotFound,
    /// An exam with this id exists already.
    #[error("the exam exists already")]
    Exists,
    /// The state machine refused the change (or its content).
    #[error(transparent)]
    Rejected(#[from] ExamError),
    /// The exam's actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] crate::ActorError),
}

impl From<StoreError> for ExamFailure {
    fn from(e: StoreError) -> Self {
        ExamFailure::Unavailable(e.into())
    }
}

#[derive(Debug)]
pub enum ExamMsg {
    /// Stores a newly ordered exam (its id is this actor's).
    Create { exam: Exam, reply: RpcReplyPort<Result<Exam, ExamFailure>> },
    /// Applies a change of status. Repeating the exact current state is a no-op that answers
    /// the exam as it is (a retried delivery).
    Change { change: ExamChange, reply: RpcReplyPort<Result<Exam, ExamFailure>> },
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the exam's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}
