//! One visit in memory (`VisitState`) and its writes: sealed with the patient's key, then stored.

use chrono::Utc;
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus};
use hospital_domain::exam::Exam;
use hospital_domain::visit::{ConsultationInput, PatientNote, Visit, VisitEvent, VisitId, VisitStatus};
use hospital_domain::ExamId;
use hospital_store::{AppointmentNotesRow, PersonCipher, VisitRow};
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::exam::ExamFailure;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::ActorError;
use ractor::ActorRef;

pub struct VisitArgs {
    pub id: VisitId,
    pub ctx: Arc<Context>,
}

pub struct VisitState {
    pub(super) id: VisitId,
    pub(super) myself: ActorRef<VisitMsg>,
    pub(super) visit: Option<Visit>,
    pub(super) ctx: Arc<Context>,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: Held,
}

/// The cipher, or why there is none.
pub(super) fn cipher(ctx: &Context) -> Result<&PersonCipher, VisitFailure> {
    ctx.records.as_ref().ok_or_else(|| {
        VisitFailure::Unavailable(ActorError::Unavailable {
            kind: "visit",
            id: String::new(),
            reason: "no key vault configured".into(),
        })
    })
}

/// Loads and opens a stored visit.
pub(super) async fn load(ctx: &Context, id: VisitId) -> Result<Option<Visit>, VisitFailure> {
    let Some(row) = ctx.stores.data.visit(id).await? else { return Ok(None) };
    let key = cipher(ctx)?.existing_key(row.patient_id).await?.ok_or(VisitFailure::NotFound)?;
    Ok(Some(row.open(&key)?))
}

impl VisitState {
    /// Seals and writes `visit`; memory follows only on success.
    async fn save(&mut self, visit: Visit) -> Result<Visit, VisitFailure> {
        let key = cipher(&self.ctx)?.key(visit.patient_id).await?;
        let written = self.ctx.stores.data.put_visit(&VisitRow::seal(&visit, &key), self.held.fence().as_ref()).await;
        self.held.after_write(written, &self.myself, "visit", &self.id)?;
        self.visit = Some(visit.clone());
        Ok(visit)
    }

    fn current(&self) -> Result<&Visit, VisitFailure> {
        self.visit.as_ref().ok_or(VisitFailure::NotFound)
    }

    pub(super) async fn call(&mut self, appointment: Appointment, room: String) -> Result<Visit, VisitFailure> {
        let now = Utc::now();
        match &self.visit {
            None => {
                let mut v = Visit::called(&appointment, &room, now)?;
                debug_assert_eq!(v.id, self.id);
                // Notes the patient left on the appointment before: the visit's now.
                if let Some(row) = self.ctx.stores.data.appointment_notes(appointment.id).await? {
                    let key = cipher(&self.ctx)?.key(appointment.patient_id).await?;
                    v.notes = row.open(&key)?;
                }
                self.save(v).await
            }
            Some(v) if v.status == VisitStatus::Called => {
                let mut next = v.clone();
                next.apply(VisitEvent::Recall, now)?;
                self.save(next).await
            }
            // In consultation or finished: a late call changes nothing.
            Some(v) => Ok(v.clone()),
        }
    }

    pub(super) async fn start(&mut self) -> Result<Visit, VisitFailure> {
        let v = self.current()?;
        if v.status != VisitStatus::Called {
            return Ok(v.clone());
        }
        let mut next = v.clone();
        next.apply(VisitEvent::Start, Utc::now())?;
        self.save(next).await
    }

    pub(super) async fn write(&mut self, input: ConsultationInput) -> Result<Visit, VisitFailure> {
        let mut next = self.current()?.clone();
        next.write(&input, Utc::now())?;
        self.save(next).await
    }

    pub(super) async fn finish(&mut self) -> Result<Visit, VisitFailure> {
        let now = Utc::now();
        let mut v = self.current()?.clone();
        if v.status != VisitStatus::Finished {
            // Each exam order gets its exam's id first, durable with the finished visit, so a
            // retry books the same exams and never a second set.
            let unlinked: Vec<u32> = v.exam_orders.iter().filter(|o| o.exam_id.is_none()).map(|o| o.no).collect();
            for no in unlinked {
                v.link_exam(no, ExamId::new())?;
            }
            v.apply(VisitEvent::Finish, now)?;
            v = self.save(v).await?;
        }
        self.book_exams(&v, now).await?;
        self.attend(&v).await?;
        Ok(v)
    }

