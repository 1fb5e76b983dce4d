//! A doctor's schedule in memory (`ScheduleState`: the `DoctorBook`, its write pipeline and
//! clocks) and what each change does to it: the write it needs, the effects, messages and events.

use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus, CancelReason};
use hospital_domain::booking::{BookError, DoctorBook, HoldRequest, SessionBook, WaitEntry};
use hospital_domain::jobs::Job;
use hospital_domain::live::{Availability, PersonalEvent, TopicEvent};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Segment, SessionStatus, SlotId};
use hospital_domain::{AccountId, AppointmentId, DoctorId, Fen, OrderId, PatientId, SessionId};
use hospital_store::{BookingWrite, PendingEvent, StoreError};
use ractor::RpcReplyPort;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::msg::*;
use crate::booking::BookingError;
use crate::config::ActorConfig;
use crate::deps::Context;
use crate::effects::Effect;
use crate::idle::IdleClock;
use crate::pipeline::WritePipeline;

/// Start-up arguments: which doctor, and the shared dependencies.
pub struct ScheduleArgs {
    pub doctor: DoctorId,
    pub ctx: Arc<Context>,
}

/// The live state of one doctor's schedule.
pub struct ScheduleState {
    pub(super) doctor: DoctorId,
    pub(super) ctx: Arc<Context>,
    pub(super) book: DoctorBook,
    /// The local date the window was computed on; when the day changes the window moves.
    pub(super) loaded_on: NaiveDate,
    pub(super) pipeline: WritePipeline,
    pub(super) idle: IdleClock,
    pub(super) expiry: Option<ractor::concurrency::JoinHandle<()>>,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: crate::ownership::Held,
    /// The persons' turns of the change being made: taken for its offers (`screen_waitlist`) or
    /// brought by a hold's booker (`Booker::turn`), let go once its write is durable (`persist`),
    /// or when the change writes nothing.
    pub(super) turns: Vec<crate::real_name::Turn>,
}

pub(super) async fn load_window(doctor: DoctorId, ctx: &Context) -> Result<(Vec<SessionBook>, NaiveDate), StoreError> {
    let today = ctx.config.zone.local_date(Utc::now());
    // Yesterday too: a session that ran late last night may still be asked about.
    let from = today - Days::days(1);
    let to = today + Days::days(i64::from(ctx.config.schedule_days_ahead));
    let data = &ctx.stores.data;
    let sessions = data.sessions_of_doctor(doctor, from, to).await?;
    let mut by_session: HashMap<SessionId, Vec<Appointment>> = HashMap::new();
    for a in data.appointments_of_doctor(doctor, from, to).await? {
        by_session.entry(a.slot.session_id).or_default().push(a);
    }
    let mut waitlists: HashMap<SessionId, Vec<WaitEntry>> =
        data.waitlists_of_doctor(doctor).await?.into_iter().collect();
    let books = sessions
        .into_iter()
        .map(|s| {
            let id = s.id;
            SessionBook::new(s, by_session.remove(&id).unwrap_or_default(), waitlists.remove(&id).unwrap_or_default())
        })
        .collect();
    Ok((books, today))
}

/// The sessions a write changes (their places, their facts or their waitlists), once each.
fn touched_sessions(w: &BookingWrite) -> Vec<SessionId> {
    let mut touched: Vec<SessionId> = w.appointments.iter().map(|a| a.slot.session_id).collect();
    touched.extend(w.sessions.iter().map(|s| s.id));
    touched.extend(w.waitlists.iter().map(|x| x.1));
    touched.sort();
    touched.dedup();
    touched
}

/// Publishes a session's new places left on the doctor's and the department's topics (BOOK-2).
pub(super) fn publish_availability(events: &crate::events::Events, a: Availability) {
    let department = a.department_id;
    events.topic(TopicEvent::availability(format!("doctor:{}", a.doctor_id), a.clone()));
    events.topic(TopicEvent::availability(format!("department:{department}"), a));
}

pub(super) fn chrono(d: Duration) -> Days {
    Days::from_std(d).unwrap_or(Days::minutes(15))
}

