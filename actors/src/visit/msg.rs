//! What a visit actor is sent (`VisitMsg`), and why a visit was not changed (`VisitFailure`).

use hospital_domain::appointment::Appointment;
use hospital_domain::visit::{ConsultationInput, PatientNote, Visit, VisitError};
use hospital_store::StoreError;
use ractor::RpcReplyPort;

use crate::booking::BookingError;

/// Why a visit was not made or changed.
#[derive(Debug, thiserror::Error)]
pub enum VisitFailure {
    #[error("no such visit")]
    NotFound,
    /// A visit with that id exists already (an import for an appointment already seen here).
    #[error("this visit exists already")]
    Exists,
    /// The visit's rules refused the change (its state, or the form's content).
    #[error(transparent)]
    Rejected(#[from] VisitError),
    /// The schedule refused the appointment's change (e.g. it is not checked in).
    #[error(transparent)]
    Booking(BookingError),
    /// The actor, the key vault or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] crate::ActorError),
}

impl From<StoreError> for VisitFailure {
    fn from(e: StoreError) -> Self {
        VisitFailure::Unavailable(e.into())
    }
}

impl From<BookingError> for VisitFailure {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::Unavailable(a) => VisitFailure::Unavailable(a),
            other => VisitFailure::Booking(other),
        }
    }
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, VisitFailure>>;

#[derive(Debug)]
pub enum VisitMsg {
    /// The patient of `appointment` (checked in) is called to `room`: the visit is made, or,
    /// called again after a skip, its call time moves.
    Call { appointment: Box<Appointment>, room: String, reply: Reply<Visit> },
    /// The patient is in: the consultation starts. A repeat answers the visit as it is.
    Start { reply: Reply<Visit> },
    /// Replaces what the doctor wrote (only in consultation).
    Write { input: ConsultationInput, reply: Reply<Visit> },
    /// Ends the visit: exams booked for its orders, the appointment seen. A repeat finishes
    /// what a failed attempt left (exams, the appointment) and answers the visit.
    Finish { reply: Reply<Visit> },
    /// The visit as stored, opened.
    Get { reply: Reply<Visit> },
    /// A visit recorded in the hospital's own system, made here whole (`Visit::imported`):
    /// stored, and, if finished, its exam orders booked as exams; the appointment it names, if
    /// booked here, checked in and (finished) `seen`. `Exists` if there is one.
    Import { visit: Box<Visit>, reply: Reply<Visit> },
    /// Replaces the record text (the HIS's version), at any stage.
    AmendRecord { text: String, reply: Reply<Visit> },
    /// Adds a patient's note for the doctor.
    AddNote { text: String, reply: Reply<Visit> },
    /// Adds a patient's note for the doctor to an upcoming appointment (this actor's visit's):
    /// kept with the appointment until the visit is made, which takes the notes over; to the
    /// visit itself once it is. Answers the notes.
    AddAppointmentNote { appointment: Box<Appointment>, text: String, reply: Reply<Vec<PatientNote>> },
    #[doc(hidden)]
    Tick,
    /// Several nodes: renew the visit's lease, or stop; internal.
    #[doc(hidden)]
    RenewLease,
}
