//! The exam actor (REC-4): one per exam, its only writer. Staff book an exam (待检查) and move it
//! along; the lab system does the same through its signed webhook (the gateway checks the
//! signature, then comes here). Every change goes through `Exam::apply` (forward only; a result
//! only on a completed exam) and is written in one durable write with what it causes: the
//! messages of a finished exam (检查报告已出, and 检查结果异常提醒 flagged as an alert when
//! abnormal) and the live events `exam` (every change) and `exam_alert` (abnormal result), which
//! are announced once the write is durable. One actor per exam serialises changes to it, so two
//! deliveries of the lab system never interleave.

use chrono::Utc;
use hospital_domain::exam::{Exam, ExamChange, ExamError};
use hospital_domain::live::{ExamAlert, PersonalEvent};
use hospital_domain::ExamId;
use hospital_store::{PendingEvent, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use crate::idle::IdleClock;
use crate::{ActorKind, Context};

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
}

pub struct ExamArgs {
    pub id: ExamId,
    pub ctx: Arc<Context>,
}

pub struct ExamState {
    id: ExamId,
    exam: Option<Exam>,
    ctx: Arc<Context>,
    idle: IdleClock,
}

impl ExamState {
    /// Writes `exam` with its messages and events in one write; memory follows only on success.
    async fn save(&mut self, exam: Exam) -> Result<Exam, ExamFailure> {
        let messages = exam.messages();
        let mut events = vec![PendingEvent::new(exam.account_id, PersonalEvent::Exam((&exam).into()))];
        events.extend(messages.iter().map(PendingEvent::message));
        if let Some(alert) = messages.iter().find(|m| m.alert) {
            events.push(PendingEvent::new(exam.account_id, PersonalEvent::ExamAlert(ExamAlert::new(&exam, alert))));
        }
        self.ctx.stores.data.put_exam(&exam, &messages, &events).await?;
        self.ctx.events.durable(events);
        self.exam = Some(exam.clone());
        Ok(exam)
    }

    async fn create(&mut self, exam: Exam) -> Result<Exam, ExamFailure> {
        if self.exam.is_some() {
            return Err(ExamFailure::Exists);
        }
        debug_assert_eq!(exam.id, self.id);
        self.save(exam).await
    }

    async fn change(&mut self, change: ExamChange) -> Result<Exam, ExamFailure> {
        let current = self.exam.as_ref().ok_or(ExamFailure::NotFound)?;
        if current.already_is(&change) {
            return Ok(current.clone());
        }
        let mut next = current.clone();
        next.apply(change, Utc::now())?;
        self.save(next).await
    }
}

pub struct ExamActor;

impl Actor for ExamActor {
    type Msg = ExamMsg;
    type State = ExamState;
    type Arguments = ExamArgs;

    async fn pre_start(&self, _myself: ActorRef<ExamMsg>, args: ExamArgs) -> Result<ExamState, ActorProcessingErr> {
        let exam = args.ctx.stores.data.exam(args.id).await?;
        Ok(ExamState { id: args.id, exam, idle: IdleClock::new(args.ctx.config.idle_timeout), ctx: args.ctx })
    }

    async fn post_start(&self, myself: ActorRef<ExamMsg>, state: &mut ExamState) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ExamMsg::Tick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ExamMsg>,
        msg: ExamMsg,
        state: &mut ExamState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ExamMsg::Create { exam, reply } => {
                state.idle.touch();
                let _ = reply.send(state.create(exam).await);
            }
            ExamMsg::Change { change, reply } => {
                state.idle.touch();
                let _ = reply.send(state.change(change).await);
            }
            ExamMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.id);
            }
        }
        Ok(())
    }
}

/// Exams as an actor kind: keyed by `ExamId`, supervised by `exams`.
pub struct ExamKind;

impl ActorKind for ExamKind {
    const KIND: &'static str = "exam";
    const SUPERVISOR: &'static str = "exams";
    type Id = ExamId;
    type Actor = ExamActor;

    fn actor() -> ExamActor {
        ExamActor
    }
    fn args(id: ExamId, ctx: &Arc<Context>) -> ExamArgs {
        ExamArgs { id, ctx: ctx.clone() }
    }
}
