//! The exam actor's handler, and exams as an actor kind.

use hospital_domain::ExamId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::supervisor::actor_kind;

pub struct ExamActor;

impl Actor for ExamActor {
    type Msg = ExamMsg;
    type State = ExamState;
    type Arguments = ExamArgs;

    async fn pre_start(&self, _myself: ActorRef<ExamMsg>, args: ExamArgs) -> Result<ExamState, ActorProcessingErr> {
        let exam = load(&args.ctx, args.id).await.map_err(|e| e.to_string())?;
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

actor_kind!(ExamKind, "exam", "exams", ExamId, ExamActor, ExamArgs { id });
