//! What booking callers (of the patient and schedule actors) get back when the answer is no, or
//! not now.

use chrono::{DateTime, Utc};
use hospital_domain::booking::BookError;
use hospital_store::StoreError;

use crate::error::ActorError;

/// A refusal or failure of a booking operation.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// The schedule said no (sold out, not released, stopped, ...).
    #[error(transparent)]
    Book(#[from] BookError),
    /// A real-name rule said no (BOOK-6); `reason` is a stable code.
    #[error("{message}")]
    Rule { reason: &'static str, message: String },
    #[error("no such patient under this account")]
    NoSuchPatient,
    #[error("no such appointment")]
    NoSuchAppointment,
    #[error("too late to cancel: cancellations close at {cutoff}")]
    PastCutoff { cutoff: DateTime<Utc> },
    #[error("an appointment can only be moved to another slot of the same doctor; cancel and book instead")]
    OtherDoctor,
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for BookingError {
    fn from(e: StoreError) -> Self {
        BookingError::Unavailable(e.into())
    }
}
