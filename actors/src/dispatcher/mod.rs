//! The dispatcher actor (CS-2, CS-3): one per service group, the only owner and writer of the
//! group's `Dispatcher` (backlog in arrival order, agents with caps and presence, fewest-open
//! assignment, hand-backs to the head) and of its agents' console connections
//! (`PresenceBoard`), stored together after every change with the waiting patients' new places
//! (`chat_queue` events). It never idles: a tick lapses silent consoles.
//!
//! Here: `msg` (messages, `DispatcherView`), `state` (the stored state and its changes; the task
//! that tells conversations what was decided), `actor` (the handler, and the kind), `api`.

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{DispatcherActor, DispatcherKind};
pub use msg::{DispatcherMsg, DispatcherView};
pub use state::{DispatcherActorState, DispatcherArgs};
