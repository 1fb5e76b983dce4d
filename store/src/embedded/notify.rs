//! Message read state, notification preferences, reminders and outbound rows on the embedded
//! engine. Every change of a queued row (its record and its queue entry) is one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{
    category_of, due_bucket, outside_route, NotificationPreferences, Outbound, OutsideRoute, Reminder, ReminderId,
};
use hospital_domain::{AccountId, MessageId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::notify::{Claim, MessageFilter, NotifyStore, Queued};
use crate::PendingEvent;

/// A `reminders` (or `outbound`) row: the record and its lease (who works on it, until when).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored<T> {
    /// Named `reminder` in rows written before outbound rows shared this shape.
    #[serde(alias = "reminder")]
    record: T,
    lease_owner: Option<Uuid>,
    lease_until_ms: i64,
}

fn message_key(account: AccountId, id: MessageId) -> Key {
    Key::new().uuid(&account.0).uuid(&id.0)
}

/// A queue's two tables: the records by id, and the due entries by (hour bucket, due, id).
#[derive(Clone, Copy)]
struct Queue {
    records: Def,
    due: Def,
}

const REMINDER_QUEUE: Queue = Queue { records: REMINDERS, due: REMINDERS_DUE };
const OUTBOUND_QUEUE: Queue = Queue { records: OUTBOUND, due: OUTBOUND_DUE };

fn record_key(id: Uuid) -> Key {
    Key::new().uuid(&id)
}

fn due_key(due_at: DateTime<Utc>, id: Uuid) -> Key {
    Key::new().i64(due_bucket(due_at)).i64(due_at.timestamp_millis()).uuid(&id)
}

impl Queue {
    /// Inserts the row unless its id is stored (whatever its state). Whether it was new.
    fn insert<T: Queued>(self, ctx: &mut WriteCtx<'_>, r: &T) -> Result<bool> {
        let key = record_key(r.queue_id());
        if ctx.get_raw(self.records, key.bytes())?.is_some() {
            return Ok(false);
        }
        ctx.put(self.due, &due_key(r.due_at(), r.queue_id()), r);
        ctx.put(self.records, &key, &Stored { record: r.clone(), lease_owner: None, lease_until_ms: 0 });
        Ok(true)
    }

    fn get<T: Queued>(self, r: &impl Reader, id: Uuid) -> Result<Option<T>> {
        Ok(r.get::<Stored<T>>(self.records, &record_key(id))?.map(|s| s.record))
    }

    fn due<T: Queued>(self, r: &impl Reader, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for bucket in due_bucket(from)..=due_bucket(to) {
            let rows: Vec<T> = r.scan(self.due, &Key::new().i64(bucket))?;
            for x in rows.into_iter().filter(|x| x.due_at() >= from && x.due_at() <= to) {
                if out.len() >= limit {
                    return Ok(out);
                }
                out.push(x);
            }
        }
        Ok(out)
    }

