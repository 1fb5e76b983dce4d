//! The queue actor (BOOK-10, 签到/候诊/叫号): one per clinic session (one doctor, one date, one
//! period = one room's queue), the only owner and writer of that session's `ClinicQueue`.
//!
//! - Check-in: the appointment must be confirmed, for today (the hospital's zone) and the
//!   caller's. The doctor's schedule actor, owner of the appointment, decides and moves it to
//!   `CheckedIn` through the state machine (`ScheduleMsg::CheckIn`, durable before it answers);
//!   then this actor adds it to the queue. A repeat is answered with the patient's standing.
//! - Staff: call next (叫号), skip (过号), call a skipped patient again, move a waiting one.
//!
//! Every change is applied to a copy, written whole (`QueueStore::put_queue`) and only then made
//! current, answered and published: each waiting patient's position and estimated wait (personal
//! event `queue`), the called, skipped or finished patient's new status, a stored `VisitReminder`
//! message to the called one, and the public summary on topic `queue:<session id>`.
//!
//! Here: `msg` (messages, `QueueError`), `state` (the queue and what each patient sees of a
//! change), `actor` (the handler, and the kind), `api` (its `ActorSystem` methods).

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{QueueActor, QueueKind};
pub use msg::{QueueError, QueueMsg};
pub use state::{QueueArgs, QueueState};
