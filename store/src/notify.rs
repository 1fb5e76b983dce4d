//! The notification store (MSG-1..4): message read state, categories and counts; per-account
//! notification preferences; and reminders, durable rows scanned by due time.
//!
//! Unread count: computed from the account's `messages_by_account` partition, not kept in a
//! counter row. Messages are written by several paths (the booking engine's `apply_booking`,
//! in the same batch as the change they report, and the notifier), and a counter would have to
//! be updated in every one of them, in the same transaction, or drift; the partition is one
//! account's messages (tens to a few thousand rows), which one partition read counts cheaply.
//!
//! Reminders are two tables (see `schema.cql`): `reminders` by id holds the record (and, on
//! ScyllaDB, the lease columns its compare-and-sets use), and `reminders_due` is the queue:
//! `((due_bucket), due_at, reminder_id)`, where `due_bucket` is the hour (unix hours) of
//! `due_at`. "What is due" is then a read of the few hour partitions between a look-back and
//! now, each a clustering range `due_at <= now`, in due order, with no scan of the whole table,
//! no secondary index and no unbounded partition (a bucket holds one hour of reminders). A
//! reminder that is done leaves the queue; one rescheduled (a failed channel's backoff) moves to
//! its new bucket; both in the same write as the record.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{MessageCategory, NotificationPreferences, Reminder, ReminderId};
use hospital_domain::{AccountId, MessageId};
use uuid::Uuid;

use crate::error::Result;

/// Which messages a listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageFilter {
    pub category: Option<MessageCategory>,
    pub unread_only: bool,
    pub limit: usize,
}

/// The outcome of claiming a due reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours until the lease runs out: work on it, then `finish_reminder`.
    Claimed(Reminder),
    /// Another worker holds it, or it is no longer due (done, rescheduled): leave it.
    NotDue,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// Stores a message (an upsert: writing the same id again replaces it) with its live events.
    async fn put_message(&self, message: &Message, events: &[crate::PendingEvent]) -> Result<()>;
    /// The account's messages, newest first, filtered, at most `filter.limit`.
    async fn list_messages(&self, account: AccountId, filter: MessageFilter) -> Result<Vec<Message>>;
    /// One of the account's messages (None for another account's, or none).
    async fn message(&self, account: AccountId, message: MessageId) -> Result<Option<Message>>;
    /// Marks one message read or unread. `Ok(false)` if the account has no such message.
    /// `events` are written with the change (the new unread count, see `PendingEvent::unread`).
    async fn set_read(
        &self,
        account: AccountId,
        message: MessageId,
        read: bool,
        events: &[crate::PendingEvent],
    ) -> Result<bool>;
    /// Marks every message of the account read; how many changed.
    async fn mark_all_read(&self, account: AccountId, events: &[crate::PendingEvent]) -> Result<usize>;
    /// How many of the account's messages are unread (counted from its partition).
    async fn unread_count(&self, account: AccountId) -> Result<usize>;

    /// The account's preferences: the defaults until it saves its own.
    async fn notification_preferences(&self, account: AccountId) -> Result<NotificationPreferences>;
    async fn put_notification_preferences(&self, account: AccountId, prefs: &NotificationPreferences) -> Result<()>;

    /// Inserts reminders whose id is not stored yet (record and queue row together); the ones
    /// already there, whatever their state, are left alone. How many were new.
    async fn schedule_reminders(&self, reminders: &[Reminder]) -> Result<usize>;
    async fn reminder(&self, id: ReminderId) -> Result<Option<Reminder>>;
    /// Queue entries with `from <= due_at <= to`, oldest first, at most `limit` (the records as
    /// last written; claim one before working on it).
    async fn due_reminders(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Reminder>>;
    /// Takes the reminder of a queue entry (as `due_reminders` returned it) for `owner` until
    /// `lease_until`, if it is still pending and due and no other owner's lease is running. An
    /// entry that no longer matches its record (a retry moved it, it is done) is removed on the way.
    async fn claim_reminder(
        &self,
        entry: &Reminder,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim>;
    /// Writes the outcome of an attempt by the lease holder: the record, and its queue row moved
    /// to the new `due_at` (still pending) or removed (done, skipped, given up). The lease is
    /// released. `Ok(false)` if `owner` no longer held the lease (nothing is written).
    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool>;
}
