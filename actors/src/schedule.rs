//! The doctor schedule actor: one per doctor, the single owner of that doctor's sessions, holds,
//! bookings and waitlists (a `DoctorBook`). Booking a slot is serialised here, per doctor, with no
//! global lock: "sold out" is answered from memory, a change is applied in memory, queued on the
//! actor's write pipeline, and answered once durable. A restart rebuilds the book from the store.

use chrono::{Duration as Days, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus, CancelReason};
use hospital_domain::booking::{BookError, DoctorBook, HoldRequest, SessionBook, WaitEntry};
use hospital_domain::live::{Availability, PersonalEvent, TopicEvent};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::{Order, OrderKind, OrderStatus};
use hospital_domain::schedule::{ClinicSession, SlotId};
use hospital_domain::{AccountId, AppointmentId, DoctorId, OrderId, PatientId, SessionId};
use hospital_store::{BookingWrite, PendingEvent, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::booking::{BookingError, Effect};
use crate::idle::IdleClock;
use crate::pipeline::WritePipeline;
use crate::{ActorKind, Context};

/// A session with its places left, as the schedule shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAvailability {
    pub session: ClinicSession,
    /// Places left per segment.
    pub remaining: Vec<u32>,
    /// Patients on the waitlist.
    pub waiting: usize,
}

impl SessionAvailability {
    fn of(b: &SessionBook) -> Self {
        Self { session: b.session.clone(), remaining: b.remaining_all(), waiting: b.waitlist.len() }
    }

    /// As the `availability` topic carries it.
    pub fn live(&self) -> Availability {
        let s = &self.session;
        Availability {
            doctor_id: s.doctor_id,
            department_id: s.department_id,
            session_id: s.id,
            date: s.date,
            period: s.period,
            status: s.status,
            remaining: self.remaining.clone(),
            waiting: self.waiting,
        }
    }
}

/// Who is booking: the actor builds the hold from this and its own clock.
#[derive(Debug, Clone)]
pub struct Booker {
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub person: String,
    pub patient_name: String,
    pub idempotency_key: Option<String>,
}

/// What a clinic stop did.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    pub cancelled: Vec<Appointment>,
    pub refunds: usize,
    pub waitlist_cleared: usize,
}

type Reply<T> = RpcReplyPort<Result<T, BookingError>>;

/// Messages of a doctor schedule actor.
#[derive(Debug)]
pub enum ScheduleMsg {
    /// Sessions with `from <= date <= to` and their places left, from memory.
    GetSchedule {
        from: NaiveDate,
        to: NaiveDate,
        reply: RpcReplyPort<Vec<SessionAvailability>>,
    },
    /// Whether `slot` could be booked now (released, open, a place left), from memory: the
    /// patient actor asks before paying for the real-name rules.
    Probe {
        slot: SlotId,
        reply: Reply<()>,
    },
    /// Holds a place in `slot` for `booker` (BOOK-3): the hold and its payment order.
    Hold {
        slot: SlotId,
        booker: Booker,
        reply: Reply<(Appointment, Order)>,
    },
    /// The order was paid: confirm the booking and issue its slip (BOOK-4). A hold that lapsed
    /// meanwhile is confirmed only if a place is still free in its slot.
    Confirm {
        appointment: AppointmentId,
        reply: Reply<Appointment>,
    },
    /// Cancels (BOOK-5). `account` set means the patient asks: ownership and the cutoff apply.
    Cancel {
        appointment: AppointmentId,
        account: Option<AccountId>,
        reply: Reply<Appointment>,
    },
    /// Moves a booking to another slot of this doctor in one durable step (改约).
    Move {
        appointment: AppointmentId,
        account: AccountId,
        slot: SlotId,
        reply: Reply<Appointment>,
    },
    /// Joins a full session's waitlist (BOOK-7); the 1-based position.
    JoinWaitlist {
        session: SessionId,
        entry: WaitEntry,
        reply: Reply<usize>,
    },
    LeaveWaitlist {
        session: SessionId,
        patient: PatientId,
        reply: RpcReplyPort<bool>,
    },
    /// 加号/减号 (BOOK-9).
    SetQuota {
        session: SessionId,
        segment: u16,
        quota: u32,
        reply: Reply<ClinicSession>,
    },
    /// 停诊: cancels, refunds and notifies every booking, clears the waitlist (BOOK-9).
    StopSession {
        session: SessionId,
        reply: Reply<StopReport>,
    },
    /// A session's live appointments, for staff.
    SessionAppointments {
        session: SessionId,
        reply: RpcReplyPort<Vec<Appointment>>,
    },
    /// Picks up sessions staff added to the store.
    Reload,
    /// 签到 (BOOK-10): the account's confirmed appointment for today moves to `CheckedIn`
    /// (durable before the answer); a repeat answers the checked-in appointment.
    CheckIn {
        appointment: AppointmentId,
        account: AccountId,
        reply: Reply<Appointment>,
    },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Once a second: lapse due holds; internal.
    #[doc(hidden)]
    ExpireTick,
    /// The write pipeline failed: restart from the store; internal.
    #[doc(hidden)]
    WriteFailed(String),
}

