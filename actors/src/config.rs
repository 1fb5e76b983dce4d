//! What the actor system needs from the outside: the stores and a few tunables.

use hospital_domain::time::HospitalZone;
use hospital_store::Stores;
use std::time::Duration;

/// Tunables of the actor system. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct ActorConfig {
    /// An actor that has had no message for this long stops itself; the next call starts a fresh
    /// one from the store. Keeps memory bounded by the active doctors and accounts.
    pub idle_timeout: Duration,
    /// The hospital's zone: which day "today" is when a schedule actor picks its window.
    pub zone: HospitalZone,
    /// The longest a caller waits for an actor's answer, so a stuck actor never hangs a request.
    pub call_timeout: Duration,
    /// The longest a kind supervisor waits for a new actor's `pre_start` (a store read).
    pub start_timeout: Duration,
    /// An id that fails more than this many times within `restart_window` is not restarted.
    pub max_restarts: u32,
    /// The window `max_restarts` counts over.
    pub restart_window: Duration,
    /// How many days ahead of today a schedule actor loads (it also keeps yesterday).
    pub schedule_days_ahead: u32,
}

impl Default for ActorConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            zone: HospitalZone::default(),
            call_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
            max_restarts: 5,
            restart_window: Duration::from_secs(60),
            schedule_days_ahead: 60,
        }
    }
}

/// Everything an actor may use, shared by all of them.
#[derive(Clone)]
pub struct ActorDeps {
    pub stores: Stores,
    pub config: ActorConfig,
}

impl std::fmt::Debug for ActorDeps {
    // `Stores` holds trait objects without `Debug`; the config is what is worth printing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorDeps").field("config", &self.config).finish_non_exhaustive()
    }
}
