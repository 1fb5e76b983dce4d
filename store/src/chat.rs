//! Customer-service chat (CS-1..CS-4): conversations and their messages, the dispatchers' state,
//! service groups and agents, tickets, the FAQ, canned replies, feedback and ratings. One method
//! per query; the tables are in `schema.cql` ("Customer-service chat").
//!
//! Writes of the chat's actors go through `apply_chat` in one durable write each (a logged batch
//! on ScyllaDB): a conversation's message, its row and its live events; a dispatcher's state and
//! the places in line it pushes; a ticket, its answer in the message centre and the live events.
//! Each row has one writer (the conversation's actor, the group's dispatcher actor, the ticket's
//! actor), so whole-row upserts never lose another writer's change.

use async_trait::async_trait;
use hospital_domain::chat::canned::{CannedReply, CannedScope};
use hospital_domain::chat::conversation::{ChatMessage, Conversation, RatedConversation, ReadReceipt, Reader};
use hospital_domain::chat::faq::FaqEntry;
use hospital_domain::chat::feedback::Feedback;
use hospital_domain::chat::presence::DispatcherState;
use hospital_domain::chat::ticket::Ticket;
use hospital_domain::chat::{AgentProfile, GroupCode, ServiceGroup};
use hospital_domain::message::Message;
use hospital_domain::{AccountId, CannedReplyId, ConversationId, FaqId, StaffId, TicketId};

use crate::error::Result;
use crate::PendingEvent;

/// Messages per partition of `chat_messages`: a conversation's messages are bucketed by
/// `(seq - 1) / MESSAGES_PER_BUCKET`, so no partition grows without bound and reading after a
/// `seq` starts at its bucket.
pub const MESSAGES_PER_BUCKET: u64 = 500;

pub fn message_bucket(seq: u64) -> i32 {
    (seq.saturating_sub(1) / MESSAGES_PER_BUCKET) as i32
}

/// A conversation to write. Its listings (by account, by agent, open by group, the ratings) are
/// rewritten only when `listed` is set: when its status, group, agent or rating changed, not on
/// every message (a listing shows a conversation as of its last change of state; read the
/// conversation itself for its latest `last_seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub conversation: Conversation,
    pub listed: bool,
    /// Groups it left since it was last written (a transfer): its open row there goes.
    pub left_groups: Vec<GroupCode>,
}

/// One change of the chat: every row it touches, in one durable write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatWrite {
    pub conversations: Vec<ConversationRow>,
    pub messages: Vec<ChatMessage>,
    /// Read marks (stored in `chat_read_marks`, not in the conversation's row: a mark moves far
    /// more often than the conversation changes).
    pub read_marks: Vec<ReadReceipt>,
    pub dispatchers: Vec<DispatcherState>,
    pub tickets: Vec<Ticket>,
    /// Items for patients' message centres (a ticket's answer).
    pub inbox: Vec<Message>,
    pub events: Vec<PendingEvent>,
    /// Several nodes: the conversation actor's lease token (`chat:<conversation>`). The store
    /// refuses the write if it has seen a newer token for the conversation
    /// (`Conflict::StaleFence`).
    pub fence: Option<crate::Fence>,
}

fn reader_key(r: &Reader) -> String {
    match r {
        Reader::Patient => "patient".to_string(),
        Reader::Agent { id } => format!("agent:{id}"),
    }
}

/// The key of a read mark within its conversation (`patient`, `agent:<id>`).
pub fn read_mark_key(r: &ReadReceipt) -> String {
    reader_key(&r.reader)
}

