//! The queue actor (BOOK-10, 签到/候诊/叫号): one per clinic session (one doctor, one date, one
//! period = one room's queue), the only owner and writer of that session's `ClinicQueue`.
//!
//! - Check-in: the appointment must be confirmed, for today (the hospital's zone) and the
//!   caller's. The doctor's schedule actor, owner of the appointment, decides and moves it to
//!   `CheckedIn` through the state machine (`ScheduleMsg::CheckIn`, durable before it answers);
//!   then this actor adds it to the queue. A repeat is answered with the patient's standing.
//! - Staff: call next (叫号), skip (过号), call a skipped patient again, move a waiting one.
//!
//! Every change is applied to a copy, written whole (`QueueStore::put_queue`) and only then made
//! current, answered and published: each waiting patient's position and estimated wait (personal
//! event `queue`), the called, skipped or finished patient's new status, a stored `VisitReminder`
//! message to the called one, and the public summary on topic `queue:<session id>`.

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus};
use hospital_domain::booking::{DoctorBook, SessionBook};
use hospital_domain::live::{Calling, PersonalEvent, QueueStatus, QueueSummary, QueueUpdate, TopicEvent};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::queue::{ClinicQueue, QueueEntry, QueueStanding};
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{AccountId, AppointmentId, DoctorId, SessionId};
use hospital_store::{BookingWrite, PendingEvent, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use crate::idle::IdleClock;
use crate::kind::ChildMsg;
use crate::system::Retry;
use crate::{ActorError, ActorKind, ActorSystem, BookingError, Context, ScheduleKind, ScheduleMsg};

/// Why a queue operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Not a confirmed appointment for today (wrong status or day): 409 `not_checkable`.
    #[error("{0}")]
    NotCheckable(String),
    /// No such appointment, or another account's.
    #[error("no such appointment")]
    NoSuchAppointment,
    /// The queue's own rules (nobody called, not skipped, not waiting, bad position).
    #[error(transparent)]
    Queue(#[from] hospital_domain::queue::QueueError),
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::Unavailable(e.into())
    }
}

impl From<BookingError> for QueueError {
    fn from(e: BookingError) -> Self {
        use hospital_domain::booking::BookError;
        match e {
            BookingError::NoSuchAppointment | BookingError::Book(BookError::NoSuchAppointment) => {
                QueueError::NoSuchAppointment
            }
            BookingError::Unavailable(m) => QueueError::Unavailable(m),
            BookingError::Rule { message, .. } => QueueError::NotCheckable(message),
            other => QueueError::NotCheckable(other.to_string()),
        }
    }
}

/// The stable reason code of a refused check-in.
pub const NOT_CHECKABLE: &str = "not_checkable";

