//! The ticket actor's handler, and tickets as an actor kind.

use hospital_domain::TicketId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::ticket_resource;

pub struct TicketActor;

impl Actor for TicketActor {
    type Msg = TicketMsg;
    type State = TicketState;
    type Arguments = TicketArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: TicketArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let data = args.ctx.stores.data.as_ref();
        // Several nodes: the ticket's lease and claim before it is loaded.
        let held = Held::take(args.ctx.ownership.as_ref(), &ticket_resource(args.id), data).await?;
        let ticket = data.ticket(args.id).await?;
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(TicketState { id: args.id, myself, idle, ctx: args.ctx, ticket, held })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || TicketMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || TicketMsg::RenewLease);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        state.held.release(state.ctx.ownership.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, TicketMsg::Tick | TicketMsg::RenewLease) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            TicketMsg::Leave { ticket, reply } => {
                let _ = reply.send(state.leave(ticket).await);
            }
            TicketMsg::Answer { agent, text, group_name, reply } => {
                let _ = reply.send(state.answer(agent, text, group_name).await);
            }
            TicketMsg::Close { by, reply } => {
                let _ = reply.send(state.close(by).await);
            }
            TicketMsg::Get { reply } => {
                let _ = reply.send(state.ticket.clone());
            }
            TicketMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.id);
            }
            TicketMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "ticket", &state.id).await;
            }
        }
        Ok(())
    }
}

/// Tickets as an actor kind: keyed by `TicketId`, supervised by `tickets`.
pub struct TicketKind;

actor_kind!(TicketKind, "ticket", "tickets", TicketId, TicketActor, TicketArgs { id });
