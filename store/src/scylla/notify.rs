//! Message read state, notification preferences and reminders on ScyllaDB (see `schema.cql`).
//!
//! Every write of a `reminders` row is a lightweight transaction (insert `IF NOT EXISTS`, claim
//! `IF body = ? AND lease_until = ?`, finish `IF lease_owner = ?`), so two notifiers on two nodes
//! never both work on one reminder, and no plain write races a Paxos round. The queue row
//! (`reminders_due`) is written around the record's transaction in the order that leaves, after
//! a crash at any point, either a stale queue row (removed by the next claim, which compares it
//! with the record) or a duplicate one, never a pending reminder without one.
//!
//! Outbound rows share that code (`QueueCql`). They are written inside the message's own logged
//! batch, which cannot hold a conditional statement across partitions, so the batch writes the
//! queue entry (`outbound_due`, plain writes only, as every queue write) with the whole record in
//! it, and the first claim creates the `outbound` record from it (`INSERT ... IF NOT EXISTS` with
//! the lease): every write of an `outbound` row stays conditional.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::message::Message;
use hospital_domain::notify::{
    category_of, due_bucket, outside_route, NotificationPreferences, Outbound, OutsideRoute, Reminder, ReminderId,
};
use hospital_domain::{AccountId, MessageId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;
use uuid::Uuid;

use super::{decode, encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::notify::{Claim, MessageFilter, NotifyStore, Queued};
use crate::PendingEvent;

const PUT_MESSAGE: &str = "INSERT INTO {ks}.messages_by_account (account_id, message_id, body) VALUES (?, ?, ?)";

const GET_MESSAGE: &str = "SELECT body FROM {ks}.messages_by_account WHERE account_id = ? AND message_id = ?";
/// The whole partition, newest first (clustering order `message_id DESC`).
const MESSAGES_OF: &str = "SELECT body FROM {ks}.messages_by_account WHERE account_id = ?";
const GET_PREFS: &str = "SELECT body FROM {ks}.notification_preferences WHERE account_id = ?";
const PUT_PREFS: &str = "INSERT INTO {ks}.notification_preferences (account_id, body) VALUES (?, ?)";
const INSERT_REMINDER: &str =
    "INSERT INTO {ks}.reminders (reminder_id, body, lease_until) VALUES (?, ?, 0) IF NOT EXISTS";

const PROGRESS_OUTBOUND: &str = "UPDATE {ks}.outbound SET body = ? WHERE message_id = ? IF lease_owner = ?";

/// The statements of one queue (records by id with their lease, entries by due time).
struct QueueCql {
    records: &'static str,
    due_table: &'static str,
    get: &'static str,
    claim: &'static str,
    finish: &'static str,
    put_due: &'static str,
    delete_due: &'static str,
    due_in_bucket: &'static str,
    /// Creates the record with the lease taken (`id, body, owner, until`), for a queue whose
    /// records are made by their first claim; None: an entry without a record is stale.
    create_claimed: Option<&'static str>,
}

const REMINDER_CQL: QueueCql = QueueCql {
    records: "reminders",
    due_table: "reminders_due",
    get: "SELECT body, lease_owner, lease_until FROM {ks}.reminders WHERE reminder_id = ?",
    claim: "UPDATE {ks}.reminders SET lease_owner = ?, lease_until = ? WHERE reminder_id = ? IF body = ? AND lease_until = ?",
    finish: "UPDATE {ks}.reminders SET body = ?, lease_owner = null, lease_until = 0 WHERE reminder_id = ? IF lease_owner = ?",
    put_due: "INSERT INTO {ks}.reminders_due (due_bucket, due_at, reminder_id, body) VALUES (?, ?, ?, ?)",
    delete_due: "DELETE FROM {ks}.reminders_due WHERE due_bucket = ? AND due_at = ? AND reminder_id = ?",
    due_in_bucket: "SELECT body FROM {ks}.reminders_due WHERE due_bucket = ? AND due_at >= ? AND due_at <= ? LIMIT ?",
    create_claimed: None,
};

const OUTBOUND_CQL: QueueCql = QueueCql {
    records: "outbound",
    due_table: "outbound_due",
    get: "SELECT body, lease_owner, lease_until FROM {ks}.outbound WHERE message_id = ?",
    claim:
        "UPDATE {ks}.outbound SET lease_owner = ?, lease_until = ? WHERE message_id = ? IF body = ? AND lease_until = ?",
    finish:
        "UPDATE {ks}.outbound SET body = ?, lease_owner = null, lease_until = 0 WHERE message_id = ? IF lease_owner = ?",
    put_due: "INSERT INTO {ks}.outbound_due (due_bucket, due_at, message_id, body) VALUES (?, ?, ?, ?)",
    delete_due: "DELETE FROM {ks}.outbound_due WHERE due_bucket = ? AND due_at = ? AND message_id = ?",
    due_in_bucket: "SELECT body FROM {ks}.outbound_due WHERE due_bucket = ? AND due_at >= ? AND due_at <= ? LIMIT ?",
    create_claimed: Some(
        "INSERT INTO {ks}.outbound (message_id, body, lease_owner, lease_until) VALUES (?, ?, ?, ?) IF NOT EXISTS",
    ),
};

/// Pushes a new message-centre message onto a batch, with its outbound queue entry when its
/// kind goes out that way (`outside_route`): every path that writes a new message calls this.
pub(super) fn push_new_message(store: &ScyllaStore, w: &mut Writes, m: &Message) {
    w.push(store, PUT_MESSAGE, vec![CqlValue::Uuid(m.account_id.0), CqlValue::Uuid(m.id.0), text(encode(m))]);
    if outside_route(m.kind) == OutsideRoute::Outbound {
        let o = Outbound::of(m);
        w.push(
            store,
            OUTBOUND_CQL.put_due,
            vec![
                CqlValue::BigInt(due_bucket(o.due_at)),
                CqlValue::BigInt(o.due_at.timestamp_millis()),
                CqlValue::Uuid(m.id.0),
                text(encode(&o)),
            ],
        );
    }
}

/// Most statements in one single-partition batch of `mark_all_read`.
const READ_BATCH: usize = 100;

impl ScyllaStore {
    async fn all_messages(&self, account: AccountId) -> Result<Vec<Message>> {
        let mut v: Vec<Message> = self.bodies("messages_by_account", MESSAGES_OF, (account.0,)).await?;
        v.sort_by_key(|m| std::cmp::Reverse(m.id));
        Ok(v)
    }

    async fn put_due<T: Queued>(&self, q: &QueueCql, r: &T) -> Result<()> {
        let at = r.due_at().timestamp_millis();
        self.exec(q.put_due, (due_bucket(r.due_at()), at, r.queue_id(), encode(r))).await?;
        Ok(())
    }

    async fn delete_due(&self, q: &QueueCql, due_at: DateTime<Utc>, id: Uuid) -> Result<()> {
        self.exec(q.delete_due, (due_bucket(due_at), due_at.timestamp_millis(), id)).await?;
        Ok(())
    }

    /// The record, its lease owner and lease end (unix ms).
    async fn stored<T: Queued>(&self, q: &QueueCql, id: Uuid) -> Result<Option<(String, T, Option<Uuid>, i64)>> {
        let row: Option<(String, Option<Uuid>, Option<i64>)> = self.row(q.get, (id,)).await?;
        match row {
            None => Ok(None),
            Some((body, owner, until)) => {
                let r: T = decode(q.records, &body)?;
                Ok(Some((body, r, owner, until.unwrap_or(0))))
            }
        }
    }

    async fn due_in<T: Queued>(
        &self,
        q: &QueueCql,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let mut out: Vec<T> = Vec::new();
        for bucket in due_bucket(from)..=due_bucket(to) {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let cql_limit = i32::try_from(left).unwrap_or(i32::MAX);
            let rows: Vec<T> = self
                .bodies(
                    q.due_table,
                    q.due_in_bucket,
                    (bucket, from.timestamp_millis(), to.timestamp_millis(), cql_limit),
                )
                .await?;
            out.extend(rows);
        }
        out.sort_by_key(|r| (r.due_at(), r.queue_id()));
        out.truncate(limit);
        Ok(out)
    }

    async fn claim_in<T: Queued>(
        &self,
        q: &QueueCql,
        entry: &T,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<T>> {
        let id = entry.queue_id();
        let Some((body, r, lease_owner, until)) = self.stored::<T>(q, id).await? else {
            if let Some(create) = q.create_claimed.filter(|_| entry.is_pending() && entry.due_at() <= now) {
                // The first claim of a new row makes its record, leased to us.
                let lwt = self.lwt(create, (id, encode(entry), owner, lease_until.timestamp_millis())).await?;
                return Ok(if lwt.applied { Claim::Claimed(entry.clone()) } else { Claim::NotDue });
            }
            if q.create_claimed.is_none() {
                self.delete_due(q, entry.due_at(), id).await?;
            }
            return Ok(Claim::NotDue);
        };
        if !r.is_pending() || r.due_at() != entry.due_at() {
            self.delete_due(q, entry.due_at(), id).await?;
            return Ok(Claim::NotDue);
        }
        if r.due_at() > now {
            return Ok(Claim::NotDue);
        }
        self.lease_in(q, (body, r, lease_owner, until), owner, now, lease_until).await
    }

    /// Takes a pending record, due or not (`NotifyStore::take_reminder`).
    async fn take_in<T: Queued>(
        &self,
        q: &QueueCql,
        id: Uuid,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<T>> {
        match self.stored::<T>(q, id).await? {
            Some(stored) if stored.1.is_pending() => self.lease_in(q, stored, owner, now, lease_until).await,
            _ => Ok(Claim::NotDue),
        }
    }

    /// Leases a stored record (as `stored` read it) to `owner` unless another owner's lease is
    /// still running; the LWT fails if the record changed since it was read.
    async fn lease_in<T: Queued>(
        &self,
        q: &QueueCql,
        (body, r, lease_owner, until): (String, T, Option<Uuid>, i64),
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<T>> {
        let id = r.queue_id();
        if lease_owner.is_some_and(|o| o != owner) && until > now.timestamp_millis() {
            return Ok(Claim::NotDue);
        }
        let lwt = self.lwt(q.claim, (owner, lease_until.timestamp_millis(), id, body, until)).await?;
        Ok(if lwt.applied { Claim::Claimed(r) } else { Claim::NotDue })
    }

    async fn finish_in<T: Queued>(&self, q: &QueueCql, r: &T, owner: Uuid) -> Result<bool> {
        let id = r.queue_id();
        let Some((_, old, lease_owner, _)) = self.stored::<T>(q, id).await? else { return Ok(false) };
        if lease_owner != Some(owner) {
            return Ok(false);
        }
        let pending = r.is_pending();
        let moved = old.due_at() != r.due_at();
        // The new queue row first: a crash after it leaves a duplicate (cleaned by a claim),
        // never a pending row without a queue row.
        if pending && moved {
            self.put_due(q, r).await?;
        }
        let lwt = self.lwt(q.finish, (encode(r), id, owner)).await?;
        if !lwt.applied {
            return Ok(false);
        }
        if !pending || moved {
            self.delete_due(q, old.due_at(), id).await?;
        }
        if pending && !moved {
            // Same slot: refresh the queue row's copy of the record.
            self.put_due(q, r).await?;
        }
        Ok(true)
    }
}

#[async_trait]
impl NotifyStore for ScyllaStore {
    async fn put_message(&self, message: &Message, events: &[PendingEvent]) -> Result<()> {
        let mut w = Writes::default();
        push_new_message(self, &mut w, message);
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
            // Idempotent: two concurrent marks write the same value. The message only: its
            // outbound row was written with it.
            m.read = read;
            let mut w = Writes::default();
            w.push(self, PUT_MESSAGE, vec![CqlValue::Uuid(m.account_id.0), CqlValue::Uuid(m.id.0), text(encode(&m))]);
            self.outbox_writes(&mut w, events);
            self.run_batch(w, BatchType::Logged).await?;
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

    async fn put_notification_preferences(
        &self,
        account: AccountId,
        prefs: &NotificationPreferences,
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        let body = encode(&prefs.with_changes(&[]));
        match self.check_account_fence(fence, account).await? {
            // At the timestamp taken before the account's fence was checked (scylla/fence.rs).
            Some(at) => {
                let mut w = Writes::default();
                w.push(self, PUT_PREFS, vec![CqlValue::Uuid(account.0), text(body)]);
                self.write_rest(vec![w], at).await
            }
            None => {
                self.exec(PUT_PREFS, (account.0, body)).await?;
                Ok(())
            }
        }
    }

    async fn schedule_reminders(&self, reminders: &[Reminder]) -> Result<usize> {
        let mut n = 0;
        for r in reminders {
            let lwt = self.lwt(INSERT_REMINDER, (r.id.0, encode(r))).await?;
            if lwt.applied {
                self.put_due(&REMINDER_CQL, r).await?;
                n += 1;
            } else if let Some(CqlValue::Text(body)) = lwt.value("body") {
                // Already there. If a crash came between its insert and its queue row, the row is
                // missing: writing it again from the stored record is an idempotent upsert.
                let existing: Reminder = decode("reminders", body)?;
                if existing.is_pending() {
                    self.put_due(&REMINDER_CQL, &existing).await?;
                }
            }
        }
        Ok(n)
    }

    async fn reminder(&self, id: ReminderId) -> Result<Option<Reminder>> {
        Ok(self.stored::<Reminder>(&REMINDER_CQL, id.0).await?.map(|(_, r, _, _)| r))
    }

    async fn due_reminders(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Reminder>> {
        self.due_in(&REMINDER_CQL, from, to, limit).await
    }

    async fn claim_reminder(
        &self,
        entry: &Reminder,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        self.claim_in(&REMINDER_CQL, entry, owner, now, lease_until).await
    }

    async fn take_reminder(
        &self,
        id: ReminderId,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim> {
        self.take_in(&REMINDER_CQL, id.0, owner, now, lease_until).await
    }

    async fn finish_reminder(&self, reminder: &Reminder, owner: Uuid) -> Result<bool> {
        self.finish_in(&REMINDER_CQL, reminder, owner).await
    }

    async fn outbound(&self, id: MessageId) -> Result<Option<Outbound>> {
        if let Some((_, o, _, _)) = self.stored::<Outbound>(&OUTBOUND_CQL, id.0).await? {
            return Ok(Some(o));
        }
        // Not claimed yet: the queue entry holds it (its record is made by the first claim), due
        // at the message's time, which its (version 7) id carries to the millisecond.
        let Some((secs, nanos)) = id.0.get_timestamp().map(|t| t.to_unix()) else { return Ok(None) };
        let Some(at) = DateTime::<Utc>::from_timestamp(secs as i64, nanos) else { return Ok(None) };
        let slack = chrono::Duration::seconds(60);
        let rows: Vec<Outbound> = self.due_in(&OUTBOUND_CQL, at - slack, at + slack, 10_000).await?;
        Ok(rows.into_iter().find(|o| o.id() == id))
    }

    async fn due_outbound(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: usize) -> Result<Vec<Outbound>> {
        self.due_in(&OUTBOUND_CQL, from, to, limit).await
    }

    async fn claim_outbound(
        &self,
        entry: &Outbound,
        owner: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claim<Outbound>> {
        self.claim_in(&OUTBOUND_CQL, entry, owner, now, lease_until).await
    }

    async fn finish_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool> {
        self.finish_in(&OUTBOUND_CQL, outbound, owner).await
    }

    async fn progress_outbound(&self, outbound: &Outbound, owner: Uuid) -> Result<bool> {
        // The queue entry keeps the record's first copy; a claim compares the entry's due time
        // with the record, never its body, so it need not change.
        Ok(self.lwt(PROGRESS_OUTBOUND, (encode(outbound), outbound.id().0, owner)).await?.applied)
    }
}
