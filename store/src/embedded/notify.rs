//! Message read state, notification preferences and reminders on the embedded engine. Every
//! change of a reminder (its record and its queue row) is one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{category_of, due_bucket, NotificationPreferences, Reminder, ReminderId, ReminderStatus};
use hospital_domain::{AccountId, MessageId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::notify::{Claim, MessageFilter, NotifyStore};
use crate::PendingEvent;

/// The `reminders` row: the record and its lease (who works on it, until when).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredReminder {
    reminder: Reminder,
    lease_owner: Option<Uuid>,
    lease_until_ms: i64,
}

fn message_key(account: AccountId, id: MessageId) -> Key {
    Key::new().uuid(&account.0).uuid(&id.0)
}

fn reminder_key(id: ReminderId) -> Key {
    Key::new().uuid(&id.0)
}

fn due_key(due_at: DateTime<Utc>, id: ReminderId) -> Key {
    Key::new().i64(due_bucket(due_at)).i64(due_at.timestamp_millis()).uuid(&id.0)
}

fn put_due(ctx: &mut WriteCtx<'_>, r: &Reminder) {
    ctx.put(REMINDERS_DUE, &due_key(r.due_at, r.id), r);
}

#[async_trait]
impl NotifyStore for EmbeddedStore {
    async fn put_message(&self, message: &Message, events: &[PendingEvent]) -> Result<()> {
        let (m, events) = (message.clone(), events.to_vec());
        self.engine
            .write(move |ctx| {
                ctx.put(MESSAGES_BY_ACCOUNT, &message_key(m.account_id, m.id), &m);
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

    async fn put_notification_preferences(&self, account: AccountId, prefs: &NotificationPreferences) -> Result<()> {
        let p = prefs.with_changes(&[]);
        self.engine
            .write(move |ctx| {
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
                for r in list {
                    let key = reminder_key(r.id);
                    if ctx.get_raw(REMINDERS, key.bytes())?.is_some() {
                        continue;
                    }
                    put_due(ctx, &r);
                    ctx.put(REMINDERS, &key, &StoredReminder { reminder: r, lease_owner: None, lease_until_ms: 0 });
                    n += 1;
                }
                Ok(n)
            })
            .await
    }

    async fn reminder(&self, id: ReminderId) -> Result<Option<Reminder>> {
        let s: Option<StoredReminder> = self.engine.read(|r| r.get(REMINDERS, &reminder_key(id)))?;
        Ok(s.map(|s| s.reminder))
    }

    async fn due_reminders(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Reminder>> {
        self.engine.read(|r| {
            let mut out = Vec::new();
            for bucket in due_bucket(from)..=due_bucket(to) {
                let rows: Vec<Reminder> = r.scan(REMINDERS_DUE, &Key::new().i64(bucket))?;
                for x in rows.into_iter().filter(|x| x.due_at >= from && x.due_at <= to) {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(x);
                }
            }
            Ok(out)
        })
    }

    async fn claim_reminder(
        &self,
        entry: &Reminder,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        let (id, entry_due) = (entry.id, entry.due_at);
        self.engine
            .write(move |ctx| {
                let key = reminder_key(id);
                let Some(mut s) = ctx.get::<StoredReminder>(REMINDERS, &key)? else {
                    ctx.delete(REMINDERS_DUE, &due_key(entry_due, id));
                    return Ok(Claim::NotDue);
                };
                if s.reminder.status != ReminderStatus::Pending || s.reminder.due_at != entry_due {
                    // A stale queue row: the record moved on.
                    ctx.delete(REMINDERS_DUE, &due_key(entry_due, id));
                    return Ok(Claim::NotDue);
                }
                let leased = s.lease_owner.is_some_and(|o| o != owner) && s.lease_until_ms > now.timestamp_millis();
                if s.reminder.due_at > now || leased {
                    return Ok(Claim::NotDue);
                }
                s.lease_owner = Some(owner);
                s.lease_until_ms = lease_until.timestamp_millis();
                ctx.put(REMINDERS, &key, &s);
                Ok(Claim::Claimed(s.reminder))
            })
            .await
    }

    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool> {
        let r = reminder.clone();
        self.engine
            .write(move |ctx| {
                let key = reminder_key(r.id);
                let Some(s) = ctx.get::<StoredReminder>(REMINDERS, &key)? else { return Ok(false) };
                if s.lease_owner != Some(owner) {
                    return Ok(false);
                }
                ctx.delete(REMINDERS_DUE, &due_key(s.reminder.due_at, r.id));
                if r.status == ReminderStatus::Pending {
                    put_due(ctx, &r);
                }
                ctx.put(REMINDERS, &key, &StoredReminder { reminder: r, lease_owner: None, lease_until_ms: 0 });
                Ok(true)
            })
            .await
    }
}
