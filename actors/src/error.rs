//! Errors a caller of the actor system sees: the actor could not be reached or answered too late,
//! the store failed underneath it, or the operation was refused by a rule the actor enforces.

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
    /// The account already holds the most patients it may.
    #[error("an account may hold at most {cap} patients")]
    PatientCap { cap: usize },
    /// The person (same ID number) is already a patient of the most accounts one person may be.
    #[error("this person is already a patient of {cap} other accounts, the most allowed")]
    PersonAccountCap { cap: usize },
    /// The same person (same ID number) is already a patient of the account.
    #[error("this person is already a patient of the account")]
    DuplicatePatient,
    /// A patient record was sent to another account's actor: a bug in the caller.
    #[error("the patient record belongs to another account")]
    WrongAccount,
}
