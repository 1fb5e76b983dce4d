//! The queue actor's handler, and session queues as an actor kind.

use hospital_domain::queue::ClinicQueue;
use hospital_domain::SessionId;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::msg::*;
use super::state::*;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::supervisor::actor_kind;
use hospital_store::queue_resource;

pub struct QueueActor;

impl Actor for QueueActor {
    type Msg = QueueMsg;
    type State = QueueState;
    type Arguments = QueueArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: QueueArgs) -> Result<Self::State, ActorProcessingErr> {
        let data = &args.ctx.stores.data;
        let session = data.session(args.session).await?.ok_or_else(|| format!("no clinic session {}", args.session))?;
        // Several nodes: the session's lease and claim before the queue is loaded.
        let held = Held::take(args.ctx.ownership.as_ref(), &queue_resource(args.session), data.as_ref()).await?;
        let queue = data.queue(args.session).await?.unwrap_or_else(|| ClinicQueue::new(session.id, session.doctor_id));
        tracing::debug!(session = %session.id, waiting = queue.waiting().len(), "queue actor loaded");
        let idle = IdleClock::new(args.ctx.config.idle_timeout);
        Ok(QueueState { myself, session, idle, ctx: args.ctx, queue, held })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || QueueMsg::Tick);
        state.held.start_renewing(state.ctx.ownership.as_ref(), &myself, || QueueMsg::RenewLease);
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
        if !matches!(msg, QueueMsg::Tick | QueueMsg::RenewLease) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            QueueMsg::CheckIn { appointment, account, reply } => {
                let _ = reply.send(state.check_in(appointment, account).await);
            }
            QueueMsg::CallNext { room, reply } => {
                let r = state
                    .staff(|q, now| {
                        q.call_next(&room, now);
                        Ok(())
                    })
                    .await;
                let _ = reply.send(r);
            }
            QueueMsg::Skip { reply } => {
                let _ = reply.send(state.staff(|q, _| q.skip().map(|_| ()).map_err(QueueError::from)).await);
            }
            QueueMsg::Recall { appointment, reply } => {
                let r =
                    state.staff(|q, now| q.recall(appointment, None, now).map(|_| ()).map_err(QueueError::from)).await;
                let _ = reply.send(r);
            }
            QueueMsg::Reorder { appointment, position, reply } => {
                let r = state.staff(|q, _| q.reorder(appointment, position).map_err(QueueError::from)).await;
                let _ = reply.send(r);
            }
            QueueMsg::Get { reply } => {
                let _ = reply.send(state.queue.clone());
            }
            QueueMsg::Summary { reply } => {
                let _ = reply.send(state.summary());
            }
            #[cfg(feature = "fault-injection")]
            QueueMsg::InjectFault => {
                panic!("fault injected into queue actor {}", state.session.id);
            }
            QueueMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.session.id);
            }
            QueueMsg::RenewLease => {
                state.held.renew_or_stop(state.ctx.ownership.as_ref(), &myself, "queue", &state.session.id).await;
            }
        }
        Ok(())
    }
}

/// Session queues as an actor kind: keyed by `SessionId`, supervised by `queues`.
pub struct QueueKind;

actor_kind!(QueueKind, "queue", "queues", SessionId, QueueActor, QueueArgs { session });
