//! Actors that own the platform's live state, one per id: a doctor's schedule (`schedule`), a
//! patient account (`patient`), an order being paid (`payment`), a clinic session's queue
//! (`queue`), an exam (`exam`), a visit (`visit`), a customer-service conversation
//! (`conversation`) and a chat service group's dispatcher (`dispatcher`), each serialising the operations on its id so no two requests
//! race on the same doctor, account, order, session or exam. Beside them, the notifier
//! (`notifier`, a supervised task) sends confirmations and reminders, and the job runner (`jobs`)
//! runs durable jobs (closing sessions, erasing accounts).
//!
//! The tree is `root -> one kind supervisor per kind -> one actor per id`. A kind supervisor
//! (`supervisor::KindSupervisor<K>`) is the only place that starts actors of its kind, so one id
//! never gets two actors; it restarts a panicked actor with the same id (the actor reloads its
//! state from the store in `pre_start`) and gives up on an id that crashes in a loop. Actors stop
//! themselves when idle. Callers go through `ActorSystem` (`system`), which finds or starts the
//! actor and bounds every call with a timeout; each kind's folder holds its messages, state,
//! actor and its `ActorSystem` methods (`api`).
//!
//! Adding a kind is: a folder like the others (an actor, its `ActorKind` and `SpawnKind` impls),
//! one entry in `tree`'s kind list, and its `api`.
//!
//! Errors: `ActorError` is an infrastructure failure (unreachable, too late, the store failed);
//! each kind's refusals are its own type, whose `Unavailable` variant carries the `ActorError`.

pub mod announce;
pub mod booking;
pub mod chat_metrics;
pub mod closings;
pub mod config;
pub mod console;
pub mod conversation;
pub mod counters;
pub mod deps;
pub mod dispatcher;
pub mod effects;
pub mod error;
pub mod events;
pub mod exam;
mod idle;
pub mod jobs;
pub(crate) mod keyed_lock;
pub mod kind;
pub mod notifier;
pub mod ownership;
pub mod patient;
pub mod payment;
pub mod pipeline;
pub mod queue;
mod real_name;
pub mod reconcile;
pub mod schedule;
pub mod supervisor;
pub mod system;
pub mod templates;
pub mod ticket;
pub mod tree;
pub mod visit;

pub use announce::Announcer;
pub use booking::BookingError;
pub use config::{ActorConfig, ChatConfig};
pub use console::{ConsoleBus, Consoles};
pub use conversation::{ChatFailure, ConversationKind, Party};
pub use deps::{ActorDeps, Context};
pub use dispatcher::{DispatcherKind, DispatcherView};
pub use effects::{Effect, EffectSink};
pub use error::ActorError;
pub use events::{EventBus, Events};
pub use exam::{ExamFailure, ExamKind, ExamMsg};
pub use jobs::{AccountEraser, JobRunner, StoreEraser};
pub use kind::{ActorKind, KindStats};
pub use patient::{AccountError, PatientActor, PatientError, PatientKind, PatientMsg, ProfileChange};
pub use payment::{AlipayPayment, PaymentError, PaymentKind, PaymentMsg};
pub use queue::{QueueError, QueueKind, QueueMsg};
pub use real_name::HeldTurn;
pub use reconcile::{ReconcileError, Reconciler};
pub use schedule::{
    AvailabilityGate, Booker, ScheduleActor, ScheduleKind, ScheduleMsg, SessionAvailability, StopReport,
};
pub use supervisor::SpawnKind;
pub use system::ActorSystem;
pub use ticket::{TicketFailure, TicketKind, TicketParty};
pub use tree::SystemStats;
pub use visit::{VisitFailure, VisitKind, VisitMsg};