impl ChatWrite {
    /// Appends `later`'s rows; where both touch one row, `later` wins (a read mark keeps the
    /// higher `seq`), so a merged write carries each row once.
    pub fn merge(&mut self, later: ChatWrite) {
        for row in later.conversations {
            match self.conversations.iter_mut().find(|r| r.conversation.id == row.conversation.id) {
                Some(r) => {
                    r.listed |= row.listed;
                    r.left_groups.extend(row.left_groups);
                    r.conversation = row.conversation;
                }
                None => self.conversations.push(row),
            }
        }
        self.messages.extend(later.messages);
        for m in later.read_marks {
            match self.read_marks.iter_mut().find(|r| r.conversation_id == m.conversation_id && r.reader == m.reader) {
                Some(r) if r.seq < m.seq => *r = m,
                Some(_) => {}
                None => self.read_marks.push(m),
            }
        }
        for d in later.dispatchers {
            match self.dispatchers.iter_mut().find(|x| x.dispatcher.group() == d.dispatcher.group()) {
                Some(x) => *x = d,
                None => self.dispatchers.push(d),
            }
        }
        for t in later.tickets {
            match self.tickets.iter_mut().find(|x| x.id == t.id) {
                Some(x) => *x = t,
                None => self.tickets.push(t),
            }
        }
        self.inbox.extend(later.inbox);
        self.events.extend(later.events);
        if later.fence.is_some() {
            self.fence = later.fence;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.conversations.is_empty()
            && self.messages.is_empty()
            && self.read_marks.is_empty()
            && self.dispatchers.is_empty()
            && self.tickets.is_empty()
            && self.inbox.is_empty()
            && self.events.is_empty()
            && self.fence.is_none()
    }
}

#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Writes a change of the chat in one durable write.
    async fn apply_chat(&self, write: ChatWrite) -> Result<()>;

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;
    /// Messages with `seq > after`, in order, at most `limit`.
    async fn chat_messages(&self, id: ConversationId, after: u64, limit: usize) -> Result<Vec<ChatMessage>>;
    /// Every read mark of a conversation.
    async fn chat_read_marks(&self, id: ConversationId) -> Result<Vec<ReadReceipt>>;
    /// The account's conversations, newest first, at most `limit`.
    async fn conversations_of_account(&self, account: AccountId, limit: usize) -> Result<Vec<Conversation>>;
    /// The conversations an agent served that were opened in `month` (`YYYYMM`), newest first.
    async fn conversations_of_agent(&self, agent: StaffId, month: i32, limit: usize) -> Result<Vec<Conversation>>;
    /// The group's open conversations (waiting or with an agent), in arrival order.
    async fn open_conversations_of_group(&self, group: &GroupCode) -> Result<Vec<Conversation>>;
    /// Ratings given in conversations opened in `month`, newest first, at most `limit`.
    async fn ratings_of_month(&self, month: i32, limit: usize) -> Result<Vec<RatedConversation>>;
    /// The group's dispatcher as its actor last wrote it.
    async fn dispatcher_state(&self, group: &GroupCode) -> Result<Option<DispatcherState>>;

    /// Inserts or replaces a service group (its name and hours).
    async fn put_chat_group(&self, group: &ServiceGroup) -> Result<()>;
    /// Every service group, by code.
    async fn chat_groups(&self) -> Result<Vec<ServiceGroup>>;

    /// Inserts or replaces an agent's profile, and their rows in each group's listing (removing
    /// them from groups they left).
    async fn put_chat_agent(&self, agent: &AgentProfile) -> Result<()>;
    async fn chat_agent(&self, id: StaffId) -> Result<Option<AgentProfile>>;
    /// The agents of a group, by id.
    async fn chat_agents_of_group(&self, group: &GroupCode) -> Result<Vec<AgentProfile>>;

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;
    /// The account's tickets, newest first, at most `limit`.
    async fn tickets_of_account(&self, account: AccountId, limit: usize) -> Result<Vec<Ticket>>;
    /// The group's tickets not yet answered or closed, oldest first.
    async fn open_tickets_of_group(&self, group: &GroupCode) -> Result<Vec<Ticket>>;

    /// Inserts or replaces an FAQ entry.
    async fn put_faq(&self, entry: &FaqEntry) -> Result<()>;
    /// False if there was none.
    async fn delete_faq(&self, id: FaqId) -> Result<bool>;
    /// Every FAQ entry, in creation order.
    async fn faq_entries(&self) -> Result<Vec<FaqEntry>>;

    /// Inserts or replaces a canned reply (moving it if its scope changed).
    async fn put_canned_reply(&self, reply: &CannedReply) -> Result<()>;
    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>>;
    /// False if there was none.
    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<bool>;
    /// The replies of a group or of an agent, in creation order.
    async fn canned_replies(&self, scope: &CannedScope) -> Result<Vec<CannedReply>>;

    async fn put_feedback(&self, feedback: &Feedback) -> Result<()>;
    /// Feedback given in `month` (`YYYYMM`, UTC), newest first, at most `limit`.
    async fn feedback_of_month(&self, month: i32, limit: usize) -> Result<Vec<Feedback>>;
}

/// Everyone who served a conversation: each has a row for it in `conversations_by_agent`.
pub fn served_by(c: &Conversation) -> Vec<StaffId> {
    let mut v: Vec<StaffId> = c.agent_read.keys().copied().collect();
    v.extend(c.agent.as_ref().map(|a| a.id));
    v.extend(c.last_agent.as_ref().map(|a| a.id));
    v.sort();
    v.dedup();
    v
}

/// The partition key of a canned reply's scope (`group:<code>`, `agent:<uuid>`).
pub fn canned_scope_key(scope: &CannedScope) -> String {
    match scope {
        CannedScope::Group { group } => format!("group:{group}"),
        CannedScope::Agent { agent } => format!("agent:{agent}"),
    }
}

/// A conversation's current state: its row with the read marks (stored apart) applied.
pub async fn conversation_with_marks<S: ChatStore + ?Sized>(
    store: &S,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    let Some(mut c) = store.conversation(id).await? else { return Ok(None) };
    for m in store.chat_read_marks(id).await? {
        match m.reader {
            Reader::Patient => c.patient_read = c.patient_read.max(m.seq.min(c.last_seq)),
            Reader::Agent { id } => {
                let e = c.agent_read.entry(id).or_insert(0);
                *e = (*e).max(m.seq.min(c.last_seq));
            }
        }
    }
    Ok(Some(c))
}
