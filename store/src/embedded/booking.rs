//! Appointments, orders, waitlists and messages on the embedded engine. An appointment is
//! written under its id, with index entries (keys only, `index`) by doctor+date, account and
//! person+date, as in schema.cql, all in the same transaction as the orders, waitlists and
//! messages of the same event.

use async_trait::async_trait;
use chrono::NaiveDate;
use hospital_domain::analytics;
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::WaitEntry;
use hospital_domain::message::Message;
use hospital_domain::order::Order;
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{AccountId, AppointmentId, DoctorId, OrderId, SessionId};
use std::collections::HashMap;

use super::catalog::put_session;
use super::engine::{from_json, to_json, Reader};
use super::index::{put_key_only, resolve, resolve_entries};
use super::keys::Key;
use super::kv::LogHead;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::outbox::{account_stream, PendingEvent, Placed, LOG_TTL};
use crate::traits::{BookingStore, BookingWrite};

/// The appointment's three index entries (by doctor and date, account, person and date), keys
/// only: the row itself is under its id (`index`). An appointment's doctor, date, account and
/// person never change (a reschedule is a new appointment), so its keys do not either.
pub(super) fn put_appointment_index(ctx: &mut super::engine::WriteCtx<'_>, a: &Appointment) {
    put_key_only(ctx, APPOINTMENTS_BY_DOCTOR, Key::new().uuid(&a.doctor_id.0).date(a.date).uuid(&a.id.0));
    put_key_only(ctx, APPOINTMENTS_BY_ACCOUNT, Key::new().uuid(&a.account_id.0).uuid(&a.id.0));
    put_key_only(ctx, APPOINTMENTS_BY_PERSON, Key::new().str(&a.person).date(a.date).uuid(&a.id.0));
}

/// Refuses a write whose token is older than the newest seen for its resource, else records
/// it: in the write's own transaction, so a refused write leaves nothing behind and no write of
/// an older owner can land after a newer owner's first write. A write past its lease's deadline
/// (`Fence::until_us`) is refused as on ScyllaDB, so a fence means the same on both stores (one
/// node has no clocks to disagree, but its actor's lease can run out all the same). No fence (one
/// node, whose actors hold no lease): nothing to check.
pub(super) fn check_fence(ctx: &mut super::engine::WriteCtx<'_>, fence: Option<&crate::Fence>) -> Result<()> {
    let Some(f) = fence else { return Ok(()) };
    if f.lapsed_at(crate::lease::now_us()) {
        return Err(crate::Conflict::StaleFence.into());
    }
    let key = Key::new().str(&f.resource);
    let seen: Option<u64> = ctx.get(FENCES, &key)?;
    if seen.is_some_and(|s| s > f.token) {
        return Err(crate::Conflict::StaleFence.into());
    }
    ctx.put(FENCES, &key, &f.token);
    Ok(())
}

/// The account logs `events` go to: each account's head read once, and for each event the index
/// of its account's head. Read before the change's rows are pending: a read looks through the
/// closure's own writes first, and a burst's merged write has thousands of them (read after them,
/// every account's head cost a scan of them all, O(n²) in the burst).
struct Heads {
    heads: Vec<(String, LogHead)>,
    of_event: Vec<usize>,
}

fn read_heads(ctx: &super::engine::WriteCtx<'_>, events: &[PendingEvent]) -> Result<Heads> {
    let mut heads = Vec::new();
    let mut index: HashMap<AccountId, usize> = HashMap::with_capacity(events.len());
    let mut of_event = Vec::with_capacity(events.len());
    for e in events {
        let i = match index.get(&e.account) {
            Some(&i) => i,
            None => {
                let stream = account_stream(e.account);
                let head = LogHead::read(ctx, &stream)?;
                heads.push((stream, head));
                index.insert(e.account, heads.len() - 1);
                heads.len() - 1
            }
        };
        of_event.push(i);
    }
    Ok(Heads { heads, of_event })
}

