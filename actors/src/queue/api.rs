//! The queue side of `ActorSystem`: one method per message, through `asks!`.

use hospital_domain::live::QueueSummary;
use hospital_domain::queue::{ClinicQueue, QueueStanding};
use hospital_domain::{AccountId, AppointmentId, SessionId};
use ractor::ActorRef;

use super::actor::QueueKind;
use super::msg::{QueueError, QueueMsg};
use crate::error::ActorError;
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    /// The session's queue actor, started if it was not running.
    pub async fn queue(&self, session: SessionId) -> Result<ActorRef<QueueMsg>, ActorError> {
        self.resolve::<QueueKind>(session).await
    }

    /// Makes the session's queue actor panic (see `QueueMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_queue_fault(&self, session: SessionId) -> Result<(), ActorError> {
        self.tell::<QueueKind>(session, QueueMsg::InjectFault).await
    }

    asks! { QueueKind:
        /// The public summary of the session's queue (topic `queue:<session>`).
        pub fn queue_summary(session: SessionId) -> QueueSummary = reads |reply| QueueMsg::Summary { reply };
        /// Checks one of the account's appointments of `session` in (签到) and queues it; the
        /// patient's standing. Refusals: `NoSuchAppointment` (unknown, another account's, or of
        /// another session), `NotCheckable` (not paid, not today, cancelled). A repeat answers the
        /// standing again and changes nothing.
        pub fn check_in(session: SessionId, account: AccountId, appointment: AppointmentId) -> QueueStanding, QueueError
            = once |reply| QueueMsg::CheckIn { appointment, account, reply };
        /// 叫号: the session's queue after calling the next patient to `room`.
        pub fn call_next(session: SessionId, room: String) -> ClinicQueue, QueueError
            = once |reply| QueueMsg::CallNext { room: room.clone(), reply };
        /// 过号: the patient called now goes to the skipped list.
        pub fn skip(session: SessionId) -> ClinicQueue, QueueError = once |reply| QueueMsg::Skip { reply };
        /// Calls a skipped patient again.
        pub fn recall(session: SessionId, appointment: AppointmentId) -> ClinicQueue, QueueError
            = once |reply| QueueMsg::Recall { appointment, reply };
        /// Moves a waiting patient to `position` (1 = next).
        pub fn reorder(session: SessionId, appointment: AppointmentId, position: usize) -> ClinicQueue, QueueError
            = once |reply| QueueMsg::Reorder { appointment, position, reply };
        /// The session's queue as it is now.
        pub fn queue_state(session: SessionId) -> ClinicQueue = reads |reply| QueueMsg::Get { reply };
    }
}
