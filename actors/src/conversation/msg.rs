//! What a conversation actor is sent (`ConversationMsg`), and why a chat operation may fail
//! (`ChatFailure`, shared with the dispatcher actors).

use hospital_domain::chat::conversation::{
    ChatError, ChatMessage, Closer, Conversation, MessageBody, Rating, ReadReceipt, Reader,
};
use hospital_domain::chat::dispatcher::{Assignment, DispatchError, Requeue};
use hospital_domain::chat::GroupCode;
use hospital_domain::{AccountId, StaffId};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

use crate::error::ActorError;

/// Why a chat operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatFailure {
    /// No such conversation, or not the caller's (never says which).
    #[error("no such conversation")]
    NoSuchConversation,
    #[error("no such service group: {0}")]
    NoSuchGroup(GroupCode),
    /// The conversation's own rules (closed, not the serving agent, already rated...).
    #[error(transparent)]
    Rule(#[from] ChatError),
    /// The dispatcher's rules (agent not online, full...).
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for ChatFailure {
    fn from(e: StoreError) -> Self {
        ChatFailure::Unavailable(e.into())
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, ChatFailure>>;

/// Who asks: the patient (by account) or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Patient(AccountId),
    Agent(StaffId),
}

/// Messages of a conversation's actor.
#[derive(Debug)]
pub enum ConversationMsg {
    /// The patient opens it (with an optional first message) in `group`'s backlog. A repeat by
    /// the same account answers the conversation as it is.
    Open {
        account: AccountId,
        patient_name: String,
        group: GroupCode,
        first: Option<MessageBody>,
        reply: Reply<Conversation>,
    },
    /// A message from the patient or the serving agent: numbered, durable, then answered.
    Send { from: Party, body: MessageBody, reply: Reply<ChatMessage> },
    /// A notice from the platform (FAQ suggestions while waiting), numbered and delivered like
    /// any message, sender `system`.
    Notice { body: MessageBody, reply: Reply<ChatMessage> },
    /// Moves the caller's read mark (None: it was already there).
    Read { by: Party, seq: u64, reply: Reply<Option<ReadReceipt>> },
    /// Closed by the patient or the serving agent.
    Close { by: Party, reply: Reply<Conversation> },
    /// The patient's rating, once, after closing.
    Rate { account: AccountId, rating: Rating, reply: Reply<Conversation> },
    /// The serving agent hands it to another agent of the group (online, with room).
    TransferToAgent { by: StaffId, to: StaffId, reply: Reply<Conversation> },
    /// The serving agent sends it to another group's backlog, keeping its place in line.
    TransferToGroup { by: StaffId, to: GroupCode, reply: Reply<Conversation> },
    /// The conversation as it is (None: there is none with this id).
    Get { reply: RpcReplyPort<Option<Conversation>> },
    /// From the group's dispatcher: it was given to an agent.
    Assigned(Assignment),
    /// From the group's dispatcher: its agent handed it back to the backlog.
    Requeued(Requeue),
    /// Sent to itself on start: agrees with the dispatcher on where it is (a crash may have come
    /// between the dispatcher's decision and this conversation's write of it); internal.
    #[doc(hidden)]
    Reconcile,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the conversation's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}

impl Party {
    pub fn reader(self) -> Reader {
        match self {
            Party::Patient(_) => Reader::Patient,
            Party::Agent(id) => Reader::Agent { id },
        }
    }

    pub fn closer(self) -> Closer {
        match self {
            Party::Patient(_) => Closer::Patient,
            Party::Agent(id) => Closer::Agent { id },
        }
    }
}
