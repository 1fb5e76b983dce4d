//! The conversation side of `ActorSystem`: one method per message, through `asks!`.

use hospital_domain::chat::conversation::{ChatMessage, Conversation, MessageBody, Rating, ReadReceipt};
use hospital_domain::chat::dispatcher::{Assignment, Requeue};
use hospital_domain::chat::GroupCode;
use hospital_domain::{AccountId, ConversationId, StaffId};

use super::actor::ConversationKind;
use super::msg::{ChatFailure, ConversationMsg, Party};
use crate::error::ActorError;
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    asks! { ConversationKind:
        /// Opens a conversation in `group`'s backlog (CS-1), with an optional first message. A
        /// repeat by the same account answers it as it is.
        pub fn chat_open(id: ConversationId, account: AccountId, patient_name: String, group: GroupCode, first: Option<MessageBody>)
            -> Conversation, ChatFailure
            = once |reply| ConversationMsg::Open { account, patient_name: patient_name.clone(), group: group.clone(), first: first.clone(), reply };
        /// A message from the patient or the serving agent, answered once durable.
        pub fn chat_send(id: ConversationId, from: Party, body: MessageBody) -> ChatMessage, ChatFailure
            = once |reply| ConversationMsg::Send { from, body: body.clone(), reply };
        /// A notice from the platform into the conversation (sender `system`).
        pub fn chat_notice(id: ConversationId, body: MessageBody) -> ChatMessage, ChatFailure
            = once |reply| ConversationMsg::Notice { body: body.clone(), reply };
        /// Moves the caller's read mark up to `seq` (None: it was there already).
        pub fn chat_read(id: ConversationId, by: Party, seq: u64) -> Option<ReadReceipt>, ChatFailure
            = once |reply| ConversationMsg::Read { by, seq, reply };
        /// Closes it (the patient, or the serving agent).
        pub fn chat_close(id: ConversationId, by: Party) -> Conversation, ChatFailure
            = once |reply| ConversationMsg::Close { by, reply };
        /// The patient's rating (1 to 5 and a comment), once, after closing.
        pub fn chat_rate(id: ConversationId, account: AccountId, rating: Rating) -> Conversation, ChatFailure
            = once |reply| ConversationMsg::Rate { account, rating: rating.clone(), reply };
        /// The serving agent hands it to another agent of the group.
        pub fn chat_transfer_to_agent(id: ConversationId, by: StaffId, to: StaffId) -> Conversation, ChatFailure
            = once |reply| ConversationMsg::TransferToAgent { by, to, reply };
        /// The serving agent sends it to another group's backlog.
        pub fn chat_transfer_to_group(id: ConversationId, by: StaffId, to: GroupCode) -> Conversation, ChatFailure
            = once |reply| ConversationMsg::TransferToGroup { by, to: to.clone(), reply };
        /// The conversation as its actor holds it.
        pub fn chat_conversation(id: ConversationId) -> Option<Conversation> = reads |reply| ConversationMsg::Get { reply };
    }

    /// Tells a conversation the dispatcher gave it to an agent.
    pub(crate) async fn chat_assigned(&self, a: Assignment) -> Result<(), ActorError> {
        self.tell::<ConversationKind>(a.conversation_id, ConversationMsg::Assigned(a)).await
    }

    /// Tells a conversation its agent handed it back.
    pub(crate) async fn chat_requeued(&self, r: Requeue) -> Result<(), ActorError> {
        self.tell::<ConversationKind>(r.conversation_id, ConversationMsg::Requeued(r)).await
    }
}
