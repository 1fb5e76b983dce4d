//! The chat on the embedded engine: one table per chat table of `schema.cql`, keyed as
//! there (partition key components first, then clustering columns; see `keys`). A change of the
//! chat (`ChatWrite`) is one transaction.

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

use super::engine::{from_json, Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::chat::{canned_scope_key, message_bucket, read_mark_key, served_by, ChatStore, ChatWrite};
use crate::error::Result;

/// The one partition of the hospital-wide lists (groups, FAQ), as in the catalogue.
fn main() -> Key {
    Key::new().str("main")
}

fn open_key(group: &GroupCode, c: &Conversation) -> Key {
    Key::new().str(group.as_str()).i64(c.created_at.timestamp_millis()).uuid(&c.id.0)
}

fn message_key(m: &ChatMessage) -> Key {
    Key::new().uuid(&m.conversation_id.0).i64(i64::from(message_bucket(m.seq))).i64(m.seq as i64)
}

fn put_conversation_listings(ctx: &mut WriteCtx<'_>, c: &Conversation, left: &[GroupCode]) {
    let month = i64::from(month_of(c.created_at));
    ctx.put(CONVERSATIONS_BY_ACCOUNT, &Key::new().uuid(&c.account_id.0).uuid(&c.id.0), c);
    for agent in served_by(c) {
        ctx.put(CONVERSATIONS_BY_AGENT, &Key::new().uuid(&agent.0).i64(month).uuid(&c.id.0), c);
    }
    for g in left.iter().filter(|g| **g != c.group) {
        ctx.delete(OPEN_CONVERSATIONS_BY_GROUP, &open_key(g, c));
    }
    if c.status == ConversationStatus::Closed {
        ctx.delete(OPEN_CONVERSATIONS_BY_GROUP, &open_key(&c.group, c));
    } else {
        ctx.put(OPEN_CONVERSATIONS_BY_GROUP, &open_key(&c.group, c), c);
    }
    if let Some(r) = RatedConversation::of(c) {
        ctx.put(CHAT_RATINGS, &Key::new().i64(month).uuid(&c.id.0), &r);
    }
}

fn put_ticket(ctx: &mut WriteCtx<'_>, t: &Ticket) {
    ctx.put(CHAT_TICKETS, &Key::new().uuid(&t.id.0), t);
    ctx.put(TICKETS_BY_ACCOUNT, &Key::new().uuid(&t.account_id.0).uuid(&t.id.0), t);
    let open = Key::new().str(t.group.as_str()).uuid(&t.id.0);
    if t.status == TicketStatus::Open {
        ctx.put(OPEN_TICKETS_BY_GROUP, &open, t);
    } else {
        ctx.delete(OPEN_TICKETS_BY_GROUP, &open);
    }
}

/// Newest first (keys ending in v7 ids are in creation order), at most `limit`.
fn newest<T>(mut v: Vec<T>, limit: usize) -> Vec<T> {
    v.reverse();
    v.truncate(limit);
    v
}

#[async_trait]
impl ChatStore for EmbeddedStore {
    async fn apply_chat(&self, w: ChatWrite) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, w.fence.as_ref())?;
                for row in &w.conversations {
                    let c = &row.conversation;
                    ctx.put(CONVERSATIONS, &Key::new().uuid(&c.id.0), c);
                    if row.listed {
                        put_conversation_listings(ctx, c, &row.left_groups);
                    }
                }
                for m in &w.messages {
                    ctx.put(CHAT_MESSAGES, &message_key(m), m);
                }
                for r in &w.read_marks {
                    ctx.put(CHAT_READ_MARKS, &Key::new().uuid(&r.conversation_id.0).str(&read_mark_key(r)), r);
                }
                for d in &w.dispatchers {
                    ctx.put(CHAT_DISPATCHERS, &Key::new().str(d.dispatcher.group().as_str()), d);
                }
                for t in &w.tickets {
                    put_ticket(ctx, t);
                }
                for m in &w.inbox {
                    super::notify::put_new_message(ctx, m)?;
                }
                super::outbox::put_events(ctx, &w.events);
                Ok(())
            })
            .await
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.engine.read(|r| r.get(CONVERSATIONS, &Key::new().uuid(&id.0)))
    }

    async fn chat_messages(&self, id: ConversationId, after: u64, limit: usize) -> Result<Vec<ChatMessage>> {
        let first = after + 1;
        let prefix = Key::new().uuid(&id.0);
        let start = Key::new().uuid(&id.0).i64(i64::from(message_bucket(first))).i64(first as i64);
        let rows = self.engine.read(|r| r.scan_from(CHAT_MESSAGES, prefix.bytes(), start.bytes(), limit))?;
        rows.iter().map(|(_, v)| from_json(CHAT_MESSAGES, v)).collect()
    }

    async fn chat_read_marks(&self, id: ConversationId) -> Result<Vec<ReadReceipt>> {
        self.engine.read(|r| r.scan(CHAT_READ_MARKS, &Key::new().uuid(&id.0)))
    }

    async fn conversations_of_account(&self, account: AccountId, limit: usize) -> Result<Vec<Conversation>> {
        let all = self.engine.read(|r| r.scan(CONVERSATIONS_BY_ACCOUNT, &Key::new().uuid(&account.0)))?;
        Ok(newest(all, limit))
    }

    async fn conversations_of_agent(&self, agent: StaffId, month: i32, limit: usize) -> Result<Vec<Conversation>> {
        let prefix = Key::new().uuid(&agent.0).i64(i64::from(month));
        let all = self.engine.read(|r| r.scan(CONVERSATIONS_BY_AGENT, &prefix))?;
        Ok(newest(all, limit))
    }

    async fn open_conversations_of_group(&self, group: &GroupCode) -> Result<Vec<Conversation>> {
        self.engine.read(|r| r.scan(OPEN_CONVERSATIONS_BY_GROUP, &Key::new().str(group.as_str())))
    }

    async fn ratings_of_month(&self, month: i32, limit: usize) -> Result<Vec<RatedConversation>> {
        let all = self.engine.read(|r| r.scan(CHAT_RATINGS, &Key::new().i64(i64::from(month))))?;
        Ok(newest(all, limit))
    }

    async fn dispatcher_state(&self, group: &GroupCode) -> Result<Option<DispatcherState>> {
        self.engine.read(|r| r.get(CHAT_DISPATCHERS, &Key::new().str(group.as_str())))
    }

    async fn put_chat_group(&self, group: &ServiceGroup) -> Result<()> {
        let g = group.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(CHAT_GROUPS, &main().str(g.code.as_str()), &g);
                Ok(())
            })
            .await
    }

    async fn chat_groups(&self) -> Result<Vec<ServiceGroup>> {
        self.engine.read(|r| r.scan(CHAT_GROUPS, &main()))
    }

    async fn put_chat_agent(&self, agent: &AgentProfile) -> Result<()> {
        let a = agent.clone();
        self.engine
            .write(move |ctx| {
                let key = Key::new().uuid(&a.id.0);
                let old: Option<AgentProfile> = ctx.get(CHAT_AGENTS, &key)?;
                for g in old.iter().flat_map(|o| o.groups.iter()).filter(|g| !a.groups.contains(g)) {
                    ctx.delete(CHAT_AGENTS_BY_GROUP, &Key::new().str(g.as_str()).uuid(&a.id.0));
                }
                for g in &a.groups {
                    ctx.put(CHAT_AGENTS_BY_GROUP, &Key::new().str(g.as_str()).uuid(&a.id.0), &a);
                }
                ctx.put(CHAT_AGENTS, &key, &a);
                Ok(())
            })
            .await
    }

    async fn chat_agent(&self, id: StaffId) -> Result<Option<AgentProfile>> {
        self.engine.read(|r| r.get(CHAT_AGENTS, &Key::new().uuid(&id.0)))
    }

    async fn chat_agents_of_group(&self, group: &GroupCode) -> Result<Vec<AgentProfile>> {
        self.engine.read(|r| r.scan(CHAT_AGENTS_BY_GROUP, &Key::new().str(group.as_str())))
    }

    async fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        self.engine.read(|r| r.get(CHAT_TICKETS, &Key::new().uuid(&id.0)))
    }

    async fn tickets_of_account(&self, account: AccountId, limit: usize) -> Result<Vec<Ticket>> {
        let all = self.engine.read(|r| r.scan(TICKETS_BY_ACCOUNT, &Key::new().uuid(&account.0)))?;
        Ok(newest(all, limit))
    }

    async fn open_tickets_of_group(&self, group: &GroupCode) -> Result<Vec<Ticket>> {
        self.engine.read(|r| r.scan(OPEN_TICKETS_BY_GROUP, &Key::new().str(group.as_str())))
    }

    async fn put_faq(&self, entry: &FaqEntry) -> Result<()> {
        let e = entry.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(CHAT_FAQ, &main().uuid(&e.id.0), &e);
                Ok(())
            })
            .await
    }

    async fn delete_faq(&self, id: FaqId) -> Result<bool> {
        self.engine
            .write(move |ctx| {
                let key = main().uuid(&id.0);
                let there = ctx.get_raw(CHAT_FAQ, key.bytes())?.is_some();
                ctx.delete(CHAT_FAQ, &key);
                Ok(there)
            })
            .await
    }

    async fn faq_entries(&self) -> Result<Vec<FaqEntry>> {
        self.engine.read(|r| r.scan(CHAT_FAQ, &main()))
    }

    async fn put_canned_reply(&self, reply: &CannedReply) -> Result<()> {
        let c = reply.clone();
        self.engine
            .write(move |ctx| {
                let by_id = Key::new().uuid(&c.id.0);
                let old: Option<CannedReply> = ctx.get(CHAT_CANNED_BY_ID, &by_id)?;
                if let Some(o) = old.filter(|o| o.scope != c.scope) {
                    ctx.delete(CHAT_CANNED_REPLIES, &Key::new().str(&canned_scope_key(&o.scope)).uuid(&o.id.0));
                }
                ctx.put(CHAT_CANNED_REPLIES, &Key::new().str(&canned_scope_key(&c.scope)).uuid(&c.id.0), &c);
                ctx.put(CHAT_CANNED_BY_ID, &by_id, &c);
                Ok(())
            })
            .await
    }

    async fn canned_reply(&self, id: CannedReplyId) -> Result<Option<CannedReply>> {
        self.engine.read(|r| r.get(CHAT_CANNED_BY_ID, &Key::new().uuid(&id.0)))
    }

    async fn delete_canned_reply(&self, id: CannedReplyId) -> Result<bool> {
        self.engine
            .write(move |ctx| {
                let by_id = Key::new().uuid(&id.0);
                let Some(old) = ctx.get::<CannedReply>(CHAT_CANNED_BY_ID, &by_id)? else { return Ok(false) };
                ctx.delete(CHAT_CANNED_REPLIES, &Key::new().str(&canned_scope_key(&old.scope)).uuid(&old.id.0));
                ctx.delete(CHAT_CANNED_BY_ID, &by_id);
                Ok(true)
            })
            .await
    }

    async fn canned_replies(&self, scope: &CannedScope) -> Result<Vec<CannedReply>> {
        self.engine.read(|r| r.scan(CHAT_CANNED_REPLIES, &Key::new().str(&canned_scope_key(scope))))
    }

    async fn put_feedback(&self, feedback: &Feedback) -> Result<()> {
        let f = feedback.clone();
        self.engine
            .write(move |ctx| {
                let key = Key::new().i64(i64::from(month_of(f.created_at))).uuid(&f.id.0);
                ctx.put(CHAT_FEEDBACK, &key, &f);
                Ok(())
            })
            .await
    }

    async fn feedback_of_month(&self, month: i32, limit: usize) -> Result<Vec<Feedback>> {
        let all = self.engine.read(|r| r.scan(CHAT_FEEDBACK, &Key::new().i64(i64::from(month))))?;
        Ok(newest(all, limit))
    }
}