pub(super) fn message(a: &Appointment, kind: MessageKind, title: &str, body: String) -> Message {
    Message::new(a.account_id, kind, title, body, Some(a.id.to_string()), Utc::now())
}

/// A message to one in a session's line (they have no appointment to name; `session` if the
/// message names the session).
pub(super) fn message_to_waiting(
    e: &WaitEntry,
    session: Option<SessionId>,
    kind: MessageKind,
    title: &str,
    body: String,
) -> Message {
    Message::new(e.account_id, kind, title, body, session.map(|s| s.to_string()), Utc::now())
}

/// The first segment of `session` still open for booking at `now`; the number of segments when
/// none is (`ClinicSession::open_from`). What a line may be offered, and what keeps people out of
/// it.
pub(super) fn open_from(ctx: &Context, session: &ClinicSession, now: DateTime<Utc>) -> usize {
    session.open_from(&ctx.config.zone, ctx.config.booking_close(), now)
}

/// The job that publishes `session`'s places as its next segment closes to booking, if one is
/// still to close (`ScheduleMsg::BookingClosed`).
pub fn closing_job(config: &ActorConfig, session: &ClinicSession) -> Option<Job> {
    let now = Utc::now();
    let due = session.next_closing(&config.zone, config.booking_close(), now)?;
    Some(Job::booking_closes(session.id, session.doctor_id, due, now))
}

/// The job that closes `session` at its end (plus the grace): `attendance` does the closing.
fn close_job(config: &ActorConfig, session: &ClinicSession) -> Option<Job> {
    let grace = chrono::Duration::from_std(config.jobs.session_close_grace).unwrap_or_default();
    let due = session.segment_end(None, &config.zone)? + grace;
    Some(Job::close_session(session.id, session.doctor_id, due, Utc::now()))
}

/// The durable jobs a new session needs: its close at its end, and the publishing of its places
/// as each segment closes to booking. Scheduled before the session is written (a job whose
/// session never was finds nothing to do), by the doctor's actor or by whatever writes sessions
/// past it (the demo data).
pub fn session_jobs(config: &ActorConfig, session: &ClinicSession) -> Vec<Job> {
    [close_job(config, session), closing_job(config, session)].into_iter().flatten().collect()
}

