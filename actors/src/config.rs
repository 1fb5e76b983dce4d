//! The actor system's tunables (`ActorConfig`).

use hospital_domain::time::HospitalZone;
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
    /// How long an unpaid hold lasts (BOOK-3).
    pub hold_ttl: Duration,
    /// How long a place offered from the waitlist is held (BOOK-7).
    pub waitlist_hold_ttl: Duration,
    /// A booking can be cancelled until this long before its segment starts (BOOK-5).
    pub cancel_cutoff: Duration,
    /// After creating a prepay order, ask the provider this long later if no notification came.
    pub payment_check_after: Duration,
    /// Bookings per person per ISO week (BOOK-6).
    pub weekly_cap: usize,
    /// No-shows within `no_show_window` that trigger a ban, and the ban's length (BOOK-6).
    pub no_show_limit: usize,
    pub no_show_window: Duration,
    pub no_show_ban: Duration,
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
            hold_ttl: Duration::from_secs(15 * 60),
            waitlist_hold_ttl: Duration::from_secs(10 * 60),
            cancel_cutoff: Duration::from_secs(2 * 3600),
            payment_check_after: Duration::from_secs(60),
            weekly_cap: 3,
            no_show_limit: 3,
            no_show_window: Duration::from_secs(90 * 24 * 3600),
            no_show_ban: Duration::from_secs(30 * 24 * 3600),
        }
    }
}