    /// Brings the visit's appointment (if it was booked here) along with the visit: checked in
    /// if the patient went straight to the consulting room (a visit the HIS recorded), `seen`
    /// once the visit is finished, so the session's close never counts them a no-show. Each
    /// step happens once (a repeat finds it done). An appointment cancelled, expired or already
    /// missed is left as it is: staff correct a wrong no-show (`Excuse`).
    async fn attend(&self, v: &Visit) -> Result<(), VisitFailure> {
        let Some(a) = self.ctx.stores.data.appointment(v.appointment_id).await? else {
            // Registered at the HIS's counter: no appointment here.
            return Ok(());
        };
        if a.account_id != v.account_id || a.patient_id != v.patient_id {
            return Ok(());
        }
        let mut status = a.status;
        if status == AppointmentStatus::Confirmed {
            status = self.ctx.system.attend(a.doctor_id, a.id, AppointmentEvent::CheckIn).await?.status;
        }
        match status {
            AppointmentStatus::CheckedIn if v.status == VisitStatus::Finished => {
                self.ctx.system.attend(a.doctor_id, a.id, AppointmentEvent::FinishVisit).await?;
            }
            AppointmentStatus::CheckedIn | AppointmentStatus::Seen => {}
            other => {
                tracing::warn!(visit = %v.id, appointment = %a.id, status = ?other, "a visit of an appointment that is not attended; left as it is")
            }
        }
        Ok(())
    }

    /// Books the exams of a finished visit's orders (each under the id fixed in the visit, so a
    /// repeat books none twice).
    async fn book_exams(&self, v: &Visit, now: chrono::DateTime<Utc>) -> Result<(), VisitFailure> {
        for order in &v.exam_orders {
            let Some(id) = order.exam_id else { continue };
            let mut exam = Exam::new(v.account_id, v.patient_id, &order.name, order.kind, now)
                .map_err(hospital_domain::visit::VisitError::from)?;
            exam.id = id;
            match self.ctx.system.create_exam(exam).await {
                Ok(_) | Err(ExamFailure::Exists) => {}
                Err(ExamFailure::Unavailable(e)) => return Err(VisitFailure::Unavailable(e)),
                Err(e) => {
                    tracing::error!(visit = %v.id, exam = %id, error = %e, "an exam order was refused as an exam");
                }
            }
        }
        Ok(())
    }

    pub(super) async fn import(&mut self, mut v: Visit) -> Result<Visit, VisitFailure> {
        if self.visit.is_some() {
            return Err(VisitFailure::Exists);
        }
        debug_assert_eq!(v.id, self.id);
        let now = Utc::now();
        if v.status == VisitStatus::Finished {
            let unlinked: Vec<u32> = v.exam_orders.iter().filter(|o| o.exam_id.is_none()).map(|o| o.no).collect();
            for no in unlinked {
                v.link_exam(no, ExamId::new())?;
            }
        }
        let v = self.save(v).await?;
        if v.status == VisitStatus::Finished {
            self.book_exams(&v, now).await?;
        }
        self.attend(&v).await?;
        Ok(v)
    }

    pub(super) async fn amend_record(&mut self, text: &str) -> Result<Visit, VisitFailure> {
        let mut next = self.current()?.clone();
        next.amend_record(text, Utc::now())?;
        if Some(&next) == self.visit.as_ref() {
            return Ok(next);
        }
        self.save(next).await
    }

    /// A note on the appointment before its visit (sealed with the patient's key), or on the
    /// visit once it is made. One actor per appointment's visit, so two notes never race.
    pub(super) async fn add_appointment_note(
        &mut self,
        appointment: &Appointment,
        text: &str,
    ) -> Result<Vec<PatientNote>, VisitFailure> {
        debug_assert_eq!(VisitId::of_appointment(appointment.id), self.id);
        if self.visit.is_some() {
            return Ok(self.add_note(text).await?.notes);
        }
        let key = cipher(&self.ctx)?.key(appointment.patient_id).await?;
        let mut notes = match self.ctx.stores.data.appointment_notes(appointment.id).await? {
            Some(row) => row.open(&key)?,
            None => Vec::new(),
        };
        PatientNote::add_to(&mut notes, text, Utc::now())?;
        let row = AppointmentNotesRow::seal(appointment.id, appointment.account_id, &notes, &key);
        let written = self.ctx.stores.data.put_appointment_notes(&row, self.held.fence().as_ref()).await;
        self.held.after_write(written, &self.myself, "visit", &self.id)?;
        Ok(notes)
    }

    pub(super) async fn add_note(&mut self, text: &str) -> Result<Visit, VisitFailure> {
        let mut next = self.current()?.clone();
        next.add_note(text, Utc::now())?;
        self.save(next).await
    }
}