/// The schedule actor's side of a check-in, on its `DoctorBook` (called from its `CheckIn`
/// handler): the appointment must be live, the account's, for `today`, and the state machine
/// must allow `CheckIn` (only from `Confirmed`). Returns the appointment and whether it changed
/// (false: it was already checked in, a retry).
pub(crate) fn check_in_book(
    book: &mut DoctorBook,
    appointment: AppointmentId,
    account: AccountId,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(Appointment, bool), BookingError> {
    let not_checkable = |message: String| BookingError::Rule { reason: NOT_CHECKABLE, message };
    let Some(mut a) = book.find(appointment).cloned() else {
        // Known to the caller (it read the store) but not live here: cancelled, lapsed, or
        // outside the schedule window.
        return Err(not_checkable("only a paid appointment for today can be checked in".into()));
    };
    if a.account_id != account {
        return Err(BookingError::NoSuchAppointment);
    }
    if a.status == AppointmentStatus::CheckedIn {
        return Ok((a, false));
    }
    if a.date != today {
        return Err(not_checkable(format!("this appointment is for {}; check in on the day", a.date)));
    }
    a.apply(AppointmentEvent::CheckIn, now)
        .map_err(|e| not_checkable(format!("only a paid appointment can be checked in ({e})")))?;
    // `SessionBook` keeps its live appointments private: rebuild the session's book with the
    // checked-in one in place (the same places, the same waitlist).
    let sid = a.slot.session_id;
    let b = book.session(sid).ok_or(BookingError::NoSuchAppointment)?;
    let live: Vec<Appointment> = b.live().map(|x| if x.id == a.id { a.clone() } else { x.clone() }).collect();
    let rebuilt = SessionBook::new(b.session.clone(), live, b.waitlist.iter().cloned().collect());
    book.insert(rebuilt);
    Ok((a, true))
}

type Reply<T> = RpcReplyPort<Result<T, QueueError>>;

/// Messages of a session's queue actor.
#[derive(Debug)]
pub enum QueueMsg {
    /// A patient arrived (签到): checked by the schedule actor, then queued. The patient's standing.
    CheckIn { appointment: AppointmentId, account: AccountId, reply: Reply<QueueStanding> },
    /// 叫号: the called patient is done, the first in line is called to `room`.
    CallNext { room: String, reply: Reply<ClinicQueue> },
    /// 过号: the patient called now did not come.
    Skip { reply: Reply<ClinicQueue> },
    /// Calls a skipped patient again (to the room of the last call).
    Recall { appointment: AppointmentId, reply: Reply<ClinicQueue> },
    /// Moves a waiting patient to `position` (1 = next).
    Reorder { appointment: AppointmentId, position: usize, reply: Reply<ClinicQueue> },
    /// The queue as it is.
    Get { reply: RpcReplyPort<ClinicQueue> },
    /// The public summary (what topic `queue:<session>` carries).
    Summary { reply: RpcReplyPort<QueueSummary> },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
}

pub struct QueueArgs {
    pub session: SessionId,
    pub ctx: Arc<Context>,
}

pub struct QueueState {
    session: ClinicSession,
    ctx: Arc<Context>,
    queue: ClinicQueue,
    idle: IdleClock,
}

/// "3", "3诊室" and " 3 " all name room 3: the message says "请到3诊室就诊".
fn room_label(room: &str) -> &str {
    let r = room.trim();
    r.strip_suffix("诊室").unwrap_or(r)
}

fn entry_update(session: SessionId, e: &QueueEntry, status: QueueStatus) -> QueueUpdate {
    QueueUpdate {
        session_id: session,
        appointment_id: e.appointment_id,
        status,
        position: None,
        ahead: None,
        estimated_wait_minutes: None,
        segment: Some(e.segment),
        place: Some(e.place),
        room: None,
        called_at: None,
    }
}

impl QueueState {
    /// What each patient sees of the change from the current queue to `next`: whoever changed
    /// status (finished, skipped, called), then every waiting patient's position and wait.
    fn personal_events(&self, next: &ClinicQueue, now: DateTime<Utc>) -> Vec<PendingEvent> {
        let sid = self.session.id;
        let before = &self.queue;
        let mut out = Vec::new();
        let mut push =
            |account: AccountId, u: QueueUpdate| out.push(PendingEvent::new(account, PersonalEvent::Queue(u)));
        for e in next.done().iter().skip(before.done().len()) {
            push(e.account_id, entry_update(sid, e, QueueStatus::Done));
        }
        for e in next.skipped().iter().filter(|e| !before.skipped().contains(e)) {
            push(e.account_id, entry_update(sid, e, QueueStatus::Skipped));
        }
        if let Some(c) = next.called_entry().filter(|c| before.called_entry() != Some(*c)) {
            let mut called = entry_update(sid, &c.entry, QueueStatus::Called);
            called.room = Some(c.room.clone());
            called.called_at = Some(c.called_at);
            push(c.entry.account_id, called);
        }
        for p in next.positions(now) {
            push(
                p.account_id,
                QueueUpdate {
                    session_id: sid,
                    appointment_id: p.appointment_id,
                    status: QueueStatus::Waiting,
                    position: Some(p.position),
                    ahead: Some(p.ahead),
                    estimated_wait_minutes: Some(p.estimated_wait_minutes),
                    segment: None,
                    place: None,
                    room: None,
                    called_at: None,
                },
            );
        }
        out
    }

    /// Writes `next` with its events, then makes it current and tells everyone concerned. Memory
    /// never runs ahead of the store: a failed write leaves the queue as it was.
    async fn commit(&mut self, next: ClinicQueue, now: DateTime<Utc>) -> Result<(), QueueError> {
        let data = &self.ctx.stores.data;
        let events = self.personal_events(&next, now);
        data.put_queue(self.session.id, self.session.doctor_id, &next, &events).await?;
        let before = std::mem::replace(&mut self.queue, next);
        metrics::counter!("queue_changes_total").increment(1);
        let sid = self.session.id;
        let ev = &self.ctx.events;
        ev.durable(events);

        if let Some(c) = self.queue.called_entry().filter(|c| before.called_entry() != Some(*c)) {
            let e = &c.entry;
            let room = room_label(&c.room);
            let msg = Message::new(
                e.account_id,
                MessageKind::VisitReminder,
                "就诊提醒",
                format!(
                    "{}，请到{}诊室就诊（{} {} 第{}号）。",
                    e.patient_name,
                    room,
                    self.session.date,
                    self.session.period.label(),
                    e.place
                ),
                Some(e.appointment_id.to_string()),
                now,
            );
            // The call itself is durable already; a lost reminder is logged, not undone.
            let events = vec![PendingEvent::message(&msg)];
            let w = BookingWrite { messages: vec![msg], events: events.clone(), ..Default::default() };
            match data.apply_booking(w).await {
                Ok(()) => ev.durable(events),
                Err(err) => tracing::warn!(session = %sid, error = %err, "visit reminder not stored"),
            }
        }
        // The public summary (no names): the screen in the waiting room.
        ev.topic(TopicEvent::queue_summary(self.summary()));
        Ok(())
    }

    /// The public state of the queue (no names): the waiting-room screen.
    pub(crate) fn summary(&self) -> QueueSummary {
        let calling = self.queue.called_entry().map(|c| Calling {
            segment: c.entry.segment,
            place: c.entry.place,
            room: c.room.clone(),
            called_at: c.called_at,
        });
        QueueSummary {
            session_id: self.session.id,
            doctor_id: self.session.doctor_id,
            date: self.session.date,
            period: self.session.period,
            calling,
            waiting: self.queue.waiting().len(),
            skipped: self.queue.skipped().len(),
            done: self.queue.done().len(),
            average_consultation_minutes: u64::from(self.queue.avg_consultation_secs().div_ceil(60)),
        }
    }

    async fn check_in(&mut self, appointment: AppointmentId, account: AccountId) -> Result<QueueStanding, QueueError> {
        let now = Utc::now();
        if let Some(e) = self.queue.entry(appointment) {
            if e.account_id != account {
                return Err(QueueError::NoSuchAppointment);
            }
            // Checked in before: the same answer, nothing changes.
            return self.queue.standing(appointment, now).ok_or(QueueError::NoSuchAppointment);
        }
        // Only appointments of this session (the caller routed by the stored appointment).
        let stored = self.ctx.stores.data.appointment(appointment).await?;
        match stored {
            Some(a) if a.account_id == account && a.slot.session_id == self.session.id => {}
            _ => return Err(QueueError::NoSuchAppointment),
        }
        let a = self.ctx.system.schedule_check_in(self.session.doctor_id, appointment, account).await?;
        let mut next = self.queue.clone();
        next.check_in(QueueEntry {
            appointment_id: a.id,
            account_id: a.account_id,
            patient_id: a.patient_id,
            patient_name: a.patient_name.clone(),
            segment: a.slot.segment,
            place: a.place,
            checked_in_at: now,
        });
        self.commit(next, now).await?;
        metrics::counter!("queue_check_ins_total").increment(1);
        self.queue.standing(appointment, now).ok_or(QueueError::NoSuchAppointment)
    }

    /// Applies a staff operation to a copy, commits it, answers with the new queue.
    async fn staff(
        &mut self,
        op: impl FnOnce(&mut ClinicQueue, DateTime<Utc>) -> Result<(), QueueError>,
    ) -> Result<ClinicQueue, QueueError> {
        let now = Utc::now();
        let mut next = self.queue.clone();
        op(&mut next, now)?;
        self.commit(next, now).await?;
        Ok(self.queue.clone())
    }
}

pub struct QueueActor;

impl Actor for QueueActor {
    type Msg = QueueMsg;
    type State = QueueState;
    type Arguments = QueueArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: QueueArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let data = &args.ctx.stores.data;
        let session = data.session(args.session).await?.ok_or_else(|| format!("no clinic session {}", args.session))?;
        let queue = data.queue(args.session).await?.unwrap_or_else(|| ClinicQueue::new(session.id, session.doctor_id));
        tracing::debug!(session = %session.id, waiting = queue.waiting().len(), "queue actor loaded");
        Ok(QueueState { session, idle: IdleClock::new(args.ctx.config.idle_timeout), ctx: args.ctx, queue })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || QueueMsg::Tick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, QueueMsg::Tick) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            QueueMsg::CheckIn { appointment, account, reply } => {
                let _ = reply.send(state.check_in(appointment, account).await);
            }
            QueueMsg::CallNext { room, reply } => {
                let r = state
                    .staff(|q, now| {
                        q.call_next(&room, now);
                        Ok(())
                    })
                    .await;
                let _ = reply.send(r);
            }
            QueueMsg::Skip { reply } => {
                let _ = reply.send(state.staff(|q, _| q.skip().map(|_| ()).map_err(QueueError::from)).await);
            }
            QueueMsg::Recall { appointment, reply } => {
                let r =
                    state.staff(|q, now| q.recall(appointment, None, now).map(|_| ()).map_err(QueueError::from)).await;
                let _ = reply.send(r);
            }
            QueueMsg::Reorder { appointment, position, reply } => {
                let r = state.staff(|q, _| q.reorder(appointment, position).map_err(QueueError::from)).await;
                let _ = reply.send(r);
            }
            QueueMsg::Get { reply } => {
                let _ = reply.send(state.queue.clone());
            }
            QueueMsg::Summary { reply } => {
                let _ = reply.send(state.summary());
            }
            #[cfg(feature = "fault-injection")]
            QueueMsg::InjectFault => {
                panic!("fault injected into queue actor {}", state.session.id);
            }
            QueueMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.session.id);
            }
        }
        Ok(())
    }
}

