//! The dispatcher actor's handler, and dispatchers as an actor kind (one per service group).

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::chat::console::mask_name;
use hospital_domain::chat::dispatcher::Dispatcher;
use hospital_domain::chat::presence::{DispatcherState, PresenceBoard};
use hospital_domain::chat::GroupKey;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

use super::msg::*;
use super::state::*;
use crate::deps::Context;
use crate::kind::ActorKind;
use crate::supervisor::SpawnKind;

pub struct DispatcherActor;

impl Actor for DispatcherActor {
    type Msg = DispatcherMsg;
    type State = DispatcherActorState;
    type Arguments = DispatcherArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: DispatcherArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let data = &args.ctx.stores.data;
        if !data.chat_groups().await?.iter().any(|g| g.code == args.group) {
            return Err(format!("no service group {}", args.group).into());
        }
        let mut state = data.dispatcher_state(&args.group).await?.unwrap_or_else(|| DispatcherState {
            dispatcher: Dispatcher::new(args.group.clone()),
            board: PresenceBoard::default(),
        });
        // The sockets the stored board knew may be gone (a restart): each counts for the grace,
        // and live consoles connect again when their heartbeat is refused.
        let grace = ChronoDuration::from_std(args.ctx.config.chat.presence_grace).unwrap_or(ChronoDuration::MAX);
        state.board.disconnect_all(Utc::now(), grace);
        let mut names = HashMap::new();
        let held =
            state.dispatcher.agents().flat_map(|d| d.open().iter().map(|h| h.arrival.clone())).collect::<Vec<_>>();
        for a in state.dispatcher.backlog().cloned().chain(held) {
            if let Some(c) = data.conversation(a.conversation_id).await? {
                names.insert(c.id, mask_name(&c.patient_name));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(forward(args.ctx.system.clone(), rx));
        tracing::debug!(group = %args.group, waiting = state.dispatcher.backlog().len(), "dispatcher loaded");
        Ok(DispatcherActorState { ctx: args.ctx, state, names, forward: tx })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Never idle: it keeps its agents' presence (leases) and the backlog moving.
        myself.send_interval(state.ctx.config.chat.presence_tick, || DispatcherMsg::Tick);
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Arrive { arrival, patient, reply } => {
                let _ = reply.send(state.arrive(arrival, patient).await);
            }
            DispatcherMsg::Close { id, reply } => {
                let _ = reply.send(state.close(id).await);
            }
            DispatcherMsg::TransferToAgent { id, to, reply } => {
                let _ = reply.send(state.transfer_to_agent(id, to).await);
            }
            DispatcherMsg::TransferOut { id, to, reply } => {
                let _ = reply.send(state.transfer_out(id, to).await);
            }
            DispatcherMsg::Connect { agent, conn, presence, reply } => {
                let _ = reply.send(state.connect(agent, conn, presence).await);
            }
            DispatcherMsg::Heartbeat { agent, conn, reply } => {
                let _ = reply.send(state.state.board.heartbeat(agent, conn, Utc::now()));
            }
            DispatcherMsg::Disconnect { agent, conn } => {
                if let Err(e) = state.disconnect(agent, conn).await {
                    tracing::warn!(group = %state.group(), error = %e, "console disconnect not stored");
                }
            }
            DispatcherMsg::Place { id, reply } => {
                let _ = reply.send(state.state.dispatcher.place(id));
            }
            DispatcherMsg::View { reply } => {
                let _ = reply.send(state.view());
            }
            DispatcherMsg::Tick => {
                if let Err(e) = state.tick().await {
                    tracing::warn!(group = %state.group(), error = %e, "presence expiry not stored");
                }
            }
        }
        Ok(())
    }
}

/// Dispatchers as an actor kind: keyed by the group's code, supervised by `dispatchers`.
pub struct DispatcherKind;

impl ActorKind for DispatcherKind {
    const KIND: &'static str = "dispatcher";
    const SUPERVISOR: &'static str = "dispatchers";
    type Id = GroupKey;
    type Actor = DispatcherActor;
}

impl SpawnKind for DispatcherKind {
    fn actor() -> DispatcherActor {
        DispatcherActor
    }
    fn args(group: GroupKey, ctx: &Arc<Context>) -> DispatcherArgs {
        DispatcherArgs { group: group.code(), ctx: ctx.clone() }
    }
}
