//! What a dispatcher actor is sent (`DispatcherMsg`), and what it shows (`DispatcherView`).

use hospital_domain::chat::console::{BacklogSummary, GroupPresence};
use hospital_domain::chat::dispatcher::{Arrival, Assignment, ChatQueuePosition, Place, Presence};
use hospital_domain::chat::{AgentProfile, GroupCode};
use hospital_domain::{ConversationId, StaffId};
use ractor::RpcReplyPort;
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::conversation::ChatFailure;

pub(crate) type Reply<T> = RpcReplyPort<Result<T, ChatFailure>>;

/// A group's dispatcher as consoles and supervisors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherView {
    pub backlog: BacklogSummary,
    pub presence: GroupPresence,
    pub positions: Vec<ChatQueuePosition>,
    /// What each agent holds, in the order they took it.
    pub held: BTreeMap<StaffId, Vec<ConversationId>>,
}

/// Messages of a group's dispatcher actor. What it decides about conversations other than the
/// one asking is told to their actors; what concerns the asking one is answered.
#[derive(Debug)]
pub enum DispatcherMsg {
    /// A conversation arrives (opened, or transferred in); its assignment if it got one at once.
    /// `patient` is the masked name the backlog shows.
    Arrive {
        arrival: Arrival,
        patient: String,
        reply: Reply<Option<Assignment>>,
    },
    /// A conversation closed: its place is freed.
    Close {
        id: ConversationId,
        reply: Reply<()>,
    },
    /// To another agent of the group: the assignment to apply.
    TransferToAgent {
        id: ConversationId,
        to: StaffId,
        reply: Reply<Assignment>,
    },
    /// To another group: the arrival to take there.
    TransferOut {
        id: ConversationId,
        to: GroupCode,
        reply: Reply<Arrival>,
    },
    /// A console connected or its agent chose a presence there.
    Connect {
        agent: AgentProfile,
        conn: Uuid,
        presence: Presence,
        reply: Reply<()>,
    },
    /// A console's heartbeat; false if the connection is not known (it then connects again).
    Heartbeat {
        agent: StaffId,
        conn: Uuid,
        reply: RpcReplyPort<bool>,
    },
    /// A console's socket closed (it counts for the grace).
    Disconnect {
        agent: StaffId,
        conn: Uuid,
    },
    /// Where a conversation is in the group.
    Place {
        id: ConversationId,
        reply: RpcReplyPort<Option<Place>>,
    },
    View {
        reply: RpcReplyPort<DispatcherView>,
    },
    /// The presence clock; internal.
    #[doc(hidden)]
    Tick,
}