impl ScheduleState {
    /// Queues `write`, then (once durable) runs `effects` and answers with `answer`.
    pub(super) fn persist<T: Send + 'static>(
        &mut self,
        write: BookingWrite,
        effects: Vec<Effect>,
        reply: Option<Reply<T>>,
        answer: Result<T, BookingError>,
    ) {
        let sink = self.ctx.effects.clone();
        let events = self.ctx.events.clone();
        let mut write = write;
        write.fence = self.held.fence();
        // Events a change names itself (an appointment whose time moved, its row unchanged) go
        // after those its rows make.
        let named = std::mem::take(&mut write.events);
        write.events = self.personal_events(&write);
        write.events.extend(named);
        // Serialised once, here, for the outbox row and the event log both.
        write.events.iter_mut().for_each(PendingEvent::encode);
        let personal = write.events.clone();
        let touched = touched_sessions(&write);
        let topics = touched.iter().filter_map(|sid| self.availability(*sid)).collect();
        let confirmed: Vec<Appointment> =
            write.appointments.iter().filter(|a| a.status == AppointmentStatus::Confirmed).cloned().collect();
        let notify = self.ctx.notify.clone();
        // The offers' persons' turns last until the offers are durable (`screen_waitlist`).
        let turns = std::mem::take(&mut self.turns);
        // The sessions' new places left go to their topics with the batch (`pipeline`).
        self.pipeline.push_with_topics(write, topics, move |r| {
            let answer = match r {
                Ok(()) => {
                    for e in effects {
                        sink.send(e);
                    }
                    // Confirmed bookings (a payment, a move) get their confirmation and reminders.
                    notify.confirmed(&confirmed);
                    // Only durable changes are announced.
                    events.durable(personal);
                    answer
                }
                Err(e) => Err(BookingError::from(e)),
            };
            if let Some(reply) = reply {
                let _ = reply.send(answer);
            }
            drop(turns);
        });
        // After the write is queued (see `schedule::gate` for why this order keeps the gate from
        // ever refusing what this actor would accept).
        self.ctx.system.gate().publish(self.doctor, touched.iter().filter_map(|s| self.book.session(*s)));
    }

    /// What each account sees of a change: its appointments, orders and messages, written with
    /// the change (the outbox) and announced once it is durable.
    fn personal_events(&self, w: &BookingWrite) -> Vec<PendingEvent> {
        let appointments =
            w.appointments.iter().map(|a| PendingEvent::new(a.account_id, PersonalEvent::Appointment(a.into())));
        let orders = w.orders.iter().map(|o| PendingEvent::new(o.account_id, PersonalEvent::Order(o.into())));
        let messages = w.messages.iter().map(PendingEvent::message);
        appointments.chain(orders).chain(messages).collect()
    }

    pub(super) fn availability(&self, session: SessionId) -> Option<Availability> {
        self.book.session(session).map(|b| SessionAvailability::of(b).live(&self.ctx.config, Utc::now()))
    }

    pub(super) fn waitlist_write(&self, session: SessionId) -> (DoctorId, SessionId, Vec<WaitEntry>) {
        let list = self.book.session(session).map(|b| b.waitlist.iter().cloned().collect()).unwrap_or_default();
        (self.doctor, session, list)
    }

    /// Offers freed places in `session` to its waitlist, adding the offers to `w`. Those first in
    /// line whom the real-name rules no longer allow a place here (they booked in the department
    /// that day since they joined, reached the weekly cap, or were banned) leave the line first,
    /// told why; those booking somewhere else at this instant are passed over this time and keep
    /// their places in line; the places go to those after them.
    pub(super) async fn offer(&mut self, session: SessionId, w: &mut BookingWrite) {
        let hold_for = chrono(self.ctx.config.waitlist_hold_ttl);
        let Some(b) = self.book.session(session) else { return };
        // A place freed once its time is past (an unpaid hold lapsing late) is no use to anyone
        // in line; once the clinic is over nothing is offered, and closing the session ends the
        // line (`attendance`).
        let now = Utc::now();
        let from = open_from(&self.ctx, &b.session, now);
        if from == b.session.segments.len() {
            return;
        }
        let before = b.waitlist.len();
        let passed_over = self.screen_waitlist(session, from, w).await;
        let Some(b) = self.book.session_mut(session) else { return };
        let offers = b.offer_to_waitlist(now, from, hold_for, &passed_over, || (AppointmentId::new(), OrderId::new()));
        if offers.is_empty() && before == b.waitlist.len() {
            return;
        }
        self.book.reindex(session);
        for a in offers {
            metrics::counter!("booking_waitlist_offers_total").increment(1);
            // Minted just now, by the closure above.
            w.created.extend([a.id.0, a.order_id.0]);
            w.orders.push(Order::registration(&a));
            w.messages.push(message(
                &a,
                MessageKind::WaitlistOffer,
                "候补成功",
                format!(
                    "{} {} 有号了：已为{}保留，请在{}前支付，逾期将让给下一位。",
                    a.date,
                    a.period.label(),
                    a.patient_name,
                    self.ctx.config.zone.show(a.hold_expires_at)
                ),
            ));
            w.appointments.push(a);
        }
        w.waitlists.push(self.waitlist_write(session));
    }

    /// Takes off `session`'s waitlist those who would be offered its free places but whom the
    /// real-name rules now refuse, with a message each, and returns those passed over this time.
    /// Each check runs in the person's turn (`real_name`), as a booking's does, and one let
    /// through keeps the turn until the offer is durable (`turns`), so the same person's booking
    /// elsewhere reads a history that holds the offer. The turn is tried, never awaited: the
    /// account's actor holding it may be waiting on this very actor. A person whose turn is taken
    /// is booking somewhere at this instant: passed over, they keep their place in line, and the
    /// next tick offers again (`expire_due`). The store is read for the first in line only (as
    /// many as there are places), again after each removal, so a long line costs nothing when
    /// places are few. A read that fails leaves the line as it is: they met the rules when they
    /// joined, and a place is better offered than lost.
    async fn screen_waitlist(&mut self, session: SessionId, open_from: usize, w: &mut BookingWrite) -> Vec<PatientId> {
        let now = Utc::now();
        // Those the rules let through once are not read again when a removal moves the line up.
        let mut passed = Vec::new();
        let mut busy = Vec::new();
        loop {
            let Some(b) = self.book.session(session) else { return busy };
            let head: Vec<WaitEntry> = b
                .offer_candidates(now, open_from, &busy)
                .filter(|e| !passed.contains(&e.patient_id))
                .cloned()
                .collect();
            let (department, date) = (b.session.department_id, b.session.date);
            let mut refused = Vec::new();
            // Someone passed over or removed: the line's head moved up, look at it again.
            let mut moved = false;
            for e in head {
                let Some(turn) = crate::real_name::try_turn(&self.ctx, &e.person).await else {
                    metrics::counter!("booking_waitlist_passed_over_total").increment(1);
                    busy.push(e.patient_id);
                    moved = true;
                    continue;
                };
                match crate::real_name::check(&self.ctx, &e.person, department, date, None).await {
                    Err(BookingError::Rule { reason, .. }) => refused.push((e, reason)),
                    _ => {
                        passed.push(e.patient_id);
                        self.turns.push(turn);
                    }
                }
            }
            let Some(b) = self.book.session_mut(session) else { return busy };
            for (e, reason) in refused {
                if !b.leave_waitlist(e.patient_id) {
                    continue;
                }
                moved = true;
                metrics::counter!("booking_waitlist_screened_out_total").increment(1);
                let why = crate::real_name::reason_zh(reason);
                w.messages.push(message_to_waiting(
                    &e,
                    None,
                    MessageKind::BookingFailure,
                    "候补未成功",
                    format!(
                        "{date} {} 有号了，但{}{why}，不能再预约，已退出候补。",
                        b.session.period.label(),
                        e.patient_name
                    ),
                ));
            }
            if !moved {
                return busy;
            }
        }
    }

    /// A segment of `session` closed to booking: its places go out again, that segment closed,
    /// once the writes queued before are durable (the pipeline publishes in order, so this never
    /// shows places a later write already took); the answer, when the next segment closes.
    pub(super) fn booking_closed(&self, session: SessionId, reply: RpcReplyPort<Option<DateTime<Utc>>>) {
        let now = Utc::now();
        let open = self.book.session(session).filter(|b| b.session.status == SessionStatus::Open);
        let Some(b) = open else {
            let _ = reply.send(None);
            return;
        };
        let next = b.session.next_closing(&self.ctx.config.zone, self.ctx.config.booking_close(), now);
        let places = SessionAvailability::of(b).live(&self.ctx.config, now);
        // A failed batch publishes nothing and restarts this actor: no answer then, so the job's
        // call is made again, to the successor, which publishes.
        self.pipeline.push_with_topics(BookingWrite::default(), vec![places], move |r| {
            if r.is_ok() {
                let _ = reply.send(next);
            }
        });
    }

    /// Refuses booking into `slot` once it has closed (`late_booking` after its end, or
    /// `booking_cutoff` before its start) or its session is of an earlier day: the window keeps
    /// yesterday's sessions for what is asked about them, but a clinic that is over takes no new
    /// booking or move.
    pub(super) fn still_open(&self, slot: SlotId, now: DateTime<Utc>) -> Result<(), BookingError> {
        let (zone, close) = (&self.ctx.config.zone, self.ctx.config.booking_close());
        match self.book.session(slot.session_id) {
            Some(b) if b.session.booking_closed(Some(slot.segment), zone, close, now) => {
                Err(BookingError::Book(BookError::BookingClosed))
            }
            _ => Ok(()),
        }
    }

    pub(super) fn hold(
        &mut self,
        slot: SlotId,
        booker: Booker,
    ) -> Result<(BookingWrite, Appointment, Order), BookingError> {
        let now = Utc::now();
        self.still_open(slot, now)?;
        let req = HoldRequest {
            appointment_id: AppointmentId::new(),
            order_id: OrderId::new(),
            account_id: booker.account_id,
            patient_id: booker.patient_id,
            person: booker.person,
            patient_name: booker.patient_name,
            idempotency_key: booker.idempotency_key,
            now,
            hold_for: chrono(self.ctx.config.hold_ttl),
        };
        let had_waiting =
            self.book.session(slot.session_id).is_some_and(|b| b.waitlist.iter().any(|x| x.person == req.person));
        let a = self.book.hold(slot, &req)?;
        let order = Order::registration(&a);
        let mut w = BookingWrite {
            appointments: vec![a.clone()],
            orders: vec![order.clone()],
            created: [req.appointment_id.0, req.order_id.0].into(),
            ..Default::default()
        };
        if had_waiting {
            w.waitlists.push(self.waitlist_write(slot.session_id));
        }
        Ok((w, a, order))
    }

    pub(super) fn confirm(
        &mut self,
        id: AppointmentId,
        stored: Option<Appointment>,
    ) -> Result<(BookingWrite, Appointment), BookingError> {
        let now = Utc::now();
        let session = match self.book.session_of(id) {
            Some(s) => s,
            None => {
                // Paid after the hold lapsed: take a place in the same slot again if one is free.
                let old = stored.ok_or(BookingError::NoSuchAppointment)?;
                if old.status == AppointmentStatus::Confirmed {
                    return Ok((BookingWrite::default(), old));
                }
                // Held in the store but gone from memory: its lapse is being written (queued on
                // this actor's pipeline before anything we write now), so it counts as lapsed.
                if !matches!(old.status, AppointmentStatus::Expired | AppointmentStatus::Held) {
                    return Err(BookingError::Book(BookError::NoSuchAppointment));
                }
                let req = HoldRequest {
                    appointment_id: old.id,
                    order_id: old.order_id,
                    account_id: old.account_id,
                    patient_id: old.patient_id,
                    person: old.person.clone(),
                    patient_name: old.patient_name.clone(),
                    idempotency_key: old.idempotency_key.clone(),
                    now,
                    hold_for: Days::minutes(1),
                };
                self.book.hold(old.slot, &req)?;
                old.slot.session_id
            }
        };
        let b = self.book.session_mut(session).ok_or(BookingError::NoSuchAppointment)?;
        let a = b.confirm(id, now)?;
        metrics::counter!("booking_confirmed_total").increment(1);
        let msg = message(
            &a,
            MessageKind::BookingSuccess,
            "预约成功",
            format!(
                "{}：{} {} 第{}号，挂号单号 {}。",
                a.patient_name,
                a.date,
                a.period.label(),
                a.place,
                a.slip_no.clone().unwrap_or_default()
            ),
        );
        Ok((BookingWrite { appointments: vec![a.clone()], messages: vec![msg], ..Default::default() }, a))
    }

    pub(super) async fn cancel(
        &mut self,
        id: AppointmentId,
        account: Option<AccountId>,
    ) -> Result<(BookingWrite, Vec<Effect>, Appointment), BookingError> {
        let now = Utc::now();
        let session = self.book.session_of(id).ok_or(BookingError::NoSuchAppointment)?;
        let b = self.book.session_mut(session).expect("indexed");
        let current = b.appointment(id).cloned().ok_or(BookingError::NoSuchAppointment)?;
        if let Some(acc) = account {
            if current.account_id != acc {
                // Someone else's appointment is as good as absent.
                return Err(BookingError::NoSuchAppointment);
            }
            if current.status == AppointmentStatus::Confirmed {
                let seg = &b.session.segments[current.slot.segment as usize];
                let cutoff =
                    self.ctx.config.zone.to_utc(current.date, seg.start) - chrono(self.ctx.config.cancel_cutoff);
                if now >= cutoff {
                    return Err(BookingError::PastCutoff { cutoff });
                }
            }
        }
        let a = b.cancel(id, now, CancelReason::Patient)?;
        self.book.reindex(session);
        metrics::counter!("booking_cancelled_total").increment(1);
        let effect = match current.status {
            AppointmentStatus::Held => Effect::CloseOrder(a.order_id),
            _ => Effect::Refund { order: a.order_id, reason: "预约取消".into() },
        };
        let mut w = BookingWrite { appointments: vec![a.clone()], ..Default::default() };
        self.offer(session, &mut w).await;
        Ok((w, vec![effect], a))
    }

    pub(super) async fn move_to(
        &mut self,
        id: AppointmentId,
        account: AccountId,
        slot: SlotId,
    ) -> Result<(BookingWrite, Appointment), BookingError> {
        let now = Utc::now();
        let from_session = self.book.session_of(id).ok_or(BookingError::NoSuchAppointment)?;
        let current = self.book.find(id).cloned().ok_or(BookingError::NoSuchAppointment)?;
        if current.account_id != account {
            return Err(BookingError::NoSuchAppointment);
        }
        // Only a hold or a confirmed booking moves: a checked-in, seen or missed one is history.
        if !matches!(current.status, AppointmentStatus::Held | AppointmentStatus::Confirmed) {
            let e = hospital_domain::appointment::InvalidTransition {
                from: current.status,
                event: hospital_domain::appointment::AppointmentEvent::Cancel,
            };
            return Err(BookingError::Book(BookError::Transition(e)));
        }
        if !self.book.sessions.contains_key(&slot.session_id) {
            return Err(BookingError::OtherDoctor);
        }
        self.still_open(slot, now)?;
        let new_id = AppointmentId::new();
        // Moving into a session where the person waits takes them off its waitlist (as a hold
        // does): that change is saved with the move.
        let mut had_waiting = false;
        let (old, new) = if from_session == slot.session_id {
            self.book.session_mut(from_session).expect("present").move_within(id, slot.segment, new_id, now)?
        } else {
            had_waiting = self
                .book
                .session(slot.session_id)
                .is_some_and(|b| b.waitlist.iter().any(|w| w.person == current.person));
            // Take the new place first; if that fails nothing changed. Then free the old one.
            let new = self.book.session_mut(slot.session_id).expect("present").accept_moved(
                &current,
                slot.segment,
                new_id,
                now,
            )?;
            let cancelled =
                self.book.session_mut(from_session).expect("present").cancel(id, now, CancelReason::Rescheduled);
            let mut old = match cancelled {
                Ok(a) => a,
                Err(e) => {
                    // Give the new place back: nothing may stay taken that was never saved.
                    self.book.session_mut(slot.session_id).expect("present").forget(new_id);
                    return Err(e.into());
                }
            };
            old.rescheduled_to = Some(new_id);
            (old, new)
        };
        self.book.reindex(from_session);
        self.book.reindex(slot.session_id);
        let mut w =
            BookingWrite { appointments: vec![old, new.clone()], created: [new_id.0].into(), ..Default::default() };
        if had_waiting {
            w.waitlists.push(self.waitlist_write(slot.session_id));
        }
        self.offer(from_session, &mut w).await;
        Ok((w, new))
    }

    /// 号源调整 of times: the new segments in memory, the session's write, and for every live
    /// appointment whose segment moved a `TimeChanged` message and its appointment event (the
    /// appointment's row is unchanged: its time is its segment's). Appointments keep their
    /// segment and place, and segments stay in time order, so the queue's order (by segment and
    /// place) stays the order of the new times.
    pub(super) async fn set_segments(
        &mut self,
        session: SessionId,
        segments: Vec<Segment>,
    ) -> Result<(BookingWrite, (ClinicSession, Vec<Appointment>)), BookingError> {
        let b = self.book.session_mut(session).ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        if b.session.status == SessionStatus::Stopped {
            return Err(BookingError::Book(BookError::SessionStopped));
        }
        let moved = b.set_segments(segments)?;
        let s = b.session.clone();
        let mut w = BookingWrite { sessions: vec![s.clone()], ..Default::default() };
        for a in &moved {
            let seg = &s.segments[a.slot.segment as usize];
            w.messages.push(message(
                a,
                MessageKind::TimeChanged,
                "就诊时间变更",
                format!(
                    "{} {} 的门诊时间已调整：{}的就诊时间改为 {}-{}，就诊序号不变（第{}号）。",
                    a.date,
                    a.period.label(),
                    a.patient_name,
                    seg.start.format("%H:%M"),
                    seg.end.format("%H:%M"),
                    a.place
                ),
            ));
            w.events.push(PendingEvent::new(a.account_id, PersonalEvent::Appointment(a.into())));
        }
        // Places a larger quota freed go to the waitlist first, as with 加号.
        self.offer(session, &mut w).await;
        // The segments' closings move with their times (a job already due publishes, and finds
        // the next closing from the new times).
        if let Some(job) = closing_job(&self.ctx.config, &s) {
            self.ctx.stores.data.put_job(&job).await?;
        }
        metrics::counter!("booking_session_retimed_total").increment(1);
        Ok((w, (s, moved)))
    }

    pub(super) fn stop(&mut self, session: SessionId) -> Result<(BookingWrite, Vec<Effect>, StopReport), BookingError> {
        let now = Utc::now();
        let b = self.book.session_mut(session).ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        let before: HashMap<AppointmentId, AppointmentStatus> = b.live().map(|a| (a.id, a.status)).collect();
        let (cancelled, waiting) = b.stop(now);
        let stopped = b.session.clone();
        self.book.reindex(session);
        let mut w = BookingWrite { sessions: vec![stopped.clone()], ..Default::default() };
        let mut effects = Vec::new();
        for a in &cancelled {
            let paid = before.get(&a.id) != Some(&AppointmentStatus::Held);
            effects.push(if paid {
                Effect::Refund { order: a.order_id, reason: "停诊退费".into() }
            } else {
                Effect::CloseOrder(a.order_id)
            });
            w.messages.push(message(
                a,
                MessageKind::ClinicStopped,
                "停诊通知",
                format!(
                    "{} {} 的门诊因故停诊，{}的预约已取消{}。",
                    a.date,
                    a.period.label(),
                    a.patient_name,
                    if paid { "，挂号费将原路退回" } else { "" }
                ),
            ));
            w.appointments.push(a.clone());
        }
        for e in &waiting {
            w.messages.push(message_to_waiting(
                e,
                Some(session),
                MessageKind::ClinicStopped,
                "停诊通知",
                format!("{} {} 的门诊因故停诊，{}的候补已取消。", stopped.date, stopped.period.label(), e.patient_name),
            ));
        }
        w.waitlists.push((self.doctor, session, vec![]));
        metrics::counter!("booking_clinic_stops_total").increment(1);
        let refunds = effects.iter().filter(|e| matches!(e, Effect::Refund { .. })).count();
        Ok((w, effects, StopReport { cancelled, refunds, waitlist_cleared: waiting.len() }))
    }

    pub(super) async fn expire_due(&mut self) -> Option<(BookingWrite, Vec<Effect>)> {
        let now = Utc::now();
        let mut w = BookingWrite::default();
        let mut effects = Vec::new();
        let sessions: Vec<SessionId> = self.book.sessions.keys().copied().collect();
        for sid in sessions {
            let b = self.book.session_mut(sid).expect("present");
            let due = b.due_holds(now);
            // A line beside a free place still to come: someone was passed over (`screen_waitlist`).
            // (Most sessions have no line: no need to look at their segments' times.)
            let idle = b.waitlist.is_empty()
                || b.offer_candidates(now, open_from(&self.ctx, &b.session, now), &[]).next().is_none();
            if due.is_empty() && idle {
                continue;
            }
            for id in due {
                if let Ok(a) = b.expire(id, now) {
                    metrics::counter!("booking_holds_expired_total").increment(1);
                    effects.push(Effect::CloseOrder(a.order_id));
                    w.messages.push(message(
                        &a,
                        MessageKind::BookingFailure,
                        "预约未完成",
                        format!("{}的号源因未在规定时间内支付已释放。", a.patient_name),
                    ));
                    w.appointments.push(a);
                }
            }
            self.book.reindex(sid);
            self.offer(sid, &mut w).await;
        }
        (!w.is_empty()).then_some((w, effects))
    }

    /// The sessions of `candidates` whose date and period the doctor has no session for (in
    /// memory or in the store: a template may reach past the window memory holds), in memory at
    /// once when within the window, and the write that stores them.
    pub(super) async fn add_sessions(
        &mut self,
        candidates: Vec<ClinicSession>,
    ) -> Result<(BookingWrite, SessionsAdded), BookingError> {
        let (Some(from), Some(to)) = (candidates.iter().map(|s| s.date).min(), candidates.iter().map(|s| s.date).max())
        else {
            return Ok((BookingWrite::default(), SessionsAdded::default()));
        };
        let stored = self.ctx.stores.data.sessions_of_doctor(self.doctor, from, to).await?;
        let taken = |s: &ClinicSession| {
            stored.iter().any(|x| x.date == s.date && x.period == s.period)
                || self.book.sessions.values().any(|b| b.session.date == s.date && b.session.period == s.period)
        };
        let (new, old): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|s| !taken(s));
        let (first, last) = self.window();
        for s in new.iter().filter(|s| s.date >= first && s.date <= last) {
            self.book.insert(SessionBook::new(s.clone(), [], vec![]));
        }
        for job in new.iter().flat_map(|s| session_jobs(&self.ctx.config, s)) {
            self.ctx.stores.data.schedule_job(&job).await?;
        }
        let added = SessionsAdded { created: new.iter().map(|s| s.id).collect(), skipped: old.len() };
        Ok((BookingWrite { sessions: new, ..Default::default() }, added))
    }

    /// Changes a session's fee or release time, in memory when it is within the window, else as
    /// stored.
    pub(super) async fn update_session(
        &mut self,
        session: SessionId,
        fee: Option<Fen>,
        release_at: Option<DateTime<Utc>>,
    ) -> Result<(BookingWrite, ClinicSession), BookingError> {
        let change = |s: &mut ClinicSession| {
            if let Some(f) = fee {
                s.fee = f;
            }
            if let Some(r) = release_at {
                s.release_at = r;
            }
        };
        let s = match self.book.session_mut(session) {
            Some(b) => {
                change(&mut b.session);
                b.session.clone()
            }
            None => {
                let mut s = self
                    .ctx
                    .stores
                    .data
                    .session(session)
                    .await?
                    .filter(|s| s.doctor_id == self.doctor)
                    .ok_or(BookingError::Book(BookError::NoSuchSlot))?;
                change(&mut s);
                s
            }
        };
        Ok((BookingWrite { sessions: vec![s.clone()], ..Default::default() }, s))
    }

    /// The dates memory holds: yesterday to `schedule_days_ahead` after the day it loaded.
    fn window(&self) -> (NaiveDate, NaiveDate) {
        (self.loaded_on - Days::days(1), self.loaded_on + Days::days(i64::from(self.ctx.config.schedule_days_ahead)))
    }

    /// Moves the window (the day changed): adds the stored sessions now within it and refreshes
    /// the static fields of the others; live bookings stay as memory has them (memory is never
    /// behind).
    pub(super) async fn refresh(&mut self) -> Result<(), StoreError> {
        let (books, today) = load_window(self.doctor, &self.ctx).await?;
        for nb in books {
            match self.book.session_mut(nb.session.id) {
                Some(b) => {
                    b.session.fee = nb.session.fee;
                    b.session.release_at = nb.session.release_at;
                }
                None => self.book.insert(nb),
            }
        }
        self.loaded_on = today;
        Ok(())
    }
}
