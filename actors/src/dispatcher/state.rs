//! One group's dispatcher in memory (`DispatcherActorState`) and its changes. Every operation is
//! applied to a copy of the stored state (dispatcher and presence board), written with the
//! waiting patients' new places (personal events `chat_queue`) in one durable write, and only
//! then made current; then the decisions are told to the conversations' actors (in order, by one
//! forwarding task, so the dispatcher never waits on a conversation) and the group's consoles
//! get the new backlog and presence.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use hospital_domain::chat::console::{
    AgentStatus, BacklogEntry, BacklogSummary, ConsoleEvent, GroupPresence, StaffEvent, BACKLOG_SHOWN,
};
use hospital_domain::chat::dispatcher::{Arrival, Assignment, Outcome, Presence};
use hospital_domain::chat::presence::{DispatcherState, Leases};
use hospital_domain::chat::{AgentProfile, GroupCode};
use hospital_domain::live::PersonalEvent;
use hospital_domain::{ConversationId, StaffId};
use hospital_store::{ChatWrite, PendingEvent};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::msg::DispatcherView;
use crate::conversation::ChatFailure;
use crate::deps::Context;
use crate::system::ActorSystem;

pub struct DispatcherArgs {
    pub group: GroupCode,
    pub ctx: Arc<Context>,
}

/// What the forwarding task tells conversations.
pub(super) enum Tell {
    Assigned(Assignment),
    Requeued(hospital_domain::chat::dispatcher::Requeue),
}

pub struct DispatcherActorState {
    pub(super) ctx: Arc<Context>,
    pub(super) state: DispatcherState,
    /// Masked patient names of the conversations here, for the backlog's listing.
    pub(super) names: HashMap<ConversationId, String>,
    pub(super) forward: mpsc::UnboundedSender<Tell>,
}

/// Tells conversations what their dispatcher decided, in the order it decided it.
pub(super) async fn forward(system: ActorSystem, mut rx: mpsc::UnboundedReceiver<Tell>) {
    while let Some(t) = rx.recv().await {
        let r = match t {
            Tell::Assigned(a) => system.chat_assigned(a).await,
            Tell::Requeued(r) => system.chat_requeued(r).await,
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "a conversation was not told of its dispatcher's decision");
        }
    }
}

fn chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

impl DispatcherActorState {
    pub(super) fn group(&self) -> &GroupCode {
        self.state.dispatcher.group()
    }

    fn leases(&self) -> Leases {
        let c = &self.ctx.config.chat;
        Leases { lease: chrono(c.presence_lease), grace: chrono(c.presence_grace) }
    }

    /// Applies `op` to a copy, writes it with the places in line that changed, makes it current,
    /// tells the conversations (all but `own`, whose assignment is returned) and the consoles.
    pub(super) async fn change<T>(
        &mut self,
        own: Option<ConversationId>,
        op: impl FnOnce(&mut DispatcherState, DateTime<Utc>) -> Result<(T, Outcome), ChatFailure>,
    ) -> Result<(T, Option<Assignment>), ChatFailure> {
        let now = Utc::now();
        let mut next = self.state.clone();
        let (t, out) = op(&mut next, now)?;
        let events: Vec<PendingEvent> = out
            .positions
            .iter()
            .map(|p| PendingEvent::new(p.account_id, PersonalEvent::ChatQueue(p.clone())))
            .collect();
        if next != self.state {
            let write = ChatWrite { dispatchers: vec![next.clone()], events: events.clone(), ..Default::default() };
            self.ctx.stores.data.apply_chat(write).await?;
            self.state = next;
        }
        self.ctx.events.durable(events);
        let mut mine = None;
        for r in out.requeued {
            if Some(r.conversation_id) != own {
                let _ = self.forward.send(Tell::Requeued(r));
            }
        }
        for a in out.assigned {
            if Some(a.conversation_id) == own {
                mine = Some(a);
            } else {
                let _ = self.forward.send(Tell::Assigned(a));
            }
        }
        let view = self.view();
        crate::chat_metrics::group(self.group(), view.backlog.waiting, &view.presence.agents);
        let group = self.group().clone();
        self.ctx.consoles.send(StaffEvent::group(group.clone(), ConsoleEvent::Backlog(view.backlog)));
        self.ctx.consoles.send(StaffEvent::group(group, ConsoleEvent::Presence(view.presence)));
        Ok((t, mine))
    }

