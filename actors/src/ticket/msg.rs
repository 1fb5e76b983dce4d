//! What a ticket actor is sent (`TicketMsg`), and why a ticket operation may fail.

use hospital_domain::chat::ticket::{Ticket, TicketError};
use hospital_domain::chat::AgentRef;
use hospital_domain::{AccountId, StaffId};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

use crate::error::ActorError;

/// Why a ticket operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TicketFailure {
    /// No such ticket, or not the caller's (never says which).
    #[error("no such ticket")]
    NoSuchTicket,
    /// The ticket's rules (answered already, closed, bad text).
    #[error(transparent)]
    Rule(#[from] TicketError),
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for TicketFailure {
    fn from(e: StoreError) -> Self {
        TicketFailure::Unavailable(e.into())
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, TicketFailure>>;

/// Who closes a ticket: its patient (withdraws it, or is done with the answer) or an agent whom
/// the gateway allowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketParty {
    Patient(AccountId),
    Agent(StaffId),
}

/// Messages of a ticket's actor.
#[derive(Debug)]
pub enum TicketMsg {
    /// The patient leaves it (built and checked by `Ticket::leave`). A repeat by the same account
    /// answers the ticket as it is.
    Leave { ticket: Ticket, reply: Reply<Ticket> },
    /// An agent answers it, once; `group_name` titles the patient's message-centre item.
    Answer { agent: AgentRef, text: String, group_name: String, reply: Reply<Ticket> },
    /// Closed by its patient or an agent.
    Close { by: TicketParty, reply: Reply<Ticket> },
    /// The ticket as it is (None: there is none with this id).
    Get { reply: RpcReplyPort<Option<Ticket>> },
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the ticket's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}