/// Session queues as an actor kind: keyed by `SessionId`, supervised by `queues`.
pub struct QueueKind;

impl ActorKind for QueueKind {
    const KIND: &'static str = "queue";
    const SUPERVISOR: &'static str = "queues";
    type Id = SessionId;
    type Actor = QueueActor;

    fn actor() -> QueueActor {
        QueueActor
    }
    fn args(session: SessionId, ctx: &Arc<Context>) -> QueueArgs {
        QueueArgs { session, ctx: ctx.clone() }
    }
}

/// The queue side of `ActorSystem` (kept here, next to the actor it talks to).
impl ActorSystem {
    /// The session's queue actor, started if it was not running.
    pub async fn queue(&self, session: SessionId) -> Result<ActorRef<ChildMsg<QueueKind>>, ActorError> {
        self.resolve::<QueueKind>(session).await
    }

    /// The public summary of the session's queue (topic `queue:<session>`).
    pub async fn queue_summary(&self, session: SessionId) -> Result<QueueSummary, ActorError> {
        self.ask::<QueueKind, _>(session, Retry::Reads, |reply| QueueMsg::Summary { reply }).await
    }

    /// Checks one of the account's appointments of `session` in (签到) and queues it; the
    /// patient's standing. Refusals: `NoSuchAppointment` (unknown, another account's, or of
    /// another session), `NotCheckable` (not paid, not today, cancelled). A repeat answers the
    /// standing again and changes nothing.
    pub async fn check_in(
        &self,
        session: SessionId,
        account: AccountId,
        appointment: AppointmentId,
    ) -> Result<QueueStanding, QueueError> {
        self.ask::<QueueKind, _>(session, Retry::UndeliveredOnly, |reply| QueueMsg::CheckIn {
            appointment,
            account,
            reply,
        })
        .await?
    }

