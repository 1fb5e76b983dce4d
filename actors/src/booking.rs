//! What booking callers get back when the answer is no, and the side effects the booking actors
//! hand to others (closing or refunding payment orders) without waiting for them.

use chrono::{DateTime, Utc};
use hospital_domain::booking::BookError;
use hospital_domain::OrderId;
use hospital_store::StoreError;

use crate::ActorError;

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

/// Work the booking actors leave to the payment side: done after the booking change is durable,
/// retried by the payment actor, never blocking a schedule actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A hold lapsed or was cancelled before payment: close the order at the provider.
    CloseOrder(OrderId),
    /// A paid booking was cancelled (by the patient or a clinic stop): refund it in full.
    Refund { order: OrderId, reason: String },
}

/// Where booking actors send `Effect`s: the effect dispatcher's queue, made by
/// `ActorSystem::start` before any actor runs. Effects sent after shutdown are logged and
/// dropped; the payment actors' own timers (order expiry) catch them up.
#[derive(Clone)]
pub struct EffectSink {
    tx: tokio::sync::mpsc::UnboundedSender<Effect>,
}

impl EffectSink {
    pub(crate) fn new(tx: tokio::sync::mpsc::UnboundedSender<Effect>) -> Self {
        Self { tx }
    }

    pub fn send(&self, e: Effect) {
        if let Err(lost) = self.tx.send(e) {
            tracing::warn!(effect = ?lost.0, "the effect dispatcher has stopped; effect dropped");
        }
    }
}
