//! The visit actor's handler, and visits as an actor kind.

use hospital_domain::visit::VisitId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::visit_resource;

pub struct VisitActor;

impl Actor for VisitActor {
    type Msg = VisitMsg;
    type State = VisitState;
    type Arguments = VisitArgs;

    async fn pre_start(&self, myself: ActorRef<VisitMsg>, args: VisitArgs) -> Result<VisitState, ActorProcessingErr> {
        // Several nodes: the visit's lease and claim before it is loaded.
        let resource = visit_resource(args.id);
        let held = Held::take(args.ctx.ownership.as_ref(), &resource, args.ctx.stores.data.as_ref()).await?;
        let visit = load(&args.ctx, args.id).await.map_err(|e| e.to_string())?;
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(VisitState { id: args.id, myself, visit, idle, ctx: args.ctx, held })
    }

    async fn post_start(&self, myself: ActorRef<VisitMsg>, state: &mut VisitState) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || VisitMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || VisitMsg::RenewLease);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<VisitMsg>, state: &mut VisitState) -> Result<(), ActorProcessingErr> {
        state.held.release(state.ctx.ownership.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<VisitMsg>,
        msg: VisitMsg,
        state: &mut VisitState,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, VisitMsg::Tick | VisitMsg::RenewLease) {
            state.idle.touch();
        }
        match msg {
            VisitMsg::Call { appointment, room, reply } => {
                let _ = reply.send(state.call(*appointment, room).await);
            }
            VisitMsg::Start { reply } => {
                let _ = reply.send(state.start().await);
            }
            VisitMsg::Write { input, reply } => {
                let _ = reply.send(state.write(input).await);
            }
            VisitMsg::Finish { reply } => {
                let _ = reply.send(state.finish().await);
            }
            VisitMsg::Get { reply } => {
                let _ = reply.send(state.visit.clone().ok_or(VisitFailure::NotFound));
            }
            VisitMsg::Import { visit, reply } => {
                let _ = reply.send(state.import(*visit).await);
            }
            VisitMsg::AmendRecord { text, reply } => {
                let _ = reply.send(state.amend_record(&text).await);
            }
            VisitMsg::AddNote { text, reply } => {
                let _ = reply.send(state.add_note(&text).await);
            }
            VisitMsg::AddAppointmentNote { appointment, text, reply } => {
                let _ = reply.send(state.add_appointment_note(&appointment, &text).await);
            }
            VisitMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.id);
            }
            VisitMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "visit", &state.id).await;
            }
        }
        Ok(())
    }
}

/// Visits as an actor kind: keyed by `VisitId`, supervised by `visits`.
pub struct VisitKind;

actor_kind!(VisitKind, "visit", "visits", VisitId, VisitActor, VisitArgs { id });
