//! One ticket in memory (`TicketState`) and its changes: each applied to a copy, written in one
//! durable write with what goes with it, and only then made current and published.

use chrono::Utc;
use hospital_domain::chat::conversation::Closer;
use hospital_domain::chat::ticket::{Ticket, TicketUpdate};
use hospital_domain::chat::AgentRef;
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::TicketId;
use hospital_store::{ChatWrite, PendingEvent};
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;
use crate::ownership::Held;
use ractor::ActorRef;

pub struct TicketArgs {
    pub id: TicketId,
    pub ctx: Arc<Context>,
}

pub struct TicketState {
    pub(super) id: TicketId,
    pub(super) myself: ActorRef<TicketMsg>,
    pub(super) ctx: Arc<Context>,
    /// None until left (an actor started for an id nobody used).
    pub(super) ticket: Option<Ticket>,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: Held,
}

impl TicketState {
    /// Writes `next` with the message-centre items and its patient's `ticket` event; memory
    /// follows only once the write is durable.
    async fn commit(&mut self, next: Ticket, inbox: Vec<Message>) -> Result<Ticket, TicketFailure> {
        let mut events: Vec<PendingEvent> = inbox.iter().map(PendingEvent::message).collect();
        events.push(PendingEvent::new(next.account_id, PersonalEvent::Ticket(TicketUpdate::from(&next))));
        let write = ChatWrite {
            tickets: vec![next.clone()],
            inbox,
            events: events.clone(),
            fence: self.held.fence(),
            ..Default::default()
        };
        let written = self.ctx.stores.data.apply_chat(write).await;
        self.held.after_write(written, &self.myself, "ticket", &self.id)?;
        self.ctx.events.durable(events);
        self.ticket = Some(next.clone());
        Ok(next)
    }

    pub(super) async fn leave(&mut self, ticket: Ticket) -> Result<Ticket, TicketFailure> {
        if let Some(t) = &self.ticket {
            // A repeat of the same request answers it as it is.
            return if t.account_id == ticket.account_id { Ok(t.clone()) } else { Err(TicketFailure::NoSuchTicket) };
        }
        debug_assert_eq!(ticket.id, self.id);
        let t = self.commit(ticket, Vec::new()).await?;
        metrics::counter!("chat_tickets_total", "event" => "left").increment(1);
        Ok(t)
    }

    pub(super) async fn answer(
        &mut self,
        agent: AgentRef,
        text: String,
        group_name: String,
    ) -> Result<Ticket, TicketFailure> {
        let mut next = self.ticket.clone().ok_or(TicketFailure::NoSuchTicket)?;
        let now = Utc::now();
        next.answer(agent, &text, now)?;
        let answer = next.answer.as_ref().expect("just answered");
        let item = Message::new(
            next.account_id,
            MessageKind::SystemNotice,
            format!("{group_name}回复了您的留言"),
            answer.text.clone(),
            // A system notice (no new kind for the preferences to carry), linked as `ticket:<id>` so
            // a client opens the ticket from it.
            Some(format!("ticket:{}", next.id)),
            now,
        );
        let t = self.commit(next, vec![item]).await?;
        metrics::counter!("chat_tickets_total", "event" => "answered").increment(1);
        Ok(t)
    }

    pub(super) async fn close(&mut self, by: TicketParty) -> Result<Ticket, TicketFailure> {
        let closer = match (&self.ticket, by) {
            (Some(t), TicketParty::Patient(a)) if t.account_id == a => Closer::Patient,
            (Some(_), TicketParty::Agent(id)) => Closer::Agent { id },
            _ => return Err(TicketFailure::NoSuchTicket),
        };
        let mut next = self.ticket.clone().expect("checked");
        next.close(closer, Utc::now())?;
        self.commit(next, Vec::new()).await
    }
}
