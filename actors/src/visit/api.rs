//! The visit side of `ActorSystem`.

use hospital_domain::appointment::Appointment;
use hospital_domain::visit::{ConsultationInput, Visit, VisitId};

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

    asks! { VisitKind:
        /// The patient is in: the consultation starts.
        pub fn start_visit(id: VisitId) -> Visit, VisitFailure = once |reply| VisitMsg::Start { reply };
        /// Replaces what the doctor wrote.
        pub fn write_visit(id: VisitId, input: ConsultationInput) -> Visit, VisitFailure
            = once |reply| VisitMsg::Write { input: input.clone(), reply };
        /// Ends the visit (exams booked, fee items billable, the appointment seen).
        pub fn finish_visit(id: VisitId) -> Visit, VisitFailure = once |reply| VisitMsg::Finish { reply };
        /// The visit through its actor (the latest version, opened).
        pub fn visit(id: VisitId) -> Visit, VisitFailure = reads |reply| VisitMsg::Get { reply };
    }
}