/// Numbers `events` in their accounts' logs (`heads`, read for them), each account's in order
/// (one counter write per account), and tells each event where it went (`PendingEvent::placed`:
/// the copies the actor hands the bus once the write is durable see it). Their ids were made
/// with them (`loggable_in_place`), so none can be logged already and no id marker is kept.
fn log_in_place(
    ctx: &mut super::engine::WriteCtx<'_>,
    Heads { mut heads, of_event }: Heads,
    events: &[PendingEvent],
    bodies: Vec<Vec<u8>>,
    at_ms: u64,
) {
    for ((e, body), i) in events.iter().zip(bodies).zip(of_event) {
        let (stream, head) = &mut heads[i];
        let seq = head.push(ctx, stream, body, LOG_TTL);
        e.place(Placed { seq, at_ms });
    }
    for (_, head) in heads {
        head.write(ctx);
    }
}

#[async_trait]
impl BookingStore for EmbeddedStore {
    async fn apply_booking(&self, mut w: BookingWrite) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let (zone, rollups) = (self.zone, self.rollups);
        // Where this store keeps the event log, the plain events are numbered in it here, in the
        // change's own transaction: durable with it, so they need no outbox row, no second write
        // and no removal (a third of a hold's writer time went there: docs/benchmarks.md). The
        // rest (an unread count, read when logged) and every event elsewhere take the outbox.
        let (in_place, outboxed): (Vec<PendingEvent>, Vec<PendingEvent>) =
            std::mem::take(&mut w.events).into_iter().partition(|e| self.keeps_event_log && e.loggable_in_place());
        let at_ms = super::engine::now_ms();
        // Rows are serialised here, on the caller's task, once each: the closure runs on the
        // store's one writer thread, which every hold of the node waits on, so it only reads,
        // counts and inserts (an appointment's four copies share one encoding).
        let appointment_rows: Vec<Vec<u8>> = w.appointments.iter().map(to_json).collect();
        let order_rows: Vec<Vec<u8>> = w.orders.iter().map(to_json).collect();
        let event_rows: Vec<Vec<u8>> = outboxed.iter().map(to_json).collect();
        let log_rows: Vec<Vec<u8>> = in_place.iter().map(|e| e.log_body(at_ms)).collect();
        self.engine
            .write(move |ctx| {
                check_fence(ctx, w.fence.as_ref())?;
                let heads = read_heads(ctx, &in_place)?;
                // The analytics counters of the change, from each row's stored and new version,
                // added in this same transaction (read before anything is overwritten).
                let mut deltas = Vec::new();
                if rollups {
                    // A burst of holds is mostly one session's: read (and decode) it once.
                    let mut read_sessions: Vec<(SessionId, Option<ClinicSession>)> = Vec::new();
                    for a in &w.appointments {
                        let old: Option<Appointment> = if w.created.contains(&a.id.0) {
                            None
                        } else {
                            ctx.get(APPOINTMENTS, &Key::new().uuid(&a.id.0))?
                        };
                        let start = if old.is_none() {
                            let sid = a.slot.session_id;
                            let session = match w.sessions.iter().find(|s| s.id == sid) {
                                Some(s) => Some(s),
                                None => match read_sessions.iter().position(|(id, _)| *id == sid) {
                                    Some(i) => read_sessions[i].1.as_ref(),
                                    None => {
                                        let s = ctx.get::<ClinicSession>(CLINIC_SESSIONS, &Key::new().uuid(&sid.0))?;
                                        read_sessions.push((sid, s));
                                        read_sessions.last().and_then(|(_, s)| s.as_ref())
                                    }
                                },
                            };
                            session.and_then(|s| s.segments.get(a.slot.segment as usize).map(|g| g.start))
                        } else {
                            None
                        };
                        deltas.extend(analytics::appointment_deltas(old.as_ref(), a, start, zone));
                    }
                    for o in &w.orders {
                        let old: Option<Order> = if w.created.contains(&o.id.0) {
                            None
                        } else {
                            ctx.get(ORDERS, &Key::new().uuid(&o.id.0))?
                        };
                        deltas.extend(analytics::order_deltas(old.as_ref(), o, zone));
                    }
                    for (doctor, session, list) in &w.waitlists {
                        let key = Key::new().uuid(&doctor.0).uuid(&session.0);
                        let old: Option<(SessionId, Vec<WaitEntry>)> = ctx.get(WAITLISTS_BY_DOCTOR, &key)?;
                        deltas.extend(analytics::waitlist_deltas(
                            old.map(|o| o.1).as_deref().unwrap_or(&[]),
                            list,
                            zone,
                        ));
                    }
                }
                for s in &w.sessions {
                    put_session(ctx, s)?;
                }
                for (a, row) in w.appointments.iter().zip(appointment_rows) {
                    ctx.put_raw(APPOINTMENTS, Key::new().uuid(&a.id.0).into_bytes(), row, None);
                    put_appointment_index(ctx, a);
                }
                for (o, row) in w.orders.iter().zip(order_rows) {
                    ctx.put_raw(ORDERS, Key::new().uuid(&o.id.0).into_bytes(), row, None);
                    super::payments::put_order_index(ctx, o);
                }
                for (doctor, session, list) in &w.waitlists {
                    let key = Key::new().uuid(&doctor.0).uuid(&session.0);
                    if list.is_empty() {
                        ctx.delete(WAITLISTS_BY_DOCTOR, &key);
                    } else {
                        ctx.put(WAITLISTS_BY_DOCTOR, &key, &(session, list));
                    }
                }
                for m in &w.messages {
                    super::notify::put_new_message(ctx, m)?;
                }
                super::outbox::put_event_rows(ctx, outboxed.iter().zip(event_rows));
                super::backoffice::add_deltas(ctx, deltas)?;
                // Last, so nothing after it can fail the closure once the events are told their
                // numbers (a failed commit still can: the caller then hands them to nobody).
                log_in_place(ctx, heads, &in_place, log_rows, at_ms);
                Ok(())
            })
            .await
    }

    async fn appointment(&self, id: AppointmentId) -> Result<Option<Appointment>> {
        self.engine.read(|r| r.get(APPOINTMENTS, &Key::new().uuid(&id.0)))
    }

    async fn appointments_of_doctor(
        &self,
        doctor: DoctorId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Appointment>> {
        let all: Vec<Appointment> =
            self.engine.read(|r| resolve(r, APPOINTMENTS_BY_DOCTOR, &Key::new().uuid(&doctor.0), APPOINTMENTS))?;
        Ok(all.into_iter().filter(|a| a.date >= from && a.date <= to).collect())
    }

    async fn appointments_of_account(&self, account: AccountId) -> Result<Vec<Appointment>> {
        self.engine.read(|r| resolve(r, APPOINTMENTS_BY_ACCOUNT, &Key::new().uuid(&account.0), APPOINTMENTS))
    }

    async fn appointments_of_person(&self, person: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<Appointment>> {
        // Only the dates asked for (the key is person, date, id), as on ScyllaDB: the real-name
        // rules read about three months around the day before every hold, and a patient who
        // comes every week has years of rows. A person with none costs no read (`presence`).
        let partition = Key::new().str(person);
        let start = partition.clone().date(from);
        self.engine.read(|r| {
            if !r.may_hold(APPOINTMENTS_BY_PERSON, partition.bytes()) {
                return Ok(Vec::new());
            }
            let entries = match to.succ_opt() {
                Some(after) => {
                    let end = partition.clone().date(after);
                    r.range(APPOINTMENTS_BY_PERSON, start.bytes(), end.bytes(), usize::MAX)?
                }
                None => r.scan_from(APPOINTMENTS_BY_PERSON, partition.bytes(), start.bytes(), usize::MAX)?,
            };
            resolve_entries(r, APPOINTMENTS_BY_PERSON, entries, APPOINTMENTS)
        })
    }

    async fn waitlists_of_doctor(&self, doctor: DoctorId) -> Result<Vec<(SessionId, Vec<WaitEntry>)>> {
        self.engine.read(|r| r.scan(WAITLISTS_BY_DOCTOR, &Key::new().uuid(&doctor.0)))
    }

    async fn order(&self, id: OrderId) -> Result<Option<Order>> {
        self.engine.read(|r| r.get(ORDERS, &Key::new().uuid(&id.0)))
    }

    async fn messages_of(&self, account: AccountId, limit: usize) -> Result<Vec<Message>> {
        // Message ids are v7: key order is time order; the newest `limit`, read from the end of
        // the account's partition, not all of it.
        let (prefix, end) = (Key::new().uuid(&account.0), Key::new().uuid(&account.0).uuid(&uuid::Uuid::max()));
        let rows = self.engine.read(|r| r.scan_back(MESSAGES_BY_ACCOUNT, prefix.bytes(), end.bytes(), limit))?;
        rows.iter().map(|(_, v)| from_json(MESSAGES_BY_ACCOUNT, v)).collect()
    }
}
