//! What a queue actor is sent (`QueueMsg`), and why a queue operation may fail (`QueueError`).

use hospital_domain::live::QueueSummary;
use hospital_domain::queue::{ClinicQueue, QueueStanding};
use hospital_domain::{AccountId, AppointmentId};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

use crate::booking::BookingError;
use crate::error::ActorError;

/// Why a queue operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not a confirmed appointment for today (wrong status or day): 409 `not_checkable`.
    #[error("{0}")]
    NotCheckable(String),
    /// No such appointment, or another account's.
    #[error("no such appointment")]
    NoSuchAppointment,
    /// The queue's own rules (nobody called, not skipped, not waiting, bad position).
    #[error(transparent)]
    Queue(#[from] hospital_domain::queue::QueueError),
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::Unavailable(e.into())
    }
}

impl From<BookingError> for QueueError {
    fn from(e: BookingError) -> Self {
        use hospital_domain::booking::BookError;
        match e {
            BookingError::NoSuchAppointment | BookingError::Book(BookError::NoSuchAppointment) => {
                QueueError::NoSuchAppointment
            }
            BookingError::Unavailable(m) => QueueError::Unavailable(m),
            BookingError::Rule { message, .. } => QueueError::NotCheckable(message),
            other => QueueError::NotCheckable(other.to_string()),
        }
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, QueueError>>;

/// Messages of a session's queue actor.
#[derive(Debug)]
pub enum QueueMsg {
    /// A patient arrived (签到): checked by the schedule actor, then queued. The patient's standing.
    CheckIn { appointment: AppointmentId, account: AccountId, reply: Reply<QueueStanding> },
    /// 叫号: the called patient is done, the first in line is called to `room`.
    CallNext { room: String, reply: Reply<ClinicQueue> },
    /// 过号: the patient called now did not come.
    Skip { reply: Reply<ClinicQueue> },
    /// Calls a skipped patient again (to the room of the last call).
    Recall { appointment: AppointmentId, reply: Reply<ClinicQueue> },
    /// Moves a waiting patient to `position` (1 = next).
    Reorder { appointment: AppointmentId, position: usize, reply: Reply<ClinicQueue> },
    /// The queue as it is.
    Get { reply: RpcReplyPort<ClinicQueue> },
    /// The public summary (what topic `queue:<session>` carries).
    Summary { reply: RpcReplyPort<QueueSummary> },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the session's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}
