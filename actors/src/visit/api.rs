//! The visit side of `ActorSystem`.

use hospital_domain::appointment::Appointment;
use hospital_domain::visit::{ConsultationInput, PatientNote, Visit, VisitId};

use super::actor::VisitKind;
use super::msg::{VisitFailure, VisitMsg};
use crate::system::{asks, ActorSystem, Retry};

impl ActorSystem {
    /// Calls the patient of a checked-in appointment to `room` (the visit made, or recalled).
    pub async fn call_visit(&self, appointment: Appointment, room: String) -> Result<Visit, VisitFailure> {
        let id = VisitId::of_appointment(appointment.id);
        self.ask::<VisitKind, _>(id, Retry::UndeliveredOnly, |reply| VisitMsg::Call {
            appointment: Box::new(appointment.clone()),
            room: room.clone(),
            reply,
        })
        .await?
    }

    /// Makes a visit pushed by the hospital's own system (`Visit::imported`); `Exists` if its id
    /// is taken.
    pub async fn import_visit(&self, visit: Visit) -> Result<Visit, VisitFailure> {
        self.ask::<VisitKind, _>(visit.id, Retry::UndeliveredOnly, |reply| VisitMsg::Import {
            visit: Box::new(visit.clone()),
            reply,
        })
        .await?
    }

    /// Adds a patient's note for the doctor to an upcoming appointment (checked by the caller:
    /// the patient's own, booked or checked in); the notes so far.
    pub async fn add_appointment_note(
        &self,
        appointment: Appointment,
        text: String,
    ) -> Result<Vec<PatientNote>, VisitFailure> {
        let id = VisitId::of_appointment(appointment.id);
        self.ask::<VisitKind, _>(id, Retry::UndeliveredOnly, |reply| VisitMsg::AddAppointmentNote {
            appointment: Box::new(appointment.clone()),
            text: text.clone(),
            reply,
        })
        .await?
    }

    asks! { VisitKind:
        /// The patient is in: the consultation starts.
        pub fn start_visit(id: VisitId) -> Visit, VisitFailure = once |reply| VisitMsg::Start { reply };
        /// Replaces what the doctor wrote.
        pub fn write_visit(id: VisitId, input: ConsultationInput) -> Visit, VisitFailure
            = once |reply| VisitMsg::Write { input: input.clone(), reply };
        /// Ends the visit (exams booked, fee items billable, the appointment seen).
        pub fn finish_visit(id: VisitId) -> Visit, VisitFailure = once |reply| VisitMsg::Finish { reply };
        /// Replaces the record text (the HIS's version).
        pub fn amend_visit_record(id: VisitId, text: String) -> Visit, VisitFailure
            = once |reply| VisitMsg::AmendRecord { text: text.clone(), reply };
        /// Adds a patient's note for the doctor.
        pub fn add_visit_note(id: VisitId, text: String) -> Visit, VisitFailure
            = once |reply| VisitMsg::AddNote { text: text.clone(), reply };
        /// The visit through its actor (the latest version, opened).
        pub fn visit(id: VisitId) -> Visit, VisitFailure = reads |reply| VisitMsg::Get { reply };
    }
}