    pub(super) fn view(&self) -> DispatcherView {
        let d = &self.state.dispatcher;
        let positions = d.positions();
        let first: Vec<BacklogEntry> = d
            .backlog()
            .take(BACKLOG_SHOWN)
            .enumerate()
            .map(|(i, a)| BacklogEntry {
                conversation_id: a.conversation_id,
                position: i + 1,
                arrived_at: a.arrived_at,
                patient: self.names.get(&a.conversation_id).cloned().unwrap_or_else(|| "*".into()),
            })
            .collect();
        let agents: Vec<AgentStatus> = d
            .agents()
            .map(|a| AgentStatus { id: a.id, name: a.name.clone(), presence: a.presence, load: a.load(), cap: a.cap })
            .collect();
        let online = agents.iter().filter(|a| a.presence == Presence::Online).count() as u32;
        DispatcherView {
            backlog: BacklogSummary {
                group: d.group().clone(),
                waiting: d.backlog().len(),
                oldest_arrived_at: d.backlog().next().map(|a| a.arrived_at),
                agents_online: online,
                first,
            },
            presence: GroupPresence { group: d.group().clone(), agents },
            positions,
            held: d.agents().map(|a| (a.id, a.open().iter().map(|h| h.arrival.conversation_id).collect())).collect(),
        }
    }

    pub(super) async fn arrive(
        &mut self,
        arrival: Arrival,
        patient: String,
    ) -> Result<Option<Assignment>, ChatFailure> {
        let id = arrival.conversation_id;
        self.names.insert(id, patient);
        let ((), mine) = self.change(Some(id), |s, now| Ok(((), s.dispatcher.arrive(arrival, now)?))).await?;
        Ok(mine)
    }

    pub(super) async fn close(&mut self, id: ConversationId) -> Result<(), ChatFailure> {
        use hospital_domain::chat::dispatcher::DispatchError;
        let r = self.change(Some(id), |s, now| Ok(((), s.dispatcher.close(id, now)?))).await;
        self.names.remove(&id);
        match r {
            // Not here (closed twice, or never arrived): nothing to free.
            Err(ChatFailure::Dispatch(DispatchError::UnknownConversation(_))) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    pub(super) async fn transfer_to_agent(
        &mut self,
        id: ConversationId,
        to: StaffId,
    ) -> Result<Assignment, ChatFailure> {
        let ((), mine) = self.change(Some(id), |s, now| Ok(((), s.dispatcher.transfer_to_agent(id, to, now)?))).await?;
        Ok(mine.expect("a transfer to an agent assigns the conversation"))
    }

    pub(super) async fn transfer_out(&mut self, id: ConversationId, to: GroupCode) -> Result<Arrival, ChatFailure> {
        let (arrival, _) = self.change(Some(id), |s, now| Ok(s.dispatcher.transfer_out(id, &to, now)?)).await?;
        self.names.remove(&id);
        Ok(arrival)
    }

    /// A console states its agent's presence: the agent joins the dispatcher (name and cap from
    /// their profile), the connection is noted, and the agent's derived presence applied.
    pub(super) async fn connect(
        &mut self,
        agent: AgentProfile,
        conn: Uuid,
        presence: Presence,
    ) -> Result<(), ChatFailure> {
        self.change(None, |s, now| {
            s.dispatcher.register_agent(agent.id, &agent.name)?;
            let mut out = Outcome::default();
            if s.dispatcher.agent(agent.id).is_some_and(|d| d.cap != agent.cap) {
                merge(&mut out, s.dispatcher.set_cap(agent.id, agent.cap, now)?);
            }
            s.board.set(agent.id, conn, presence, now);
            merge(&mut out, s.dispatcher.set_presence(agent.id, s.board.presence_of(agent.id), now)?);
            Ok(((), out))
        })
        .await
        .map(|_| ())
    }

    pub(super) async fn disconnect(&mut self, agent: StaffId, conn: Uuid) -> Result<(), ChatFailure> {
        let grace = self.leases().grace;
        self.change(None, |s, now| {
            s.board.disconnect(agent, conn, now, grace);
            Ok(((), settle_presence(s, &[agent], now)?))
        })
        .await
        .map(|_| ())
    }

    /// Connections past their lease or grace lapse; their agents' presence follows.
    pub(super) async fn tick(&mut self) -> Result<(), ChatFailure> {
        let leases = self.leases();
        let now = Utc::now();
        let mut probe = self.state.board.clone();
        if probe.expire(now, leases).is_empty() {
            return Ok(());
        }
        self.change(None, |s, now| {
            let agents = s.board.expire(now, leases);
            Ok(((), settle_presence(s, &agents, now)?))
        })
        .await
        .map(|_| ())
    }
}

/// Applies the presence the board now says for each of `agents`.
fn settle_presence(s: &mut DispatcherState, agents: &[StaffId], now: DateTime<Utc>) -> Result<Outcome, ChatFailure> {
    let mut out = Outcome::default();
    for a in agents {
        if s.dispatcher.agent(*a).is_some() {
            merge(&mut out, s.dispatcher.set_presence(*a, s.board.presence_of(*a), now)?);
        }
    }
    Ok(out)
}

/// `later` after `out`: hand-backs and assignments in order; each waiting conversation's latest
/// place only.
fn merge(out: &mut Outcome, later: Outcome) {
    out.requeued.extend(later.requeued);
    out.assigned.extend(later.assigned);
    for p in later.positions {
        out.positions.retain(|q| q.conversation_id != p.conversation_id);
        out.positions.push(p);
    }
}
