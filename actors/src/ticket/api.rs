//! The ticket side of `ActorSystem`: one method per message, through `asks!`.

use hospital_domain::chat::ticket::Ticket;
use hospital_domain::chat::AgentRef;
use hospital_domain::TicketId;

use super::actor::TicketKind;
use super::msg::{TicketFailure, TicketMsg, TicketParty};
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    asks! { TicketKind:
        /// The patient leaves a message outside service hours (CS-4). A repeat by the same
        /// account answers the ticket as it is.
        pub fn ticket_leave(id: TicketId, ticket: Ticket) -> Ticket, TicketFailure
            = once |reply| TicketMsg::Leave { ticket: ticket.clone(), reply };
        /// An agent answers it, once: the answer goes to the patient's message centre and socket.
        pub fn ticket_answer(id: TicketId, agent: AgentRef, text: String, group_name: String) -> Ticket, TicketFailure
            = once |reply| TicketMsg::Answer { agent: agent.clone(), text: text.clone(), group_name: group_name.clone(), reply };
        /// Closed (or withdrawn while open) by its patient or an agent.
        pub fn ticket_close(id: TicketId, by: TicketParty) -> Ticket, TicketFailure
            = once |reply| TicketMsg::Close { by, reply };
        /// The ticket as its actor holds it.
        pub fn ticket(id: TicketId) -> Option<Ticket> = reads |reply| TicketMsg::Get { reply };
    }
}
