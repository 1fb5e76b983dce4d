//! The node's availability gate: for every session whose doctor's schedule actor is running on
//! this node, the facts that decide a hold's refusals that need no person (stopped, not yet
//! released, sold out: `SessionGate`). `ActorSystem::book` asks it first, so in a release storm
//! the thousands of attempts that must be refused cost a map lookup here: no actor hop, no store
//! read. The schedule actor stays the only authority for a hold: the gate never says yes, it
//! only says "no" or "ask the actor" (a session it does not know, or one with places left).
//!
//! Why the gate only ever says "no" when the actor would (at the moment the gate is read):
//!
//! - Only the doctor's actor writes its sessions' entries, from its own book, inside the handler
//!   that changed the book, before it takes the next message. A change that frees places or opens
//!   a session (a cancellation, a lapsed hold, 加号 `SetQuota`, an earlier release time) is in the
//!   gate before any later hold is processed; a reader that saw the older entry read it before
//!   the change, when the actor would have refused too. A change that takes places (a hold) may
//!   reach the gate a moment after the book: then the gate says "ask the actor" where the actor
//!   would refuse, which is allowed.
//! - Entries are written after the change's write is queued on the actor's pipeline, never
//!   before: if the handler panics before queuing, the gate still shows the state before the
//!   change, which is what the store holds and what the restarted actor reloads.
//! - Restarts: a queued write lands even if the actor dies (the successor waits for it, see
//!   `WritePipeline::quiesce`), so after a panic the store holds what the gate was last told. A
//!   write that FAILS makes memory (and the gate) ahead of the store: the actor forgets its
//!   entries before it stops for the restart (`WriteFailed`), and a (re)started actor replaces all
//!   of its doctor's entries with what it loaded (`replace`), so an entry never outlives the book
//!   it was copied from. An actor that stops when idle forgets its entries too.
//! - Time: "not yet released" is decided with the reader's clock at the moment it reads, the same
//!   clock the actor uses, so at the release instant both open together.
//! - Several nodes: each node's gate holds only the sessions of the actors running on it; a
//!   session it does not know is "ask the actor".
//!
//! When the gate knows the session and a place is left it says "ask the actor" with the
//! session's facts (`SessionFacts`: doctor, department, day, which never change for a session):
//! the account's actor then reads neither the session from the store nor asks the doctor's actor
//! whether a place is left before applying the real-name rules; the hold itself is still the
//! doctor's actor's to grant or refuse, so a place taken meanwhile is refused there as before.
//!
//! What the gate cannot answer stays with the actors: a retried request (an `Idempotency-Key`,
//! whose first answer only the store knows), another account's patient id (refused by the
//! account's actor as not found; the gate may answer the slot's refusal first, which is also a
//! refusal that changes nothing), the real-name rules and "already in this session".

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::booking::{BookError, SessionBook, SessionGate};
use hospital_domain::schedule::{SessionStatus, SlotId};
use hospital_domain::{DepartmentId, DoctorId, SessionId};
use std::collections::HashMap;
use std::sync::RwLock;

/// Session id -> (its doctor, the facts that refuse a hold). Read on every booking attempt,
/// written on every change of a running doctor's book; hashed with foldhash (SipHash was a
/// measurable part of a refusal: docs/benchmarks.md, stop 51).
#[derive(Debug, Default)]
pub struct AvailabilityGate {
    sessions: RwLock<HashMap<SessionId, (DoctorId, SessionGate), foldhash::fast::RandomState>>,
}

/// A session's facts that never change, as the gate has them from the doctor's book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    pub doctor: DoctorId,
    pub department: DepartmentId,
    pub date: NaiveDate,
}

/// What the gate says of a hold (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateAnswer {
    /// What the actor would answer too: stopped, not yet released or sold out.
    Refuse(BookError),
    /// Ask the actor; a place was left in the slot's segment when the gate was read.
    PlaceLeft(SessionFacts),
    /// Ask the actor; the gate does not know the session (or the segment).
    Unknown,
}

impl AvailabilityGate {
    /// The refusal the slot's session gets at `now` if it is stopped, not yet released or sold
    /// out in this segment; None means "ask the actor" (unknown here, or a place is left).
    pub fn refusal(&self, slot: SlotId, now: DateTime<Utc>) -> Option<BookError> {
        match self.answer(slot, now) {
            GateAnswer::Refuse(e) => Some(e),
            GateAnswer::PlaceLeft(_) | GateAnswer::Unknown => None,
        }
    }

    /// `refusal`, and when a place is left, the session's facts.
    pub fn answer(&self, slot: SlotId, now: DateTime<Utc>) -> GateAnswer {
        let map = self.sessions.read().expect("gate lock");
        let Some((doctor, gate)) = map.get(&slot.session_id) else { return GateAnswer::Unknown };
        match gate.check(slot.segment, now) {
            Ok(()) => {
                GateAnswer::PlaceLeft(SessionFacts { doctor: *doctor, department: gate.department_id, date: gate.date })
            }
            // An unknown segment: the actor gives that answer (and knows the session best).
            Err(BookError::NoSuchSlot) => GateAnswer::Unknown,
            Err(e) => GateAnswer::Refuse(e),
        }
    }

    /// Copies these sessions of `doctor`'s book (those a change touched).
    pub(crate) fn publish<'a>(&self, doctor: DoctorId, books: impl IntoIterator<Item = &'a SessionBook>) {
        let fresh: Vec<(SessionId, SessionGate)> = books.into_iter().map(|b| (b.session.id, b.gate())).collect();
        if fresh.is_empty() {
            return;
        }
        let mut map = self.sessions.write().expect("gate lock");
        for (id, g) in fresh {
            map.insert(id, (doctor, g));
        }
    }

    /// Replaces everything known of `doctor` with its whole book (an actor that (re)started).
    pub(crate) fn replace<'a>(&self, doctor: DoctorId, books: impl IntoIterator<Item = &'a SessionBook>) {
        let fresh: Vec<(SessionId, SessionGate)> = books.into_iter().map(|b| (b.session.id, b.gate())).collect();
        let mut map = self.sessions.write().expect("gate lock");
        map.retain(|_, (d, _)| *d != doctor);
        for (id, g) in fresh {
            map.insert(id, (doctor, g));
        }
    }

    /// Forgets `doctor`'s sessions (its actor stops, or its memory is no longer the truth).
    pub(crate) fn forget(&self, doctor: DoctorId) {
        self.sessions.write().expect("gate lock").retain(|_, (d, _)| *d != doctor);
    }

    /// The earliest release after `now` of a session known here that is not stopped: when the
    /// next burst of holds comes (`jobs::burst_watch`).
    pub fn next_release(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let map = self.sessions.read().expect("gate lock");
        map.values()
            .filter(|(_, g)| g.status != SessionStatus::Stopped && g.release_at > now)
            .map(|(_, g)| g.release_at)
            .min()
    }

    /// How many sessions the gate knows (tests, metrics).
    pub fn len(&self) -> usize {
        self.sessions.read().expect("gate lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A refusal the node's availability gate gave (in `ActorSystem::book`, or in the account's
/// actor), counted as the doctor's actor counts its own.
pub(crate) fn gate_refused(refusal: BookError) -> crate::booking::BookingError {
    crate::count!("booking_attempts_total");
    if refusal == BookError::SoldOut {
        crate::count!("booking_sold_out_total");
    }
    crate::count!("booking_gate_refusals_total");
    crate::booking::BookingError::Book(refusal)
}
