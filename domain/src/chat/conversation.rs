//! One customer-service conversation (客服会话, CS-1, CS-2): its state machine, its messages
//! (numbered per conversation by the conversation actor, the only writer) and the read marks of
//! its participants.
//!
//! States: a conversation is opened `Waiting` in its group's backlog; the dispatcher assigns it
//! to an agent (`Assigned`); it may go back to waiting (its agent went away, or it was
//! transferred to another group) or move to another agent; the patient, the agent or the system
//! closes it (`Closed`); a closed conversation that an agent served may then be rated once.
//!
//! Messages are plain text (never HTML: clients escape what they show) or an image already
//! stored in object storage, named by its key and checked content type.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use super::{AgentRef, GroupCode};
use crate::account::parse_name;
use crate::text::{parse_text, Lines};
use crate::{AccountId, ConversationId, StaffId, ValidationError};

/// The longest text message, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The longest comment of a rating, in characters.
pub const MAX_COMMENT_CHARS: usize = 500;
/// The longest object-store key of an image.
pub const MAX_IMAGE_KEY_LEN: usize = 256;
/// The image types a chat accepts (the object store's chat policy checks the bytes themselves).
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// In its group's backlog, waiting for an agent.
    Waiting,
    /// With an agent.
    Assigned,
    /// Over; it may be rated once.
    Closed,
}

impl fmt::Display for ConversationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConversationStatus::Waiting => "waiting",
            ConversationStatus::Assigned => "assigned",
            ConversationStatus::Closed => "closed",
        })
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sender {
    /// The patient whose conversation it is.
    Patient,
    Agent {
        id: StaffId,
        name: String,
    },
    /// The platform itself: "an agent will be with you shortly", "the conversation was closed".
    System,
}

/// An image already in object storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageRef {
    /// The object-store key (`chat/<uuid>.png`), given by the upload.
    pub key: String,
    /// Its checked MIME type, one of `IMAGE_TYPES`.
    pub content_type: String,
}

impl ImageRef {
    pub fn new(key: &str, content_type: &str) -> Result<Self, ValidationError> {
        let r = Self { key: key.to_string(), content_type: content_type.trim().to_ascii_lowercase() };
        r.validate()?;
        Ok(r)
    }

    /// A relative key of plain characters, no `..` (a key names one object under the store's
    /// root, never a path out of it), and one of the chat's image types.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let k = &self.key;
        let plain = k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_'));
        if k.is_empty() || k.len() > MAX_IMAGE_KEY_LEN || !plain || k.starts_with('/') || k.contains("..") {
            return Err(ValidationError::new("key", "must be an object key returned by an upload"));
        }
        if !IMAGE_TYPES.contains(&self.content_type.as_str()) {
            return Err(ValidationError::new("content_type", "must be image/png, image/jpeg, image/gif or image/webp"));
        }
        Ok(())
    }
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageBody {
    Text { text: String },
    Image(ImageRef),
}

impl MessageBody {
    /// A text message: trimmed, 1 to `MAX_TEXT_CHARS` characters, line breaks and tabs allowed,
    /// no other control characters.
    pub fn text(raw: &str) -> Result<Self, ValidationError> {
        Ok(MessageBody::Text { text: parse_text("text", raw, MAX_TEXT_CHARS, Lines::Multi)? })
    }

    pub fn image(key: &str, content_type: &str) -> Result<Self, ValidationError> {
        Ok(MessageBody::Image(ImageRef::new(key, content_type)?))
    }

