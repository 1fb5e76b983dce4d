//! Where actors publish what clients should see live (PLAT-2, BOOK-2, BOOK-10, REC-4, MSG-1): the
//! `EventBus` the real-time gateway implements. Actors only publish; they never know about sockets,
//! nodes or Redis. Two kinds of event:
//! - personal: for one account (queue position, exam status, payment, a new message). Sequenced
//!   per account and kept in a bounded log, so a client that reconnects gets exactly what it
//!   missed.
//! - topic: public state under a name (`doctor:<id>` remaining places). Latest value wins: under
//!   load a slow client gets the newest value, not every step; on reconnect it re-subscribes and
//!   gets a fresh snapshot.

use hospital_domain::AccountId;
use std::sync::{Arc, OnceLock};

pub trait EventBus: Send + Sync {
    /// Publishes a personal event for `account`. Never blocks the caller.
    fn personal(&self, account: AccountId, kind: &str, payload: serde_json::Value);
    /// Publishes the new state of `topic`. Never blocks the caller.
    fn topic(&self, topic: &str, kind: &str, payload: serde_json::Value);
}

/// A handle actors hold; empty (events dropped) until the gateway connects its bus.
#[derive(Clone, Default)]
pub struct Events {
    bus: Arc<OnceLock<Arc<dyn EventBus>>>,
}

impl Events {
    pub fn connect(&self, bus: Arc<dyn EventBus>) {
        let _ = self.bus.set(bus);
    }

    pub fn personal(&self, account: AccountId, kind: &str, payload: serde_json::Value) {
        if let Some(b) = self.bus.get() {
            b.personal(account, kind, payload);
        }
    }

    pub fn topic(&self, topic: &str, kind: &str, payload: serde_json::Value) {
        if let Some(b) = self.bus.get() {
            b.topic(topic, kind, payload);
        }
    }
}

/// Events gathered while a change is made, published once it is durable.
#[derive(Debug, Default)]
pub(crate) struct LiveEvents {
    pub personal: Vec<(AccountId, &'static str, serde_json::Value)>,
    /// (topic, payload); the kind is always `availability`.
    pub topics: Vec<(String, serde_json::Value)>,
}

impl LiveEvents {
    pub(crate) fn publish(self, events: &Events) {
        for (account, kind, payload) in self.personal {
            events.personal(account, kind, payload);
        }
        for (topic, payload) in self.topics {
            events.topic(&topic, "availability", payload);
        }
    }
}

/// An appointment as live events carry it (the REST view has more; this is what changes).
pub(crate) fn appointment_json(a: &hospital_domain::appointment::Appointment) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "status": a.status,
        "slot_id": a.slot,
        "place": a.place,
        "date": a.date,
        "period": a.period,
        "patient_id": a.patient_id,
        "order_id": a.order_id,
        "slip_no": a.slip_no,
        "hold_expires_at": a.hold_expires_at,
        "from_waitlist": a.from_waitlist,
    })
}

/// An event on its way to sockets: a personal one carries its account sequence number.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveEvent {
    /// Per-account sequence (personal events); None for topic updates.
    pub seq: Option<u64>,
    pub kind: String,
    /// The topic a topic update belongs to.
    pub topic: Option<String>,
    pub payload: serde_json::Value,
    /// When it was published (unix ms), for the fan-out latency metric.
    pub at_ms: u64,
}

/// A client connection as the patient actor holds it. Implemented by the WebSocket gateway; the
/// actor only hands events over and never waits on a socket.
pub trait LiveSocket: Send + Sync + std::fmt::Debug {
    fn id(&self) -> u64;
    /// Queues a personal event. False when the socket is gone (the actor then forgets it).
    fn deliver(&self, event: &std::sync::Arc<LiveEvent>) -> bool;
}
