//! Message read state, notification preferences and reminders on ScyllaDB (see `schema.cql`).
//!
//! Every write of a `reminders` row is a lightweight transaction (insert `IF NOT EXISTS`, claim
//! `IF body = ? AND lease_until = ?`, finish `IF lease_owner = ?`), so two notifiers on two nodes
//! never both work on one reminder, and no plain write races a Paxos round. The queue row
//! (`reminders_due`) is written around the record's transaction in the order that leaves, after
//! a crash at any point, either a stale queue row (removed by the next claim, which compares it
//! with the record) or a duplicate one, never a pending reminder without one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{category_of, due_bucket, NotificationPreferences, Reminder, ReminderId, ReminderStatus};
use hospital_domain::{AccountId, MessageId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;
use uuid::Uuid;

use super::{decode, encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::notify::{Claim, MessageFilter, NotifyStore};
use crate::PendingEvent;

use super::booking::PUT_MESSAGE;
const GET_MESSAGE: &str = "SELECT body FROM {ks}.messages_by_account WHERE account_id = ? AND message_id = ?";
/// The whole partition, newest first (clustering order `message_id DESC`).
const MESSAGES_OF: &str = "SELECT body FROM {ks}.messages_by_account WHERE account_id = ?";
const GET_PREFS: &str = "SELECT body FROM {ks}.notification_preferences WHERE account_id = ?";
const PUT_PREFS: &str = "INSERT INTO {ks}.notification_preferences (account_id, body) VALUES (?, ?)";
const INSERT_REMINDER: &str =
    "INSERT INTO {ks}.reminders (reminder_id, body, lease_until) VALUES (?, ?, 0) IF NOT EXISTS";
const GET_REMINDER: &str = "SELECT body, lease_owner, lease_until FROM {ks}.reminders WHERE reminder_id = ?";
const CLAIM_REMINDER: &str =
    "UPDATE {ks}.reminders SET lease_owner = ?, lease_until = ? WHERE reminder_id = ? IF body = ? AND lease_until = ?";
const FINISH_REMINDER: &str =
    "UPDATE {ks}.reminders SET body = ?, lease_owner = null, lease_until = 0 WHERE reminder_id = ? IF lease_owner = ?";
const PUT_DUE: &str = "INSERT INTO {ks}.reminders_due (due_bucket, due_at, reminder_id, body) VALUES (?, ?, ?, ?)";
const DELETE_DUE: &str = "DELETE FROM {ks}.reminders_due WHERE due_bucket = ? AND due_at = ? AND reminder_id = ?";
const DUE_IN_BUCKET: &str =
    "SELECT body FROM {ks}.reminders_due WHERE due_bucket = ? AND due_at >= ? AND due_at <= ? LIMIT ?";

/// Most statements in one single-partition batch of `mark_all_read`.
const READ_BATCH: usize = 100;

impl ScyllaStore {
    async fn all_messages(&self, account: AccountId) -> Result<Vec<Message>> {
        let mut v: Vec<Message> = self.bodies("messages_by_account", MESSAGES_OF, (account.0,)).await?;
        v.sort_by_key(|m| std::cmp::Reverse(m.id));
        Ok(v)
    }

    async fn put_due(&self, r: &Reminder) -> Result<()> {
        let at = r.due_at.timestamp_millis();
        self.exec(PUT_DUE, (due_bucket(r.due_at), at, r.id.0, encode(r))).await?;
        Ok(())
    }

    async fn delete_due(&self, due_at: DateTime<Utc>, id: ReminderId) -> Result<()> {
        self.exec(DELETE_DUE, (due_bucket(due_at), due_at.timestamp_millis(), id.0)).await?;
        Ok(())
    }

    /// The record, its lease owner and lease end (unix ms).
    async fn stored_reminder(&self, id: ReminderId) -> Result<Option<(String, Reminder, Option<Uuid>, i64)>> {
        let row: Option<(String, Option<Uuid>, Option<i64>)> = self.row(GET_REMINDER, (id.0,)).await?;
        match row {
            None => Ok(None),
            Some((body, owner, until)) => {
                let r: Reminder = decode("reminders", &body)?;
                Ok(Some((body, r, owner, until.unwrap_or(0))))
            }
        }
    }
}

#[async_trait]
impl NotifyStore for ScyllaStore {
    async fn put_message(&self, message: &Message, events: &[PendingEvent]) -> Result<()> {
        if events.is_empty() {
            self.exec(PUT_MESSAGE, (message.account_id.0, message.id.0, encode(message))).await?;
            return Ok(());
        }
        let mut w = Writes::default();
        w.push(
            self,
            PUT_MESSAGE,
            vec![CqlValue::Uuid(message.account_id.0), CqlValue::Uuid(message.id.0), text(encode(message))],
        );
        self.outbox_writes(&mut w, events);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn list_messages(&self, account: AccountId, filter: MessageFilter) -> Result<Vec<Message>> {
        Ok(self
            .all_messages(account)
            .await?
            .into_iter()
            .filter(|m| filter.category.is_none_or(|c| category_of(m.kind) == c))
            .filter(|m| !filter.unread_only || !m.read)
            .take(filter.limit)
            .collect())
    }

    async fn message(&self, account: AccountId, message: MessageId) -> Result<Option<Message>> {
        match self.row::<(String,)>(GET_MESSAGE, (account.0, message.0)).await? {
            Some((body,)) => Ok(Some(decode("messages_by_account", &body)?)),
            None => Ok(None),
        }
    }

    async fn set_read(
        &self,
        account: AccountId,
        message: MessageId,
        read: bool,
        events: &[PendingEvent],
    ) -> Result<bool> {
        let Some(mut m) = self.message(account, message).await? else { return Ok(false) };
        if m.read != read {
            // Idempotent: two concurrent marks write the same value.
            m.read = read;
            self.put_message(&m, events).await?;
        }
        Ok(true)
    }

    async fn mark_all_read(&self, account: AccountId, events: &[PendingEvent]) -> Result<usize> {
        let unread: Vec<Message> = self.all_messages(account).await?.into_iter().filter(|m| !m.read).collect();
        for chunk in unread.chunks(READ_BATCH) {
            let mut w = Writes::default();
            for m in chunk {
                let mut m = m.clone();
                m.read = true;
                w.push(
                    self,
                    PUT_MESSAGE,
                    vec![CqlValue::Uuid(m.account_id.0), CqlValue::Uuid(m.id.0), text(encode(&m))],
                );
            }
            // One partition: an unlogged batch is applied atomically there.
            self.run_batch(w, BatchType::Unlogged).await?;
        }
        if !unread.is_empty() && !events.is_empty() {
            // After the messages: the event reports a change that is stored.
            let mut w = Writes::default();
            self.outbox_writes(&mut w, events);
            self.run_batch(w, BatchType::Logged).await?;
        }
        Ok(unread.len())
    }

    async fn unread_count(&self, account: AccountId) -> Result<usize> {
        Ok(self.all_messages(account).await?.iter().filter(|m| !m.read).count())
    }

    async fn notification_preferences(&self, account: AccountId) -> Result<NotificationPreferences> {
        match self.row::<(String,)>(GET_PREFS, (account.0,)).await? {
            Some((body,)) => {
                Ok(decode::<NotificationPreferences>("notification_preferences", &body)?.with_changes(&[]))
            }
            None => Ok(NotificationPreferences::default()),
        }
    }

    async fn put_notification_preferences(&self, account: AccountId, prefs: &NotificationPreferences) -> Result<()> {
        self.exec(PUT_PREFS, (account.0, encode(&prefs.with_changes(&[])))).await?;
        Ok(())
    }

    async fn schedule_reminders(&self, reminders: &[Reminder]) -> Result<usize> {
        let mut n = 0;
        for r in reminders {
            let lwt = self.lwt(INSERT_REMINDER, (r.id.0, encode(r))).await?;
            if lwt.applied {
                self.put_due(r).await?;
                n += 1;
            } else if let Some(CqlValue::Text(body)) = lwt.value("body") {
                // Already there. If a crash came between its insert and its queue row, the row is
                // missing: writing it again from the stored record is an idempotent upsert.
                let existing: Reminder = decode("reminders", body)?;
                if existing.status == ReminderStatus::Pending {
                    self.put_due(&existing).await?;
                }
            }
        }
        Ok(n)
    }

    async fn reminder(&self, id: ReminderId) -> Result<Option<Reminder>> {
        Ok(self.stored_reminder(id).await?.map(|(_, r, _, _)| r))
    }

    async fn due_reminders(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Reminder>> {
        let mut out = Vec::new();
        for bucket in due_bucket(from)..=due_bucket(to) {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let cql_limit = i32::try_from(left).unwrap_or(i32::MAX);
            let rows: Vec<Reminder> = self
                .bodies(
                    "reminders_due",
                    DUE_IN_BUCKET,
                    (bucket, from.timestamp_millis(), to.timestamp_millis(), cql_limit),
                )
                .await?;
            out.extend(rows);
        }
        out.sort_by_key(|r| (r.due_at, r.id));
        out.truncate(limit);
        Ok(out)
    }

    async fn claim_reminder(
        &self,
        entry: &Reminder,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        let Some((body, r, lease_owner, until)) = self.stored_reminder(entry.id).await? else {
            self.delete_due(entry.due_at, entry.id).await?;
            return Ok(Claim::NotDue);
        };
        if r.status != ReminderStatus::Pending || r.due_at != entry.due_at {
            self.delete_due(entry.due_at, entry.id).await?;
            return Ok(Claim::NotDue);
        }
        let leased = lease_owner.is_some_and(|o| o != owner) && until > now.timestamp_millis();
        if r.due_at > now || leased {
            return Ok(Claim::NotDue);
        }
        let lwt = self.lwt(CLAIM_REMINDER, (owner, lease_until.timestamp_millis(), r.id.0, body, until)).await?;
        Ok(if lwt.applied { Claim::Claimed(r) } else { Claim::NotDue })
    }

    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool> {
        let Some((_, old, lease_owner, _)) = self.stored_reminder(reminder.id).await? else { return Ok(false) };
        if lease_owner != Some(owner) {
            return Ok(false);
        }
        let pending = reminder.status == ReminderStatus::Pending;
        let moved = old.due_at != reminder.due_at;
        // The new queue row first: a crash after it leaves a duplicate (cleaned by a claim),
        // never a pending reminder without a queue row.
        if pending && moved {
            self.put_due(reminder).await?;
        }
        let lwt = self.lwt(FINISH_REMINDER, (encode(reminder), reminder.id.0, owner)).await?;
        if !lwt.applied {
            return Ok(false);
        }
        if !pending || moved {
            self.delete_due(old.due_at, reminder.id).await?;
        }
        if pending && !moved {
            // Same slot: refresh the queue row's copy of the record.
            self.put_due(reminder).await?;
        }
        Ok(true)
    }
}