    /// Checks a body that did not come through `text` or `image` (one read back, or built by
    /// hand): a text must be exactly what `text` would have made of it.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            MessageBody::Text { text } => match parse_text("text", text, MAX_TEXT_CHARS, Lines::Multi)? {
                clean if clean == *text => Ok(()),
                _ => Err(ValidationError::new("text", "must not start or end with blanks")),
            },
            MessageBody::Image(i) => i.validate(),
        }
    }

    /// One line for an inbox: the text's first 40 characters, or `[图片]`.
    pub fn preview(&self) -> String {
        match self {
            MessageBody::Text { text } => {
                let line = text.lines().next().unwrap_or_default();
                let mut p: String = line.chars().take(40).collect();
                if p.chars().count() < text.chars().count() {
                    p.push('…');
                }
                p
            }
            MessageBody::Image(_) => "[图片]".to_string(),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessage {
    pub conversation_id: ConversationId,
    /// 1, 2, 3, ... in the conversation, with no gaps: a client that saw `n` asks for `> n`.
    pub seq: u64,
    pub sender: Sender,
    pub body: MessageBody,
    pub sent_at: DateTime<Utc>,
}

/// Who read up to where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reader {
    Patient,
    Agent { id: StaffId },
}

/// A participant's read mark moved: they have read every message up to `seq` (已读).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadReceipt {
    pub conversation_id: ConversationId,
    pub reader: Reader,
    pub seq: u64,
    pub read_at: DateTime<Utc>,
}

/// Who closed a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Closer {
    Patient,
    Agent {
        id: StaffId,
    },
    /// The platform (an idle conversation timed out, say).
    System,
}

/// The patient's satisfaction rating (满意度评价), given once after closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rating {
    /// 1 (very unsatisfied) to 5 (very satisfied).
    pub score: u8,
    pub comment: Option<String>,
    pub rated_at: DateTime<Utc>,
}

impl Rating {
    /// A score of 1 to 5 and an optional comment of up to `MAX_COMMENT_CHARS` characters (a blank
    /// comment is none).
    pub fn new(score: u8, comment: Option<&str>, now: DateTime<Utc>) -> Result<Self, ValidationError> {
        if !(1..=5).contains(&score) {
            return Err(ValidationError::new("score", "must be 1 to 5"));
        }
        let comment = match comment.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Some(parse_text("comment", c, MAX_COMMENT_CHARS, Lines::Multi)?),
            None => None,
        };
        Ok(Self { score, comment, rated_at: now })
    }
}

/// Why a conversation refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("cannot {action} a {status} conversation")]
    NotAllowed { action: &'static str, status: ConversationStatus },
    #[error("only the agent serving this conversation may do this")]
    NotAssignedAgent,
    #[error("the conversation is already with this agent")]
    SameAgent,
    #[error("the conversation is already in this group")]
    SameGroup,
    #[error("the conversation was already rated")]
    AlreadyRated,
    #[error("no agent served this conversation: there is nothing to rate")]
    NotServed,
    #[error("there is no message {seq}: the last is {last}")]
    ReadBeyondLast { seq: u64, last: u64 },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// A customer-service conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    /// The patient's account: only it may read and write as the patient.
    pub account_id: AccountId,
    /// The name the agent sees and canned replies use (`{patient_name}`).
    pub patient_name: String,
    pub group: GroupCode,
    pub status: ConversationStatus,
    /// The agent serving it, while `Assigned`.
    pub agent: Option<AgentRef>,
    /// The last agent who served it (kept when it goes back to waiting or closes): the one a
    /// rating is about.
    pub last_agent: Option<AgentRef>,
    /// When the patient opened it: its place in every backlog it waits in (see `dispatcher`).
    pub created_at: DateTime<Utc>,
    pub first_assigned_at: Option<DateTime<Utc>>,
    /// The latest assignment.
    pub assigned_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<Closer>,
    pub rating: Option<Rating>,
    /// Transfers to another agent or group so far.
    pub transfers: u32,
    /// The seq of the last message (0: none yet).
    pub last_seq: u64,
    /// How far the patient has read.
    pub patient_read: u64,
    /// How far each agent who served it has read.
    pub agent_read: BTreeMap<StaffId, u64>,
}

