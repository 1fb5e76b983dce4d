//! The doctor schedule actor: one per doctor, the single owner of that doctor's sessions, holds,
//! bookings and waitlists (a `DoctorBook`). Booking a slot is serialised here, per doctor, with no
//! global lock: "sold out" is answered from memory, a change is applied in memory, queued on the
//! actor's write pipeline, and answered once durable. A restart rebuilds the book from the store.
//!
//! Here: `msg` (messages and answer payloads), `state` (the book and what each change does to it),
//! `actor` (the handler, and the kind), `check_in` (the schedule's half of 签到), `attendance`
//! (seen, missed, excused; the close job), `gate` (the node's availability gate the actors keep
//! current, which refuses without asking them), `api` (its
//! `ActorSystem` methods).

mod actor;
mod api;
mod attendance;
mod check_in;
mod gate;
mod msg;
mod state;

pub use actor::{ScheduleActor, ScheduleKind};
pub use attendance::NOT_APPLICABLE;
pub(crate) use gate::gate_refused;
pub use gate::{AvailabilityGate, GateAnswer, SessionFacts};
pub use msg::{Booker, ScheduleMsg, SessionAvailability, SessionsAdded, StopReport};
pub use state::{closing_job, session_jobs, ScheduleArgs, ScheduleState};
