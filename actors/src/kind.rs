//! What the system knows of a kind of actor: its names, the id it is keyed by and its actor's
//! message type; how a kind supervisor is asked for an actor (`KindMsg`), and the registry names.
//! How an actor of the kind is started is `supervisor::SpawnKind`; everything else (starting,
//! naming, restarting, crash-loop limits, idle clean-up) is written once in `supervisor` for all
//! kinds.

use ractor::{Actor, ActorRef, RpcReplyPort};
use std::fmt::{Debug, Display};
use std::hash::Hash;

use crate::error::ActorError;

/// A kind of per-id actor (schedules, patients, payments...).
pub trait ActorKind: Sized + Send + Sync + 'static {
    /// Singular label for actor names, logs and metrics (`"schedule"`).
    const KIND: &'static str;
    /// The kind supervisor's name (`"schedules"`).
    const SUPERVISOR: &'static str;
    /// What one actor is keyed by. `Display` gives the registry name `<KIND>:<id>`.
    type Id: Copy + Eq + Hash + Display + Debug + Send + Sync + 'static;
    /// The per-id actor.
    type Actor: Actor;
}

/// The message type of a kind's actor.
pub type ChildMsg<K> = <<K as ActorKind>::Actor as Actor>::Msg;

/// The registry name of a kind's actor for `id`.
pub(crate) fn child_name<K: ActorKind>(prefix: &str, id: K::Id) -> String {
    format!("{prefix}/{}:{id}", K::KIND)
}

/// The registry name of a kind's supervisor.
pub(crate) fn supervisor_name<K: ActorKind>(prefix: &str) -> String {
    format!("{prefix}/{}", K::SUPERVISOR)
}

pub(crate) fn root_name(prefix: &str) -> String {
    format!("{prefix}/root")
}

/// Counters of one kind supervisor, for tests, health pages and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Actors of this kind running now.
    pub live: usize,
    /// Actors that panicked or returned an error.
    pub failures: u64,
    /// Restarts the supervisor made after a failure.
    pub restarts: u64,
    /// Failures after which the supervisor gave up on the id (crash loop).
    pub given_up: u64,
}

/// The answer to `Ensure`.
pub(crate) enum Ensured<M: ractor::Message> {
    Ready(ActorRef<M>),
    /// The id's actor is draining (idle stop); ask again in a moment.
    Stopping,
    Refused(ActorError),
}

/// Messages of a kind supervisor.
pub(crate) enum KindMsg<K: ActorKind> {
    /// Finds the id's actor or starts it.
    Ensure {
        id: K::Id,
        reply: RpcReplyPort<Ensured<ChildMsg<K>>>,
    },
    Stats {
        reply: RpcReplyPort<KindStats>,
    },
}
