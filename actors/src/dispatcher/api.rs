//! The dispatcher side of `ActorSystem`.

use hospital_domain::chat::dispatcher::{Arrival, Assignment, Place, Presence};
use hospital_domain::chat::{AgentProfile, GroupCode, GroupKey};
use hospital_domain::{ConversationId, StaffId};
use uuid::Uuid;

use super::actor::DispatcherKind;
use super::msg::{DispatcherMsg, DispatcherView};
use crate::conversation::ChatFailure;
use crate::error::ActorError;
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    asks! { DispatcherKind:
        /// A conversation arrives in the group; its assignment if it got one at once.
        pub(crate) fn chat_arrive(group: GroupKey, arrival: Arrival, patient: String) -> Option<Assignment>, ChatFailure
            = once |reply| DispatcherMsg::Arrive { arrival: arrival.clone(), patient: patient.clone(), reply };
        pub(crate) fn chat_dispatch_close(group: GroupKey, id: ConversationId) -> (), ChatFailure
            = once |reply| DispatcherMsg::Close { id, reply };
        pub(crate) fn chat_dispatch_transfer(group: GroupKey, id: ConversationId, to: StaffId) -> Assignment, ChatFailure
            = once |reply| DispatcherMsg::TransferToAgent { id, to, reply };
        pub(crate) fn chat_transfer_out(group: GroupKey, id: ConversationId, to: GroupCode) -> Arrival, ChatFailure
            = once |reply| DispatcherMsg::TransferOut { id, to: to.clone(), reply };
        /// A console of `agent` connected, or its agent chose `presence` there.
        pub fn chat_presence(group: GroupKey, agent: AgentProfile, conn: Uuid, presence: Presence) -> (), ChatFailure
            = once |reply| DispatcherMsg::Connect { agent: agent.clone(), conn, presence, reply };
        /// A console's heartbeat; false: state the presence again.
        pub fn chat_heartbeat(group: GroupKey, agent: StaffId, conn: Uuid) -> bool
            = reads |reply| DispatcherMsg::Heartbeat { agent, conn, reply };
        /// Where a conversation is in the group.
        pub fn chat_place(group: GroupKey, id: ConversationId) -> Option<Place>
            = reads |reply| DispatcherMsg::Place { id, reply };
        /// The group's backlog, agents and places in line.
        pub fn chat_dispatcher(group: GroupKey) -> DispatcherView = reads |reply| DispatcherMsg::View { reply };
    }

    /// A console's socket closed.
    pub async fn chat_disconnect(&self, group: GroupKey, agent: StaffId, conn: Uuid) -> Result<(), ActorError> {
        self.tell::<DispatcherKind>(group, DispatcherMsg::Disconnect { agent, conn }).await
    }
}
