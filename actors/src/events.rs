//! Where actors publish what clients should see live (PLAT-2, BOOK-2, BOOK-10, REC-4, MSG-1): the
//! `EventBus` the real-time gateway implements. Actors only publish; they never know about
//! sockets, nodes or Redis. Two kinds of event (`hospital_domain::live`):
//! - personal: for one account (an appointment, an order, a new message, a queue position, an
//!   exam). An actor writes them in the same durable write as the change they report (the
//!   store's outbox, `PendingEvent`), and hands them to the bus only once that write is durable;
//!   the bus numbers them per account in a bounded log, so a client that reconnects gets exactly
//!   what it missed, and a crash in between loses nothing (the gateway logs what is left in the
//!   outbox when it starts). On one machine without Redis the store numbers a booking write's
//!   plain events in that log itself, with the change (`hospital_store::Placed`), and the bus
//!   only delivers them.
//! - topic: public state under a name (`doctor:<id>` remaining places). Latest value wins: under
//!   load a slow client gets the newest value, not every step.

use hospital_domain::live::TopicEvent;
use hospital_store::PendingEvent;
use std::sync::Arc;

pub trait EventBus: Send + Sync {
    /// Personal events whose change is durable (they are in the outbox): log and deliver them.
    /// Never blocks the caller.
    fn personal(&self, events: Vec<PendingEvent>);
    /// Publishes the new state of a topic. Never blocks the caller.
    fn topic(&self, event: TopicEvent);
}

/// A bus that drops everything: for an actor system without a gateway (benchmarks, tests that
/// do not look at events). Personal events still wait in the outbox.
struct NoBus;

impl EventBus for NoBus {
    fn personal(&self, _events: Vec<PendingEvent>) {}
    fn topic(&self, _event: TopicEvent) {}
}

/// The handle actors hold.
#[derive(Clone)]
pub struct Events {
    bus: Arc<dyn EventBus>,
}

impl Default for Events {
    fn default() -> Self {
        Self { bus: Arc::new(NoBus) }
    }
}

impl Events {
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus }
    }

    /// Hands over the personal events of a change that is now durable.
    pub fn durable(&self, events: Vec<PendingEvent>) {
        if !events.is_empty() {
            self.bus.personal(events);
        }
    }

    pub fn topic(&self, event: TopicEvent) {
        self.bus.topic(event);
    }
}
