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
//!
//! Outbound rows (`outbound`, `outbound_due`: the same two-table shape) are the general path of
//! every other message sent on by SMS and WeChat: each write of a new message-centre message of an
//! `OutsideRoute::Outbound` kind, wherever the store writes one (a booking write, a payment, an
//! exam, a chat ticket, `put_message`), writes the outbound row with it. The queue code is shared
//! by both (`Queued`): one claim, one finish, one due scan.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{
    MessageCategory, NotificationPreferences, Outbound, Reminder, ReminderId, ReminderStatus,
};
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

/// A row of a due queue (a reminder, an outbound delivery): what the shared queue code needs.
pub trait Queued: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {
    fn queue_id(&self) -> Uuid;
    fn due_at(&self) -> DateTime<Utc>;
    /// Still to be worked on (in the queue).
    fn is_pending(&self) -> bool;
}

impl Queued for Reminder {
    fn queue_id(&self) -> Uuid {
        self.id.0
    }
    fn due_at(&self) -> DateTime<Utc> {
        self.due_at
    }
    fn is_pending(&self) -> bool {
        self.status == ReminderStatus::Pending
    }
}

impl Queued for Outbound {
    fn queue_id(&self) -> Uuid {
        self.message.id.0
    }
    fn due_at(&self) -> DateTime<Utc> {
        self.due_at
    }
    fn is_pending(&self) -> bool {
        self.status == ReminderStatus::Pending
    }
}

/// The outcome of claiming a due reminder (or outbound row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim<T = Reminder> {
    /// Ours until the lease runs out: work on it, then `finish_reminder`.
    Claimed(T),
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
    /// Several nodes: `fence` is the account's actor's (`AccountStore::update_account`).
    async fn put_notification_preferences(
        &self,
        account: AccountId,
        prefs: &NotificationPreferences,
        fence: Option<&crate::Fence>,
    ) -> Result<()>;

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
    /// Takes a pending reminder for `owner` until `lease_until` whether or not it is due, if no
    /// other owner's lease is running: to move it (its visit's time changed), then
    /// `finish_reminder` with the new times.
    async fn take_reminder(
        &self,
        id: ReminderId,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim>;
    /// Writes the outcome of an attempt by the lease holder: the record, and its queue row moved
    /// to the new `due_at` (still pending) or removed (done, skipped, given up). The lease is
    /// released. `Ok(false)` if `owner` no longer held the lease (nothing is written).
    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool>;

    /// The outbound row of a message (written with it), if its kind goes out that way.
    async fn outbound(&self, id: MessageId) -> Result<Option<Outbound>>;
    /// As `due_reminders`, for outbound rows.
    async fn due_outbound(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Outbound>>;
    /// As `claim_reminder`, for outbound rows.
    async fn claim_outbound(
        &self,
        entry: &Outbound,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<Outbound>>;
    /// As `finish_reminder`, for outbound rows.
    async fn finish_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool>;
    /// Records the channels sent so far by the lease holder, which keeps its lease and the row
    /// its place in the queue: a process that dies before `finish_outbound` leaves those channels
    /// marked sent, so the next holder does not send them again. `Ok(false)` if `owner` no
    /// longer holds the lease (nothing is written).
    async fn progress_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool>;
}
