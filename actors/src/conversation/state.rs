//! One conversation in memory (`ConversationState`) and its changes. Every change is applied to a
//! copy, written in one durable write with its messages, read marks and the patient's live events
//! (`ChatStore::apply_chat`), and only then made current, answered and published: to the
//! patient's sockets through the outbox, to the serving agent's consoles as console events.

use chrono::{DateTime, Utc};
use hospital_domain::chat::console::{AgentConversation, ConsoleEvent, StaffEvent};
use hospital_domain::chat::conversation::{
    ChatError, ChatMessage, Conversation, MessageBody, Rating, ReadReceipt, Reader, Sender,
};
use hospital_domain::chat::dispatcher::{Arrival, Assignment, Requeue};
use hospital_domain::chat::{GroupCode, GroupKey};
use hospital_domain::live::PersonalEvent;
use hospital_domain::{AccountId, ConversationId, StaffId};
use hospital_store::{ChatWrite, ConversationRow, PendingEvent};
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;
use crate::ownership::Held;
use ractor::ActorRef;

pub struct ConversationArgs {
    pub id: ConversationId,
    pub ctx: Arc<Context>,
}

pub struct ConversationState {
    /// This actor, to stop itself when another node took its conversation over.
    pub(super) myself: ActorRef<ConversationMsg>,
    pub(super) id: ConversationId,
    pub(super) ctx: Arc<Context>,
    /// None until opened (an actor started for an id nobody opened).
    pub(super) conv: Option<Conversation>,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: Held,
}

/// One change: the next state and everything written and published with it.
#[derive(Default)]
struct Change {
    /// Its status, group, agent or rating changed: its listings are rewritten.
    listed: bool,
    left_groups: Vec<GroupCode>,
    messages: Vec<ChatMessage>,
    marks: Vec<ReadReceipt>,
    /// For the patient (through the outbox).
    patient: Vec<PersonalEvent>,
    /// For agents' consoles.
    console: Vec<StaffEvent>,
}

impl Change {
    /// A change of state: the patient sees the conversation's new state, and each agent concerned
    /// (the serving one, and `also`, one it just left) sees it as they would in their inbox.
    fn state(next: &Conversation, also: Option<StaffId>) -> Self {
        let mut agents: Vec<StaffId> = next.agent.iter().map(|a| a.id).chain(also).collect();
        agents.dedup();
        let console = agents
            .into_iter()
            .map(|a| StaffEvent::agent(a, ConsoleEvent::Assignment(AgentConversation::of(next, Some(a)))))
            .collect();
        Change { listed: true, patient: vec![PersonalEvent::Conversation(next.into())], console, ..Default::default() }
    }
}

impl ConversationState {
    /// The conversation, if `party` may act on it: the patient only on their own; an agent on any
    /// (the conversation's rules then say whether they serve it).
    fn current(&self, party: Party) -> Result<&Conversation, ChatFailure> {
        match (&self.conv, party) {
            (Some(c), Party::Patient(a)) if c.account_id == a => Ok(c),
            (Some(c), Party::Agent(_)) => Ok(c),
            _ => Err(ChatFailure::NoSuchConversation),
        }
    }

    /// Writes `next` with the change, then makes it current and publishes the change. Memory
    /// never runs ahead of the store: a failed write leaves the conversation as it was.
    async fn commit(&mut self, next: Conversation, change: Change) -> Result<(), ChatFailure> {
        let events: Vec<PendingEvent> =
            change.patient.into_iter().map(|e| PendingEvent::new(next.account_id, e)).collect();
        let write = ChatWrite {
            conversations: vec![ConversationRow {
                conversation: next.clone(),
                listed: change.listed,
                left_groups: change.left_groups,
            }],
            messages: change.messages,
            read_marks: change.marks,
            events: events.clone(),
            fence: self.held.fence(),
            ..Default::default()
        };
        let written = self.ctx.stores.data.apply_chat(write).await;
        self.held.after_write(written, &self.myself, "conversation", &self.id)?;
        self.conv = Some(next);
        self.ctx.events.durable(events);
        for e in change.console {
            self.ctx.consoles.send(e);
        }
        Ok(())
    }

    pub(super) async fn open(
        &mut self,
        account: AccountId,
        patient_name: String,
        group: GroupCode,
        first: Option<MessageBody>,
    ) -> Result<Conversation, ChatFailure> {
        if let Some(c) = &self.conv {
            // A repeat of the same open (a retried request) answers it as it is.
            return if c.account_id == account { Ok(c.clone()) } else { Err(ChatFailure::NoSuchConversation) };
        }
        let now = Utc::now();
        let mut next =
            Conversation::open(self.id, account, &patient_name, group.clone(), now).map_err(ChatError::from)?;
        let mut change = Change::state(&next, None);
        if let Some(body) = first {
            let m = next.append(Sender::Patient, body, now)?;
            change.patient.push(PersonalEvent::ChatMessage(m.clone()));
            change.messages.push(m);
        }
        self.commit(next.clone(), change).await?;
        metrics::counter!("chat_conversations_opened_total").increment(1);
        let name = hospital_domain::chat::console::mask_name(&next.patient_name);
        let own = self.ctx.system.chat_arrive(GroupKey::from(&group), Arrival::of(&next), name).await?;
        if let Some(a) = own {
            self.assigned(a).await;
        }
        Ok(self.conv.clone().expect("opened"))
    }

