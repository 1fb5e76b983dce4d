//! Appointments, orders, waitlists and messages on ScyllaDB: the booking tables of `schema.cql`.
//!
//! `apply_booking` writes one state change of the booking engine as ONE logged batch: the
//! sessions (the same statements `put_sessions` uses), each appointment under its four keys (by
//! id, doctor + date, account, person + date), the orders, the waitlists (a row per session,
//! deleted when the list empties) and the messages. A logged batch goes to the batchlog first, so
//! once ScyllaDB acknowledges it every statement in it is applied eventually, even if the
//! coordinator dies half-way; that is the "all or nothing" the schedule actor relies on. (It is
//! not isolated across partitions: a reader may briefly see some of the rows and not others.)
//!
//! Size bound. One event touches a handful of rows (a hold: 4 appointment rows and an order; a
//! payment: the same plus a message), a few kB. Two kinds of write are large: a clinic stop
//! (停诊) of a session with a few hundred bookings, where each cancelled appointment is 6
//! statements (4 appointment rows of about 0.85 kB of JSON each, its order, a message), about
//! 4 kB, so 300 bookings are some 1.2 MB; and a burst of events the actor's write pipeline merged
//! into one `BookingWrite`. ScyllaDB refuses a batch over `batch_size_fail_threshold_in_kb`
//! (1024 by default) and warns over `batch_size_warn_threshold_in_kb` (128). So the statements
//! are grouped by the item they write (an appointment's four rows never part) and packed, in
//! order, into logged batches of at most `BATCH_STATEMENTS` statements and `BATCH_BYTES` bytes of
//! values. An ordinary event is one batch; a larger write is several, sent one after another,
//! each atomic on its own but not together: if one fails, the batches before it stay applied.
//! Every statement is a full-row upsert (or the delete of an emptied waitlist), so each batch is
//! idempotent: a batchlog replay, or writing the same change again, only rewrites the same
//! values. The caller (the schedule actor) treats a failed write as "reload from the store", so
//! what it then finds must be a state it can rebuild from; hence the order of the groups:
//!
//! - appointments first, each at the position of its first occurrence (as `BookingWrite::merge`
//!   keeps them): when the write lists them in the order of its events, an appointment that frees
//!   a place comes before one that takes it, so no prefix has two live bookings on one place;
//! - then orders and waitlists;
//! - then sessions, so that a stopped session is never stored while its bookings still look live
//!   (a clinic stop cut short leaves an open session with some bookings cancelled, which the
//!   stop can simply be run again on);
//! - then messages, so nobody is told of a change that is not stored.
//!
//! One split remains that no order can make harmless: a quota increase (加号) merged with holds
//! of the new places, cut between the holds and the session, stores more live bookings than the
//! stored quota. The places are still distinct; the session just reads as full until the quota is
//! written again. A writer rules it out by not merging events past one batch's worth
//! (`BATCH_STATEMENTS`), so that only a single large event (a clinic stop) is ever split.
//!
//! All statements of a batch share one write timestamp, so two writes of the same row in one
//! batch would tie and be resolved by comparing values, not by order. `apply_booking` therefore
//! writes each row once: the latest value, at the position of its first occurrence (what
//! `BookingWrite::merge` does, and what the embedded store's sequential writes leave).
//!
//! A fenced write (several nodes: the schedule actor's lease token, `BookingWrite::fence`) is
//! checked by a lightweight transaction in the doctor's own partition (scylla/fence.rs): a static
//! `fence` column of `appointments_by_doctor`, moved to the writer's token by a conditional batch
//! `IF fence = <token>` that carries the write's rows of that partition (so the doctor's book, the
//! truth the actor reloads from, changes only under the current token). The other rows (the
//! by-id, by-account and by-person copies, the orders, sessions, waitlists, events and messages)
//! follow in logged batches at one write timestamp taken before the fence was checked. An owner
//! that stalls between its fenced batch and the rest and then wakes after a newer owner has written
//! the same rows loses to them by the rule ScyllaDB applies to every cell (the later timestamp
//! wins), rather than overwriting them. A write whose timestamp falls past the lease's deadline
//! (`Fence::until_us`, two thirds of the lease after its last renewal) is refused before anything
//! is sent, so a third of the lease separates an owner's last timestamp from the next owner's
//! first, which the nodes' clocks must agree within (ARCHITECTURE.md, "Several nodes").

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::WaitEntry;
use hospital_domain::message::Message;
use hospital_domain::order::Order;
use hospital_domain::{AccountId, AppointmentId, DoctorId, OrderId, SessionId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::Hash;

use super::{cql_date, decode, encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::traits::{BookingStore, BookingWrite};
use crate::{Fence, Owned};

/// Most statements in one logged batch.
pub(super) const BATCH_STATEMENTS: usize = 100;
/// Most bytes of bound values in one logged batch: under ScyllaDB's default batch size warning
/// threshold (128 kB), far under its failure threshold (1 MB). A single item larger than this
/// (which no booking row is) still goes, alone in its batch.
pub(super) const BATCH_BYTES: usize = 100 * 1024;

const PUT_APPOINTMENT: &str = "INSERT INTO {ks}.appointments (appointment_id, body) VALUES (?, ?)";
const PUT_APPOINTMENT_BY_DOCTOR: &str =
    "INSERT INTO {ks}.appointments_by_doctor (doctor_id, date, appointment_id, body) VALUES (?, ?, ?, ?)";
const PUT_APPOINTMENT_BY_ACCOUNT: &str =
    "INSERT INTO {ks}.appointments_by_account (account_id, appointment_id, body) VALUES (?, ?, ?)";
const PUT_APPOINTMENT_BY_PERSON: &str =
    "INSERT INTO {ks}.appointments_by_person (person, date, appointment_id, body) VALUES (?, ?, ?, ?)";
const PUT_ORDER: &str = "INSERT INTO {ks}.orders (order_id, body) VALUES (?, ?)";
const PUT_WAITLIST: &str = "INSERT INTO {ks}.waitlists_by_doctor (doctor_id, session_id, body) VALUES (?, ?, ?)";
const DELETE_WAITLIST: &str = "DELETE FROM {ks}.waitlists_by_doctor WHERE doctor_id = ? AND session_id = ?";

const GET_APPOINTMENT: &str = "SELECT body FROM {ks}.appointments WHERE appointment_id = ?";
const APPOINTMENTS_OF_DOCTOR: &str =
    "SELECT body FROM {ks}.appointments_by_doctor WHERE doctor_id = ? AND date >= ? AND date <= ?";
const APPOINTMENTS_OF_ACCOUNT: &str = "SELECT body FROM {ks}.appointments_by_account WHERE account_id = ?";
const APPOINTMENTS_OF_PERSON: &str =
    "SELECT body FROM {ks}.appointments_by_person WHERE person = ? AND date >= ? AND date <= ?";
const WAITLISTS_OF_DOCTOR: &str = "SELECT body FROM {ks}.waitlists_by_doctor WHERE doctor_id = ?";
const GET_ORDER: &str = "SELECT body FROM {ks}.orders WHERE order_id = ?";
/// Clustering order is newest first (`message_id DESC`), so the first `limit` rows are wanted.
const MESSAGES_OF: &str = "SELECT body FROM {ks}.messages_by_account WHERE account_id = ? LIMIT ?";

/// One item per key: the latest value, at the position of the key's first occurrence.
fn latest_of_each<T, K: Hash + Eq>(items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match at.entry(key(&item)) {
            Entry::Occupied(e) => out[*e.get()] = item,
            Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Packs groups of statements into batches of at most `max_statements` statements and
/// `max_bytes` bytes, never splitting a group, keeping their order.
pub(super) fn pack(groups: Vec<Writes>, max_statements: usize, max_bytes: usize) -> Vec<Writes> {
    let mut batches = Vec::new();
    let mut current = Writes::default();
    for g in groups.into_iter().filter(|g| !g.is_empty()) {
        if !current.is_empty() && (current.len() + g.len() > max_statements || current.bytes + g.bytes > max_bytes) {
            batches.push(std::mem::take(&mut current));
        }
        current.append(g);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

impl ScyllaStore {
    /// An appointment's four rows; its row in `fenced`'s partition goes to `own` instead (the
    /// fenced batches), the others to the group returned.
    fn appointment_writes(&self, a: &Appointment, fenced: Option<DoctorId>, own: &mut Vec<Writes>) -> Writes {
        let mut w = Writes::default();
        let (id, date, body) = (CqlValue::Uuid(a.id.0), CqlValue::Date(cql_date(a.date)), encode(a));
        w.push(self, PUT_APPOINTMENT, vec![id.clone(), text(body.clone())]);
        let by_doctor = vec![CqlValue::Uuid(a.doctor_id.0), date.clone(), id.clone(), text(body.clone())];
        if fenced == Some(a.doctor_id) {
            let mut g = Writes::default();
            g.push(self, PUT_APPOINTMENT_BY_DOCTOR, by_doctor);
            own.push(g);
        } else {
            w.push(self, PUT_APPOINTMENT_BY_DOCTOR, by_doctor);
        }
        w.push(self, PUT_APPOINTMENT_BY_ACCOUNT, vec![CqlValue::Uuid(a.account_id.0), id.clone(), text(body.clone())]);
        w.push(self, PUT_APPOINTMENT_BY_PERSON, vec![text(a.person.clone()), date, id, text(body)]);
        w
    }

    /// Every statement of a change, grouped by the item it writes, in the order described in
    /// the module documentation: the rows in `fenced`'s partition (if fenced), and the rest.
    async fn booking_groups(&self, w: BookingWrite, fenced: Option<DoctorId>) -> Result<(Vec<Writes>, Vec<Writes>)> {
        let mut own = Vec::new();
        let mut groups = Vec::new();
        for a in &latest_of_each(w.appointments, |a| a.id) {
            groups.push(self.appointment_writes(a, fenced, &mut own));
        }
        for o in &latest_of_each(w.orders, |o| o.id) {
            let mut g = Writes::default();
            g.push(self, PUT_ORDER, vec![CqlValue::Uuid(o.id.0), text(encode(o))]);
            g.push(
                self,
                super::payments::PUT_ORDER_BY_ACCOUNT,
                vec![CqlValue::Uuid(o.account_id.0), CqlValue::Uuid(o.id.0), text(encode(o))],
            );
            groups.push(g);
        }
        for (doctor, session, list) in &latest_of_each(w.waitlists, |(d, s, _)| (*d, *s)) {
            let mut g = Writes::default();
            if list.is_empty() {
                g.push(self, DELETE_WAITLIST, vec![CqlValue::Uuid(doctor.0), CqlValue::Uuid(session.0)]);
            } else {
                // The same value as the embedded store's row: (session id, entries).
                let body = encode(&(session, list));
                g.push(self, PUT_WAITLIST, vec![CqlValue::Uuid(doctor.0), CqlValue::Uuid(session.0), text(body)]);
            }
            groups.push(g);
        }
        for s in &latest_of_each(w.sessions, |s| s.id) {
            let mut g = Writes::default();
            self.session_writes(&mut g, s).await?;
            groups.push(g);
        }
        // The events last, with the messages: nobody is told of a change that is not stored.
        for e in &w.events {
            let mut g = Writes::default();
            self.outbox_writes(&mut g, std::slice::from_ref(e));
            groups.push(g);
        }
        for m in &latest_of_each(w.messages, |m| m.id) {
            let mut g = Writes::default();
            super::notify::push_new_message(self, &mut g, m);
            groups.push(g);
        }
        Ok((own, groups))
    }

    /// A fenced write (module documentation): the fenced batches of the doctor's partition, then
    /// the rest at `at`, a timestamp taken before the fence was checked.
    async fn apply_fenced(&self, w: BookingWrite, fence: &Fence) -> Result<()> {
        let (owned, token, at) = self.start_fenced(fence)?;
        let Owned::Schedule(doctor) = owned else { return Err(super::fence::wrong_fence("booking", owned)) };
        let deltas = self.booking_deltas(&w).await?;
        let (own, rest) = self.booking_groups(w, Some(doctor)).await?;
        // The fence's own statement shares each batch.
        let mut own = pack(own, BATCH_STATEMENTS - 1, BATCH_BYTES);
        if own.is_empty() {
            own.push(Writes::default()); // a claim alone: the fence is the write
        }
        for (i, rows) in own.into_iter().enumerate() {
            self.fenced_batch(owned, token, rows, i == 0).await?;
        }
        self.write_rest(rest, at).await?;
        crate::backoffice::BackOfficeStore::add_rollups(self, &deltas).await
    }
}

#[async_trait]
impl BookingStore for ScyllaStore {
    async fn apply_booking(&self, w: BookingWrite) -> Result<()> {
        if let Some(fence) = w.fence.clone() {
            return self.apply_fenced(w, &fence).await;
        }
        if w.is_empty() {
            return Ok(());
        }
        // The analytics counters, from the rows as stored before the change; added after it
        // (counters cannot join a logged batch: see `backoffice`).
        let deltas = self.booking_deltas(&w).await?;
        let (_, groups) = self.booking_groups(w, None).await?;
        for batch in pack(groups, BATCH_STATEMENTS, BATCH_BYTES) {
            self.run_batch(batch, BatchType::Logged).await?;
        }
        crate::backoffice::BackOfficeStore::add_rollups(self, &deltas).await
    }

    async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>> {
        match self.row::<(String,)>(GET_APPOINTMENT, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("appointments", &body)?)),
            None => Ok(None),
        }
    }

    async fn appointments_of_doctor(
        &self,
        doctor: DoctorId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Appointment>> {
        // One partition (the doctor), a clustering range on date. The rows come back by date
        // then id already; the sort only pins the order to the embedded store's byte for byte.
        let mut v: Vec<Appointment> = self
            .bodies("appointments_by_doctor", APPOINTMENTS_OF_DOCTOR, (doctor.0, cql_date(from), cql_date(to)))
            .await?;
        v.sort_by_key(|a| (a.date, a.id));
        Ok(v)
    }

    async fn appointments_of_account(&self, account: AccountId) -> Result<Vec<Appointment>> {
        // Clustering order is id order, and ids are UUIDv7: oldest first.
        let mut v: Vec<Appointment> =
            self.bodies("appointments_by_account", APPOINTMENTS_OF_ACCOUNT, (account.0,)).await?;
        v.sort_by_key(|a| a.id);
        Ok(v)
    }

    async fn appointments_of_person(&self, person: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Appointment>> {
        let mut v: Vec<Appointment> = self
            .bodies("appointments_by_person", APPOINTMENTS_OF_PERSON, (person, cql_date(from), cql_date(to)))
            .await?;
        v.sort_by_key(|a| (a.date, a.id));
        Ok(v)
    }

    async fn waitlists_of_doctor(&self, doctor: DoctorId) -> Result<Vec<(SessionId, Vec<WaitEntry>)>> {
        let mut v: Vec<(SessionId, Vec<WaitEntry>)> =
            self.bodies("waitlists_by_doctor", WAITLISTS_OF_DOCTOR, (doctor.0,)).await?;
        v.sort_by_key(|(s, _)| *s);
        Ok(v)
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        match self.row::<(String,)>(GET_ORDER, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("orders", &body)?)),
            None => Ok(None),
        }
    }

    async fn messages_of(&self, account: AccountId, limit: usize) -> Result<Vec<Message>> {
        // CQL's LIMIT must be positive.
        if limit == 0 {
            return Ok(Vec::new());
        }
        let cql_limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut v: Vec<Message> = self.bodies("messages_by_account", MESSAGES_OF, (account.0, cql_limit)).await?;
        v.sort_by_key(|m| std::cmp::Reverse(m.id));
        v.truncate(limit);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: usize, bytes: usize) -> Writes {
        Writes { statements: vec![String::new(); n], values: vec![Vec::new(); n], bytes }
    }

    #[test]
    fn batches_are_packed_without_splitting_a_group() {
        // 30 appointments (4 statements each) and 30 messages: 150 statements.
        let groups: Vec<Writes> = (0..30).map(|_| group(4, 4000)).chain((0..30).map(|_| group(1, 500))).collect();
        let sizes: Vec<usize> = pack(groups, BATCH_STATEMENTS, usize::MAX).iter().map(Writes::len).collect();
        assert_eq!(sizes, vec![100, 50], "25 appointment groups fill the first batch exactly");
        let sizes: Vec<usize> =
            pack(vec![group(4, 10), group(4, 10), group(4, 10)], 10, usize::MAX).iter().map(Writes::len).collect();
        assert_eq!(sizes, vec![8, 4], "a group never straddles two batches");
        let sizes: Vec<usize> = pack(vec![group(1, 60_000), group(1, 60_000), group(1, 200_000)], 100, BATCH_BYTES)
            .iter()
            .map(Writes::len)
            .collect();
        assert_eq!(sizes, vec![1, 1, 1], "the byte cap splits too; an oversized group goes alone");
        assert!(pack(vec![Writes::default()], 10, 10).is_empty(), "nothing to write, no batch");
        let one: Vec<usize> = pack((0..5).map(|_| group(4, 1000)).collect(), BATCH_STATEMENTS, BATCH_BYTES)
            .iter()
            .map(Writes::len)
            .collect();
        assert_eq!(one, vec![20], "an ordinary event is one batch");
    }

    /// The gap a fence in one partition leaves, closed by the write timestamp: owner A passes
    /// the fence and stalls before its other rows go out; B takes over and cancels the booking;
    /// A's late rows (the booking as A knew it) must not undo B's cancellation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_owners_late_rows_lose_to_the_newer_owners() {
        use crate::conformance::{sample_hold, stored_sample_book};
        use hospital_domain::appointment::{AppointmentStatus, CancelReason};
        let server = hospital_testkit::kassandra::KassandraServer::start();
        let connect = || async {
            ScyllaStore::connect_with(&server.uri(), "stall", true).await.unwrap().with_replication_factor(1)
        };
        let (a, b) = (connect().await, connect().await);
        a.create_schema().await.unwrap();
        let doctor = DoctorId::new();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let mut book = stored_sample_book(&a, doctor, day, 2).await;
        let fence = |token| Some(Fence::schedule(doctor, token));
        let account = AccountId::new();
        let (held, order) = sample_hold(&mut book, 0, account, "person-1");
        let w = BookingWrite {
            appointments: vec![held.clone()],
            orders: vec![order],
            fence: fence(1),
            ..Default::default()
        };
        a.apply_booking(w).await.unwrap();

        // A writes the hold again (as it knows it): its fenced batch passes, then it stalls.
        let w = BookingWrite { appointments: vec![held.clone()], fence: fence(1), ..Default::default() };
        let at = a.write_timestamp();
        let (own, rest) = a.booking_groups(w, Some(doctor)).await.unwrap();
        for rows in pack(own, BATCH_STATEMENTS - 1, BATCH_BYTES) {
            a.fenced_batch(Owned::Schedule(doctor), 1, rows, true).await.unwrap();
        }

        // B takes over and cancels the booking.
        b.apply_booking(BookingWrite { fence: fence(2), ..Default::default() }).await.unwrap();
        let cancelled = book.cancel(held.id, chrono::Utc::now(), CancelReason::Patient).unwrap();
        b.apply_booking(BookingWrite { appointments: vec![cancelled], fence: fence(2), ..Default::default() })
            .await
            .unwrap();

        // A wakes and its other rows arrive, late, at the timestamp taken before its fence.
        a.write_rest(rest.clone(), at).await.unwrap();
        let status = |v: Vec<Appointment>| v.into_iter().find(|x| x.id == held.id).map(|x| x.status);
        assert_eq!(a.appointment(held.id).await.unwrap().map(|x| x.status), Some(AppointmentStatus::Cancelled));
        assert_eq!(status(a.appointments_of_account(account).await.unwrap()), Some(AppointmentStatus::Cancelled));
        assert_eq!(
            status(a.appointments_of_person("person-1", day, day).await.unwrap()),
            Some(AppointmentStatus::Cancelled)
        );
        assert_eq!(
            status(a.appointments_of_doctor(doctor, day, day).await.unwrap()),
            Some(AppointmentStatus::Cancelled)
        );

        // What the timestamp prevents: the same rows at a timestamp taken now overwrite B's.
        a.write_rest(rest, a.write_timestamp()).await.unwrap();
        assert_eq!(a.appointment(held.id).await.unwrap().map(|x| x.status), Some(AppointmentStatus::Held));
    }

    #[test]
    fn the_latest_value_of_a_row_is_written_once_where_it_first_came() {
        let v = latest_of_each(vec![(1, 'a'), (2, 'b'), (1, 'c'), (3, 'd')], |x| x.0);
        assert_eq!(v, vec![(1, 'c'), (2, 'b'), (3, 'd')]);
    }
}