impl Conversation {
    /// A new conversation, waiting in `group`'s backlog. The patient's name is 1 to 32 characters.
    pub fn open(
        id: ConversationId,
        account_id: AccountId,
        patient_name: &str,
        group: GroupCode,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            id,
            account_id,
            patient_name: parse_name("patient_name", patient_name)?,
            group,
            status: ConversationStatus::Waiting,
            agent: None,
            last_agent: None,
            created_at: now,
            first_assigned_at: None,
            assigned_at: None,
            closed_at: None,
            closed_by: None,
            rating: None,
            transfers: 0,
            last_seq: 0,
            patient_read: 0,
            agent_read: BTreeMap::new(),
        })
    }

    fn refuse(&self, action: &'static str) -> ChatError {
        ChatError::NotAllowed { action, status: self.status }
    }

    fn require(&self, action: &'static str, allowed: &[ConversationStatus]) -> Result<(), ChatError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    /// Whether `agent` is the one serving it now.
    pub fn is_served_by(&self, agent: StaffId) -> bool {
        self.status == ConversationStatus::Assigned && self.agent.as_ref().is_some_and(|a| a.id == agent)
    }

    /// Adds a message and numbers it. The patient writes while it is open (waiting or assigned),
    /// an agent only while serving it, the system at any time (its notices tell of the
    /// transitions, the close included). Writing a message marks it read by its writer.
    pub fn append(&mut self, sender: Sender, body: MessageBody, now: DateTime<Utc>) -> Result<ChatMessage, ChatError> {
        body.validate()?;
        match &sender {
            Sender::Patient => {
                self.require("write to", &[ConversationStatus::Waiting, ConversationStatus::Assigned])?
            }
            Sender::Agent { id, .. } => {
                self.require("write to", &[ConversationStatus::Assigned])?;
                if !self.is_served_by(*id) {
                    return Err(ChatError::NotAssignedAgent);
                }
            }
            Sender::System => {}
        }
        self.last_seq += 1;
        match &sender {
            Sender::Patient => self.patient_read = self.last_seq,
            Sender::Agent { id, .. } => {
                self.agent_read.insert(*id, self.last_seq);
            }
            Sender::System => {}
        }
        Ok(ChatMessage { conversation_id: self.id, seq: self.last_seq, sender, body, sent_at: now })
    }

    /// Moves a read mark up to `seq`. Marks never go back: an older `seq` changes nothing and
    /// gives None; a new mark gives the receipt to show the other side. Agents mark only while
    /// serving the conversation.
    pub fn mark_read(
        &mut self,
        reader: Reader,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<ReadReceipt>, ChatError> {
        if seq > self.last_seq {
            return Err(ChatError::ReadBeyondLast { seq, last: self.last_seq });
        }
        let mark = match reader {
            Reader::Patient => &mut self.patient_read,
            Reader::Agent { id } => {
                if !self.is_served_by(id) {
                    return Err(ChatError::NotAssignedAgent);
                }
                self.agent_read.entry(id).or_insert(0)
            }
        };
        if seq <= *mark {
            return Ok(None);
        }
        *mark = seq;
        Ok(Some(ReadReceipt { conversation_id: self.id, reader, seq, read_at: now }))
    }

    /// Messages the patient has not read. Writing marks read, so every message after their mark
    /// is from someone else.
    pub fn unread_by_patient(&self) -> u64 {
        self.last_seq - self.patient_read
    }

    /// The dispatcher gave it to `agent` (from the backlog).
    pub fn assign(&mut self, agent: AgentRef, now: DateTime<Utc>) -> Result<(), ChatError> {
        self.require("assign", &[ConversationStatus::Waiting])?;
        self.set_agent(agent, now);
        Ok(())
    }

    fn set_agent(&mut self, agent: AgentRef, now: DateTime<Utc>) {
        self.status = ConversationStatus::Assigned;
        self.agent_read.entry(agent.id).or_insert(0);
        self.agent = Some(agent.clone());
        self.last_agent = Some(agent);
        self.first_assigned_at.get_or_insert(now);
        self.assigned_at = Some(now);
    }

    /// Its agent went away or offline (or lowered their cap): back to waiting, at the head of
    /// the backlog (the dispatcher decides where).
    pub fn requeue(&mut self) -> Result<(), ChatError> {
        self.require("requeue", &[ConversationStatus::Assigned])?;
        self.status = ConversationStatus::Waiting;
        self.agent = None;
        Ok(())
    }

    /// Transferred from its agent to another agent of the same group.
    pub fn transfer_to_agent(&mut self, agent: AgentRef, now: DateTime<Utc>) -> Result<(), ChatError> {
        self.require("transfer", &[ConversationStatus::Assigned])?;
        if self.agent.as_ref().is_some_and(|a| a.id == agent.id) {
            return Err(ChatError::SameAgent);
        }
        self.set_agent(agent, now);
        self.transfers += 1;
        Ok(())
    }

    /// Transferred to another group: it waits in that group's backlog, keeping its place in line
    /// (its `created_at`).
    pub fn transfer_to_group(&mut self, group: GroupCode) -> Result<(), ChatError> {
        self.require("transfer", &[ConversationStatus::Waiting, ConversationStatus::Assigned])?;
        if group == self.group {
            return Err(ChatError::SameGroup);
        }
        self.group = group;
        self.status = ConversationStatus::Waiting;
        self.agent = None;
        self.transfers += 1;
        Ok(())
    }

    /// Closes it. The patient may close it at any time before; an agent only while serving it.
    pub fn close(&mut self, by: Closer, now: DateTime<Utc>) -> Result<(), ChatError> {
        self.require("close", &[ConversationStatus::Waiting, ConversationStatus::Assigned])?;
        if let Closer::Agent { id } = by {
            if !self.is_served_by(id) {
                return Err(ChatError::NotAssignedAgent);
            }
        }
        self.status = ConversationStatus::Closed;
        self.agent = None;
        self.closed_at = Some(now);
        self.closed_by = Some(by);
        Ok(())
    }

    /// The patient's rating, once, after closing, of a conversation an agent served.
    pub fn rate(&mut self, rating: Rating) -> Result<(), ChatError> {
        self.require("rate", &[ConversationStatus::Closed])?;
        if self.rating.is_some() {
            return Err(ChatError::AlreadyRated);
        }
        if self.last_agent.is_none() {
            return Err(ChatError::NotServed);
        }
        self.rating = Some(rating);
        Ok(())
    }
}

/// A conversation's new state, for its patient and its agent (live event `conversation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConversationUpdate {
    pub id: ConversationId,
    pub group: GroupCode,
    pub status: ConversationStatus,
    /// The agent serving it now: their name is what the patient is shown when called (CS-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<Closer>,
    /// Closed and served, not yet rated: the client asks for a rating.
    #[serde(default)]
    pub can_rate: bool,
    pub last_seq: u64,
}