    pub(super) async fn send(&mut self, from: Party, body: MessageBody) -> Result<ChatMessage, ChatFailure> {
        let c = self.current(from)?;
        let sender = match from {
            Party::Patient(_) => Sender::Patient,
            Party::Agent(id) => match &c.agent {
                Some(a) if a.id == id => Sender::Agent { id, name: a.name.clone() },
                _ => return Err(ChatError::NotAssignedAgent.into()),
            },
        };
        let mut next = c.clone();
        let m = next.append(sender, body, Utc::now())?;
        let mut change = Change { messages: vec![m.clone()], ..Default::default() };
        change.patient.push(PersonalEvent::ChatMessage(m.clone()));
        if let Some(a) = &next.agent {
            change.console.push(StaffEvent::agent(a.id, ConsoleEvent::ChatMessage(m.clone())));
        }
        self.commit(next, change).await?;
        crate::chat_metrics::message(self.id, matches!(from, Party::Agent(_)), m.sent_at);
        Ok(m)
    }

    /// A notice from the platform: to the patient, and to the serving agent if there is one.
    pub(super) async fn notice(&mut self, body: MessageBody) -> Result<ChatMessage, ChatFailure> {
        let mut next = self.conv.clone().ok_or(ChatFailure::NoSuchConversation)?;
        let m = next.append(Sender::System, body, Utc::now())?;
        let mut change = Change { messages: vec![m.clone()], ..Default::default() };
        change.patient.push(PersonalEvent::ChatMessage(m.clone()));
        if let Some(a) = &next.agent {
            change.console.push(StaffEvent::agent(a.id, ConsoleEvent::ChatMessage(m.clone())));
        }
        self.commit(next, change).await?;
        Ok(m)
    }

    pub(super) async fn read(&mut self, by: Party, seq: u64) -> Result<Option<ReadReceipt>, ChatFailure> {
        let mut next = self.current(by)?.clone();
        let Some(r) = next.mark_read(by.reader(), seq, Utc::now())? else { return Ok(None) };
        let mut change = Change { marks: vec![r], ..Default::default() };
        match r.reader {
            // The patient read: their agent's console shows it (已读).
            Reader::Patient => {
                if let Some(a) = &next.agent {
                    change.console.push(StaffEvent::agent(a.id, ConsoleEvent::ChatRead(r)));
                }
            }
            Reader::Agent { .. } => change.patient.push(PersonalEvent::ChatRead(r)),
        }
        self.commit(next, change).await?;
        Ok(Some(r))
    }

    pub(super) async fn close(&mut self, by: Party) -> Result<Conversation, ChatFailure> {
        let c = self.current(by)?;
        let serving = c.agent.as_ref().map(|a| a.id);
        let mut next = c.clone();
        next.close(by.closer(), Utc::now())?;
        let change = Change::state(&next, serving);
        let group = next.group.clone();
        self.commit(next, change).await?;
        // The conversation is closed for good; the dispatcher frees its place. Should it not
        // answer now, the place is freed when it next loads (it checks what it holds).
        if let Err(e) = self.ctx.system.chat_dispatch_close(GroupKey::from(&group), self.id).await {
            tracing::warn!(conversation = %self.id, error = %e, "dispatcher not told of the close");
        }
        metrics::counter!("chat_conversations_closed_total").increment(1);
        crate::chat_metrics::unassigned(self.id);
        Ok(self.conv.clone().expect("closed"))
    }

    pub(super) async fn rate(&mut self, account: AccountId, rating: Rating) -> Result<Conversation, ChatFailure> {
        let mut next = self.current(Party::Patient(account))?.clone();
        next.rate(rating)?;
        let last = next.last_agent.as_ref().map(|a| a.id);
        let change = Change::state(&next, last);
        self.commit(next, change).await?;
        Ok(self.conv.clone().expect("rated"))
    }

    pub(super) async fn transfer_to_agent(&mut self, by: StaffId, to: StaffId) -> Result<Conversation, ChatFailure> {
        let c = self.current(Party::Agent(by))?;
        if !c.is_served_by(by) {
            return Err(ChatError::NotAssignedAgent.into());
        }
        let group = GroupKey::from(&c.group);
        let a = self.ctx.system.chat_dispatch_transfer(group, self.id, to).await?;
        self.assigned(a).await;
        Ok(self.conv.clone().expect("open"))
    }

