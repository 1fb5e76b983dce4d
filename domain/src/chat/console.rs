//! What the agents' consoles are told live (CS-2): the staff side of the chat, as types. A
//! patient's events are personal events (`crate::live`), numbered and logged per account; an
//! agent's are `ConsoleEvent`s, delivered to their console sockets as they happen and not logged:
//! every message carries its conversation's `seq`, so a console that reconnects reloads its inbox
//! and fetches, per conversation, the messages after the last `seq` it has (exact, by
//! conversation). Encoded like every frame: `{"type": <kind>, "payload": {...}}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::conversation::{ChatMessage, Conversation, ConversationStatus, Rating, ReadReceipt};
use super::dispatcher::Presence;
use super::{AgentRef, GroupCode};
use crate::{ConversationId, StaffId};

/// Who a console event is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Audience {
    /// One agent's consoles.
    Agent(StaffId),
    /// The consoles of every agent of a group, and of supervisors.
    Group(GroupCode),
    /// Every staff socket: agents' consoles and the back office's (`/api/v1/staff/ws`).
    AllStaff,
}

/// A console event and who it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffEvent {
    pub to: Audience,
    pub event: ConsoleEvent,
}

impl StaffEvent {
    pub fn agent(agent: StaffId, event: ConsoleEvent) -> Self {
        Self { to: Audience::Agent(agent), event }
    }

    pub fn group(group: GroupCode, event: ConsoleEvent) -> Self {
        Self { to: Audience::Group(group), event }
    }

    pub fn all_staff(event: ConsoleEvent) -> Self {
        Self { to: Audience::AllStaff, event }
    }
}

/// An event for agents' consoles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum ConsoleEvent {
    /// A new message in a conversation the agent serves.
    ChatMessage(ChatMessage),
    /// The patient read the conversation up to a message.
    ChatRead(ReadReceipt),
    /// Someone is typing (transient).
    Typing(ChatTyping),
    /// A conversation as the agent sees it, whenever it changes for them: assigned to them,
    /// transferred to or away from them, handed back, closed, rated.
    Assignment(AgentConversation),
    /// A group's backlog: how many wait, since when, and the first in line.
    Backlog(BacklogSummary),
    /// A group's agents: presence, load and cap.
    Presence(GroupPresence),
    /// An announcement to staff (ADM-4), at its publishing time.
    Announcement(crate::announcement::Announcement),
}

impl ConsoleEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            ConsoleEvent::ChatMessage(_) => "chat_message",
            ConsoleEvent::ChatRead(_) => "chat_read",
            ConsoleEvent::Typing(_) => "typing",
            ConsoleEvent::Assignment(_) => "assignment",
            ConsoleEvent::Backlog(_) => "backlog",
            ConsoleEvent::Presence(_) => "presence",
            ConsoleEvent::Announcement(_) => "announcement",
        }
    }
}

/// Who is typing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Typist {
    Patient,
    Agent,
}

/// Someone is typing in a conversation (sent at most once a second per side; the indicator
/// clears itself a few seconds after the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatTyping {
    pub conversation_id: ConversationId,
    pub who: Typist,
}

/// A conversation as an agent's console shows it. The patient's name is masked (张**): agents see
/// what they need to address the patient, not more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentConversation {
    pub id: ConversationId,
    pub group: GroupCode,
    pub status: ConversationStatus,
    /// The agent serving it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
    /// The patient's name, masked.
    pub patient: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    pub last_seq: u64,
    /// How far the patient has read.
    pub patient_read: u64,
    /// How far the serving agent has read (0 when none serves it).
    pub agent_read: u64,
    pub transfers: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
}

impl AgentConversation {
    /// The conversation as `viewer` sees it (their own read mark; the serving agent's when None).
    pub fn of(c: &Conversation, viewer: Option<StaffId>) -> Self {
        let reader = viewer.or(c.agent.as_ref().map(|a| a.id));
        Self {
            id: c.id,
            group: c.group.clone(),
            status: c.status,
            agent: c.agent.clone(),
            patient: mask_name(&c.patient_name),
            created_at: c.created_at,
            assigned_at: c.agent.as_ref().and(c.assigned_at),
            closed_at: c.closed_at,
            last_seq: c.last_seq,
            patient_read: c.patient_read,
            agent_read: reader.and_then(|r| c.agent_read.get(&r).copied()).unwrap_or(0),
            transfers: c.transfers,
            rating: c.rating.clone(),
        }
    }
}

/// One waiting conversation in a group's backlog, as consoles show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BacklogEntry {
    pub conversation_id: ConversationId,
    /// 1 is next.
    pub position: usize,
    pub arrived_at: DateTime<Utc>,
    /// The patient's name, masked.
    pub patient: String,
}

/// A group's backlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BacklogSummary {
    pub group: GroupCode,
    pub waiting: usize,
    /// When the first in line arrived (its wait is now minus this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_arrived_at: Option<DateTime<Utc>>,
    pub agents_online: u32,
    /// The first `BACKLOG_SHOWN` in line.
    pub first: Vec<BacklogEntry>,
}

/// How many waiting conversations a backlog summary lists.
pub const BACKLOG_SHOWN: usize = 20;

/// An agent of a group as consoles show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentStatus {
    pub id: StaffId,
    pub name: String,
    pub presence: Presence,
    pub load: u32,
    pub cap: u32,
}

/// A group's agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupPresence {
    pub group: GroupCode,
    pub agents: Vec<AgentStatus>,
}

/// A name as agents see it: its first character, then `*` for each other one (张三丰 -> 张**);
/// a one-character name is shown as `*`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    let n = name.trim().chars().count();
    match (n, chars.next()) {
        (0, _) | (_, None) => "*".to_string(),
        (1, _) => "*".to_string(),
        (_, Some(first)) => std::iter::once(first).chain(std::iter::repeat_n('*', n - 1)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::conversation::{MessageBody, Sender};
    use crate::AccountId;

    #[test]
    fn names_are_masked() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name(" 李雷 "), "李*");
        assert_eq!(mask_name("王"), "*");
        assert_eq!(mask_name(""), "*");
        assert_eq!(mask_name("<b>x</b>"), "<*******", "markup is just characters");
    }

    #[test]
    fn what_an_agent_sees() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let g = GroupCode::parse("booking").unwrap();
        let mut c = Conversation::open(ConversationId::new(), AccountId::new(), "韩梅梅", g, now).unwrap();
        let a = AgentRef { id: StaffId::new(), name: "小王".into() };
        c.append(Sender::Patient, MessageBody::text("你好").unwrap(), now).unwrap();
        c.assign(a.clone(), now).unwrap();
        let v = AgentConversation::of(&c, None);
        assert_eq!((v.patient.as_str(), v.last_seq, v.agent_read, v.patient_read), ("韩**", 1, 0, 1));
        c.mark_read(crate::chat::conversation::Reader::Agent { id: a.id }, 1, now).unwrap();
        assert_eq!(AgentConversation::of(&c, Some(a.id)).agent_read, 1);
        let e = ConsoleEvent::Assignment(v);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["type"], e.kind());
        assert_eq!(serde_json::from_value::<ConsoleEvent>(j).unwrap(), e);
        let s = StaffEvent::group(GroupCode::parse("billing").unwrap(), e);
        let back: StaffEvent = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
