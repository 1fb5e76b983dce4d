//! The visit actor (BOOK-10 end of a visit, REC-2): one per visit (a visit's id is its
//! appointment's), its only writer. The doctor calls the patient (the visit is made, `Called`),
//! starts the consultation, writes the form (chief complaint, diagnoses, prescription, exam
//! orders, the record) as often as needed, and finishes: the exam orders become exams in their
//! own status flow, the prescription and exam orders become the patient's unpaid fee items, and
//! the appointment becomes `Seen`. A visit the HIS pushes (`Import`) does the same to the
//! appointment it names, checking it in first if the patient went straight in. Every version of
//! the visit is sealed with the patient's data key (`PersonCipher`) before it reaches the store.
//!
//! Here: `msg` (messages, `VisitFailure`), `state` (the visit and its writes), `actor` (the
//! handler, and the kind), `api` (its `ActorSystem` methods).

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{VisitActor, VisitKind};
pub use msg::{VisitFailure, VisitMsg};
pub use state::{VisitArgs, VisitState};