    pub(super) async fn transfer_to_group(&mut self, by: StaffId, to: GroupCode) -> Result<Conversation, ChatFailure> {
        let c = self.current(Party::Agent(by))?;
        if !c.is_served_by(by) {
            return Err(ChatError::NotAssignedAgent.into());
        }
        let mut next = c.clone();
        next.transfer_to_group(to.clone())?;
        let from = c.group.clone();
        if !self.ctx.stores.data.chat_groups().await?.iter().any(|g| g.code == to) {
            return Err(ChatFailure::NoSuchGroup(to));
        }
        let arrival = self.ctx.system.chat_transfer_out(GroupKey::from(&from), self.id, to.clone()).await?;
        let mut change = Change::state(&next, Some(by));
        change.left_groups.push(from);
        let name = hospital_domain::chat::console::mask_name(&next.patient_name);
        self.commit(next, change).await?;
        let own = self.ctx.system.chat_arrive(GroupKey::from(&to), arrival, name).await?;
        if let Some(a) = own {
            self.assigned(a).await;
        }
        Ok(self.conv.clone().expect("open"))
    }

    /// Agrees with the dispatcher on where an open conversation is: with the agent it says
    /// (applied here if the write of the assignment was lost), waiting (handed back), or, if the
    /// dispatcher does not know it (its arrival was lost), arrived again with its place in line.
    pub(super) async fn reconcile(&mut self) {
        use hospital_domain::chat::conversation::ConversationStatus;
        use hospital_domain::chat::dispatcher::{Place, RequeueReason};
        let Some(c) = self.conv.clone().filter(|c| c.status != ConversationStatus::Closed) else { return };
        let group = GroupKey::from(&c.group);
        let system = self.ctx.system.clone();
        match system.chat_place(group, self.id).await {
            Ok(Some(Place::With(agent))) if !c.is_served_by(agent) => {
                let name = match system.chat_dispatcher(group).await {
                    Ok(v) => v.presence.agents.into_iter().find(|a| a.id == agent).map(|a| a.name),
                    Err(_) => None,
                };
                let Some(name) = name else { return };
                let transferred_from = c.agent.as_ref().map(|a| a.id);
                let a = Assignment {
                    conversation_id: c.id,
                    account_id: c.account_id,
                    agent: hospital_domain::chat::AgentRef { id: agent, name },
                    arrived_at: c.created_at,
                    transferred_from,
                };
                tracing::info!(conversation = %self.id, "assignment restored from the dispatcher");
                self.assigned(a).await;
            }
            Ok(Some(Place::Waiting(_))) => {
                if let Some(a) = &c.agent {
                    let r = Requeue {
                        conversation_id: c.id,
                        account_id: c.account_id,
                        from: a.id,
                        reason: RequeueReason::Offline,
                    };
                    self.requeued(r).await;
                }
            }
            Ok(None) => {
                let name = hospital_domain::chat::console::mask_name(&c.patient_name);
                if let Some(served) = &c.agent {
                    // It cannot be with an agent the dispatcher does not know of: back in line.
                    let r = Requeue {
                        conversation_id: c.id,
                        account_id: c.account_id,
                        from: served.id,
                        reason: RequeueReason::Offline,
                    };
                    self.requeued(r).await;
                }
                match system.chat_arrive(group, Arrival::of(&c), name).await {
                    Ok(Some(a)) => self.assigned(a).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(conversation = %self.id, error = %e, "not put back in line"),
                }
            }
            Ok(Some(Place::With(_))) => {}
            Err(e) => tracing::warn!(conversation = %self.id, error = %e, "dispatcher not asked where it is"),
        }
    }

    /// The dispatcher gave it to an agent (from the backlog, or transferred between agents).
    /// Refused transitions are stale news (it closed meanwhile) and change nothing.
    pub(super) async fn assigned(&mut self, a: Assignment) {
        let Some(c) = &self.conv else { return };
        let mut next = c.clone();
        let now: DateTime<Utc> = Utc::now();
        let r = match a.transferred_from {
            Some(_) => next.transfer_to_agent(a.agent.clone(), now),
            None => next.assign(a.agent.clone(), now),
        };
        if let Err(e) = r {
            tracing::debug!(conversation = %self.id, error = %e, "assignment not applied");
            return;
        }
        let change = Change::state(&next, a.transferred_from);
        let (created, first) = (c.created_at, c.first_assigned_at.is_none());
        match self.commit(next, change).await {
            Ok(()) => crate::chat_metrics::assigned(self.id, created, first, now),
            Err(e) => tracing::warn!(conversation = %self.id, error = %e, "assignment not stored"),
        }
    }

    /// Its agent handed it back (went away or offline): waiting again, at the head of the line.
    pub(super) async fn requeued(&mut self, r: Requeue) {
        let Some(c) = &self.conv else { return };
        if !c.is_served_by(r.from) {
            return;
        }
        let mut next = c.clone();
        if next.requeue().is_err() {
            return;
        }
        let change = Change::state(&next, Some(r.from));
        if let Err(e) = self.commit(next, change).await {
            tracing::warn!(conversation = %self.id, error = %e, "hand-back not stored");
        }
        crate::chat_metrics::unassigned(self.id);
    }
}
