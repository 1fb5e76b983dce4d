//! The side effects booking actors hand to the payment side (closing or refunding payment
//! orders) once their change is durable, without waiting for them. The dispatcher that carries
//! them out is `payment::dispatch`.

use hospital_domain::OrderId;
use tokio::sync::mpsc::UnboundedSender;

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
    tx: UnboundedSender<Effect>,
}

impl EffectSink {
    pub(crate) fn new(tx: UnboundedSender<Effect>) -> Self {
        Self { tx }
    }

    pub fn send(&self, e: Effect) {
        if let Err(lost) = self.tx.send(e) {
            tracing::warn!(effect = ?lost.0, "the effect dispatcher has stopped; effect dropped");
        }
    }
}