    fn claim<T: Queued>(
        self,
        ctx: &mut WriteCtx<'_>,
        id: Uuid,
        entry_due: DateTime<Utc>,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<T>> {
        let key = record_key(id);
        let Some(s) = ctx.get::<Stored<T>>(self.records, &key)? else {
            ctx.delete(self.due, &due_key(entry_due, id));
            return Ok(Claim::NotDue);
        };
        if !s.record.is_pending() || s.record.due_at() != entry_due {
            // A stale queue row: the record moved on.
            ctx.delete(self.due, &due_key(entry_due, id));
            return Ok(Claim::NotDue);
        }
        if s.record.due_at() > now {
            return Ok(Claim::NotDue);
        }
        Ok(self.lease(ctx, s, owner, now, lease_until))
    }

    /// Takes a pending record, due or not (`NotifyStore::take_reminder`).
    fn take<T: Queued>(
        self,
        ctx: &mut WriteCtx<'_>,
        id: Uuid,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<T>> {
        match ctx.get::<Stored<T>>(self.records, &record_key(id))? {
            Some(s) if s.record.is_pending() => Ok(self.lease(ctx, s, owner, now, lease_until)),
            _ => Ok(Claim::NotDue),
        }
    }

    /// Leases `s` to `owner` unless another owner's lease is still running.
    fn lease<T: Queued>(
        self,
        ctx: &mut WriteCtx<'_>,
        mut s: Stored<T>,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Claim<T> {
        let leased = s.lease_owner.is_some_and(|o| o != owner) && s.lease_until_ms > now.timestamp_millis();
        if leased {
            return Claim::NotDue;
        }
        s.lease_owner = Some(owner);
        s.lease_until_ms = lease_until.timestamp_millis();
        ctx.put(self.records, &record_key(s.record.queue_id()), &s);
        Claim::Claimed(s.record)
    }

    fn progress<T: Queued>(self, ctx: &mut WriteCtx<'_>, r: T, owner: Uuid) -> Result<bool> {
        let key = record_key(r.queue_id());
        let Some(s) = ctx.get::<Stored<T>>(self.records, &key)? else { return Ok(false) };
        if s.lease_owner != Some(owner) || s.record.due_at() != r.due_at() {
            return Ok(false);
        }
        ctx.put(self.records, &key, &Stored { record: r, ..s });
        Ok(true)
    }

    fn finish<T: Queued>(self, ctx: &mut WriteCtx<'_>, r: T, owner: Uuid) -> Result<bool> {
        let key = record_key(r.queue_id());
        let Some(s) = ctx.get::<Stored<T>>(self.records, &key)? else { return Ok(false) };
        if s.lease_owner != Some(owner) {
            return Ok(false);
        }
        ctx.delete(self.due, &due_key(s.record.due_at(), r.queue_id()));
        if r.is_pending() {
            ctx.put(self.due, &due_key(r.due_at(), r.queue_id()), &r);
        }
        ctx.put(self.records, &key, &Stored { record: r, lease_owner: None, lease_until_ms: 0 });
        Ok(true)
    }
}

/// Writes a new message-centre message in the caller's transaction, with its outbound row when
/// its kind goes out that way (`outside_route`): every store path that writes a new message
/// calls this, so no message is written without its delivery, and a crash loses neither.
pub(super) fn put_new_message(ctx: &mut WriteCtx<'_>, m: &Message) -> Result<()> {
    ctx.put(MESSAGES_BY_ACCOUNT, &message_key(m.account_id, m.id), m);
    if outside_route(m.kind) == OutsideRoute::Outbound {
        OUTBOUND_QUEUE.insert(ctx, &Outbound::of(m))?;
    }
    Ok(())
}

#[async_trait]
impl NotifyStore for EmbeddedStore {
    async fn put_message(&self, message: &Message, events: &[PendingEvent]) -> Result<()> {
        let (m, events) = (message.clone(), events.to_vec());
        self.engine
            .write(move |ctx| {
                put_new_message(ctx, &m)?;
                super::outbox::put_events(ctx, &events);
                Ok(())
            })
            .await
    }

    async fn list_messages(&self, account: AccountId, filter: MessageFilter) -> Result<Vec<Message>> {
        let all: Vec<Message> = self.engine.read(|r| r.scan(MESSAGES_BY_ACCOUNT, &Key::new().uuid(&account.0)))?;
        // Key order is id order (v7: time order); newest first.
        Ok(all
            .into_iter()
            .rev()
            .filter(|m| filter.category.is_none_or(|c| category_of(m.kind) == c))
            .filter(|m| !filter.unread_only || !m.read)
            .take(filter.limit)
            .collect())
    }

    async fn message(&self, account: AccountId, message: MessageId) -> Result<Option<Message>> {
        let key = message_key(account, message);
        self.engine.read(|r| r.get::<Message>(MESSAGES_BY_ACCOUNT, &key))
    }

    async fn set_read(
        &self,
        account: AccountId,
        message: MessageId,
        read: bool,
        events: &[PendingEvent],
    ) -> Result<bool> {
        let events = events.to_vec();
        self.engine
            .write(move |ctx| {
                let key = message_key(account, message);
                let Some(mut m) = ctx.get::<Message>(MESSAGES_BY_ACCOUNT, &key)? else { return Ok(false) };
                if m.read != read {
                    m.read = read;
                    ctx.put(MESSAGES_BY_ACCOUNT, &key, &m);
                    super::outbox::put_events(ctx, &events);
                }
                Ok(true)
            })
            .await
    }

    async fn mark_all_read(&self, account: AccountId, events: &[PendingEvent]) -> Result<usize> {
        let events = events.to_vec();
        self.engine
            .write(move |ctx| {
                let all: Vec<Message> = ctx.scan(MESSAGES_BY_ACCOUNT, &Key::new().uuid(&account.0))?;
                let mut n = 0;
                for mut m in all.into_iter().filter(|m| !m.read) {
                    m.read = true;
                    ctx.put(MESSAGES_BY_ACCOUNT, &message_key(account, m.id), &m);
                    n += 1;
                }
                if n > 0 {
                    super::outbox::put_events(ctx, &events);
                }
                Ok(n)
            })
            .await
    }

    async fn unread_count(&self, account: AccountId) -> Result<usize> {
        let all: Vec<Message> = self.engine.read(|r| r.scan(MESSAGES_BY_ACCOUNT, &Key::new().uuid(&account.0)))?;
        Ok(all.iter().filter(|m| !m.read).count())
    }

    async fn notification_preferences(&self, account: AccountId) -> Result<NotificationPreferences> {
        let stored: Option<NotificationPreferences> =
            self.engine.read(|r| r.get(NOTIFICATION_PREFERENCES, &Key::new().uuid(&account.0)))?;
        // Normalised: every kind listed once, a kind added since the row was written at its default.
        Ok(stored.map(|p| p.with_changes(&[])).unwrap_or_default())
    }

    async fn put_notification_preferences(
        &self,
        account: AccountId,
        prefs: &NotificationPreferences,
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        let (p, fence) = (prefs.with_changes(&[]), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                ctx.put(NOTIFICATION_PREFERENCES, &Key::new().uuid(&account.0), &p);
                Ok(())
            })
            .await
    }

    async fn schedule_reminders(&self, reminders: &[Reminder]) -> Result<usize> {
        let list = reminders.to_vec();
        self.engine
            .write(move |ctx| {
                let mut n = 0;
                for r in &list {
                    n += usize::from(REMINDER_QUEUE.insert(ctx, r)?);
                }
                Ok(n)
            })
            .await
    }

    async fn reminder(&self, id: ReminderId) -> Result<Option<Reminder>> {
        self.engine.read(|r| REMINDER_QUEUE.get(r, id.0))
    }

    async fn due_reminders(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Reminder>> {
        self.engine.read(|r| REMINDER_QUEUE.due(r, from, to, limit))
    }

    async fn claim_reminder(
        &self,
        entry: &Reminder,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        let (id, due) = (entry.id.0, entry.due_at);
        self.engine.write(move |ctx| REMINDER_QUEUE.claim(ctx, id, due, owner, now, lease_until)).await
    }

    async fn take_reminder(
        &self,
        id: ReminderId,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        self.engine.write(move |ctx| REMINDER_QUEUE.take(ctx, id.0, owner, now, lease_until)).await
    }

    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool> {
        let r = reminder.clone();
        self.engine.write(move |ctx| REMINDER_QUEUE.finish(ctx, r, owner)).await
    }

    async fn outbound(&self, id: MessageId) -> Result<Option<Outbound>> {
        self.engine.read(|r| OUTBOUND_QUEUE.get(r, id.0))
    }

    async fn due_outbound(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Outbound>> {
        self.engine.read(|r| OUTBOUND_QUEUE.due(r, from, to, limit))
    }

    async fn claim_outbound(
        &self,
        entry: &Outbound,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<Outbound>> {
        let (id, due) = (entry.id().0, entry.due_at);
        self.engine.write(move |ctx| OUTBOUND_QUEUE.claim(ctx, id, due, owner, now, lease_until)).await
    }

    async fn finish_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool> {
        let o = outbound.clone();
        self.engine.write(move |ctx| OUTBOUND_QUEUE.finish(ctx, o, owner)).await
    }

    async fn progress_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool> {
        let o = outbound.clone();
        self.engine.write(move |ctx| OUTBOUND_QUEUE.progress(ctx, o, owner)).await
    }
}
