//! The conversation actor (CS-1, CS-2): one per customer-service conversation, its only writer.
//! It numbers the messages (`seq` per conversation), writes each change durably before it
//! answers (one `ChatStore::apply_chat`, the patient's live events in the outbox with it), then
//! publishes: to the patient's sockets (personal events `conversation`, `chat_message`,
//! `chat_read`) and to the serving agent's consoles (`hospital_domain::chat::console`).
//!
//! Who decides what: the group's dispatcher actor decides assignments and hand-backs; this actor
//! asks it (open, close, transfer) and applies what it answers for this conversation; what the
//! dispatcher decides on its own (a free place filled from the backlog, an agent gone offline) it
//! tells this actor (`Assigned`, `Requeued`). The dispatcher never waits on a conversation, so
//! the two never wait on each other.
//!
//! Here: `msg` (messages, `ChatFailure`), `state` (the conversation and its changes), `actor`
//! (the handler, and the kind), `api` (its `ActorSystem` methods).

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{ConversationActor, ConversationKind};
pub use msg::{ChatFailure, ConversationMsg, Party};
pub use state::{ConversationArgs, ConversationState};
