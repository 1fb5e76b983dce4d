//! The conversation actor's handler, and conversations as an actor kind.

use hospital_domain::ConversationId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;

use super::msg::*;
use super::state::*;
use crate::deps::Context;
use crate::idle::IdleClock;
use crate::kind::ActorKind;
use crate::supervisor::SpawnKind;

pub struct ConversationActor;

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let conv = hospital_store::chat::conversation_with_marks(args.ctx.stores.data.as_ref(), args.id).await?;
        Ok(ConversationState { id: args.id, idle: IdleClock::new(args.ctx.config.idle_timeout), ctx: args.ctx, conv })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ConversationMsg::Tick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ConversationMsg::Tick) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            ConversationMsg::Open { account, patient_name, group, first, reply } => {
                let _ = reply.send(state.open(account, patient_name, group, first).await);
            }
            ConversationMsg::Send { from, body, reply } => {
                let _ = reply.send(state.send(from, body).await);
            }
            ConversationMsg::Read { by, seq, reply } => {
                let _ = reply.send(state.read(by, seq).await);
            }
            ConversationMsg::Close { by, reply } => {
                let _ = reply.send(state.close(by).await);
            }
            ConversationMsg::Rate { account, rating, reply } => {
                let _ = reply.send(state.rate(account, rating).await);
            }
            ConversationMsg::TransferToAgent { by, to, reply } => {
                let _ = reply.send(state.transfer_to_agent(by, to).await);
            }
            ConversationMsg::TransferToGroup { by, to, reply } => {
                let _ = reply.send(state.transfer_to_group(by, to).await);
            }
            ConversationMsg::Get { reply } => {
                let _ = reply.send(state.conv.clone());
            }
            ConversationMsg::Assigned(a) => state.assigned(a).await,
            ConversationMsg::Requeued(r) => state.requeued(r).await,
            ConversationMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.id);
            }
        }
        Ok(())
    }
}

/// Conversations as an actor kind: keyed by `ConversationId`, supervised by `conversations`.
pub struct ConversationKind;

impl ActorKind for ConversationKind {
    const KIND: &'static str = "conversation";
    const SUPERVISOR: &'static str = "conversations";
    type Id = ConversationId;
    type Actor = ConversationActor;
}

impl SpawnKind for ConversationKind {
    fn actor() -> ConversationActor {
        ConversationActor
    }
    fn args(id: ConversationId, ctx: &Arc<Context>) -> ConversationArgs {
        ConversationArgs { id, ctx: ctx.clone() }
    }
}
