//! One session's queue in memory (`QueueState`), its changes, and what each patient sees of
//! them.

use chrono::{DateTime, Utc};
use hospital_domain::live::{Calling, PersonalEvent, QueueStatus, QueueSummary, QueueUpdate, TopicEvent};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::queue::{ClinicQueue, QueueEntry, QueueStanding};
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{AccountId, AppointmentId, SessionId};
use hospital_store::{BookingWrite, PendingEvent};
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;
use crate::ownership::Held;
use ractor::ActorRef;

pub struct QueueArgs {
    pub session: SessionId,
    pub ctx: Arc<Context>,
}

pub struct QueueState {
    /// This actor, to stop itself when another node took its session over.
    pub(super) myself: ActorRef<QueueMsg>,
    pub(super) session: ClinicSession,
    pub(super) ctx: Arc<Context>,
    pub(super) queue: ClinicQueue,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: Held,
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
        let fence = self.held.fence();
        let written = data.put_queue(self.session.id, self.session.doctor_id, &next, &events, fence.as_ref()).await;
        self.held.after_write(written, &self.myself, "queue", &self.session.id)?;
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

    pub(super) async fn check_in(
        &mut self,
        appointment: AppointmentId,
        account: AccountId,
    ) -> Result<QueueStanding, QueueError> {
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
    pub(super) async fn staff(
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
