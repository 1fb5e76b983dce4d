//! The chat on ScyllaDB: the chat tables of `schema.cql`. `apply_chat` writes a change as logged
//! batches of whole items (a conversation with its listings, a message, a read mark, a
//! dispatcher's state, a ticket with its listings), packed like the booking writes (at most
//! `BATCH_STATEMENTS` statements and `BATCH_BYTES` bytes each, an item never split), the live
//! events and message-centre items last so nobody is told of a change that is not stored. An
//! ordinary change (one message) is one batch. Every statement is a whole-row upsert or the
//! delete of a listing row, so a batch replayed, or a change written again, rewrites the same
//! values.

use async_trait::async_trait;
use hospital_domain::chat::canned::{CannedReply, CannedScope};
use hospital_domain::chat::conversation::{
    ChatMessage, Conversation, ConversationStatus, RatedConversation, ReadReceipt,
};
use hospital_domain::chat::faq::FaqEntry;
use hospital_domain::chat::feedback::{month_of, Feedback};
use hospital_domain::chat::presence::DispatcherState;
use hospital_domain::chat::ticket::{Ticket, TicketStatus};
use hospital_domain::chat::{AgentProfile, GroupCode, ServiceGroup};
use hospital_domain::{AccountId, CannedReplyId, ConversationId, FaqId, StaffId, TicketId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::booking::{pack, BATCH_BYTES, BATCH_STATEMENTS};
use super::fence::wrong_fence;
use super::{decode, encode, text, ScyllaStore, Writes};
use crate::chat::{canned_scope_key, message_bucket, read_mark_key, served_by, ChatStore, ChatWrite, ConversationRow};
use crate::error::Result;
use crate::Owned;

const HOSPITAL: &str = "main";

const PUT_CONVERSATION: &str = "INSERT INTO {ks}.conversations (conversation_id, body) VALUES (?, ?)";
const GET_CONVERSATION: &str = "SELECT body FROM {ks}.conversations WHERE conversation_id = ?";
const PUT_BY_ACCOUNT: &str =
    "INSERT INTO {ks}.conversations_by_account (account_id, conversation_id, body) VALUES (?, ?, ?)";
const OF_ACCOUNT: &str = "SELECT body FROM {ks}.conversations_by_account WHERE account_id = ? LIMIT ?";
const PUT_BY_AGENT: &str =
    "INSERT INTO {ks}.conversations_by_agent (staff_id, month, conversation_id, body) VALUES (?, ?, ?, ?)";
const OF_AGENT: &str = "SELECT body FROM {ks}.conversations_by_agent WHERE staff_id = ? AND month = ? LIMIT ?";
const PUT_OPEN: &str =
    "INSERT INTO {ks}.open_conversations_by_group (group_code, created_at, conversation_id, body) VALUES (?, ?, ?, ?)";
const DELETE_OPEN: &str =
    "DELETE FROM {ks}.open_conversations_by_group WHERE group_code = ? AND created_at = ? AND conversation_id = ?";
const OPEN_OF_GROUP: &str = "SELECT body FROM {ks}.open_conversations_by_group WHERE group_code = ?";
const PUT_RATING: &str = "INSERT INTO {ks}.chat_ratings (month, conversation_id, body) VALUES (?, ?, ?)";
const RATINGS_OF_MONTH: &str = "SELECT body FROM {ks}.chat_ratings WHERE month = ? LIMIT ?";
const PUT_CHAT_MESSAGE: &str =
    "INSERT INTO {ks}.chat_messages (conversation_id, bucket, seq, body) VALUES (?, ?, ?, ?)";
const MESSAGES_AFTER: &str =
    "SELECT body FROM {ks}.chat_messages WHERE conversation_id = ? AND bucket = ? AND seq > ? LIMIT ?";
const PUT_READ_MARK: &str = "INSERT INTO {ks}.chat_read_marks (conversation_id, reader, body) VALUES (?, ?, ?)";
const READ_MARKS: &str = "SELECT body FROM {ks}.chat_read_marks WHERE conversation_id = ?";
const PUT_DISPATCHER: &str = "INSERT INTO {ks}.chat_dispatchers (group_code, body) VALUES (?, ?)";
const GET_DISPATCHER: &str = "SELECT body FROM {ks}.chat_dispatchers WHERE group_code = ?";
const PUT_GROUP: &str = "INSERT INTO {ks}.chat_groups (hospital, code, body) VALUES (?, ?, ?)";
const GROUPS: &str = "SELECT body FROM {ks}.chat_groups WHERE hospital = ?";
const PUT_AGENT: &str = "INSERT INTO {ks}.chat_agents (staff_id, body) VALUES (?, ?)";
const GET_AGENT: &str = "SELECT body FROM {ks}.chat_agents WHERE staff_id = ?";
const PUT_AGENT_BY_GROUP: &str = "INSERT INTO {ks}.chat_agents_by_group (group_code, staff_id, body) VALUES (?, ?, ?)";
const DELETE_AGENT_BY_GROUP: &str = "DELETE FROM {ks}.chat_agents_by_group WHERE group_code = ? AND staff_id = ?";
const AGENTS_OF_GROUP: &str = "SELECT body FROM {ks}.chat_agents_by_group WHERE group_code = ?";
const PUT_TICKET: &str = "INSERT INTO {ks}.chat_tickets (ticket_id, body) VALUES (?, ?)";
const GET_TICKET: &str = "SELECT body FROM {ks}.chat_tickets WHERE ticket_id = ?";
const PUT_TICKET_BY_ACCOUNT: &str =
    "INSERT INTO {ks}.tickets_by_account (account_id, ticket_id, body) VALUES (?, ?, ?)";
const TICKETS_OF_ACCOUNT: &str = "SELECT body FROM {ks}.tickets_by_account WHERE account_id = ? LIMIT ?";
const PUT_OPEN_TICKET: &str = "INSERT INTO {ks}.open_tickets_by_group (group_code, ticket_id, body) VALUES (?, ?, ?)";
const DELETE_OPEN_TICKET: &str = "DELETE FROM {ks}.open_tickets_by_group WHERE group_code = ? AND ticket_id = ?";
const OPEN_TICKETS: &str = "SELECT body FROM {ks}.open_tickets_by_group WHERE group_code = ?";
const PUT_FAQ: &str = "INSERT INTO {ks}.chat_faq (hospital, faq_id, body) VALUES (?, ?, ?)";
const GET_FAQ: &str = "SELECT body FROM {ks}.chat_faq WHERE hospital = ? AND faq_id = ?";
const DELETE_FAQ: &str = "DELETE FROM {ks}.chat_faq WHERE hospital = ? AND faq_id = ?";
const FAQ: &str = "SELECT body FROM {ks}.chat_faq WHERE hospital = ?";
const PUT_CANNED: &str = "INSERT INTO {ks}.chat_canned_replies (scope, reply_id, body) VALUES (?, ?, ?)";
const DELETE_CANNED: &str = "DELETE FROM {ks}.chat_canned_replies WHERE scope = ? AND reply_id = ?";
const CANNED_OF_SCOPE: &str = "SELECT body FROM {ks}.chat_canned_replies WHERE scope = ?";
const PUT_CANNED_BY_ID: &str = "INSERT INTO {ks}.chat_canned_by_id (reply_id, body) VALUES (?, ?)";
const GET_CANNED_BY_ID: &str = "SELECT body FROM {ks}.chat_canned_by_id WHERE reply_id = ?";
const DELETE_CANNED_BY_ID: &str = "DELETE FROM {ks}.chat_canned_by_id WHERE reply_id = ?";
const PUT_FEEDBACK: &str = "INSERT INTO {ks}.chat_feedback (month, feedback_id, body) VALUES (?, ?, ?)";
const FEEDBACK_OF_MONTH: &str = "SELECT body FROM {ks}.chat_feedback WHERE month = ? LIMIT ?";

fn limit(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl ScyllaStore {
    /// A conversation's rows; its own row goes to `own` when given (a fenced write's
    /// conditional batch).
    fn conversation_writes(&self, row: &ConversationRow, own: Option<&mut Writes>) -> Writes {
        let c = &row.conversation;
        let mut w = Writes::default();
        let (id, body) = (CqlValue::Uuid(c.id.0), encode(c));
        own.unwrap_or(&mut w).push(self, PUT_CONVERSATION, vec![id.clone(), text(body.clone())]);
        if !row.listed {
            return w;
        }
        let month = CqlValue::Int(month_of(c.created_at));
        w.push(self, PUT_BY_ACCOUNT, vec![CqlValue::Uuid(c.account_id.0), id.clone(), text(body.clone())]);
        for agent in served_by(c) {
            w.push(self, PUT_BY_AGENT, vec![CqlValue::Uuid(agent.0), month.clone(), id.clone(), text(body.clone())]);
        }
        let created = CqlValue::BigInt(c.created_at.timestamp_millis());
        for g in row.left_groups.iter().filter(|g| **g != c.group) {
            w.push(self, DELETE_OPEN, vec![text(g.as_str()), created.clone(), id.clone()]);
        }
        let group = text(c.group.as_str());
        if c.status == ConversationStatus::Closed {
            w.push(self, DELETE_OPEN, vec![group, created, id.clone()]);
        } else {
            w.push(self, PUT_OPEN, vec![group, created, id.clone(), text(body)]);
        }
        if let Some(r) = RatedConversation::of(c) {
            w.push(self, PUT_RATING, vec![month, id, text(encode(&r))]);
        }
        w
    }

    /// A ticket's rows; its own row goes to `own` when given (a fenced write's conditional
    /// batch).
    fn ticket_writes(&self, t: &Ticket, own: Option<&mut Writes>) -> Writes {
        let mut w = Writes::default();
        let (id, body) = (CqlValue::Uuid(t.id.0), encode(t));
        own.unwrap_or(&mut w).push(self, PUT_TICKET, vec![id.clone(), text(body.clone())]);
        w.push(self, PUT_TICKET_BY_ACCOUNT, vec![CqlValue::Uuid(t.account_id.0), id.clone(), text(body.clone())]);
        if t.status == TicketStatus::Open {
            w.push(self, PUT_OPEN_TICKET, vec![text(t.group.as_str()), id, text(body)]);
        } else {
            w.push(self, DELETE_OPEN_TICKET, vec![text(t.group.as_str()), id]);
        }
        w
    }

    /// Every statement of a change, grouped by the row it writes; the row of the fenced
    /// conversation or ticket, if any, goes to the writes given with it instead.
    fn chat_groups_of(&self, w: ChatWrite, mut fenced: Option<(Owned, &mut Writes)>) -> Vec<Writes> {
        let mut groups = Vec::new();
        for row in &w.conversations {
            let id = row.conversation.id;
            let own = fenced.as_mut().filter(|(o, _)| *o == Owned::Conversation(id)).map(|(_, own)| &mut **own);
            groups.push(self.conversation_writes(row, own));
        }
        for m in &w.messages {
            let mut g = Writes::default();
            g.push(
                self,
                PUT_CHAT_MESSAGE,
                vec![
                    CqlValue::Uuid(m.conversation_id.0),
                    CqlValue::Int(message_bucket(m.seq)),
                    CqlValue::BigInt(m.seq as i64),
                    text(encode(m)),
                ],
            );
            groups.push(g);
        }
        for r in &w.read_marks {
            let mut g = Writes::default();
            g.push(
                self,
                PUT_READ_MARK,
                vec![CqlValue::Uuid(r.conversation_id.0), text(read_mark_key(r)), text(encode(r))],
            );
            groups.push(g);
        }
        for d in &w.dispatchers {
            let mut g = Writes::default();
            g.push(self, PUT_DISPATCHER, vec![text(d.dispatcher.group().as_str()), text(encode(d))]);
            groups.push(g);
        }
        for t in &w.tickets {
            let own = fenced.as_mut().filter(|(o, _)| *o == Owned::Ticket(t.id)).map(|(_, own)| &mut **own);
            groups.push(self.ticket_writes(t, own));
        }
        for e in &w.events {
            let mut g = Writes::default();
            self.outbox_writes(&mut g, std::slice::from_ref(e));
            groups.push(g);
        }
        for m in &w.inbox {
            let mut g = Writes::default();
            super::notify::push_new_message(self, &mut g, m);
            groups.push(g);
        }
        groups
    }
}

#[async_trait]
impl ChatStore for ScyllaStore {
    async fn apply_chat(&self, mut w: ChatWrite) -> Result<()> {
        if let Some(fence) = w.fence.take() {
            // Several nodes: the conversation's or the ticket's row (its truth) under the fence;
            // the rest (messages, marks, listings, events, inbox items) at the write's timestamp.
            let started = self.start_fenced(&fence)?;
            if !matches!(started.0, Owned::Conversation(_) | Owned::Ticket(_)) {
                return Err(wrong_fence("chat", started.0));
            }
            let mut own = Writes::default();
            let rest = self.chat_groups_of(w, Some((started.0, &mut own)));
            return self.apply_owned(started, own, rest).await;
        }
        if w.is_empty() {
            return Ok(());
        }
        for batch in pack(self.chat_groups_of(w, None), BATCH_STATEMENTS, BATCH_BYTES) {
            self.run_batch(batch, BatchType::Logged).await?;
        }
        Ok(())
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        // A claim before the conversation opened leaves a row with no body: none.
        self.owned_body("conversations", GET_CONVERSATION, (id.0,)).await
    }

    async fn chat_messages(&self, id: ConversationId, after: u64, max: usize) -> Result<Vec<ChatMessage>> {
        // From the bucket of the first message wanted, bucket by bucket, until enough or an
        // empty bucket (seq has no gaps, so an empty bucket means the end).
        let mut out: Vec<ChatMessage> = Vec::new();
        let mut bucket = message_bucket(after + 1);
        let mut after = after as i64;
        while out.len() < max {
            let want = limit(max - out.len());
            let page: Vec<ChatMessage> =
                self.bodies("chat_messages", MESSAGES_AFTER, (id.0, bucket, after, want)).await?;
            let Some(last) = page.last() else { break };
            after = last.seq as i64;
            out.extend(page);
            bucket += 1;
        }
        Ok(out)
    }

    async fn chat_read_marks(&self, id: ConversationId) -> Result<Vec<ReadReceipt>> {
        let mut v: Vec<ReadReceipt> = self.bodies("chat_read_marks", READ_MARKS, (id.0,)).await?;
        v.sort_by_key(read_mark_key);
        Ok(v)
    }

    async fn conversations_of_account(&self, account: AccountId, max: usize) -> Result<Vec<Conversation>> {
        self.bodies("conversations_by_account", OF_ACCOUNT, (account.0, limit(max))).await
    }

    async fn conversations_of_agent(&self, agent: StaffId, month: i32, max: usize) -> Result<Vec<Conversation>> {
        self.bodies("conversations_by_agent", OF_AGENT, (agent.0, month, limit(max))).await
    }

    async fn open_conversations_of_group(&self, group: &GroupCode) -> Result<Vec<Conversation>> {
        self.bodies("open_conversations_by_group", OPEN_OF_GROUP, (group.as_str(),)).await
    }

    async fn ratings_of_month(&self, month: i32, max: usize) -> Result<Vec<RatedConversation>> {
        self.bodies("chat_ratings", RATINGS_OF_MONTH, (month, limit(max))).await
    }

    async fn dispatcher_state(&self, group: &GroupCode) -> Result<Option<DispatcherState>> {
        match self.row::<(String,)>(GET_DISPATCHER, (group.as_str(),)).await? {
            Some((body,)) => Ok(Some(decode("chat_dispatchers", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_chat_group(&self, group: &ServiceGroup) -> Result<()> {
        self.exec(PUT_GROUP, (HOSPITAL, group.code.as_str(), encode(group))).await?;
        Ok(())
    }

    async fn chat_groups(&self) -> Result<Vec<ServiceGroup>> {
        self.bodies("chat_groups", GROUPS, (HOSPITAL,)).await
    }

    async fn put_chat_agent(&self, agent: &AgentProfile) -> Result<()> {
        let old = self.chat_agent(agent.id).await?;
        let body = encode(agent);
        let mut w = Writes::default();
        for g in old.iter().flat_map(|o| o.groups.iter()).filter(|g| !agent.groups.contains(g)) {
            w.push(self, DELETE_AGENT_BY_GROUP, vec![text(g.as_str()), CqlValue::Uuid(agent.id.0)]);
        }
        for g in &agent.groups {
            w.push(self, PUT_AGENT_BY_GROUP, vec![text(g.as_str()), CqlValue::Uuid(agent.id.0), text(body.clone())]);
        }
        w.push(self, PUT_AGENT, vec![CqlValue::Uuid(agent.id.0), text(body)]);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn chat_agent(&self, id: StaffId) -> Result<Option<AgentProfile>> {
        match self.row::<(String,)>(GET_AGENT, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("chat_agents", &body)?)),
            None => Ok(None),
        }
    }

    async fn chat_agents_of_group(&self, group: &GroupCode) -> Result<Vec<AgentProfile>> {
        self.bodies("chat_agents_by_group", AGENTS_OF_GROUP, (group.as_str(),)).await
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        // A claim before the ticket was left leaves a row with no body: none.
        self.owned_body("chat_tickets", GET_TICKET, (id.0,)).await
    }

    async fn tickets_of_account(&self, account: AccountId, max: usize) -> Result<Vec<Ticket>> {
        self.bodies("tickets_by_account", TICKETS_OF_ACCOUNT, (account.0, limit(max))).await
    }

    async fn open_tickets_of_group(&self, group: &GroupCode) -> Result<Vec<Ticket>> {
        self.bodies("open_tickets_by_group", OPEN_TICKETS, (group.as_str(),)).await
    }

    async fn put_faq(&self, entry: &FaqEntry) -> Result<()> {
        self.exec(PUT_FAQ, (HOSPITAL, entry.id.0, encode(entry))).await?;
        Ok(())
    }

    async fn delete_faq(&self, id: FaqId) -> Result<bool> {
        let there = self.row::<(String,)>(GET_FAQ, (HOSPITAL, id.0)).await?.is_some();
        self.exec(DELETE_FAQ, (HOSPITAL, id.0)).await?;
        Ok(there)
    }

    async fn faq_entries(&self) -> Result<Vec<FaqEntry>> {
        self.bodies("chat_faq", FAQ, (HOSPITAL,)).await
    }

    async fn put_canned_reply(&self, reply: &CannedReply) -> Result<()> {
        let old = self.canned_reply(reply.id).await?;
        let body = encode(reply);
        let mut w = Writes::default();
        if let Some(o) = old.filter(|o| o.scope != reply.scope) {
            w.push(self, DELETE_CANNED, vec![text(canned_scope_key(&o.scope)), CqlValue::Uuid(o.id.0)]);
        }
        w.push(
            self,
            PUT_CANNED,
            vec![text(canned_scope_key(&reply.scope)), CqlValue::Uuid(reply.id.0), text(body.clone())],
        );
        w.push(self, PUT_CANNED_BY_ID, vec![CqlValue::Uuid(reply.id.0), text(body)]);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>> {
        match self.row::<(String,)>(GET_CANNED_BY_ID, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("chat_canned_by_id", &body)?)),
            None => Ok(None),
        }
    }

    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<bool> {
        let Some(old) = self.canned_reply(id).await? else { return Ok(false) };
        let mut w = Writes::default();
        w.push(self, DELETE_CANNED, vec![text(canned_scope_key(&old.scope)), CqlValue::Uuid(id.0)]);
        w.push(self, DELETE_CANNED_BY_ID, vec![CqlValue::Uuid(id.0)]);
        self.run_batch(w, BatchType::Logged).await?;
        Ok(true)
    }

    async fn canned_replies(&self, scope: &CannedScope) -> Result<Vec<CannedReply>> {
        self.bodies("chat_canned_replies", CANNED_OF_SCOPE, (canned_scope_key(scope),)).await
    }

    async fn put_feedback(&self, feedback: &Feedback) -> Result<()> {
        self.exec(PUT_FEEDBACK, (month_of(feedback.created_at), feedback.id.0, encode(feedback))).await?;
        Ok(())
    }

    async fn feedback_of_month(&self, month: i32, max: usize) -> Result<Vec<Feedback>> {
        self.bodies("chat_feedback", FEEDBACK_OF_MONTH, (month, limit(max))).await
    }
}
