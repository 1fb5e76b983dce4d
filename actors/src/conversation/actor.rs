//! The conversation actor's handler, and conversations as an actor kind.

use hospital_domain::ConversationId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::conversation_resource;

pub struct ConversationActor;

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConversationArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let data = args.ctx.stores.data.as_ref();
        // Several nodes: the conversation's lease and claim before it is loaded.
        let held = Held::take(args.ctx.ownership.as_ref(), &conversation_resource(args.id), data).await?;
        let conv = hospital_store::chat::conversation_with_marks(data, args.id).await?;
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(ConversationState { myself, id: args.id, idle, ctx: args.ctx, conv, held })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ConversationMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || ConversationMsg::RenewLease);
        if state
            .conv
            .as_ref()
            .is_some_and(|c| c.status != hospital_domain::chat::conversation::ConversationStatus::Closed)
        {
            let _ = myself.cast(ConversationMsg::Reconcile);
        }
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
        if !matches!(msg, ConversationMsg::Tick | ConversationMsg::RenewLease) {
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
            ConversationMsg::Notice { body, reply } => {
                let _ = reply.send(state.notice(body).await);
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
            ConversationMsg::Reconcile => state.reconcile().await,
            ConversationMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.id);
            }
            ConversationMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "conversation", &state.id).await;
            }
        }
        Ok(())
    }
}

/// Conversations as an actor kind: keyed by `ConversationId`, supervised by `conversations`.
pub struct ConversationKind;

actor_kind!(
    ConversationKind,
    "conversation",
    "conversations",
    ConversationId,
    ConversationActor,
    ConversationArgs { id }
);
