//! The ticket actor (CS-4): one per message left outside service hours, its only writer. Two
//! agents answering at once are serialised here: the first answer is written, the second finds
//! the ticket answered and is refused (`TicketError::NotAllowed`, 409 at the gateway). Each change
//! is one `ChatStore::apply_chat`: the ticket with its listings, and for an answer the item in
//! the patient's message centre and their live events (`message`, `ticket`) in the outbox, handed
//! to the live path once durable.
//!
//! Here: `msg` (messages, `TicketFailure`), `state` (the ticket and its changes), `actor` (the
//! handler, and the kind), `api` (its `ActorSystem` methods).

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{TicketActor, TicketKind};
pub use msg::{TicketFailure, TicketMsg, TicketParty};
pub use state::{TicketArgs, TicketState};