/// Start-up arguments: which doctor, and the shared dependencies.
pub struct ScheduleArgs {
    pub doctor: DoctorId,
    pub ctx: Arc<Context>,
}

/// The live state of one doctor's schedule.
pub struct ScheduleState {
    doctor: DoctorId,
    ctx: Arc<Context>,
    book: DoctorBook,
    /// The local date the window was computed on; when the day changes the window moves.
    loaded_on: NaiveDate,
    pipeline: WritePipeline,
    idle: IdleClock,
    expiry: Option<ractor::concurrency::JoinHandle<()>>,
}

async fn load_window(doctor: DoctorId, ctx: &Context) -> Result<(Vec<SessionBook>, NaiveDate), StoreError> {
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

fn chrono(d: Duration) -> Days {
    Days::from_std(d).unwrap_or(Days::minutes(15))
}

fn order_for(a: &Appointment) -> Order {
    Order {
        id: a.order_id,
        kind: OrderKind::Registration,
        account_id: a.account_id,
        appointment_id: a.id,
        description: format!("挂号费 {} {}", a.date, a.period.label()),
        amount: a.fee,
        status: OrderStatus::Created,
        created_at: a.created_at,
        expires_at: a.hold_expires_at,
        paid_at: None,
        transaction_id: None,
        refunds: vec![],
        notifications_seen: vec![],
    }
}

fn message(a: &Appointment, kind: MessageKind, title: &str, body: String) -> Message {
    Message::new(a.account_id, kind, title, body, Some(a.id.to_string()), Utc::now())
}

impl ScheduleState {
    /// Queues `write`, then (once durable) runs `effects` and answers with `answer`.
    fn persist<T: Send + 'static>(
        &self,
        write: BookingWrite,
        effects: Vec<Effect>,
        reply: Option<Reply<T>>,
        answer: Result<T, BookingError>,
    ) {
        let sink = self.ctx.effects.clone();
        let events = self.ctx.events.clone();
        let mut write = write;
        write.events = self.personal_events(&write);
        let personal = write.events.clone();
        let topics = self.topic_events(&write);
        let confirmed: Vec<Appointment> =
            write.appointments.iter().filter(|a| a.status == AppointmentStatus::Confirmed).cloned().collect();
        let notify = self.ctx.notify.clone();
        self.pipeline.push(write, move |r| {
            let answer = match r {
                Ok(()) => {
                    for e in effects {
                        sink.send(e);
                    }
                    // Confirmed bookings (a payment, a move) get their confirmation and reminders.
                    notify.confirmed(&confirmed);
                    // Only durable changes are announced.
                    events.durable(personal);
                    for t in topics {
                        events.topic(t);
                    }
                    answer
                }
                Err(e) => Err(BookingError::from(e)),
            };
            if let Some(reply) = reply {
                let _ = reply.send(answer);
            }
        });
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

    /// The new places left of every session a change touched, for the doctor's and the
    /// department's topics (BOOK-2).
    fn topic_events(&self, w: &BookingWrite) -> Vec<TopicEvent> {
        let mut ev = Vec::new();
        let mut touched: Vec<SessionId> = w.appointments.iter().map(|a| a.slot.session_id).collect();
        touched.extend(w.sessions.iter().map(|s| s.id));
        touched.extend(w.waitlists.iter().map(|x| x.1));
        touched.sort();
        touched.dedup();
        for sid in touched {
            if let Some(a) = self.availability(sid) {
                let department = a.department_id;
                ev.push(TopicEvent::availability(format!("doctor:{}", self.doctor), a.clone()));
                ev.push(TopicEvent::availability(format!("department:{department}"), a));
            }
        }
        ev
    }

    fn availability(&self, session: SessionId) -> Option<Availability> {
        self.book.session(session).map(|b| SessionAvailability::of(b).live())
    }

    fn waitlist_write(&self, session: SessionId) -> (DoctorId, SessionId, Vec<WaitEntry>) {
        let list = self.book.session(session).map(|b| b.waitlist.iter().cloned().collect()).unwrap_or_default();
        (self.doctor, session, list)
    }

    /// Offers freed places in `session` to its waitlist, adding the offers to `w`.
    fn offer(&mut self, session: SessionId, w: &mut BookingWrite) {
        let hold_for = chrono(self.ctx.config.waitlist_hold_ttl);
        let Some(b) = self.book.session_mut(session) else { return };
        let before = b.waitlist.len();
        let offers = b.offer_to_waitlist(Utc::now(), hold_for, || (AppointmentId::new(), OrderId::new()));
        if offers.is_empty() && before == b.waitlist.len() {
            return;
        }
        self.book.reindex(session);
        for a in offers {
            metrics::counter!("booking_waitlist_offers_total").increment(1);
            w.orders.push(order_for(&a));
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

    fn hold(&mut self, slot: SlotId, booker: Booker) -> Result<(BookingWrite, Appointment, Order), BookingError> {
        let now = Utc::now();
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
        let order = order_for(&a);
        let mut w = BookingWrite { appointments: vec![a.clone()], orders: vec![order.clone()], ..Default::default() };
        if had_waiting {
            w.waitlists.push(self.waitlist_write(slot.session_id));
        }
        Ok((w, a, order))
    }

    fn confirm(
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

    fn cancel(
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
        self.offer(session, &mut w);
        Ok((w, vec![effect], a))
    }

    fn move_to(
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
        let mut w = BookingWrite { appointments: vec![old, new.clone()], ..Default::default() };
        if had_waiting {
            w.waitlists.push(self.waitlist_write(slot.session_id));
        }
        self.offer(from_session, &mut w);
        Ok((w, new))
    }

    fn stop(&mut self, session: SessionId) -> Result<(BookingWrite, Vec<Effect>, StopReport), BookingError> {
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
            w.messages.push(Message::new(
                e.account_id,
                MessageKind::ClinicStopped,
                "停诊通知",
                format!("{} {} 的门诊因故停诊，{}的候补已取消。", stopped.date, stopped.period.label(), e.patient_name),
                Some(session.to_string()),
                now,
            ));
        }
        w.waitlists.push((self.doctor, session, vec![]));
        metrics::counter!("booking_clinic_stops_total").increment(1);
        let refunds = effects.iter().filter(|e| matches!(e, Effect::Refund { .. })).count();
        Ok((w, effects, StopReport { cancelled, refunds, waitlist_cleared: waiting.len() }))
    }

    fn expire_due(&mut self) -> Option<(BookingWrite, Vec<Effect>)> {
        let now = Utc::now();
        let mut w = BookingWrite::default();
        let mut effects = Vec::new();
        let sessions: Vec<SessionId> = self.book.sessions.keys().copied().collect();
        for sid in sessions {
            let b = self.book.session_mut(sid).expect("present");
            let due = b.due_holds(now);
            if due.is_empty() {
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
            self.offer(sid, &mut w);
        }
        (!w.is_empty()).then_some((w, effects))
    }

    /// Adds sessions that appeared in the store (staff created them) and refreshes the static
    /// fields of the others; live bookings stay as memory has them (memory is never behind).
    async fn refresh(&mut self) -> Result<(), StoreError> {
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

/// The doctor schedule actor (stateless handler; the state is `ScheduleState`).
pub struct ScheduleActor;

impl Actor for ScheduleActor {
    type Msg = ScheduleMsg;
    type State = ScheduleState;
    type Arguments = ScheduleArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ScheduleArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        // A predecessor (before a panic) may still be writing what it acknowledged: wait for it,
        // so the book loaded below includes every acknowledged change.
        let owner = myself.get_name().unwrap_or_else(|| format!("schedule:{}", args.doctor));
        let guard = WritePipeline::quiesce(&owner).await;
        let (books, today) = load_window(args.doctor, &args.ctx).await?;
        tracing::debug!(doctor = %args.doctor, sessions = books.len(), "schedule actor loaded");
        let me = myself.clone();
        let pipeline = WritePipeline::start(args.ctx.stores.data.clone(), guard, move |e| {
            let _ = me.cast(ScheduleMsg::WriteFailed(e.to_string()));
        });
        Ok(ScheduleState {
            doctor: args.doctor,
            idle: IdleClock::new(args.ctx.config.idle_timeout),
            ctx: args.ctx,
            book: DoctorBook::new(books),
            loaded_on: today,
            pipeline,
            expiry: None,
        })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || ScheduleMsg::Tick);
        state.expiry = Some(myself.send_interval(Duration::from_secs(1), || ScheduleMsg::ExpireTick));
        // Holds that lapsed while no actor ran are freed at once.
        let _ = myself.cast(ScheduleMsg::ExpireTick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        if let Some(t) = state.expiry.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, ScheduleMsg::Tick | ScheduleMsg::ExpireTick) {
            state.idle.touch();
        }
        match msg {
            ScheduleMsg::GetSchedule { from, to, reply } => {
                let out = state
                    .book
                    .sessions
                    .values()
                    .filter(|b| b.session.date >= from && b.session.date <= to)
                    .map(SessionAvailability::of)
                    .collect::<Vec<_>>();
                let mut out = out;
                out.sort_by_key(|s| (s.session.date, s.session.period));
                let _ = reply.send(out);
            }
            ScheduleMsg::Probe { slot, reply } => {
                let answer = match state.book.session(slot.session_id) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => b.bookable(slot.segment, Utc::now()).map_err(BookingError::from),
                };
                if matches!(answer, Err(BookingError::Book(BookError::SoldOut))) {
                    metrics::counter!("booking_attempts_total").increment(1);
                    metrics::counter!("booking_sold_out_total").increment(1);
                }
                let _ = reply.send(answer);
            }
            ScheduleMsg::Hold { slot, booker, reply } => {
                metrics::counter!("booking_attempts_total").increment(1);
                match state.hold(slot, booker) {
                    Ok((w, a, o)) => {
                        metrics::counter!("booking_holds_total").increment(1);
                        state.persist(w, vec![], Some(reply), Ok((a, o)));
                    }
                    Err(e) => {
                        if matches!(e, BookingError::Book(BookError::SoldOut)) {
                            metrics::counter!("booking_sold_out_total").increment(1);
                        }
                        // A refusal changed nothing: answer at once, from memory.
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::Confirm { appointment, reply } => {
                let stored = if state.book.session_of(appointment).is_none() {
                    state.ctx.stores.data.appointment(appointment).await.ok().flatten()
                } else {
                    None
                };
                match state.confirm(appointment, stored) {
                    Ok((w, a)) => state.persist(w, vec![], Some(reply), Ok(a)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::Cancel { appointment, account, reply } => match state.cancel(appointment, account) {
                Ok((w, effects, a)) => state.persist(w, effects, Some(reply), Ok(a)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::Move { appointment, account, slot, reply } => {
                match state.move_to(appointment, account, slot) {
                    Ok((w, a)) => state.persist(w, vec![], Some(reply), Ok(a)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::JoinWaitlist { session, entry, reply } => {
                let r = match state.book.session_mut(session) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => b.join_waitlist(entry, Utc::now()).map_err(BookingError::from),
                };
                match r {
                    Ok(pos) => {
                        let w = BookingWrite { waitlists: vec![state.waitlist_write(session)], ..Default::default() };
                        state.persist(w, vec![], Some(reply), Ok(pos));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::LeaveWaitlist { session, patient, reply } => {
                let left = state.book.session_mut(session).is_some_and(|b| b.leave_waitlist(patient));
                if left {
                    let w = BookingWrite { waitlists: vec![state.waitlist_write(session)], ..Default::default() };
                    state.pipeline.push(w, move |_| {
                        let _ = reply.send(true);
                    });
                } else {
                    let _ = reply.send(false);
                }
            }
            ScheduleMsg::SetQuota { session, segment, quota, reply } => {
                let r = match state.book.session_mut(session) {
                    None => Err(BookingError::Book(BookError::NoSuchSlot)),
                    Some(b) => b.set_quota(segment, quota).map(|_| b.session.clone()).map_err(BookingError::from),
                };
                match r {
                    Ok(s) => {
                        let mut w = BookingWrite { sessions: vec![s.clone()], ..Default::default() };
                        state.offer(session, &mut w);
                        state.persist(w, vec![], Some(reply), Ok(s));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            ScheduleMsg::StopSession { session, reply } => match state.stop(session) {
                Ok((w, effects, report)) => state.persist(w, effects, Some(reply), Ok(report)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            ScheduleMsg::SessionAppointments { session, reply } => {
                let list = state.book.session(session).map(|b| b.live().cloned().collect()).unwrap_or_default();
                let _ = reply.send(list);
            }
            ScheduleMsg::Reload => {
                // A failed reload keeps serving what we have: the store is the problem, and a
                // restart would fail the same way.
                if let Err(e) = state.refresh().await {
                    tracing::warn!(doctor = %state.doctor, error = %e, "schedule reload failed; keeping old data");
                }
            }
            ScheduleMsg::CheckIn { appointment, account, reply } => {
                let now = Utc::now();
                let today = state.ctx.config.zone.local_date(now);
                match crate::queue::check_in_book(&mut state.book, appointment, account, today, now) {
                    Ok((a, true)) => {
                        let w = BookingWrite { appointments: vec![a.clone()], ..Default::default() };
                        state.persist(w, vec![], Some(reply), Ok(a));
                    }
                    r => {
                        let _ = reply.send(r.map(|(a, _)| a));
                    }
                }
            }
            #[cfg(feature = "fault-injection")]
            ScheduleMsg::InjectFault => {
                panic!("fault injected into schedule actor {}", state.doctor);
            }
            ScheduleMsg::ExpireTick => {
                if let Some((w, effects)) = state.expire_due() {
                    state.persist::<()>(w, effects, None, Ok(()));
                }
            }
            ScheduleMsg::WriteFailed(e) => {
                // Memory may be ahead of the disk: rebuild from the durable truth.
                return Err(format!("booking write failed ({e}); restarting from the store").into());
            }
            ScheduleMsg::Tick => {
                // Holds and waitlists need this actor's timer: it stays while it has any.
                let busy = state.book.has_holds() || state.book.has_waitlists();
                let stopped = state.idle.drain_if_idle(&myself, busy, &state.doctor);
                if !stopped && state.ctx.config.zone.local_date(Utc::now()) != state.loaded_on {
                    // Midnight passed: move the window so "60 days ahead" stays true.
                    if let Err(e) = state.refresh().await {
                        tracing::warn!(doctor = %state.doctor, error = %e, "schedule window move failed");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Doctor schedules as an actor kind: keyed by `DoctorId`, supervised by `schedules`.
pub struct ScheduleKind;

impl ActorKind for ScheduleKind {
    const KIND: &'static str = "schedule";
    const SUPERVISOR: &'static str = "schedules";
    type Id = DoctorId;
    type Actor = ScheduleActor;

    fn actor() -> ScheduleActor {
        ScheduleActor
    }
    fn args(doctor: DoctorId, ctx: &Arc<Context>) -> ScheduleArgs {
        ScheduleArgs { doctor, ctx: ctx.clone() }
    }
}