impl From<&Conversation> for ConversationUpdate {
    fn from(c: &Conversation) -> Self {
        Self {
            id: c.id,
            group: c.group.clone(),
            status: c.status,
            agent: c.agent.clone(),
            assigned_at: c.agent.as_ref().and(c.assigned_at),
            closed_at: c.closed_at,
            closed_by: c.closed_by,
            can_rate: c.status == ConversationStatus::Closed && c.rating.is_none() && c.last_agent.is_some(),
            last_seq: c.last_seq,
        }
    }
}

/// A rated conversation, as supervisors list ratings (满意度).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatedConversation {
    pub conversation_id: ConversationId,
    pub group: GroupCode,
    /// The agent the rating is about (the last who served it).
    pub agent: AgentRef,
    pub score: u8,
    pub comment: Option<String>,
    pub rated_at: DateTime<Utc>,
}

impl RatedConversation {
    /// None unless the conversation was rated.
    pub fn of(c: &Conversation) -> Option<Self> {
        let (r, agent) = (c.rating.as_ref()?, c.last_agent.as_ref()?);
        Some(Self {
            conversation_id: c.id,
            group: c.group.clone(),
            agent: agent.clone(),
            score: r.score,
            comment: r.comment.clone(),
            rated_at: r.rated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn group(code: &str) -> GroupCode {
        GroupCode::parse(code).unwrap()
    }

    fn agent(name: &str) -> AgentRef {
        AgentRef { id: StaffId::new(), name: name.to_string() }
    }

    fn conv() -> Conversation {
        Conversation::open(ConversationId::new(), AccountId::new(), "李雷", group("booking"), t0()).unwrap()
    }

    fn text(s: &str) -> MessageBody {
        MessageBody::text(s).unwrap()
    }

    #[test]
    fn the_life_of_a_conversation() {
        let mut c = conv();
        let a = agent("客服小王");
        let b = agent("客服小李");
        assert_eq!(c.status, ConversationStatus::Waiting);
        // The patient may write while waiting; no agent may.
        assert_eq!(c.append(Sender::Patient, text("请问怎么取消预约？"), t0()).unwrap().seq, 1);
        let as_a = Sender::Agent { id: a.id, name: a.name.clone() };
        assert!(matches!(c.append(as_a.clone(), text("您好"), t0()), Err(ChatError::NotAllowed { .. })));

        c.assign(a.clone(), t0() + Duration::minutes(1)).unwrap();
        assert!(c.is_served_by(a.id));
        assert!(matches!(c.assign(b.clone(), t0()), Err(ChatError::NotAllowed { .. })), "assigned once");
        assert_eq!(c.append(as_a.clone(), text("您好，我是小王"), t0()).unwrap().seq, 2);
        let as_b = Sender::Agent { id: b.id, name: b.name.clone() };
        assert_eq!(c.append(as_b.clone(), text("hi"), t0()), Err(ChatError::NotAssignedAgent));

        assert_eq!(c.transfer_to_agent(a.clone(), t0()), Err(ChatError::SameAgent));
        c.transfer_to_agent(b.clone(), t0() + Duration::minutes(3)).unwrap();
        assert!(c.is_served_by(b.id) && !c.is_served_by(a.id));
        assert_eq!(c.append(as_a, text("还在吗"), t0()), Err(ChatError::NotAssignedAgent));
        assert_eq!(c.first_assigned_at, Some(t0() + Duration::minutes(1)));
        assert_eq!(c.assigned_at, Some(t0() + Duration::minutes(3)));
        assert_eq!(c.transfers, 1);

        // A rating before closing is refused; the agent who does not serve it cannot close it.
        let r = Rating::new(5, Some(" 很耐心 "), t0()).unwrap();
        assert!(matches!(c.rate(r.clone()), Err(ChatError::NotAllowed { .. })));
        assert_eq!(c.close(Closer::Agent { id: a.id }, t0()), Err(ChatError::NotAssignedAgent));
        c.close(Closer::Agent { id: b.id }, t0() + Duration::minutes(9)).unwrap();
        assert_eq!(c.status, ConversationStatus::Closed);
        assert!(matches!(c.append(Sender::Patient, text("谢谢"), t0()), Err(ChatError::NotAllowed { .. })));
        assert_eq!(c.append(Sender::System, text("会话已结束"), t0()).unwrap().seq, 3, "the system's notice");
        assert!(matches!(c.close(Closer::Patient, t0()), Err(ChatError::NotAllowed { .. })));
        let u = ConversationUpdate::from(&c);
        assert!(u.can_rate && u.agent.is_none());

        c.rate(r).unwrap();
        assert_eq!(c.rating.as_ref().unwrap().comment.as_deref(), Some("很耐心"));
        assert_eq!(c.last_agent.as_ref().unwrap().id, b.id, "the rating is about the last agent");
        assert_eq!(c.rate(Rating::new(1, None, t0()).unwrap()), Err(ChatError::AlreadyRated));
        assert!(!ConversationUpdate::from(&c).can_rate);
    }

    #[test]
    fn requeue_and_group_transfer() {
        let mut c = conv();
        let a = agent("小王");
        assert!(matches!(c.requeue(), Err(ChatError::NotAllowed { .. })));
        c.assign(a.clone(), t0()).unwrap();
        c.requeue().unwrap();
        assert_eq!((c.status, c.agent.clone()), (ConversationStatus::Waiting, None));
        assert_eq!(c.last_agent.as_ref().map(|l| l.id), Some(a.id));
        assert_eq!(c.transfer_to_group(group("booking")), Err(ChatError::SameGroup));
        c.transfer_to_group(group("billing")).unwrap();
        assert_eq!((c.group.as_str(), c.status), ("billing", ConversationStatus::Waiting));
        assert_eq!(c.created_at, t0(), "keeps its place in line");
    }

    #[test]
    fn a_conversation_nobody_served_cannot_be_rated() {
        let mut c = conv();
        c.close(Closer::Patient, t0()).unwrap();
        assert_eq!(c.rate(Rating::new(3, None, t0()).unwrap()), Err(ChatError::NotServed));
        assert!(!ConversationUpdate::from(&c).can_rate);
    }

    #[test]
    fn read_marks_only_move_forward() {
        let mut c = conv();
        let a = agent("小王");
        c.assign(a.clone(), t0()).unwrap();
        for i in 0..3 {
            c.append(Sender::Agent { id: a.id, name: a.name.clone() }, text(&format!("第{i}条")), t0()).unwrap();
        }
        assert_eq!(c.unread_by_patient(), 3);
        assert_eq!(c.mark_read(Reader::Patient, 4, t0()), Err(ChatError::ReadBeyondLast { seq: 4, last: 3 }));
        let r = c.mark_read(Reader::Patient, 2, t0()).unwrap().unwrap();
        assert_eq!((r.seq, r.reader), (2, Reader::Patient));
        assert_eq!(c.mark_read(Reader::Patient, 1, t0()).unwrap(), None, "never back");
        assert_eq!(c.mark_read(Reader::Patient, 2, t0()).unwrap(), None, "nothing new");
        assert_eq!(c.unread_by_patient(), 1);
        assert_eq!(c.agent_read[&a.id], 3, "writing marks read");
        let stranger = StaffId::new();
        assert_eq!(c.mark_read(Reader::Agent { id: stranger }, 1, t0()), Err(ChatError::NotAssignedAgent));
        // The patient writing marks everything before read too.
        c.append(Sender::Patient, text("好的"), t0()).unwrap();
        assert_eq!((c.patient_read, c.unread_by_patient()), (4, 0));
    }

    #[test]
    fn message_bodies_are_checked() {
        assert!(MessageBody::text("").is_err());
        assert!(MessageBody::text(&"字".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(MessageBody::text("bell\u{7}").is_err());
        assert_eq!(MessageBody::text(" 两行\r\n文字 ").unwrap(), MessageBody::Text { text: "两行\n文字".into() });
        // A hand-built body is checked when appended.
        let mut c = conv();
        let raw = MessageBody::Text { text: " padded ".into() };
        assert!(matches!(c.append(Sender::Patient, raw, t0()), Err(ChatError::Invalid(_))));
        let raw = MessageBody::Text { text: "esc\u{1b}".into() };
        assert!(matches!(c.append(Sender::Patient, raw, t0()), Err(ChatError::Invalid(_))));
        assert_eq!(c.last_seq, 0, "nothing numbered");

        let img = MessageBody::image("chat/0190a0b0-0000-7000-8000-000000000000.png", "IMAGE/PNG").unwrap();
        assert_eq!(img.preview(), "[图片]");
        for (key, ct) in [
            ("../etc/passwd", "image/png"),
            ("/abs/key.png", "image/png"),
            ("chat/a b.png", "image/png"),
            ("", "image/png"),
            ("chat/x.pdf", "application/pdf"),
            ("chat/x.svg", "image/svg+xml"),
        ] {
            assert!(MessageBody::image(key, ct).is_err(), "{key} {ct}");
        }
        assert_eq!(MessageBody::text("第一行\n第二行").unwrap().preview(), "第一行…");
    }

    #[test]
    fn ratings_are_checked() {
        assert!(Rating::new(0, None, t0()).is_err());
        assert!(Rating::new(6, None, t0()).is_err());
        assert_eq!(Rating::new(4, Some("   "), t0()).unwrap().comment, None);
        assert!(Rating::new(4, Some(&"好".repeat(MAX_COMMENT_CHARS + 1)), t0()).is_err());
        assert!(Conversation::open(ConversationId::new(), AccountId::new(), "", group("booking"), t0()).is_err());
    }

    #[test]
    fn wire_shapes() {
        let m = ChatMessage {
            conversation_id: ConversationId::new(),
            seq: 7,
            sender: Sender::Agent { id: StaffId::new(), name: "小王".into() },
            body: MessageBody::image("chat/a.jpg", "image/jpeg").unwrap(),
            sent_at: t0(),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["sender"]["kind"], "agent");
        assert_eq!(v["body"], serde_json::json!({"kind": "image", "key": "chat/a.jpg", "content_type": "image/jpeg"}));
        assert_eq!(serde_json::from_value::<ChatMessage>(v).unwrap(), m);
        let t = serde_json::to_value(MessageBody::text("hi").unwrap()).unwrap();
        assert_eq!(t, serde_json::json!({"kind": "text", "text": "hi"}));
        let mut c = conv();
        c.agent_read.insert(StaffId::new(), 3);
        let back: Conversation = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
