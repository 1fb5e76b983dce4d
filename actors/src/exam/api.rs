//! The exam side of `ActorSystem`.

use hospital_domain::exam::{Exam, ExamChange};
use hospital_domain::ExamId;

use super::actor::ExamKind;
use super::msg::{ExamFailure, ExamMsg};
use crate::system::{asks, ActorSystem, Retry};

impl ActorSystem {
    /// Stores a newly ordered exam through its actor (events and all).
    pub async fn create_exam(&self, exam: Exam) -> Result<Exam, ExamFailure> {
        self.ask::<ExamKind, _>(exam.id, Retry::UndeliveredOnly, |reply| ExamMsg::Create { exam: exam.clone(), reply })
            .await?
    }

    asks! { ExamKind:
        /// Changes an exam's status through its actor.
        pub fn change_exam(id: ExamId, change: ExamChange) -> Exam, ExamFailure
            = once |reply| ExamMsg::Change { change: change.clone(), reply };
    }
}
