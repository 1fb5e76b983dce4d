//! The exam actor's handler, and exams as an actor kind.

use hospital_domain::ExamId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::exam_resource;

pub struct ExamActor;

impl Actor for ExamActor {
    type Msg = ExamMsg;
    type State = ExamState;
    type Arguments = ExamArgs;

    async fn pre_start(&self, myself: ActorRef<ExamMsg>, args: ExamArgs) -> Result<ExamState, ActorProcessingErr> {
        // Several nodes: the exam's lease and claim before it is loaded.
        let resource = exam_resource(args.id);
        let held = Held::take(args.ctx.ownership.as_ref(), &resource, args.ctx.stores.data.as_ref()).await?;
        let exam = load(&args.ctx, args.id).await.map_err(|e| e.to_string())?;
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(ExamState { id: args.id, myself, exam, idle, ctx: args.ctx, held })
    }

    async fn post_start(&self, myself: ActorRef<ExamMsg>, state: &mut ExamState) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ExamMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || ExamMsg::RenewLease);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<ExamMsg>, state: &mut ExamState) -> Result<(), ActorProcessingErr> {
        state.held.release(state.ctx.ownership.as_ref()).await;
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
            ExamMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "exam", &state.id).await;
            }
        }
        Ok(())
    }
}

/// Exams as an actor kind: keyed by `ExamId`, supervised by `exams`.
pub struct ExamKind;

actor_kind!(ExamKind, "exam", "exams", ExamId, ExamActor, ExamArgs { id });
