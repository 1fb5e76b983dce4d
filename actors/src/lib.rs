//! Actors that own the platform's live state: one per doctor schedule (`schedule`) and one per
//! patient account (`patient`), each serialising the operations on its id so no two requests race
//! on the same doctor or account.
//!
//! The tree is `root -> {schedules, patients} -> one actor per id`. A kind supervisor
//! (`supervisor::KindSupervisor<K>`) is the only place that starts actors of its kind, so one id
//! never gets two actors; it restarts a panicked actor with the same id (the actor reloads its
//! state from the store in `pre_start`) and gives up on an id that crashes in a loop. Actors stop
//! themselves when idle. Callers go through `ActorSystem`, which finds or starts the actor and
//! bounds every call with a timeout.
//!
//! Adding a kind (payments, next) is: an actor, an `ActorKind` impl naming its id type and
//! arguments, one entry in `ActorSystem::start`'s kind list, and a lookup method.

pub mod booking;
pub mod config;
pub mod effects;
pub mod error;
pub mod events;
pub mod exam;
mod idle;
pub mod kind;
pub mod notifier;
pub mod patient;
pub mod payment;
pub mod pipeline;
pub mod queue;
pub mod schedule;
pub mod supervisor;
pub mod system;

pub use booking::{BookingError, Effect, EffectSink};
pub use config::{ActorConfig, ActorDeps, Context};
pub use error::ActorError;
pub use events::{EventBus, Events};
pub use exam::{ExamFailure, ExamKind, ExamMsg};
pub use kind::ActorKind;
pub use patient::{PatientActor, PatientError, PatientKind, PatientMsg};
pub use payment::{PaymentError, PaymentKind, PaymentMsg};
pub use queue::{QueueError, QueueKind, QueueMsg};
pub use schedule::{Booker, ScheduleActor, ScheduleKind, ScheduleMsg, SessionAvailability, StopReport};
pub use supervisor::KindStats;
pub use system::{ActorSystem, SystemStats};
