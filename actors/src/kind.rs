//! What a kind of actor tells its supervisor: the id it is keyed by, the actor, and how to build
//! the actor's start-up arguments from an id. Everything else (starting, naming, restarting,
//! crash-loop limits, idle clean-up) is written once in `supervisor` for all kinds.

use ractor::Actor;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::sync::Arc;

use crate::Context;

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

    fn actor() -> Self::Actor;
    /// The arguments `pre_start` gets; the actor loads its state from the store there, so a
    /// restart after a panic rebuilds it from the durable truth.
    fn args(id: Self::Id, ctx: &Arc<Context>) -> <Self::Actor as Actor>::Arguments;
}

/// The message type of a kind's actor.
pub type ChildMsg<K> = <<K as ActorKind>::Actor as Actor>::Msg;