    /// 叫号: the session's queue after calling the next patient to `room`.
    pub async fn call_next(&self, session: SessionId, room: String) -> Result<ClinicQueue, QueueError> {
        self.ask::<QueueKind, _>(session, Retry::UndeliveredOnly, |reply| QueueMsg::CallNext {
            room: room.clone(),
            reply,
        })
        .await?
    }

    /// 过号: the patient called now goes to the skipped list.
    pub async fn skip(&self, session: SessionId) -> Result<ClinicQueue, QueueError> {
        self.ask::<QueueKind, _>(session, Retry::UndeliveredOnly, |reply| QueueMsg::Skip { reply }).await?
    }

    /// Calls a skipped patient again.
    pub async fn recall(&self, session: SessionId, appointment: AppointmentId) -> Result<ClinicQueue, QueueError> {
        self.ask::<QueueKind, _>(session, Retry::UndeliveredOnly, |reply| QueueMsg::Recall { appointment, reply })
            .await?
    }

    /// Moves a waiting patient to `position` (1 = next).
    pub async fn reorder(
        &self,
        session: SessionId,
        appointment: AppointmentId,
        position: usize,
    ) -> Result<ClinicQueue, QueueError> {
        self.ask::<QueueKind, _>(session, Retry::UndeliveredOnly, |reply| QueueMsg::Reorder {
            appointment,
            position,
            reply,
        })
        .await?
    }

    /// The session's queue as it is now.
    pub async fn queue_state(&self, session: SessionId) -> Result<ClinicQueue, ActorError> {
        self.ask::<QueueKind, _>(session, Retry::Reads, |reply| QueueMsg::Get { reply }).await
    }

    /// The schedule actor's half of a check-in (`ScheduleMsg::CheckIn`): the appointment, now
    /// `CheckedIn` and durable.
    pub async fn schedule_check_in(
        &self,
        doctor: DoctorId,
        appointment: AppointmentId,
        account: AccountId,
    ) -> Result<Appointment, BookingError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::CheckIn {
            appointment,
            account,
            reply,
        })
        .await?
    }

    /// Makes the session's queue actor panic (see `QueueMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_queue_fault(&self, session: SessionId) -> Result<(), ActorError> {
        let actor = self.queue(session).await?;
        actor.cast(QueueMsg::InjectFault).map_err(|e| ActorError::Unavailable {
            kind: QueueKind::KIND,
            id: session.to_string(),
            reason: e.to_string(),
        })
    }
}
