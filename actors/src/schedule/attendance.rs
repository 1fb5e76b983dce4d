//! The end of a visit and of a session (BOOK-6, BOOK-10): a visit finished (`Seen`), a session
//! closed (every confirmed booking that never checked in becomes `Missed`, with a message, and
//! the waitlist ends, those in it told), and
//! staff striking off a wrong no-show (`Excused`). The appointment keeps its place through all
//! of them (`SessionBook::advance`). An appointment older than the actor's window is history:
//! changed as stored, since no actor holds it in memory.

use chrono::Utc;
use hospital_domain::appointment::{Appointment, AppointmentEvent};
use hospital_domain::message::MessageKind;
use hospital_domain::{AppointmentId, SessionId};
use hospital_store::BookingWrite;

use super::state::{message, message_to_waiting, ScheduleState};
use crate::booking::BookingError;

/// The stable reason code of an attendance change the appointment's state does not allow.
pub const NOT_APPLICABLE: &str = "attendance_not_applicable";

impl ScheduleState {
    /// Moves one appointment through `event` (`FinishVisit`, `Excuse`); the write and the
    /// appointment. A repeat (already in the target state) writes nothing.
    pub(super) async fn attend(
        &mut self,
        appointment: AppointmentId,
        event: AppointmentEvent,
    ) -> Result<(BookingWrite, Appointment), BookingError> {
        let now = Utc::now();
        let refused = |e: &dyn std::fmt::Display| BookingError::Rule { reason: NOT_APPLICABLE, message: e.to_string() };
        if let Some(sid) = self.book.session_of(appointment) {
            let current = self.book.find(appointment).cloned().ok_or(BookingError::NoSuchAppointment)?;
            if already(&current, event) {
                return Ok((BookingWrite::default(), current));
            }
            let b = self.book.session_mut(sid).ok_or(BookingError::NoSuchAppointment)?;
            let a = b.advance(appointment, event, now).map_err(|e| refused(&e))?;
            return Ok((BookingWrite { appointments: vec![a.clone()], ..Default::default() }, a));
        }
        // Not in memory: history before the window (a no-show struck off weeks later).
        let mut a = self.ctx.stores.data.appointment(appointment).await?.ok_or(BookingError::NoSuchAppointment)?;
        if a.doctor_id != self.doctor {
            return Err(BookingError::NoSuchAppointment);
        }
        if already(&a, event) {
            return Ok((BookingWrite::default(), a));
        }
        a.apply(event, now).map_err(|e| refused(&e))?;
        Ok((BookingWrite { appointments: vec![a.clone()], ..Default::default() }, a))
    }

    /// Closes a session: its confirmed appointments that never checked in are missed, each told
    /// so by a message, and its waitlist ends, each still waiting told so. Closing again finds
    /// none left. A session before the window (the job ran late, after an outage) is closed as
    /// stored.
    pub(super) async fn close_session(
        &mut self,
        session: SessionId,
    ) -> Result<(BookingWrite, Vec<Appointment>), BookingError> {
        let now = Utc::now();
        let mut w = BookingWrite::default();
        let missed: Vec<Appointment> = match self.book.session_mut(session) {
            Some(b) => {
                let mut out = Vec::new();
                for id in b.not_checked_in() {
                    out.push(b.advance(id, AppointmentEvent::MarkMissed, now)?);
                }
                let (date, period) = (b.session.date, b.session.period.label());
                let ended = b.end_waitlist();
                for e in &ended {
                    w.messages.push(message_to_waiting(
                        e,
                        Some(session),
                        MessageKind::BookingFailure,
                        "候补未成功",
                        format!("{date} {period} 门诊已结束，{}的候补未等到号源，已自动结束。", e.patient_name),
                    ));
                }
                if !ended.is_empty() {
                    w.waitlists.push((self.doctor, session, vec![]));
                }
                out
            }
            None => {
                let Some(s) = self.ctx.stores.data.session(session).await? else {
                    return Ok((BookingWrite::default(), vec![]));
                };
                let stored = self.ctx.stores.data.appointments_of_doctor(self.doctor, s.date, s.date).await?;
                let mut out = Vec::new();
                for mut a in stored.into_iter().filter(|a| a.slot.session_id == session) {
                    if a.status == hospital_domain::appointment::AppointmentStatus::Confirmed {
                        a.apply(AppointmentEvent::MarkMissed, now)
                            .map_err(hospital_domain::booking::BookError::from)?;
                        out.push(a);
                    }
                }
                out
            }
        };
        for a in missed {
            w.messages.push(message(
                &a,
                MessageKind::SystemNotice,
                "爽约记录",
                format!(
                    "您预约的{} {}门诊未签到就诊，已记为爽约。多次爽约将暂停预约；如有误请联系医院。",
                    a.date,
                    a.period.label()
                ),
            ));
            w.appointments.push(a);
        }
        let missed = w.appointments.clone();
        if !w.waitlists.is_empty() {
            metrics::counter!("booking_waitlist_closed_total").increment(1);
        }
        Ok((w, missed))
    }
}

/// Whether `a` is where `event` leads already (a retried call).
fn already(a: &Appointment, event: AppointmentEvent) -> bool {
    use hospital_domain::appointment::AppointmentStatus as S;
    matches!(
        (event, a.status),
        (AppointmentEvent::FinishVisit, S::Seen)
            | (AppointmentEvent::Excuse, S::Excused)
            | (AppointmentEvent::MarkMissed, S::Missed)
    )
}
