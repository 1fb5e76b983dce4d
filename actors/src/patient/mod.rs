//! The patient session actor: one per account, serialising that account's operations on its
//! patients (就诊人) and its retried bookings, so rules like "at most N patients" hold under
//! concurrent requests from several devices. The real-name rules (BOOK-6) are a person's, who may
//! be a patient of several accounts, and take the person's turn (`real_name`); a booking without an
//! idempotency key needs nothing else of the account, and runs on the caller's task from the
//! patients the actor publishes (`directory`). (The account's live sockets belong to the real-time
//! gateway's hub, not to this actor: an open socket does not keep it in memory.)
//!
//! It is the account's actor: its own rows (profile, phone, notification preferences: `account`)
//! change through it too, one change at a time.
//!
//! Here: `msg` (messages, `PatientError`), `state` (the account's patients and its operations),
//! `directory` (the patients as bookings on callers' tasks read them),
//! `rules` (the account's caps, from memory), `notice` (telling a person's own account),
//! `actor` (the handler, and the kind), `api` (its `ActorSystem` methods).

mod account;
mod actor;
mod api;
mod directory;
mod msg;
mod notice;
mod rules;
mod state;

pub use account::profile_update;
pub use actor::{PatientActor, PatientKind};
pub use directory::PatientDirectory;
pub use msg::{AccountError, PatientError, PatientMsg, ProfileChange};
pub use rules::{check_account, check_person};
pub use state::{PatientArgs, PatientState};
